// The nodes of the push service (push.<domain>): push nodes (XEP-0357), each owned by an app-server
// registration and guarded by a secret. They have no items and no subscribers, so they stay a kind
// of their own here, while the leaf nodes of pubsub.<domain> and PEP are the engine's (store.ts).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MapStore } from '../../server/module-api.js';

export interface PushNodeRecord {
  kind: 'push';
  /** Bare JID of the account whose device the node belongs to (not necessarily a local one). */
  owner: string;
  /** SHA-256 of the publish secret, hex: the secret itself is only ever handed to the device. */
  secretHash: string;
  createdAt: number;
}

/** Every kind of node the service keeps (only push nodes for now). */
export type NodeRecord = PushNodeRecord;
export type NodeKind = NodeRecord['kind'];

/**
 * Nodes kept in memory, least recently used dropped first: every publish to the push service looks
 * its node up (the secret's hash, the owner), while nodes change only when a device registers or
 * goes. Only found nodes are kept, so publishes to made-up names cannot crowd out real ones.
 */
const CACHED_NODES = 10_000;

/**
 * Nodes of one service, stored service-wide (store owner ''), keyed by node name. This class is
 * the only writer of its store (the push service runs once per server), so its cache is
 * write-through; storage stays the source of truth, read again after a restart.
 */
export class NodeTable {
  /** Frozen records: the same object goes to every caller. */
  private readonly cached = new Map<string, NodeRecord>();
  /** Counts writes: a read that a write overtook may hold the old record, so it is not kept. */
  private writes = 0;

  constructor(private readonly store: MapStore<NodeRecord>) {}

  async get(node: string): Promise<NodeRecord | undefined> {
    const hit = this.cached.get(node);
    if (hit) {
      this.remember(node, hit);
      return hit;
    }
    const writes = this.writes;
    const record = await this.store.get('', node);
    if (record && writes === this.writes) this.remember(node, Object.freeze(record));
    return record;
  }

  /** Creates or replaces a node. */
  put(node: string, record: NodeRecord): Promise<void> {
    const written = this.store.set('', node, record);
    this.writes++;
    this.remember(node, Object.freeze({ ...record }));
    return this.unlessFailed(node, written);
  }

  delete(node: string): Promise<boolean> {
    const deleted = this.store.delete('', node);
    this.writes++;
    this.cached.delete(node);
    return this.unlessFailed(node, deleted);
  }

  private remember(node: string, record: NodeRecord): void {
    this.cached.delete(node);
    this.cached.set(node, record);
    if (this.cached.size > CACHED_NODES) this.cached.delete(this.cached.keys().next().value!);
  }

  /** A write whose commit failed left storage as it was: the node is read afresh next time. */
  private unlessFailed<T>(node: string, write: Promise<T>): Promise<T> {
    return write.catch((err: unknown) => {
      this.writes++;
      this.cached.delete(node);
      throw err;
    });
  }
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * Compares a presented secret with the stored hash in constant time: both sides are SHA-256
 * digests, so their length says nothing about the secret, and timingSafeEqual leaks no prefix.
 */
export function secretMatches(presented: string | undefined, storedHash: string): boolean {
  if (presented === undefined) return false;
  const given = createHash('sha256').update(presented, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === given.length && timingSafeEqual(given, stored);
}
