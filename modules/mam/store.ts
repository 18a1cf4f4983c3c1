// One kind of archive (users' or rooms'), on the storage layer's ArchiveStore: items keep their
// order by the store's increasing ids, and clients see them by their XEP-0359 stanza id (the item
// key): random, so "unpredictable and unique within the archive" (XEP-0313 §3) and never reused.
// Paging (XEP-0059 as XEP-0313 §4.3 uses it) is worked out here; building stanzas is query.ts's.
import { randomId, type ArchiveItem, type ArchiveQuery, type ArchiveStore } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import type { MamQuery } from './query.js';

export interface StoredMessage {
  /** The message as archived (no stanza ids of ours), serialized. */
  stanza: string;
  /** Room archives: the real JID of the occupant who sent it (shown to those who may see it). */
  jid?: string;
}

export interface ArchivePage {
  /** In chronological order. */
  items: ArchiveItem<StoredMessage>[];
  /** §4.3: nothing further in the paging direction. */
  complete: boolean;
  /** XEP-0059 §2.7: the items of the whole result set. */
  count: number;
  /** XEP-0059 §2.1: the position of the first item in the whole result set. */
  firstIndex: number | undefined;
}

/** A new archive id: 18 random bytes, URL-safe, never starting with '-' (it reads like an option in shells). */
export function newArchiveId(): string {
  const id = randomId(18);
  return id.startsWith('-') ? `A${id.slice(1)}` : id;
}

export class MessageArchive {
  constructor(private readonly store: ArchiveStore<StoredMessage>) {}

  /** `lazy`: committed within the store's lazy window (for callers that do not wait for it). */
  append(owner: string, id: string, message: StoredMessage, peer: string, stamp = Date.now(), lazy = false): Promise<number> {
    return this.store.append(owner, message, { key: id, with: peer, stamp, lazy });
  }

  /**
   * The page a query asks for, at most `limit` items. Ids that are not in the archive are
   * item-not-found (§4.1.3: "If any UID requested ... is not present in the archive, the server
   * MUST return an item-not-found error"; §4.3.2 likewise for RSM's after and before).
   */
  async page(owner: string, query: MamQuery, limit: number): Promise<ArchivePage> {
    const filter: ArchiveQuery = {};
    if (query.with) {
      // §4.1.1: a bare JID matches it and "messages to or from" any of its resources; a full JID only itself.
      if (query.with.resource === '') filter.withBare = query.with.toString();
      else filter.with = query.with.toString();
    }
    if (query.start !== undefined) filter.start = query.start;
    if (query.end !== undefined) filter.end = query.end;
    if (query.afterId !== undefined) filter.after = await this.position(owner, query.afterId);
    if (query.beforeId !== undefined) filter.before = await this.position(owner, query.beforeId);
    if (query.ids) {
      for (const id of query.ids) await this.position(owner, id);
      filter.keys = query.ids;
    }
    const count = await this.store.count(owner, filter);

    // RSM narrows the result set to a page: <after/> pages forward, <before/> backward ("the last
    // page" when empty, §4.3.3). XEP-0313 leaves both together undefined: both bounds apply, forward.
    const window: ArchiveQuery = { ...filter };
    const { after, before } = query.rsm;
    if (after !== undefined) window.after = Math.max(window.after ?? 0, await this.position(owner, after));
    if (before !== undefined && before !== '') window.before = Math.min(window.before ?? Infinity, await this.position(owner, before));
    const backward = before !== undefined && after === undefined;
    // One more than asked tells whether the page is the last one in its direction.
    const fetched = await this.store.list(owner, { ...window, limit: limit + 1, reverse: backward });
    const complete = fetched.length <= limit;
    const items = fetched.slice(0, limit);
    if (backward) items.reverse();
    return { items, complete, count, firstIndex: await this.indexOf(owner, items, { filter, window, backward, count }) };
  }

  /** Where the page starts in the result set: known for its first and last pages, else counted. */
  private async indexOf(
    owner: string,
    items: ArchiveItem<StoredMessage>[],
    { filter, window, backward, count }: { filter: ArchiveQuery; window: ArchiveQuery; backward: boolean; count: number },
  ): Promise<number | undefined> {
    const first = items[0];
    if (!first) return undefined;
    if (!backward && window.after === filter.after) return 0;
    if (backward && window.before === filter.before) return count - items.length;
    return this.store.count(owner, { ...filter, before: first.id });
  }

  /** §5 (XEP-0313 1.x "Archive metadata"): the first and last items, if any. */
  async bounds(owner: string): Promise<{ start: ArchiveItem<StoredMessage>; end: ArchiveItem<StoredMessage> } | undefined> {
    const [start] = await this.store.list(owner, { limit: 1 });
    const [end] = await this.store.list(owner, { limit: 1, reverse: true });
    return start && end ? { start, end } : undefined;
  }

  deleteOlderThan(stamp: number): Promise<number> {
    return this.store.deleteOlderThan(stamp);
  }

  deleteAll(owner: string): Promise<number> {
    return this.store.deleteAll(owner);
  }

  /** The store's position of an archive id; item-not-found when there is none. */
  private async position(owner: string, id: string): Promise<number> {
    const item = await this.store.findByKey(owner, id);
    if (!item) throw stanzaError.itemNotFound(`No message ${id} in the archive`);
    return item.id;
  }
}
