// The storage layer's write path: lazy writes (archive appends, push counters) share one commit per window, ordinary
// writes keep theirs at the end of the event-loop turn, and the server's WAL checkpoints run in a
// worker thread (storage/checkpointer.ts) rather than inside its commits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../storage/sqlite.js';
import { tempDatabase } from '../helpers/temp-database.js';

/** Rows another connection (another process, e.g. `herald export`) sees: only committed ones. */
/** Rows of `table` another connection sees, e.g. `kv WHERE module = 'push'`. */
function committedRows(path: string, table = 'archive'): number {
  const other = new Database(path, { readonly: true });
  try {
    return other.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  } finally {
    other.close();
  }
}

describe('storage: group commit', () => {
  test('lazy appends stay uncommitted past the end of the turn, then commit together within the window', async (t) => {
    const path = tempDatabase(t);
    const store = new SqliteStore({ path, lazyCommitMs: 150 });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    const appended = [archive.append('romeo', 'one', { lazy: true }), archive.append('juliet', 'two', { lazy: true })];
    assert.equal(await archive.count('romeo'), 1, 'readable at once on the writing connection');
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(20);
    assert.equal(committedRows(path), 0, 'not committed at the end of the turn');
    await Promise.all(appended);
    assert.equal(committedRows(path), 2, 'committed when the promises resolve');
  });

  test('a lazy map write (push counters) is read back at once and committed within the window, not at the end of the turn', async (t) => {
    const path = tempDatabase(t);
    const store = new SqliteStore({ path, lazyCommitMs: 150 });
    t.after(() => store.close());
    const map = store.map<{ count: number }>('localhost', 'push', 'enables');
    const written = map.set('romeo', 'phone', { count: 3 }, { lazy: true });
    assert.deepEqual(await map.get('romeo', 'phone'), { count: 3 }, 'readable at once on the writing connection');
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(20);
    assert.equal(committedRows(path, "kv WHERE module = 'push'"), 0, 'not committed at the end of the turn');
    await written;
    assert.equal(committedRows(path, "kv WHERE module = 'push'"), 1, 'committed when the promise resolves');
  });

  test('an ordinary write in the same window commits the lazy ones with it at the end of its turn', async (t) => {
    const path = tempDatabase(t);
    const store = new SqliteStore({ path, lazyCommitMs: 10_000 });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    const lazy = archive.append('romeo', 'lazy', { lazy: true });
    const started = Date.now();
    await store.archive<string>('localhost', 'offline', 'messages').append('romeo', 'eager');
    await lazy;
    assert.ok(Date.now() - started < 5_000, 'did not wait for the lazy window');
    assert.equal(committedRows(path), 2);
  });
});

describe('storage: lazy writes wait in a queue', () => {
  test('between windows no write transaction is open; a read or an ordinary write runs the queue first, in order', async (t) => {
    const path = tempDatabase(t);
    const store = new SqliteStore({ path, lazyCommitMs: 10_000 });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    const map = store.map<string>('localhost', 'push', 'enables');
    const first = archive.append('romeo', 'one', { lazy: true });
    const counter = map.set('romeo', 'phone', 'lazy value', { lazy: true });
    assert.equal(store.db.inTransaction, false, 'queued, not run: the WAL may start over meanwhile');
    assert.equal((await archive.list('romeo')).map((item) => item.value).join(), 'one', 'a read sees the queued append');
    // An ordinary write after a lazy one to the same key: the lazy one must not overwrite it later.
    await map.set('romeo', 'phone', 'ordinary value');
    await Promise.all([first, counter]);
    assert.equal(await map.get('romeo', 'phone'), 'ordinary value');
    assert.equal(committedRows(path), 1, 'the ordinary write committed the lazy ones with it');
    assert.equal(store.db.inTransaction, false);
  });

  test('a queued write stores the value and the time of the call, not of the window', async (t) => {
    const store = new SqliteStore({ path: tempDatabase(t), lazyCommitMs: 30 });
    t.after(() => store.close());
    const map = store.map<{ count: number }>('localhost', 'push', 'enables');
    const archive = store.archive<{ n: number }>('localhost', 'mam', 'messages');
    const counters = { count: 1 };
    const item = { n: 1 };
    const before = Date.now();
    const written = [map.set('romeo', 'phone', counters, { lazy: true }), archive.append('romeo', item, { lazy: true })];
    counters.count = 2; // the caller goes on changing its own object
    item.n = 2;
    await sleep(60);
    await Promise.all(written);
    assert.deepEqual(await map.get('romeo', 'phone'), { count: 1 });
    const [stored] = await archive.list('romeo');
    assert.deepEqual(stored?.value, { n: 1 });
    assert.ok(stored!.stamp - before < 25, 'stamped at the call, not when the window ran');
  });

  test('a lazy write that fails rejects its own promise only', async (t) => {
    const store = new SqliteStore({ path: tempDatabase(t), lazyCommitMs: 5 });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    const good = archive.append('romeo', 'fine', { lazy: true });
    // undefined cannot be stored as a value (NOT NULL): the insert itself throws.
    const bad = archive.append('romeo', undefined as unknown as string, { lazy: true });
    await assert.rejects(bad, /archive append/);
    assert.ok((await good) > 0);
    assert.equal(await archive.count('romeo'), 1);
  });
});

describe('storage: background checkpoints', () => {
  test('with backgroundCheckpoints the WAL reaches the database file without this connection checkpointing', async (t) => {
    const path = tempDatabase(t);
    const store = new SqliteStore({ path, backgroundCheckpoints: true });
    t.after(() => store.close());
    const archive = store.archive<string>('localhost', 'mam', 'messages');
    const sizeBefore = statSync(path).size;
    const payload = 'x'.repeat(2000);
    for (let i = 0; i < 500; i++) await archive.append('romeo', payload); // ~1 MB: far below the connection's own fallback threshold
    let size = statSync(path).size;
    for (let waited = 0; size < sizeBefore + 500_000 && waited < 5_000; waited += 50) {
      await sleep(50);
      size = statSync(path).size;
    }
    assert.ok(size >= sizeBefore + 500_000, `database file ${sizeBefore} → ${size} bytes: the checkpointer did not copy the WAL`);
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 10_000);
  });

  test('without it (CLI stores) SQLite checkpoints as usual and no worker is left behind at close', async (t) => {
    const path = tempDatabase(t);
    const store = new SqliteStore({ path });
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    await store.archive<string>('localhost', 'mam', 'messages').append('romeo', 'one');
    await store.close();
    assert.equal(committedRows(path), 1);
  });
});
