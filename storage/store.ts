// The storage interface. Everything Herald persists goes through here; the SQLite implementation
// is storage/sqlite.ts, PostgreSQL comes later behind the same interface (DESIGN.md §5, §5a).
// It is asynchronous on purpose even though SQLite answers at once: a networked database will not.
//
// Accounts are typed (SASL reads them on every login). Modules get three generic shapes, namespaced
// by host and module, with JSON values:
//   map      (owner, key) → value    rosters, private XML, blocklists, push enables ...
//   keyval   owner → value           one document per account (vCard, roster version ...)
//   archive  owner → ordered items   offline messages, MAM ...
// `owner` is an account's localpart ('' for host-wide data).

import type { ScramCredentials, ScramHash } from '../server/sasl/mechanism.js';

export interface AccountRecord {
  username: string;
  /** SCRAM keys per hash; never the password itself. */
  credentials: Partial<Record<ScramHash, ScramCredentials>>;
  createdAt: Date;
}

export interface AccountStore {
  /** Creates the account; false when it exists already. */
  create(host: string, username: string, credentials: Partial<Record<ScramHash, ScramCredentials>>): Promise<boolean>;
  get(host: string, username: string): Promise<AccountRecord | null>;
  exists(host: string, username: string): Promise<boolean>;
  /** Replaces the credentials; false when there is no such account. */
  setCredentials(host: string, username: string, credentials: Partial<Record<ScramHash, ScramCredentials>>): Promise<boolean>;
  /** Deletes the account and everything any module stored for it. */
  delete(host: string, username: string): Promise<boolean>;
  list(host: string): Promise<string[]>;
  count(host: string): Promise<number>;
  /**
   * Tells a running server, another process, that an account changed behind its back: `herald
   * deluser` announces 'deleted', and the server, which reads the announcements every few
   * seconds, ends the account's sessions and lets every module forget it (user:deleted).
   */
  announce(host: string, username: string, change: AccountChange): Promise<void>;
  /** Announcements with an id above `afterId`, oldest first. */
  announcementsAfter(host: string, afterId: number): Promise<AccountAnnouncement[]>;
  /** The newest announcement's id (0 when there is none): where a starting server begins reading. */
  lastAnnouncementId(): Promise<number>;
}

export type AccountChange = 'deleted';

export interface AccountAnnouncement {
  id: number;
  username: string;
  change: AccountChange;
}

/** How a write may be committed. */
export interface WriteOptions {
  /**
   * The commit may wait a few milliseconds for other writes (the store's lazy window, 10 ms by
   * default) instead of ending the event-loop turn. For frequent state a crash may lose the last
   * few milliseconds of (push counters, message archives), written by callers that do not wait
   * for the commit on a delivery path.
   */
  lazy?: boolean;
}

export interface MapStore<T> {
  get(owner: string, key: string): Promise<T | undefined>;
  set(owner: string, key: string, value: T, options?: WriteOptions): Promise<void>;
  delete(owner: string, key: string): Promise<boolean>;
  /** All entries of an owner, ordered by key. */
  list(owner: string): Promise<{ key: string; value: T }[]>;
  count(owner: string): Promise<number>;
  deleteAll(owner: string): Promise<number>;
  /** Every owner with at least one entry (admin tools, migrations). */
  owners(): Promise<string[]>;
}

export interface KeyValueStore<T> {
  get(owner: string): Promise<T | undefined>;
  set(owner: string, value: T): Promise<void>;
  delete(owner: string): Promise<boolean>;
}

export interface ArchiveItem<T> {
  /** Increasing per store; opaque to callers apart from ordering. */
  id: number;
  value: T;
  /** When it was stored (ms since epoch). */
  stamp: number;
  /** A JID the item concerns (the other party of a message), for queries. */
  with: string | undefined;
  /** The caller's own identifier for the item (a XEP-0359 stanza id), when it gave one. */
  key: string | undefined;
}

export interface ArchiveQuery {
  /** Only items with id greater than this. */
  after?: number;
  /** Only items with id smaller than this. */
  before?: number;
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
  with?: string;
  /** Only items whose `with` is this bare JID or one of its full JIDs (XEP-0313 §4.1.1). */
  withBare?: string;
  /** Only items stored under one of these keys. */
  keys?: string[];
  start?: number;
  end?: number;
}

export interface ArchiveAppendMeta extends WriteOptions {
  with?: string;
  stamp?: number;
  key?: string;
}

export interface ArchiveStore<T> {
  /**
   * `key` is the caller's identifier for the item (findByKey finds it again); unique per owner is
   * the caller's duty. The item is readable at once; the promise resolves once it is committed.
   * `lazy`: the commit may wait a few milliseconds for other writes (the store's lazy window), for
   * high-rate appends whose caller does not wait for them (message archives).
   */
  append(owner: string, value: T, meta?: ArchiveAppendMeta): Promise<number>;
  list(owner: string, query?: ArchiveQuery): Promise<ArchiveItem<T>[]>;
  /** Items of an owner; with a query, those matching its filters (`limit` and `reverse` are ignored). */
  count(owner: string, query?: ArchiveQuery): Promise<number>;
  findByKey(owner: string, key: string): Promise<ArchiveItem<T> | undefined>;
  delete(owner: string, ids: number[]): Promise<number>;
  deleteAll(owner: string): Promise<number>;
  /** Deletes items stored before a time (retention). */
  deleteOlderThan(stamp: number): Promise<number>;
}

export interface Store {
  readonly accounts: AccountStore;
  map<T>(host: string, module: string, name: string): MapStore<T>;
  keyval<T>(host: string, module: string, name: string): KeyValueStore<T>;
  archive<T>(host: string, module: string, name: string): ArchiveStore<T>;
  /** Flushes and closes (graceful shutdown). */
  close(): Promise<void>;
}

export class StorageError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
  }
}
