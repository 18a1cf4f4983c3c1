// The push module's storage: one record per enabled push service of an account, keyed by (jid,
// node) as XEP-0357 §5 keys them, and the account's push options. Everything a push needs after a
// restart is here (DESIGN.md §5a: timers that must survive a node keep their state in storage):
// the counters of what is pending for the device and whether a coalesced push is still owed.
// Message bodies and senders are never stored.
import type { KeyValueStore, MapStore, WriteOptions } from '../../server/module-api.js';
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

/**
 * Accounts whose enables and options stay in memory, least recently used dropped first. Every push
 * and every message to an offline account read them (publisher notify and settle, offlinePush,
 * archivedPush, the options in each summary), while they change only on enable/disable, on a push
 * (the counters) and on errors; so they are cached here, in the one class that writes them
 * (write-through). Accounts without push are cached too (an empty map): most messages are theirs.
 */
const CACHED_ACCOUNTS = 10_000;

export class PushStore {
  /** Per account, the tail of the chain of operations, so read-modify-write cycles never interleave. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Per account, its enables by map key, in the order storage lists them (by key). */
  private readonly cachedEnables = new Map<string, Map<string, PushEnable>>();
  /** Per account, its options; null when it has none stored. */
  private readonly cachedOptions = new Map<string, PushOptions | null>();
  /**
   * Counts writes. A read of storage fills the cache only if no write came in meanwhile: it may
   * have read the value from before that write (a networked store answers later).
   */
  private writes = 0;

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

  /** Copies (callers update what they get, then put it back), like storage's fresh objects. */
  async get(username: string, key: string): Promise<PushEnable | undefined> {
    const enable = (await this.enablesOf(username)).get(key);
    return enable && { ...enable };
  }

  async list(username: string): Promise<PushEnable[]> {
    return [...(await this.enablesOf(username)).values()].map((enable) => ({ ...enable }));
  }

  /**
   * The account's enables with their map keys, for reading only (not copies): what every message
   * to an offline account asks for, without building each key again.
   */
  async keyed(username: string): Promise<[key: string, enable: Readonly<PushEnable>][]> {
    return [...(await this.enablesOf(username))];
  }

  /**
   * True only when it is known at once that the account has no enables (cached, nothing pending):
   * then a login has no push state to reset, and skips the queue and the promises (most accounts).
   */
  knownWithoutEnables(username: string): boolean {
    return this.cachedEnables.get(username)?.size === 0 && !this.chains.has(username);
  }

  async forResource(username: string, resource: string): Promise<PushEnable[]> {
    return (await this.list(username)).filter((enable) => enable.resource === resource);
  }

  /**
   * Readable at once (from the cache); the promise says when it is committed. `lazy` for the
   * counters every push updates: they share the archive's commit window (WriteOptions.lazy).
   */
  put(username: string, enable: PushEnable, options?: WriteOptions): Promise<void> {
    const key = enableKey(enable.jid, enable.node);
    const written = this.enables.set(username, key, enable, options);
    this.writes++;
    const cached = this.cachedEnables.get(username);
    // A known key keeps its place; a new one goes where storage sorts it, so the next read asks it.
    if (cached?.has(key)) cached.set(key, { ...enable });
    else this.cachedEnables.delete(username);
    return this.unlessFailed(username, written);
  }

  /** Deletes one enable; the account's options go with its last one (the next enable chooses afresh). */
  async remove(username: string, enable: PushEnable): Promise<boolean> {
    const deleted = this.enables.delete(username, enableKey(enable.jid, enable.node));
    this.writes++;
    this.cachedEnables.get(username)?.delete(enableKey(enable.jid, enable.node));
    const removed = await this.unlessFailed(username, deleted);
    if (removed && (await this.enables.count(username)) === 0) await this.deleteOptions(username);
    return removed;
  }

  async removeAccount(username: string): Promise<void> {
    const deleted = this.enables.deleteAll(username);
    this.writes++;
    this.remember(this.cachedEnables, username, new Map());
    await this.unlessFailed(username, deleted);
    await this.deleteOptions(username);
  }

  owners(): Promise<string[]> {
    return this.enables.owners();
  }

  async getOptions(username: string): Promise<PushOptions | undefined> {
    let options = this.cachedOptions.get(username);
    if (options === undefined) {
      const writes = this.writes;
      options = (await this.options.get(username)) ?? null;
      if (writes === this.writes) this.remember(this.cachedOptions, username, options);
    } else {
      this.remember(this.cachedOptions, username, options);
    }
    return options === null ? undefined : { ...options };
  }

  setOptions(username: string, options: PushOptions): Promise<void> {
    const written = this.options.set(username, options);
    this.writes++;
    this.remember(this.cachedOptions, username, { ...options });
    return this.unlessFailed(username, written);
  }

  private async deleteOptions(username: string): Promise<void> {
    const deleted = this.options.delete(username);
    this.writes++;
    this.remember(this.cachedOptions, username, null);
    await this.unlessFailed(username, deleted);
  }

  /** The account's enables, from memory or else read from storage (and then kept). */
  private async enablesOf(username: string): Promise<Map<string, PushEnable>> {
    const cached = this.cachedEnables.get(username);
    if (cached) {
      this.remember(this.cachedEnables, username, cached);
      return cached;
    }
    const writes = this.writes;
    const loaded = new Map((await this.enables.list(username)).map((entry) => [entry.key, entry.value]));
    if (writes === this.writes) this.remember(this.cachedEnables, username, loaded);
    return loaded;
  }

  /** Most recently used last; the least recently used account goes when the cache is full. */
  private remember<V>(cache: Map<string, V>, username: string, value: V): void {
    cache.delete(username);
    cache.set(username, value);
    if (cache.size > CACHED_ACCOUNTS) cache.delete(cache.keys().next().value!);
  }

  /** A write that failed (its commit rolled back) leaves storage as it was: the account is read afresh. */
  private unlessFailed<T>(username: string, write: Promise<T>): Promise<T> {
    return write.catch((err: unknown) => {
      this.writes++;
      this.cachedEnables.delete(username);
      this.cachedOptions.delete(username);
      throw err;
    });
  }
}
