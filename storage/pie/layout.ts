// Where the modules keep what XEP-0227 carries: (module, store) pairs of the generic Store (owner =
// account localpart), read from the modules themselves. Import and export work on the stores
// directly, so they run with the server stopped and without loading modules; if a module moves
// its data, this file and the round-trip test (test/wire/pie.test.ts) change with it.

import type { RosterItem } from '../../server/protocol/rfc6121.js';
import type { LeafNodeRecord, StoredItem } from '../../modules/pubsub/store.js';
import type { StoredMessage } from '../../modules/mam/store.js';
import type { ArchiveStore, KeyValueStore, MapStore, Store } from '../store.js';

export const LAYOUT = {
  /** modules/roster.ts: map<RosterItem>, key = the contact's bare JID. */
  rosterItems: { module: 'roster', store: 'items' },
  /**
   * modules/roster.ts: keyval {counter, epoch}. Not written on import: the roster module creates
   * a fresh version (new random epoch) at the first roster get, so no client's cached version matches.
   */
  rosterVersion: { module: 'roster', store: 'version' },
  /**
   * modules/presence/index.ts + subscriptions.ts: map<string>, key = the contact's bare JID, value =
   * the <presence type='subscribe'/> as delivered (from = contact, to = account, no xmlns).
   */
  pendingIn: { module: 'presence', store: 'pending_in' },
  /** modules/vcard.ts: keyval<string>, the <vCard xmlns='vcard-temp'/> as set. */
  vcard: { module: 'vcard', store: 'vcards' },
  /** modules/private.ts: map<string[]>, key = namespace, value = the elements stored under it. */
  privateXml: { module: 'private', store: 'private' },
  /** modules/offline.ts: archive<string> of <message/> (no xmlns, with its delay stamp); `with` = its 'from'. */
  offline: { module: 'offline', store: 'messages' },
  /** modules/blocking.ts: keyval<string[]> of blocked JIDs. */
  blocklist: { module: 'blocking', store: 'blocklist' },
  /** modules/pubsub/pep.ts + modules/pubsub/store.ts: map<LeafNodeRecord>, key = node name. */
  pepNodes: { module: 'pep', store: 'nodes' },
  /** The same: archive<StoredItem>, `with` = node name, oldest first. */
  pepItems: { module: 'pep', store: 'items' },
  /**
   * modules/mam/index.ts + store.ts: archive<StoredMessage> of the account's messages, key = the
   * archive id clients page with (XEP-0359 stanza id), `with` = the peer's JID, oldest first.
   * Room archives (module 'mam', store 'rooms', owner = room JID) are not part of XEP-0227.
   */
  mam: { module: 'mam', store: 'messages' },
} as const;

/** One host's stores, opened once (each opening prepares its statements). */
export interface HostStores {
  rosterItems: MapStore<RosterItem>;
  pendingIn: MapStore<string>;
  vcard: KeyValueStore<string>;
  privateXml: MapStore<string[]>;
  offline: ArchiveStore<string>;
  blocklist: KeyValueStore<string[]>;
  pepNodes: MapStore<LeafNodeRecord>;
  pepItems: ArchiveStore<StoredItem>;
  mam: ArchiveStore<StoredMessage>;
}

export function openHostStores(store: Store, host: string): HostStores {
  const map = <T>(where: { module: string; store: string }) => store.map<T>(host, where.module, where.store);
  const keyval = <T>(where: { module: string; store: string }) => store.keyval<T>(host, where.module, where.store);
  return {
    rosterItems: map<RosterItem>(LAYOUT.rosterItems),
    pendingIn: map<string>(LAYOUT.pendingIn),
    vcard: keyval<string>(LAYOUT.vcard),
    privateXml: map<string[]>(LAYOUT.privateXml),
    offline: store.archive<string>(host, LAYOUT.offline.module, LAYOUT.offline.store),
    blocklist: keyval<string[]>(LAYOUT.blocklist),
    pepNodes: map<LeafNodeRecord>(LAYOUT.pepNodes),
    pepItems: store.archive<StoredItem>(host, LAYOUT.pepItems.module, LAYOUT.pepItems.store),
    mam: store.archive<StoredMessage>(host, LAYOUT.mam.module, LAYOUT.mam.store),
  };
}
