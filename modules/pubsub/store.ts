// Where one pubsub service keeps its nodes and items. A PEP service is one account (store owner =
// the localpart, so deleting the account deletes its nodes); the pubsub service is host-wide data
// (owner ''). Node records live in a map (owner, node); items in an archive (owner, with = node),
// which keeps publication order and finds a node's last item without reading the others.
// Items of nodes with pubsub#persist_items off live in memory only (XEP-0060 §4.2: not stored).
import type { ArchiveStore, MapStore } from '../../server/module-api.js';
import type { NodeConfig } from './config.js';

export type Affiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'none' | 'outcast';

export interface SubscriptionRecord {
  /** The subscribed JID as given (bare or full). */
  jid: string;
  subid: string;
  /** §6.3 subscription option pubsub#deliver: false pauses notifications. */
  deliver: boolean;
}

export interface LeafNodeRecord {
  kind: 'leaf';
  config: NodeConfig;
  /** Bare JID → affiliation other than 'none'. */
  affiliations: Record<string, Affiliation>;
  subscriptions: SubscriptionRecord[];
  createdAt: number;
}

export interface StoredItem {
  id: string;
  /** The serialized payload ('' for an item without one). */
  payload: string;
  /** Full JID of the publisher ('' when the server published on the owner's behalf). */
  publisher: string;
}

export interface ItemRecord extends StoredItem {
  stamp: number;
}

/** Memory for non-persistent items, shared by the services of one module: key → items, oldest first. */
export type TransientItems = Map<string, ItemRecord[]>;

export class NodeStore {
  constructor(
    private readonly nodes: MapStore<LeafNodeRecord>,
    private readonly items: ArchiveStore<StoredItem>,
    private readonly transient: TransientItems,
    /** Store owner: the account's localpart for PEP, '' for the service. */
    readonly owner: string,
    /** Filled in under stored configurations, so nodes stored before a new option have it. */
    private readonly defaults: NodeConfig,
  ) {}

  async node(name: string): Promise<LeafNodeRecord | undefined> {
    const record = await this.nodes.get(this.owner, name);
    return record && this.withDefaults(record);
  }

  saveNode(name: string, record: LeafNodeRecord): Promise<void> {
    return this.nodes.set(this.owner, name, record);
  }

  async listNodes(): Promise<{ name: string; record: LeafNodeRecord }[]> {
    return (await this.nodes.list(this.owner)).map(({ key, value }) => ({ name: key, record: this.withDefaults(value) }));
  }

  private withDefaults(record: LeafNodeRecord): LeafNodeRecord {
    return { ...record, config: { ...this.defaults, ...record.config } };
  }

  async deleteNode(name: string): Promise<void> {
    await this.clearItems(name);
    await this.nodes.delete(this.owner, name);
  }

  /** The node's items, oldest first. */
  async listItems(name: string, config: NodeConfig): Promise<ItemRecord[]> {
    if (!config.persist_items) return [...(this.transient.get(this.memoryKey(name)) ?? [])];
    return (await this.items.list(this.owner, { with: name })).map(({ value, stamp }) => ({ ...value, stamp }));
  }

  async lastItem(name: string, config: NodeConfig): Promise<ItemRecord | undefined> {
    if (!config.persist_items) return this.transient.get(this.memoryKey(name))?.at(-1);
    const [last] = await this.items.list(this.owner, { with: name, reverse: true, limit: 1 });
    return last ? { ...last.value, stamp: last.stamp } : undefined;
  }

  /**
   * Stores an item as the newest (one with the same id is replaced: XEP-0060 §7.1.2 "the service
   * MUST overwrite the existing item"), then drops the oldest beyond `limit`.
   */
  async addItem(name: string, config: NodeConfig, item: StoredItem, limit: number): Promise<void> {
    if (!config.persist_items) {
      const key = this.memoryKey(name);
      const list = (this.transient.get(key) ?? []).filter((old) => old.id !== item.id);
      list.push({ ...item, stamp: Date.now() });
      this.transient.set(key, list.slice(-limit));
      return;
    }
    const existing = await this.items.list(this.owner, { with: name });
    const replaced = existing.filter((entry) => entry.value.id === item.id).map((entry) => entry.id);
    const kept = existing.length - replaced.length;
    const overflow = existing
      .filter((entry) => entry.value.id !== item.id)
      .slice(0, Math.max(0, kept + 1 - limit))
      .map((entry) => entry.id);
    if (replaced.length + overflow.length > 0) await this.items.delete(this.owner, [...replaced, ...overflow]);
    await this.items.append(this.owner, item, { with: name });
  }

  /** Removes one item; false when the node had none with that id. */
  async removeItem(name: string, config: NodeConfig, id: string): Promise<boolean> {
    if (!config.persist_items) {
      const key = this.memoryKey(name);
      const list = this.transient.get(key) ?? [];
      const left = list.filter((item) => item.id !== id);
      this.transient.set(key, left);
      return left.length !== list.length;
    }
    const ids = (await this.items.list(this.owner, { with: name })).filter((entry) => entry.value.id === id).map((entry) => entry.id);
    if (ids.length === 0) return false;
    await this.items.delete(this.owner, ids);
    return true;
  }

  /** Drops the oldest items beyond `limit` (a node reconfigured to keep fewer). */
  async trim(name: string, config: NodeConfig, limit: number): Promise<void> {
    if (!config.persist_items) {
      const key = this.memoryKey(name);
      const list = this.transient.get(key);
      if (list && list.length > limit) this.transient.set(key, list.slice(-limit));
      return;
    }
    const existing = await this.items.list(this.owner, { with: name });
    if (existing.length > limit) await this.items.delete(this.owner, existing.slice(0, existing.length - limit).map((entry) => entry.id));
  }

  async clearItems(name: string): Promise<void> {
    this.transient.delete(this.memoryKey(name));
    const ids = (await this.items.list(this.owner, { with: name })).map((entry) => entry.id);
    if (ids.length > 0) await this.items.delete(this.owner, ids);
  }

  private memoryKey(name: string): string {
    return `${this.owner}\n${name}`;
  }
}
