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

/** Nodes of one service, stored service-wide (store owner ''), keyed by node name. */
export class NodeTable {
  constructor(private readonly store: MapStore<NodeRecord>) {}

  get(node: string): Promise<NodeRecord | undefined> {
    return this.store.get('', node);
  }

  /** Creates or replaces a node. */
  put(node: string, record: NodeRecord): Promise<void> {
    return this.store.set('', node, record);
  }

  delete(node: string): Promise<boolean> {
    return this.store.delete('', node);
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
