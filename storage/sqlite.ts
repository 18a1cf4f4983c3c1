// SQLite storage (better-sqlite3): WAL mode, versioned migrations, prepared statements.
// Writes are committed before the promise resolves, so a stanza acknowledged after a write is on disk
// as far as the process is concerned (synchronous=NORMAL in WAL: safe against a process crash; a
// power cut may lose the last transactions, never corrupt the file).

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { CheckpointerData } from './checkpointer.js';
import type { ScramCredentials, ScramHash } from '../server/sasl/mechanism.js';
import {
  StorageError,
  type AccountRecord,
  type AccountAnnouncement,
  type AccountChange,
  type AccountStore,
  type ArchiveAppendMeta,
  type ArchiveItem,
  type ArchiveQuery,
  type ArchiveStore,
  type KeyValueStore,
  type MapStore,
  type Store,
  type WriteOptions,
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
  // 2: MAM (modules/mam): items findable by the caller's own key (the XEP-0359 stanza id clients
  // page with), and 'with' queries that do not scan an owner's whole archive.
  `ALTER TABLE archive ADD COLUMN item_key TEXT;
   CREATE INDEX archive_key ON archive (host, module, store, owner, item_key) WHERE item_key IS NOT NULL;
   CREATE INDEX archive_with ON archive (host, module, store, owner, with_jid);`,
  // 3: MAM queries by a bare JID (every resource of it) and by time, each one index range within the
  // owner's items (EXPLAIN QUERY PLAN showed the first scanning the owner's whole archive and the
  // second every owner's items in the time range). SQLite appends the rowid to every index, so
  // 'with_bare = ?' also comes out in id order, without sorting. It serves full JIDs too (their
  // bare JID, then the resource compared), so archive_with goes: each index costs every append.
  // archive_stamp, which serves only retention, becomes a partial index that only the retention
  // delete (which says 'stamp >= 0') can use: without statistics the planner took it for owner
  // queries with start and end.
  `ALTER TABLE archive ADD COLUMN with_bare TEXT;
   UPDATE archive SET with_bare = CASE WHEN instr(with_jid, '/') > 0 THEN substr(with_jid, 1, instr(with_jid, '/') - 1) ELSE with_jid END
     WHERE with_jid IS NOT NULL;
   CREATE INDEX archive_with_bare ON archive (host, module, store, owner, with_bare);
   DROP INDEX IF EXISTS archive_with;
   CREATE INDEX archive_owner_stamp ON archive (host, module, store, owner, stamp);
   DROP INDEX IF EXISTS archive_stamp;
   CREATE INDEX archive_expiry ON archive (host, module, store, stamp) WHERE stamp >= 0;`,
  // 4: archive_account (host, owner) served only account deletion, yet every append paid for it: one
  // more index page at a random place (~20 % of an append on a 200,000-row archive). Deletion now
  // goes store by store through archive_owner; archive_stores lists the stores a host has.
  `CREATE TABLE IF NOT EXISTS archive_stores (
     host TEXT NOT NULL,
     module TEXT NOT NULL,
     store TEXT NOT NULL,
     PRIMARY KEY (host, module, store)
   ) WITHOUT ROWID;
   INSERT OR IGNORE INTO archive_stores (host, module, store) SELECT DISTINCT host, module, store FROM archive;
   DROP INDEX IF EXISTS archive_account;`,
  // 5: account changes made by the CLI while the server runs (AccountStore.announce).
  `CREATE TABLE IF NOT EXISTS account_announcements (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     host TEXT NOT NULL,
     username TEXT NOT NULL,
     change TEXT NOT NULL,
     at INTEGER NOT NULL
   );`,
];

export interface SqliteOptions {
  /** File path, or ':memory:'. */
  path: string;
  /**
   * How long a lazy write (WriteOptions.lazy) may wait for others to share its commit. Default
   * 10 ms; 0 treats lazy writes like the others (committed at the end of the event-loop turn).
   */
  lazyCommitMs?: number;
  /**
   * WAL checkpoints in a worker thread (storage/checkpointer.ts) instead of inside the commits of
   * this connection, whose event loop they stalled: for the long-running server. Off for the CLI's
   * short-lived stores.
   */
  backgroundCheckpoints?: boolean;
}

/** How often the checkpointer copies the WAL into the database file. */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * With the checkpointer, this connection still checkpoints itself once the WAL exceeds this many
 * pages (40 MiB): a safety net should the worker fall behind, not the normal path.
 */
const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

export class SqliteStore implements Store {
  readonly db: Database.Database;
  readonly accounts: AccountStore;
  private readonly batch: WriteBatch;

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
    this.batch = new WriteBatch(this.db, options.lazyCommitMs ?? 10);
    this.accounts = new SqliteAccounts(this.db, this.batch);
    if (options.backgroundCheckpoints && options.path !== ':memory:') this.startCheckpointer(options.path);
  }

  private checkpointer: Worker | undefined;

  private startCheckpointer(path: string): void {
    const workerData: CheckpointerData = { path, intervalMs: CHECKPOINT_INTERVAL_MS };
    const worker = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData });
    worker.unref(); // never what keeps the process alive
    // Should the worker die, commits checkpoint again as SQLite does by default.
    worker.on('error', () => this.db.open && this.db.pragma('wal_autocheckpoint = 1000'));
    this.db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    this.checkpointer = worker;
  }

  private async stopCheckpointer(): Promise<void> {
    const worker = this.checkpointer;
    if (!worker) return;
    this.checkpointer = undefined;
    // Referenced while it finishes: an unreferenced worker (and timer) would let the event loop of
    // a process with nothing else to do end before the worker's answer, leaving close() unresolved.
    worker.ref();
    const stopped = once(worker, 'message').catch(() => undefined);
    worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    await worker.terminate();
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
    return new SqliteMap<T>(this.db, this.batch, host, module, name);
  }

  keyval<T>(host: string, module: string, name: string): KeyValueStore<T> {
    const map = new SqliteMap<T>(this.db, this.batch, host, module, name);
    return {
      get: (owner) => map.get(owner, ''),
      set: (owner, value) => map.set(owner, '', value),
      delete: (owner) => map.delete(owner, ''),
    };
  }

  archive<T>(host: string, module: string, name: string): ArchiveStore<T> {
    return new SqliteArchive<T>(this.db, this.batch, host, module, name);
  }

  /**
   * Runs `fn` as one transaction. `fn` may await (an import streams its file), so this connection
   * must serve nothing else meanwhile: for offline tools (`herald import`, `herald export`), never
   * inside the running server.
   * - 'read': a consistent snapshot for reading; in WAL mode a running server keeps writing.
   * - 'exclusive': everything `fn` writes is committed together, or nothing when it throws; the
   *   database is held alone, and when another process has it open (a running server, or
   *   `herald adduser` at that moment) this fails at once with a StorageError whose cause has the
   *   code SQLITE_BUSY.
   */
  async transaction<T>(mode: 'read' | 'exclusive', fn: () => Promise<T>): Promise<T> {
    this.batch.flush();
    if (mode === 'exclusive') this.beginExclusive();
    else this.db.exec('BEGIN');
    try {
      const result = await fn();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    } finally {
      if (mode === 'exclusive') this.releaseExclusive();
    }
  }

  private beginExclusive(): void {
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    // In WAL mode, an EXCLUSIVE locking mode lock is refused while any other connection has the
    // database open, even an idle one: exactly "is anyone else using this file?".
    this.db.pragma('busy_timeout = 0');
    this.db.pragma('locking_mode = EXCLUSIVE');
    try {
      this.db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      this.releaseExclusive();
      throw new StorageError(`cannot hold the database alone: ${(err as Error).message}`, err);
    } finally {
      this.db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  /** Back to shared locking: the lock goes at the next read of the database file. */
  private releaseExclusive(): void {
    this.db.pragma('locking_mode = NORMAL');
    this.db.prepare('SELECT count(*) FROM sqlite_master').get();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.batch.flush();
    await this.stopCheckpointer();
    // PASSIVE: never waits. A CLI command (export, adduser) closing beside a running server must not
    // stall the server's writes; the last connection to close checkpoints and removes the WAL anyway.
    this.db.pragma('wal_checkpoint(PASSIVE)');
    this.db.close();
  }
}

/** What a write stores, computed at the call; a rejected promise when that throws (JSON of a cycle). */
function serialized<T>(what: string, fn: () => T): T | Promise<never> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(new StorageError(`${what}: ${(err as Error).message}`, err));
  }
}

function wrap<T>(what: string, fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(new StorageError(`${what}: ${(err as Error).message}`, err));
  }
}

/**
 * Group commit. An ordinary write runs at once (later reads on this connection see it) inside one
 * open transaction, and its promise resolves only after that transaction's COMMIT, so nothing a
 * caller was told is stored can be lost; the transaction commits when the event-loop turn's I/O is
 * done (setImmediate). Why: a commit costs far more than an insert on a VM disk (one pwrite per
 * dirty page: ~200 µs measured for an archive append, which dirties the table and five index
 * pages), and at 1,000 messages/s a commit per turn was two thirds of the server's time.
 *
 * A lazy write (WriteOptions.lazy: message archives, push counters) is queued instead, and the
 * queue runs in one short transaction `lazyMs` after its first write, or earlier, in order, before
 * an ordinary write (so writes keep their order) or a read of a map or archive (so reads see every
 * write). Running it late rather than at once keeps the connection out of a write transaction
 * between windows: only a moment without one lets the WAL start over (see storage/checkpointer.ts);
 * with a transaction always open, the WAL grew until this connection had to checkpoint it inside a
 * commit, stalling the event loop for 50–100 ms every half second at 2,500 archived messages/s.
 * Ordinary writes keep their one-turn delay, so what a module sends after awaiting one keeps its
 * order against what it sends without. Inside a transaction someone else opened (the import and
 * export tools), writes simply join it.
 */
class WriteBatch {
  /** This batch began the open transaction (and commits it). */
  private open = false;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waiting: { resolve(): void; reject(err: unknown): void }[] = [];
  /** Lazy writes not run yet, in order. */
  private queued: { what: string; run(): unknown; resolve(value: unknown): void; reject(err: unknown): void }[] = [];

  constructor(private readonly db: Database.Database, private readonly lazyMs: number) {}

  write<T>(what: string, fn: () => T, lazy = false): Promise<T> {
    if (lazy && this.lazyMs > 0 && (this.open || !this.db.inTransaction)) {
      return new Promise<T>((resolve, reject) => {
        this.queued.push({ what, run: fn, resolve: resolve as (value: unknown) => void, reject });
        if (!this.immediate) this.timer ??= setTimeout(() => this.flush(), this.lazyMs);
      });
    }
    this.drain();
    const failed = this.begin();
    if (failed) return Promise.reject(new StorageError(`${what}: ${failed.message}`, failed));
    if (this.open) this.immediate ??= setImmediate(() => this.flush());
    let result: T;
    try {
      result = fn();
    } catch (err) {
      return Promise.reject(new StorageError(`${what}: ${(err as Error).message}`, err));
    }
    if (!this.open) return Promise.resolve(result);
    return new Promise<T>((resolve, reject) => this.waiting.push({ resolve: () => resolve(result), reject }));
  }

  /** Runs the queued lazy writes now, inside the batch's transaction (committed as planned). */
  drain(): void {
    if (this.queued.length === 0) return;
    const queued = this.queued;
    this.queued = [];
    const failed = this.begin();
    for (const q of queued) {
      if (failed) {
        q.reject(new StorageError(`${q.what}: ${failed.message}`, failed));
        continue;
      }
      let result: unknown;
      try {
        result = q.run();
      } catch (err) {
        q.reject(new StorageError(`${q.what}: ${(err as Error).message}`, err));
        continue;
      }
      if (this.open) this.waiting.push({ resolve: () => q.resolve(result), reject: q.reject });
      else q.resolve(result);
    }
  }

  /** Commits what was written (also called before closing and before explicit transactions). */
  flush(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = undefined;
    this.timer = undefined;
    this.drain();
    if (!this.open) return;
    this.open = false;
    const waiting = this.waiting;
    this.waiting = [];
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // nothing more to undo
      }
      for (const w of waiting) w.reject(new StorageError(`commit failed: ${(err as Error).message}`, err));
      return;
    }
    for (const w of waiting) w.resolve();
  }

  /** Opens the batch's transaction unless one is open (ours, or a tool's); the error if BEGIN failed. */
  private begin(): Error | undefined {
    if (this.db.inTransaction) return undefined;
    try {
      this.db.exec('BEGIN');
    } catch (err) {
      return err as Error;
    }
    this.open = true;
    return undefined;
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

const ACCOUNT_CACHE_SIZE = 10_000;

class SqliteAccounts implements AccountStore {
  private readonly insert;
  private readonly select;
  private readonly update;
  private readonly remove;
  private readonly removeKv;
  private readonly archiveStores;
  private readonly removeArchive;
  private readonly listAll;
  private readonly countAll;
  private readonly dataVersion;
  /**
   * Accounts are read on every login and for every message to an offline user: they are cached,
   * and the cache is dropped whenever another connection (the CLI's adduser/passwd/deluser in its
   * own process) has committed to the database — SQLite's PRAGMA data_version tells. It is asked
   * once per event-loop turn, not per read: a busy server reads many accounts per turn, and each
   * PRAGMA is a read transaction with its own file locks (~2 % of a login's CPU when asked per read).
   */
  private readonly cache = new Map<string, AccountRecord | null>();
  private seenVersion = -1;
  private versionCheckedThisTurn = false;
  private readonly endOfTurn = (): void => {
    this.versionCheckedThisTurn = false;
  };

  constructor(
    private readonly db: Database.Database,
    private readonly batch: WriteBatch,
  ) {
    this.insert = db.prepare('INSERT OR IGNORE INTO accounts (host, username, credentials, created_at) VALUES (?, ?, ?, ?)');
    this.select = db.prepare('SELECT username, credentials, created_at FROM accounts WHERE host = ? AND username = ?');
    this.update = db.prepare('UPDATE accounts SET credentials = ? WHERE host = ? AND username = ?');
    this.remove = db.prepare('DELETE FROM accounts WHERE host = ? AND username = ?');
    this.removeKv = db.prepare('DELETE FROM kv WHERE host = ? AND owner = ?');
    this.archiveStores = db.prepare('SELECT module, store FROM archive_stores WHERE host = ?');
    this.removeArchive = db.prepare('DELETE FROM archive WHERE host = ? AND module = ? AND store = ? AND owner = ?');
    this.listAll = db.prepare('SELECT username FROM accounts WHERE host = ? ORDER BY username').pluck();
    this.countAll = db.prepare('SELECT count(*) FROM accounts WHERE host = ?').pluck();
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  private cached(host: string, username: string): AccountRecord | null {
    if (!this.versionCheckedThisTurn) {
      this.versionCheckedThisTurn = true;
      setImmediate(this.endOfTurn);
      const version = this.dataVersion.get() as number;
      if (version !== this.seenVersion) {
        this.cache.clear();
        this.seenVersion = version;
      }
    }
    const key = `${host}\0${username}`;
    let record = this.cache.get(key);
    if (record === undefined) {
      const row = this.select.get(host, username) as { username: string; credentials: string; created_at: number } | undefined;
      record = row ? { username: row.username, credentials: decodeCredentials(row.credentials), createdAt: new Date(row.created_at) } : null;
      if (this.cache.size >= ACCOUNT_CACHE_SIZE) this.cache.clear();
      this.cache.set(key, record);
    }
    return record;
  }

  private forget(host: string, username: string): void {
    this.cache.delete(`${host}\0${username}`);
  }

  create(host: string, username: string, credentials: Credentials): Promise<boolean> {
    this.forget(host, username);
    return this.batch.write('create account', () => this.insert.run(host, username, encodeCredentials(credentials), Date.now()).changes === 1);
  }

  get(host: string, username: string): Promise<AccountRecord | null> {
    return wrap('get account', () => this.cached(host, username));
  }

  exists(host: string, username: string): Promise<boolean> {
    return wrap('account exists', () => this.cached(host, username) !== null);
  }

  setCredentials(host: string, username: string, credentials: Credentials): Promise<boolean> {
    this.forget(host, username);
    return this.batch.write('set credentials', () => this.update.run(encodeCredentials(credentials), host, username).changes === 1);
  }

  delete(host: string, username: string): Promise<boolean> {
    this.forget(host, username);
    return this.batch.write('delete account', () =>
      this.db.transaction(() => {
        const gone = this.remove.run(host, username).changes === 1;
        this.removeKv.run(host, username);
        for (const { module, store } of this.archiveStores.all(host) as { module: string; store: string }[]) {
          this.removeArchive.run(host, module, store, username);
        }
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

  announce(host: string, username: string, change: AccountChange): Promise<void> {
    const at = Date.now();
    return this.batch.write('announce account change', () => {
      // A day is far longer than any server takes to read them; older ones would only pile up.
      this.db.prepare('DELETE FROM account_announcements WHERE at < ?').run(at - ANNOUNCEMENT_LIFETIME_MS);
      this.db.prepare('INSERT INTO account_announcements (host, username, change, at) VALUES (?, ?, ?, ?)').run(host, username, change, at);
    });
  }

  announcementsAfter(host: string, afterId: number): Promise<AccountAnnouncement[]> {
    return wrap('read account announcements', () =>
      this.db.prepare('SELECT id, username, change FROM account_announcements WHERE id > ? AND host = ? ORDER BY id').all(afterId, host) as AccountAnnouncement[],
    );
  }

  lastAnnouncementId(): Promise<number> {
    return wrap('read account announcements', () => (this.db.prepare('SELECT coalesce(max(id), 0) FROM account_announcements').pluck().get() as number));
  }
}

const ANNOUNCEMENT_LIFETIME_MS = 24 * 3_600_000;

class SqliteMap<T> implements MapStore<T> {
  private readonly stmts;
  private readonly scope: [string, string, string];

  constructor(
    db: Database.Database,
    private readonly batch: WriteBatch,
    host: string,
    module: string,
    name: string,
  ) {
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

  /** Reads see every write made through the store, lazy ones included (WriteBatch.drain). */
  private read<R>(what: string, fn: () => R): Promise<R> {
    this.batch.drain();
    return wrap(what, fn);
  }

  get(owner: string, key: string): Promise<T | undefined> {
    return this.read('map get', () => {
      const value = this.stmts.get.get(...this.scope, owner, key) as string | undefined;
      return value === undefined ? undefined : (JSON.parse(value) as T);
    });
  }

  set(owner: string, key: string, value: T, options?: WriteOptions): Promise<void> {
    const json = serialized('map set', () => JSON.stringify(value)); // the value as it is now (lazy writes run later)
    if (json instanceof Promise) return json;
    return this.batch.write(
      'map set',
      () => {
        this.stmts.set.run(...this.scope, owner, key, json);
      },
      options?.lazy,
    );
  }

  delete(owner: string, key: string): Promise<boolean> {
    return this.batch.write('map delete', () => this.stmts.delete.run(...this.scope, owner, key).changes > 0);
  }

  list(owner: string): Promise<{ key: string; value: T }[]> {
    return this.read('map list', () =>
      (this.stmts.list.all(...this.scope, owner) as { key: string; value: string }[]).map((row) => ({ key: row.key, value: JSON.parse(row.value) as T })),
    );
  }

  count(owner: string): Promise<number> {
    return this.read('map count', () => this.stmts.count.get(...this.scope, owner) as number);
  }

  deleteAll(owner: string): Promise<number> {
    return this.batch.write('map delete all', () => this.stmts.deleteAll.run(...this.scope, owner).changes);
  }

  owners(): Promise<string[]> {
    return this.read('map owners', () => this.stmts.owners.all(...this.scope) as string[]);
  }
}

/** The bare JID part of an item's 'with' (a JID's localpart and domain hold no '/', RFC 7622 §3). */
function bareOf(jid: string | undefined): string | null {
  if (jid === undefined) return null;
  const slash = jid.indexOf('/');
  return slash === -1 ? jid : jid.slice(0, slash);
}

type ArchiveRow = { id: number; stamp: number; with_jid: string | null; item_key: string | null; value: string };

class SqliteArchive<T> implements ArchiveStore<T> {
  private readonly stmts;
  private readonly scope: [string, string, string];
  /** Statements for the query shapes seen so far (a handful: which filters are set). */
  private readonly queries = new Map<string, Database.Statement>();
  private listed = false;

  constructor(
    private readonly db: Database.Database,
    private readonly batch: WriteBatch,
    host: string,
    module: string,
    name: string,
  ) {
    this.scope = [host, module, name];
    const where = 'host = ? AND module = ? AND store = ?';
    this.stmts = {
      append: db.prepare('INSERT INTO archive (host, module, store, owner, stamp, with_jid, with_bare, item_key, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      count: db.prepare(`SELECT count(*) FROM archive WHERE ${where} AND owner = ?`).pluck(),
      byKey: db.prepare(`SELECT id, stamp, with_jid, item_key, value FROM archive WHERE ${where} AND owner = ? AND item_key = ? LIMIT 1`),
      deleteOne: db.prepare(`DELETE FROM archive WHERE ${where} AND owner = ? AND id = ?`),
      deleteAll: db.prepare(`DELETE FROM archive WHERE ${where} AND owner = ?`),
      // 'stamp >= 0' (always true) is what lets SQLite use the partial index archive_expiry (migration 3).
      deleteOlder: db.prepare(`DELETE FROM archive WHERE ${where} AND stamp < ? AND stamp >= 0`),
    };
  }

  /** Reads see every write made through the store, lazy ones included (WriteBatch.drain). */
  private read<R>(what: string, fn: () => R): Promise<R> {
    this.batch.drain();
    return wrap(what, fn);
  }

  append(owner: string, value: T, meta: ArchiveAppendMeta = {}): Promise<number> {
    // Taken now, not when a lazy write runs: the stamp is the time of the call, and the value as
    // it was (the caller may change its object afterwards).
    const row = serialized('archive append', () => [owner, meta.stamp ?? Date.now(), meta.with ?? null, bareOf(meta.with), meta.key ?? null, JSON.stringify(value)] as const);
    if (row instanceof Promise) return row;
    return this.batch.write('archive append', () => {
      // Listed for account deletion (migration 4) with this store's first append; not at
      // construction, where a read-only user (herald export beside a running server) would write.
      if (!this.listed) {
        this.db.prepare('INSERT OR IGNORE INTO archive_stores (host, module, store) VALUES (?, ?, ?)').run(...this.scope);
        this.listed = true;
      }
      return Number(this.stmts.append.run(...this.scope, ...row).lastInsertRowid);
    }, meta.lazy === true);
  }

  list(owner: string, query: ArchiveQuery = {}): Promise<ArchiveItem<T>[]> {
    return this.read('archive list', () => {
      const { where, params } = this.filter(owner, query);
      // With keys (a short list) '+id' stops SQLite from walking the owner's items in id order to
      // avoid a sort: it looks the keys up in archive_key and sorts those few instead.
      let sql = `SELECT id, stamp, with_jid, item_key, value FROM archive WHERE ${where} ORDER BY ${query.keys ? '+id' : 'id'} ${query.reverse ? 'DESC' : 'ASC'}`;
      if (query.limit !== undefined) (sql += ' LIMIT ?'), params.push(query.limit);
      return (this.statement(sql).all(...params) as ArchiveRow[]).map((row) => this.item(row));
    });
  }

  count(owner: string, query?: ArchiveQuery): Promise<number> {
    if (!query) return this.read('archive count', () => this.stmts.count.get(...this.scope, owner) as number);
    return this.read('archive count', () => {
      const { where, params } = this.filter(owner, query);
      return this.statement(`SELECT count(*) FROM archive WHERE ${where}`).pluck().get(...params) as number;
    });
  }

  findByKey(owner: string, key: string): Promise<ArchiveItem<T> | undefined> {
    return this.read('archive find', () => {
      const row = this.stmts.byKey.get(...this.scope, owner, key) as ArchiveRow | undefined;
      return row && this.item(row);
    });
  }

  private filter(owner: string, query: ArchiveQuery): { where: string; params: (string | number)[] } {
    const clauses = ['host = ?', 'module = ?', 'store = ?', 'owner = ?'];
    const params: (string | number)[] = [...this.scope, owner];
    if (query.after !== undefined) (clauses.push('id > ?'), params.push(query.after));
    if (query.before !== undefined) (clauses.push('id < ?'), params.push(query.before));
    // Through its bare JID's index range (archive_with_bare), then the exact JID.
    if (query.with !== undefined) (clauses.push('with_bare = ? AND with_jid = ?'), params.push(bareOf(query.with) ?? '', query.with));
    // The bare JID itself or any of its full JIDs: one value of the with_bare column (migration 3).
    if (query.withBare !== undefined) (clauses.push('with_bare = ?'), params.push(query.withBare));
    // 'item_key IS NOT NULL' lets SQLite use the partial index archive_key for the lookups.
    if (query.keys !== undefined) (clauses.push(`item_key IN (${query.keys.map(() => '?').join(', ') || 'NULL'}) AND item_key IS NOT NULL`), params.push(...query.keys));
    if (query.start !== undefined) (clauses.push('stamp >= ?'), params.push(query.start));
    if (query.end !== undefined) (clauses.push('stamp <= ?'), params.push(query.end));
    return { where: clauses.join(' AND '), params };
  }

  private statement(sql: string): Database.Statement {
    let stmt = this.queries.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.queries.size < 64) this.queries.set(sql, stmt); // 'keys' lists vary in length: don't keep them all
    }
    return stmt;
  }

  private item(row: ArchiveRow): ArchiveItem<T> {
    return { id: row.id, stamp: row.stamp, with: row.with_jid ?? undefined, key: row.item_key ?? undefined, value: JSON.parse(row.value) as T };
  }

  delete(owner: string, ids: number[]): Promise<number> {
    return this.batch.write('archive delete', () =>
      this.db.transaction(() => {
        let n = 0;
        for (const id of ids) n += this.stmts.deleteOne.run(...this.scope, owner, id).changes;
        return n;
      })(),
    );
  }

  deleteAll(owner: string): Promise<number> {
    return this.batch.write('archive delete all', () => this.stmts.deleteAll.run(...this.scope, owner).changes);
  }

  deleteOlderThan(stamp: number): Promise<number> {
    return this.batch.write('archive expire', () => this.stmts.deleteOlder.run(...this.scope, stamp).changes);
  }
}
