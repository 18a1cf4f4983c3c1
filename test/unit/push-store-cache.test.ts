// The write-through caches in front of the push path's stores (modules/push/store.ts,
// modules/pubsub/nodes.ts): what a write wrote is what the next read returns, a failed write leaves
// nothing stale behind, and a read that a write overtook does not fill the cache with the old value.
// And the publisher's skipped write: an event that changes nothing stored costs no write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyValueStore, MapStore } from '../../server/module-api.js';
import { PushStore, enableKey, type PushEnable } from '../../modules/push/store.js';
import type { PushOptions } from '../../modules/push/options.js';
import { NodeTable, type NodeRecord } from '../../modules/pubsub/nodes.js';
import { Publisher } from '../../modules/push/publisher.js';
import type { ModuleContext } from '../../server/module-api.js';

/** A MapStore in memory that counts reads, can hold them back, and can fail its next write. */
class FakeMap<T> implements MapStore<T> {
  readonly rows = new Map<string, Map<string, string>>();
  reads = 0;
  writes = 0;
  failNextWrite = false;
  /** While set, reads wait for it (a networked store answering late). */
  hold: Promise<void> | undefined;

  private owned(owner: string): Map<string, string> {
    let rows = this.rows.get(owner);
    if (!rows) this.rows.set(owner, (rows = new Map()));
    return rows;
  }
  private async read<R>(fn: () => R): Promise<R> {
    this.reads++;
    const value = fn(); // read now, answered later: as a store whose answer is on its way
    if (this.hold) await this.hold;
    return value;
  }
  private write<R>(fn: () => R): Promise<R> {
    this.writes++;
    if (this.failNextWrite) {
      // Like SQLite's group commit: the write is applied, then the commit fails and rolls back.
      this.failNextWrite = false;
      const before = new Map([...this.rows].map(([owner, rows]) => [owner, new Map(rows)]));
      fn();
      this.rows.clear();
      for (const [owner, rows] of before) this.rows.set(owner, rows);
      return Promise.reject(new Error('commit failed'));
    }
    return Promise.resolve(fn());
  }
  get(owner: string, key: string) {
    return this.read(() => {
      const raw = this.rows.get(owner)?.get(key);
      return raw === undefined ? undefined : (JSON.parse(raw) as T);
    });
  }
  set(owner: string, key: string, value: T) {
    return this.write(() => void this.owned(owner).set(key, JSON.stringify(value)));
  }
  delete(owner: string, key: string) {
    return this.write(() => this.owned(owner).delete(key));
  }
  list(owner: string) {
    return this.read(() => [...this.owned(owner)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, raw]) => ({ key, value: JSON.parse(raw) as T })));
  }
  count(owner: string) {
    return this.read(() => this.owned(owner).size);
  }
  deleteAll(owner: string) {
    return this.write(() => {
      const n = this.owned(owner).size;
      this.rows.delete(owner);
      return n;
    });
  }
  owners() {
    return this.read(() => [...this.rows.keys()].filter((owner) => this.owned(owner).size > 0));
  }
}

function keyval<T>(map: FakeMap<T>): KeyValueStore<T> {
  return { get: (owner) => map.get(owner, ''), set: (owner, value) => map.set(owner, '', value), delete: (owner) => map.delete(owner, '') };
}

function enable(node: string, extra: Partial<PushEnable> = {}): PushEnable {
  return { jid: 'push.example', node, publishOptions: [], resource: 'phone', enabledAt: 1, errors: 0, pendingMessages: 0, pendingSubscriptions: 0, ...extra };
}

const OPTIONS: PushOptions = { senders: false, messageCount: true, subscriptionCount: true, bodies: false };

function pushStore() {
  const enables = new FakeMap<PushEnable>();
  const options = new FakeMap<PushOptions>();
  return { enables, options, store: new PushStore(enables, keyval(options)) };
}

test('push store: repeated get/list/getOptions of an account → storage read once each', async () => {
  const { enables, options, store } = pushStore();
  await store.put('romeo', enable('a'));
  await store.setOptions('romeo', OPTIONS);
  for (let i = 0; i < 5; i++) {
    assert.equal((await store.get('romeo', enableKey('push.example', 'a')))?.node, 'a');
    assert.equal((await store.list('romeo')).length, 1);
    assert.deepEqual(await store.getOptions('romeo'), OPTIONS);
  }
  assert.equal(enables.reads, 1, 'the account was listed once');
  assert.equal(options.reads, 0, 'the options were known from their write');
  // An account without push is remembered too: the message path asks for every recipient.
  for (let i = 0; i < 3; i++) assert.deepEqual(await store.list('juliet'), []);
  assert.equal(enables.reads, 2);
});

test('push store: put, remove and removeAccount → the next reads return what storage holds', async () => {
  const { enables, store } = pushStore();
  await store.put('romeo', enable('b'));
  await store.list('romeo'); // cached now
  const got = (await store.get('romeo', enableKey('push.example', 'b')))!;
  got.pendingMessages = 7; // a caller's change is not seen before it is put
  assert.equal((await store.get('romeo', enableKey('push.example', 'b')))?.pendingMessages, 0);
  await store.put('romeo', got);
  assert.equal((await store.get('romeo', enableKey('push.example', 'b')))?.pendingMessages, 7);
  await store.put('romeo', enable('a')); // a new key: listed in storage's order
  assert.deepEqual((await store.list('romeo')).map((e) => e.node), ['a', 'b']);
  assert.deepEqual((await store.list('romeo')).map((e) => e.node), (await enables.list('romeo')).map((e) => e.value.node));
  await store.setOptions('romeo', OPTIONS);
  assert.equal(await store.remove('romeo', enable('a')), true);
  assert.deepEqual((await store.list('romeo')).map((e) => e.node), ['b']);
  assert.deepEqual(await store.getOptions('romeo'), OPTIONS, 'options stay while an enable is left');
  assert.equal(await store.remove('romeo', enable('b')), true);
  assert.deepEqual(await store.list('romeo'), []);
  assert.equal(await store.getOptions('romeo'), undefined, 'the last enable takes the options along');
  await store.put('romeo', enable('c'));
  await store.setOptions('romeo', OPTIONS);
  await store.removeAccount('romeo');
  assert.deepEqual(await store.list('romeo'), []);
  assert.equal(await store.getOptions('romeo'), undefined);
  assert.equal(enables.rows.get('romeo')?.size ?? 0, 0);
});

test('push store: a write whose commit fails → rejected, and the next read returns what storage kept', async () => {
  const { enables, options, store } = pushStore();
  await store.put('romeo', enable('a'));
  await store.setOptions('romeo', OPTIONS);
  await store.list('romeo');
  enables.failNextWrite = true;
  await assert.rejects(store.put('romeo', enable('a', { pendingMessages: 3 })), /commit failed/);
  assert.equal((await store.get('romeo', enableKey('push.example', 'a')))?.pendingMessages, 0);
  options.failNextWrite = true;
  await assert.rejects(store.setOptions('romeo', { ...OPTIONS, bodies: true }), /commit failed/);
  assert.equal((await store.getOptions('romeo'))?.bodies, false);
});

test('push store: a read overtaken by a write → the old value is returned to it but not kept', async () => {
  const { enables, store } = pushStore();
  await store.put('romeo', enable('a'));
  let release!: () => void;
  enables.hold = new Promise((resolve) => (release = resolve));
  const early = store.get('romeo', enableKey('push.example', 'a')); // reads pendingMessages 0
  await store.put('romeo', enable('a', { pendingMessages: 5 }));
  enables.hold = undefined;
  release();
  assert.equal((await early)?.pendingMessages, 0);
  assert.equal((await store.get('romeo', enableKey('push.example', 'a')))?.pendingMessages, 5);
});

test('pubsub node table: get after put/delete → the written node or none; a failed delete keeps the node', async () => {
  const map = new FakeMap<NodeRecord>();
  const nodes = new NodeTable(map);
  const record: NodeRecord = { kind: 'push', owner: 'romeo@example.com', secretHash: 'ab', createdAt: 1 };
  assert.equal(await nodes.get('n1'), undefined);
  await nodes.put('n1', record);
  for (let i = 0; i < 3; i++) assert.deepEqual(await nodes.get('n1'), record);
  assert.equal(map.reads, 1, 'only the miss before the node existed read storage');
  map.failNextWrite = true;
  await assert.rejects(nodes.delete('n1'), /commit failed/);
  assert.deepEqual(await nodes.get('n1'), record);
  assert.equal(await nodes.delete('n1'), true);
  assert.equal(await nodes.get('n1'), undefined);
});

test('publisher: within the coalescing window, an uncounted event while a push is owed → no write; a counted one → written', async () => {
  const { enables, store } = pushStore();
  await store.put('romeo', enable('a', { lastPushAt: Date.now() })); // pushed just now: the window is open
  const quiet = () => undefined;
  const log = { debug: quiet, info: quiet, warn: quiet, error: quiet } as unknown as ModuleContext['log'];
  const routed: unknown[] = [];
  const publisher = new Publisher({
    store,
    log,
    host: 'example.com',
    route: (stanza) => void routed.push(stanza),
    optionsOf: async () => OPTIONS,
    pushed: quiet,
    disabled: quiet,
    config: { coalesceWindow: 60_000, publishTimeout: 1000, maxErrors: 3, retryAttempts: 0, retryDelay: 10 },
  });
  const key = enableKey('push.example', 'a');
  const before = enables.writes;
  await publisher.notify('romeo', [key], { kind: 'message', priority: 'high', sender: 'juliet@example.com' });
  assert.equal(enables.writes, before + 1, 'the count and the owed push are stored');
  await publisher.notify('romeo', [key], { kind: 'message', priority: 'normal', sender: 'juliet@example.com' });
  assert.equal(enables.writes, before + 1, 'a receipt changes nothing stored');
  await publisher.notify('romeo', [key], { kind: 'subscription', priority: 'high', sender: 'nurse@example.com' });
  assert.equal(enables.writes, before + 2);
  const stored = (await enables.get('romeo', key))!;
  assert.equal(stored.owed, true);
  assert.equal(stored.pendingMessages, 1);
  assert.equal(stored.pendingSubscriptions, 1);
  assert.equal(routed.length, 0, 'nothing pushed within the window');
  publisher.stop();
});
