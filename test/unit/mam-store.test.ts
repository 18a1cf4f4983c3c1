// The storage the archive stands on (storage/sqlite.ts, migration 2): items found by key, 'with'
// matching a bare JID and its full JIDs (and nothing that merely starts alike), counts with
// filters, and an old database brought up to date.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../storage/sqlite.js';

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

  test('a version 1 database (before MAM) → migrated: old items kept without keys, new ones with', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-mam-store-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'old.sqlite');
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
