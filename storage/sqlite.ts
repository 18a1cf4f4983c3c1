// SQLite storage (better-sqlite3): WAL mode, versioned migrations, prepared statements.
// Writes are committed before the promise resolves, so a stanza acknowledged after a write is on disk
// as far as the process is concerned (synchronous=NORMAL in WAL: safe against a process crash; a
// power cut may lose the last transactions, never corrupt the file).

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ScramCredentials, ScramHash } from '../server/sasl/mechanism.js';
import {
  StorageError,
  type AccountRecord,
  type AccountStore,
  type ArchiveItem,
  type ArchiveQuery,
  type ArchiveStore,
  type KeyValueStore,
  type MapStore,
  type Store,
} from './store.js';

type Credentials = Partial<Record<ScramHash, ScramCredentials>>;

/** Each entry moves the schema one version up; never edit one that has shipped. */
const MIGRATIONS: string[] = [
  `CREATE TABLE accounts (
     host TEXT NOT NULL,
     username TEXT NOT NULL,
     credentials TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (host, username)
   ) WITHOUT ROWID;
   CREATE TABLE kv (
     host TEXT NOT NULL,
     module TEXT NOT NULL,
     store TEXT NOT NULL,
     owner TEXT NOT NULL,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (host, module, store, owner, key)
   ) WITHOUT ROWID;
   CREATE INDEX kv_owner ON kv (host, owner);
   CREATE TABLE archive (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     host TEXT NOT NULL,
     module TEXT NOT NULL,
     store TEXT NOT NULL,
     owner TEXT NOT NULL,
     stamp INTEGER NOT NULL,
     with_jid TEXT,
     value TEXT NOT NULL
   );
   CREATE INDEX archive_owner ON archive (host, module, store, owner, id);
   CREATE INDEX archive_stamp ON archive (host, module, store, stamp);
   CREATE INDEX archive_account ON archive (host, owner);`,
];

export interface SqliteOptions {
  /** File path, or ':memory:'. */
  path: string;
}

export class SqliteStore implements Store {
  readonly db: Database.Database;
  readonly accounts: AccountStore;

  constructor(options: SqliteOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    try {
      this.db = new Database(options.path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000'); // the CLI writes while the server runs
      this.migrate();
    } catch (err) {
      throw new StorageError(`cannot open database ${options.path}: ${(err as Error).message}`, err);
    }
    this.accounts = new SqliteAccounts(this.db);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
    if (current > MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this Herald (${MIGRATIONS.length}); upgrade Herald`);
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[version]!);
        this.db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  map<T>(host: string, module: string, name: string): MapStore<T> {
    return new SqliteMap<T>(this.db, host, module, name);
  }

  keyval<T>(host: string, module: string, name: string): KeyValueStore<T> {
    const map = new SqliteMap<T>(this.db, host, module, name);
    return {
      get: (owner) => map.get(owner, ''),
      set: (owner, value) => map.set(owner, '', value),
      delete: (owner) => map.delete(owner, ''),
    };
  }

  archive<T>(host: string, module: string, name: string): ArchiveStore<T> {
    return new SqliteArchive<T>(this.db, host, module, name);
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}

function wrap<T>(what: string, fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(new StorageError(`${what}: ${(err as Error).message}`, err));
  }
}

function encodeCredentials(credentials: Credentials): string {
  const out: Record<string, { salt: string; iterations: number; storedKey: string; serverKey: string }> = {};
  for (const [hash, c] of Object.entries(credentials)) {
    if (!c) continue;
    out[hash] = { salt: c.salt.toString('base64'), iterations: c.iterations, storedKey: c.storedKey.toString('base64'), serverKey: c.serverKey.toString('base64') };
  }
  return JSON.stringify(out);
}

function decodeCredentials(json: string): Credentials {
  const raw = JSON.parse(json) as Record<string, { salt: string; iterations: number; storedKey: string; serverKey: string }>;
  const out: Credentials = {};
  for (const [hash, c] of Object.entries(raw)) {
    out[hash as ScramHash] = {
      salt: Buffer.from(c.salt, 'base64'),
      iterations: c.iterations,
      storedKey: Buffer.from(c.storedKey, 'base64'),
      serverKey: Buffer.from(c.serverKey, 'base64'),
    };
  }
  return out;
}

class SqliteAccounts implements AccountStore {
  private readonly insert;
  private readonly select;
  private readonly exist;
  private readonly update;
  private readonly remove;
  private readonly removeKv;
  private readonly removeArchive;
  private readonly listAll;
  private readonly countAll;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare('INSERT OR IGNORE INTO accounts (host, username, credentials, created_at) VALUES (?, ?, ?, ?)');
    this.select = db.prepare('SELECT username, credentials, created_at FROM accounts WHERE host = ? AND username = ?');
    this.exist = db.prepare('SELECT 1 FROM accounts WHERE host = ? AND username = ?').pluck();
    this.update = db.prepare('UPDATE accounts SET credentials = ? WHERE host = ? AND username = ?');
    this.remove = db.prepare('DELETE FROM accounts WHERE host = ? AND username = ?');
    this.removeKv = db.prepare('DELETE FROM kv WHERE host = ? AND owner = ?');
    this.removeArchive = db.prepare('DELETE FROM archive WHERE host = ? AND owner = ?');
    this.listAll = db.prepare('SELECT username FROM accounts WHERE host = ? ORDER BY username').pluck();
    this.countAll = db.prepare('SELECT count(*) FROM accounts WHERE host = ?').pluck();
  }

  create(host: string, username: string, credentials: Credentials): Promise<boolean> {
    return wrap('create account', () => this.insert.run(host, username, encodeCredentials(credentials), Date.now()).changes === 1);
  }

  get(host: string, username: string): Promise<AccountRecord | null> {
    return wrap('get account', () => {
      const row = this.select.get(host, username) as { username: string; credentials: string; created_at: number } | undefined;
      if (!row) return null;
      return { username: row.username, credentials: decodeCredentials(row.credentials), createdAt: new Date(row.created_at) };
    });
  }

  exists(host: string, username: string): Promise<boolean> {
    return wrap('account exists', () => this.exist.get(host, username) === 1);
  }

  setCredentials(host: string, username: string, credentials: Credentials): Promise<boolean> {
    return wrap('set credentials', () => this.update.run(encodeCredentials(credentials), host, username).changes === 1);
  }

  delete(host: string, username: string): Promise<boolean> {
    return wrap('delete account', () =>
      this.db.transaction(() => {
        const gone = this.remove.run(host, username).changes === 1;
        this.removeKv.run(host, username);
        this.removeArchive.run(host, username);
        return gone;
      })(),
    );
  }

  list(host: string): Promise<string[]> {
    return wrap('list accounts', () => this.listAll.all(host) as string[]);
  }

  count(host: string): Promise<number> {
    return wrap('count accounts', () => this.countAll.get(host) as number);
  }
}

class SqliteMap<T> implements MapStore<T> {
  private readonly stmts;
  private readonly scope: [string, string, string];

  constructor(db: Database.Database, host: string, module: string, name: string) {
    this.scope = [host, module, name];
    const where = 'host = ? AND module = ? AND store = ?';
    this.stmts = {
      get: db.prepare(`SELECT value FROM kv WHERE ${where} AND owner = ? AND key = ?`).pluck(),
      set: db.prepare('INSERT INTO kv (host, module, store, owner, key, value) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value'),
      delete: db.prepare(`DELETE FROM kv WHERE ${where} AND owner = ? AND key = ?`),
      list: db.prepare(`SELECT key, value FROM kv WHERE ${where} AND owner = ? ORDER BY key`),
      count: db.prepare(`SELECT count(*) FROM kv WHERE ${where} AND owner = ?`).pluck(),
      deleteAll: db.prepare(`DELETE FROM kv WHERE ${where} AND owner = ?`),
      owners: db.prepare(`SELECT DISTINCT owner FROM kv WHERE ${where} ORDER BY owner`).pluck(),
    };
  }

  get(owner: string, key: string): Promise<T | undefined> {
    return wrap('map get', () => {
      const value = this.stmts.get.get(...this.scope, owner, key) as string | undefined;
      return value === undefined ? undefined : (JSON.parse(value) as T);
    });
  }

  set(owner: string, key: string, value: T): Promise<void> {
    return wrap('map set', () => {
      this.stmts.set.run(...this.scope, owner, key, JSON.stringify(value));
    });
  }

  delete(owner: string, key: string): Promise<boolean> {
    return wrap('map delete', () => this.stmts.delete.run(...this.scope, owner, key).changes > 0);
  }

  list(owner: string): Promise<{ key: string; value: T }[]> {
    return wrap('map list', () =>
      (this.stmts.list.all(...this.scope, owner) as { key: string; value: string }[]).map((row) => ({ key: row.key, value: JSON.parse(row.value) as T })),
    );
  }

  count(owner: string): Promise<number> {
    return wrap('map count', () => this.stmts.count.get(...this.scope, owner) as number);
  }

  deleteAll(owner: string): Promise<number> {
    return wrap('map delete all', () => this.stmts.deleteAll.run(...this.scope, owner).changes);
  }

  owners(): Promise<string[]> {
    return wrap('map owners', () => this.stmts.owners.all(...this.scope) as string[]);
  }
}

class SqliteArchive<T> implements ArchiveStore<T> {
  private readonly stmts;
  private readonly scope: [string, string, string];

  constructor(private readonly db: Database.Database, host: string, module: string, name: string) {
    this.scope = [host, module, name];
    const where = 'host = ? AND module = ? AND store = ?';
    this.stmts = {
      append: db.prepare('INSERT INTO archive (host, module, store, owner, stamp, with_jid, value) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      count: db.prepare(`SELECT count(*) FROM archive WHERE ${where} AND owner = ?`).pluck(),
      deleteOne: db.prepare(`DELETE FROM archive WHERE ${where} AND owner = ? AND id = ?`),
      deleteAll: db.prepare(`DELETE FROM archive WHERE ${where} AND owner = ?`),
      deleteOlder: db.prepare(`DELETE FROM archive WHERE ${where} AND stamp < ?`),
    };
  }

  append(owner: string, value: T, meta: { with?: string; stamp?: number } = {}): Promise<number> {
    return wrap('archive append', () =>
      Number(this.stmts.append.run(...this.scope, owner, meta.stamp ?? Date.now(), meta.with ?? null, JSON.stringify(value)).lastInsertRowid),
    );
  }

  list(owner: string, query: ArchiveQuery = {}): Promise<ArchiveItem<T>[]> {
    return wrap('archive list', () => {
      const clauses = ['host = ?', 'module = ?', 'store = ?', 'owner = ?'];
      const params: (string | number)[] = [...this.scope, owner];
      if (query.after !== undefined) (clauses.push('id > ?'), params.push(query.after));
      if (query.before !== undefined) (clauses.push('id < ?'), params.push(query.before));
      if (query.with !== undefined) (clauses.push('with_jid = ?'), params.push(query.with));
      if (query.start !== undefined) (clauses.push('stamp >= ?'), params.push(query.start));
      if (query.end !== undefined) (clauses.push('stamp <= ?'), params.push(query.end));
      let sql = `SELECT id, stamp, with_jid, value FROM archive WHERE ${clauses.join(' AND ')} ORDER BY id ${query.reverse ? 'DESC' : 'ASC'}`;
      if (query.limit !== undefined) (sql += ' LIMIT ?'), params.push(query.limit);
      const rows = this.db.prepare(sql).all(...params) as { id: number; stamp: number; with_jid: string | null; value: string }[];
      return rows.map((row) => ({ id: row.id, stamp: row.stamp, with: row.with_jid ?? undefined, value: JSON.parse(row.value) as T }));
    });
  }

  count(owner: string): Promise<number> {
    return wrap('archive count', () => this.stmts.count.get(...this.scope, owner) as number);
  }

  delete(owner: string, ids: number[]): Promise<number> {
    return wrap('archive delete', () =>
      this.db.transaction(() => {
        let n = 0;
        for (const id of ids) n += this.stmts.deleteOne.run(...this.scope, owner, id).changes;
        return n;
      })(),
    );
  }

  deleteAll(owner: string): Promise<number> {
    return wrap('archive delete all', () => this.stmts.deleteAll.run(...this.scope, owner).changes);
  }

  deleteOlderThan(stamp: number): Promise<number> {
    return wrap('archive expire', () => this.stmts.deleteOlder.run(...this.scope, stamp).changes);
  }
}
