// The storage the archive stands on (storage/sqlite.ts, migrations 2 and 3): items found by key, 'with'
// matching a bare JID and its full JIDs (and nothing that merely starts alike), counts with
// filters, and an old database brought up to date.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../storage/sqlite.js';
import { tempDatabase } from '../helpers/temp-database.js';

function memoryArchive(t: { after(fn: () => unknown): void }) {
  const store = new SqliteStore({ path: ':memory:' });
  t.after(() => store.close());
  return store.archive<string>('localhost', 'mam', 'messages');
}

describe('storage: archive keys and JID ranges', () => {
  test('findByKey → the item stored under that key for that owner only', async (t) => {
    const archive = memoryArchive(t);
    await archive.append('juliet', 'one', { key: 'k1', with: 'romeo@localhost/x' });
    await archive.append('romeo', 'other', { key: 'k1' });
    const found = await archive.findByKey('juliet', 'k1');
    assert.equal(found?.value, 'one');
    assert.equal(found?.key, 'k1');
    assert.equal(found?.with, 'romeo@localhost/x');
    assert.equal(await archive.findByKey('juliet', 'k2'), undefined);
  });

  test("withBare → the bare JID and its full JIDs, not 'romeo@localhost.evil' nor 'romeo@localhos'", async (t) => {
    const archive = memoryArchive(t);
    for (const peer of ['romeo@localhost', 'romeo@localhost/a', 'romeo@localhost/b/c', 'romeo@localhost.evil', 'romeo@localhos', 'romeo@localhost0', 'romeo2@localhost']) {
      await archive.append('juliet', peer, { with: peer });
    }
    const matched = (await archive.list('juliet', { withBare: 'romeo@localhost' })).map((i) => i.value);
    assert.deepEqual(matched, ['romeo@localhost', 'romeo@localhost/a', 'romeo@localhost/b/c']);
    assert.equal(await archive.count('juliet', { withBare: 'romeo@localhost' }), 3);
    assert.equal(await archive.count('juliet', { with: 'romeo@localhost/a' }), 1);
  });

  test('keys and id bounds filter; count ignores limit and order', async (t) => {
    const archive = memoryArchive(t);
    const ids: number[] = [];
    for (const key of ['a', 'b', 'c', 'd']) ids.push(await archive.append('juliet', key, { key }));
    assert.deepEqual((await archive.list('juliet', { keys: ['d', 'b'] })).map((i) => i.key), ['b', 'd']);
    assert.deepEqual((await archive.list('juliet', { keys: [] })).map((i) => i.key), []);
    assert.equal(await archive.count('juliet', { after: ids[0]!, limit: 1, reverse: true }), 3);
    assert.deepEqual((await archive.list('juliet', { before: ids[3]!, reverse: true, limit: 2 })).map((i) => i.key), ['c', 'b']);
  });

  test('query plans: with (bare and full), start/end, ids and id bounds are index ranges within the owner, never a scan', async (t) => {
    const store = new SqliteStore({ path: ':memory:' });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    for (let i = 0; i < 50; i++) await archive.append(`u${i % 5}`, 'x', { with: `p${i % 3}@localhost/r`, key: `k${i}`, stamp: 1000 + i });
    const seen: string[] = [];
    const prepare = store.db.prepare.bind(store.db);
    store.db.prepare = ((sql: string) => (seen.push(sql), prepare(sql))) as typeof store.db.prepare;
    const shapes = [
      { withBare: 'p1@localhost' },
      { with: 'p1@localhost/r' },
      { start: 1010 },
      { start: 1010, end: 1020 },
      { keys: ['k1', 'k6'] },
      { after: 3, before: 30 },
    ];
    const expected = ['archive_with_bare', 'archive_with_bare', 'archive_owner_stamp', 'archive_owner_stamp', 'archive_key', 'archive_owner '];
    for (const [i, shape] of shapes.entries()) {
      seen.length = 0;
      await archive.list('u1', { ...shape, limit: 10, reverse: true });
      await archive.count('u1', shape);
      assert.equal(seen.length, 2, `one new statement per call for ${JSON.stringify(shape)}`);
      for (const sql of seen) {
        const plan = (prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...sql.split('?').slice(1).map(() => 'x')) as { detail: string }[]).map((r) => r.detail).join(' | ');
        assert.doesNotMatch(plan, /\bSCAN\b/, plan);
        assert.ok(`${plan} `.includes(`INDEX ${expected[i]!}`), `${JSON.stringify(shape)}: ${plan}`);
        assert.match(plan, /owner=\?/, plan);
      }
    }
    const expiry = (archive as unknown as { stmts: { deleteOlder: { source: string } } }).stmts.deleteOlder.source;
    const expiryPlan = (prepare(`EXPLAIN QUERY PLAN ${expiry}`).all('localhost', 'mam', 'messages', 1) as { detail: string }[]).map((r) => r.detail).join(' | ');
    assert.match(expiryPlan, /USING INDEX archive_expiry \(host=\? AND module=\? AND store=\? AND stamp/, expiryPlan);
  });

  test('group commit: appends of one event-loop turn → one transaction, committed once, visible to other connections only then', async (t) => {
    const path = tempDatabase(t, 'batch.sqlite');
    const store = new SqliteStore({ path });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    const statements: string[] = [];
    const exec = store.db.exec.bind(store.db);
    store.db.exec = ((sql: string) => (statements.push(sql), exec(sql))) as typeof store.db.exec;
    const reader = new Database(path, { readonly: true });
    t.after(() => reader.close());
    const committed = () => reader.prepare('SELECT count(*) FROM archive').pluck().get() as number;

    const appends = Array.from({ length: 100 }, (_, i) => archive.append('juliet', `m${i}`, { key: `k${i}`, with: 'romeo@localhost' }));
    assert.equal(await archive.count('juliet'), 100, 'the writing connection reads its own writes at once');
    assert.equal(committed(), 0, 'nothing committed within the turn');
    await Promise.all(appends);
    assert.equal(committed(), 100);
    assert.deepEqual(statements, ['BEGIN', 'COMMIT']);
    await archive.append('juliet', 'next turn');
    assert.deepEqual(statements, ['BEGIN', 'COMMIT', 'BEGIN', 'COMMIT']);
  });

  test('a version 2 database → migrated: bare JIDs filled in for the old items, so withBare finds them', async (t) => {
    const path = tempDatabase(t, 'v2.sqlite');
    const first = new SqliteStore({ path });
    const old = first.archive<string>('localhost', 'mam', 'messages');
    await old.append('juliet', 'full', { with: 'romeo@localhost/orchard', key: 'a' });
    await old.append('juliet', 'bare', { with: 'romeo@localhost', key: 'b' });
    await old.append('juliet', 'other', { with: 'romeo@localhost.evil/x', key: 'c' });
    await first.close();
    const downgrade = new Database(path);
    downgrade.exec(`DROP INDEX archive_with_bare; DROP INDEX archive_owner_stamp; DROP INDEX archive_expiry; ALTER TABLE archive DROP COLUMN with_bare;
      CREATE INDEX archive_stamp ON archive (host, module, store, stamp); CREATE INDEX archive_with ON archive (host, module, store, owner, with_jid);
      PRAGMA user_version = 2;`);
    downgrade.close();
    const store = new SqliteStore({ path });
    t.after(() => store.close());
    assert.ok(store.schemaVersion >= 3);
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    assert.deepEqual((await archive.list('juliet', { withBare: 'romeo@localhost' })).map((i) => i.value), ['full', 'bare']);
    assert.deepEqual((await archive.list('juliet', { with: 'romeo@localhost/orchard' })).map((i) => i.value), ['full']);
    assert.deepEqual((await archive.list('juliet', { with: 'romeo@localhost.evil/x' })).map((i) => i.value), ['other']);
  });

  test('a version 1 database (before MAM) → migrated: old items kept without keys, new ones with', async (t) => {
    const path = tempDatabase(t, 'old.sqlite');
    const old = new Database(path);
    old.exec(`CREATE TABLE archive (id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, module TEXT NOT NULL, store TEXT NOT NULL,
      owner TEXT NOT NULL, stamp INTEGER NOT NULL, with_jid TEXT, value TEXT NOT NULL);
      CREATE TABLE accounts (host TEXT NOT NULL, username TEXT NOT NULL, credentials TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (host, username)) WITHOUT ROWID;
      CREATE TABLE kv (host TEXT NOT NULL, module TEXT NOT NULL, store TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (host, module, store, owner, key)) WITHOUT ROWID;
      INSERT INTO archive (host, module, store, owner, stamp, with_jid, value) VALUES ('localhost', 'offline', 'messages', 'juliet', 1, NULL, '"kept"');
      PRAGMA user_version = 1;`);
    old.close();
    const store = new SqliteStore({ path });
    t.after(() => store.close());
    assert.ok(store.schemaVersion >= 2);
    const offline = store.archive<string>('localhost', 'offline', 'messages');
    assert.deepEqual((await offline.list('juliet')).map((i) => [i.value, i.key]), [['kept', undefined]]);
    await offline.append('juliet', 'new', { key: 'k' });
    assert.equal((await offline.findByKey('juliet', 'k'))?.value, 'new');
  });
});
