// The push module's storage: one record per enabled push service of an account, keyed by (jid,
// node) as XEP-0357 §5 keys them, and the account's push options. Everything a push needs after a
// restart is here (DESIGN.md §5a: timers that must survive a node keep their state in storage):
// the counters of what is pending for the device and whether a coalesced push is still owed.
// Message bodies and senders are never stored.
import type { KeyValueStore, MapStore } from '../../server/module-api.js';
import type { FormField } from '../../server/protocol/xep0004.js';
import type { PushOptions } from './options.js';

export interface PushEnable {
  /** The XMPP Push Service (XEP-0357 'jid'), normalised. */
  jid: string;
  node: string;
  /** publish-options fields the client gave (secret, ...), forwarded with every publish. */
  publishOptions: FormField[];
  /** Resource of the session that enabled it: its hibernation is what pushes (the "device"). */
  resource: string;
  enabledAt: number;
  /** Publish errors in a row (not counting the retries of one push). */
  errors: number;
  /** Since the device was last online: messages worth reading, subscription requests. */
  pendingMessages: number;
  pendingSubscriptions: number;
  /** When the last push went out (ms); coalescing counts from here. */
  lastPushAt?: number;
  /** Something happened after the last push: one more push is due when the window ends. */
  owed?: boolean;
}

/** The map key of an enable: JSON of [jid, node], so no separator can be forged by a node name. */
export function enableKey(jid: string, node: string): string {
  return JSON.stringify([jid, node]);
}

export class PushStore {
  /** Per account, the tail of the chain of operations, so read-modify-write cycles never interleave. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly enables: MapStore<PushEnable>,
    private readonly options: KeyValueStore<PushOptions>,
  ) {}

  /** Runs fn after every earlier operation on the account has finished. */
  serial<T>(username: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(username) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.chains.set(username, tail);
    void tail.then(() => {
      if (this.chains.get(username) === tail) this.chains.delete(username);
    });
    return run;
  }

  /** Resolves when every queued operation has finished (shutdown). */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  get(username: string, key: string): Promise<PushEnable | undefined> {
    return this.enables.get(username, key);
  }

  async list(username: string): Promise<PushEnable[]> {
    return (await this.enables.list(username)).map((entry) => entry.value);
  }

  async forResource(username: string, resource: string): Promise<PushEnable[]> {
    return (await this.list(username)).filter((enable) => enable.resource === resource);
  }

  put(username: string, enable: PushEnable): Promise<void> {
    return this.enables.set(username, enableKey(enable.jid, enable.node), enable);
  }

  /** Deletes one enable; the account's options go with its last one (the next enable chooses afresh). */
  async remove(username: string, enable: PushEnable): Promise<boolean> {
    const removed = await this.enables.delete(username, enableKey(enable.jid, enable.node));
    if (removed && (await this.enables.count(username)) === 0) await this.options.delete(username);
    return removed;
  }

  async removeAccount(username: string): Promise<void> {
    await this.enables.deleteAll(username);
    await this.options.delete(username);
  }

  owners(): Promise<string[]> {
    return this.enables.owners();
  }

  getOptions(username: string): Promise<PushOptions | undefined> {
    return this.options.get(username);
  }

  setOptions(username: string, options: PushOptions): Promise<void> {
    return this.options.set(username, options);
  }
}
