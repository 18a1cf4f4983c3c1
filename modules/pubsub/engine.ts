// The pubsub engine: XEP-0060's entity and publisher use cases over one NodeStore, for the pubsub
// service (pubsub.<domain>) and for PEP (XEP-0163, one service per account). What differs between
// the two comes from the EngineHost: who owns nodes, who may create them, defaults, and (PEP) who
// is interested through entity capabilities. Owner use cases (§8) are in owner.ts.
//
// One engine serves one request: notifications and events collect in `outbox` and `events`, and
// the caller sends them after answering, so a publisher sees its result before the notification.
import { randomBytes } from 'node:crypto';
import { parseXml, tryParseJid, x, type Jid, type XmlElement } from '../../server/module-api.js';
import type { RosterItem } from '../../server/protocol/rfc6121.js';
import { stanzaError, type StanzaError } from '../../server/errors.js';
import { checkPreconditions, itemLimit, type NodeConfig } from './config.js';
import { accessErrors, delayElement, eventMessage, noSuchNode, pubsubCondition } from './protocol.js';
import type { Affiliation, ItemRecord, LeafNodeRecord, NodeStore, SubscriptionRecord } from './store.js';

export interface EngineHost {
  /** The service's address, 'from' of notifications: pubsub.<domain>, or the account's bare JID. */
  readonly jid: string;
  readonly store: NodeStore;
  /** What max_items 'max' means, and the largest number a node may keep. */
  readonly maxItems: number;
  readonly defaults: NodeConfig;
  /** PEP: the account's bare JID, owner of every node (XEP-0163 §3 "one publisher per node"). */
  readonly pepOwner: string | undefined;
  /** §7.1.4: whether a publish to a missing node creates it (PEP: always, XEP-0163 §5). */
  readonly autoCreate: boolean;
  /** Whether `from` may create nodes (auto-create included). */
  mayCreate(from: Jid): boolean;
  /** The item `contact` has in a local account's roster (undefined: none, or not a local account). */
  rosterItem(ownerBare: string, contactBare: string): Promise<RosterItem | undefined>;
  /** Configuration a node of this name gets when created, under what the creator asks for (PEP: set by modules). */
  nodeDefaults?(node: string): Partial<NodeConfig> | undefined;
  /** Full JIDs interested in a node besides its subscribers (PEP: +notify contacts and own resources). */
  interested?(node: string): string[];
}

export type EngineEvent =
  | { type: 'published'; node: string; itemId: string; payload: XmlElement | undefined; publisher: Jid | undefined }
  | { type: 'retracted'; node: string; itemId: string; by: Jid | undefined }
  | { type: 'purged' | 'deleted' | 'created' | 'configured'; node: string };

export interface PublishOptions {
  /** publish-options (§7.1.5): must match an existing node, configure a new one. */
  preconditions?: Partial<NodeConfig>;
  /** Configuration for a node this publish creates, without checking an existing one. */
  createWith?: Partial<NodeConfig>;
}

export class PubsubEngine {
  readonly outbox: XmlElement[] = [];
  readonly events: EngineEvent[] = [];

  constructor(readonly host: EngineHost) {}

  // ---- reading nodes and rights ----

  async node(name: string): Promise<LeafNodeRecord> {
    const record = await this.host.store.node(name);
    if (!record) throw noSuchNode();
    return record;
  }

  affiliation(record: LeafNodeRecord, jid: Jid): Affiliation {
    if (this.host.pepOwner !== undefined && jid.bareString === this.host.pepOwner) return 'owner';
    return record.affiliations[jid.bareString] ?? 'none';
  }

  owners(record: LeafNodeRecord): string[] {
    if (this.host.pepOwner !== undefined) return [this.host.pepOwner];
    return Object.entries(record.affiliations)
      .filter(([, affiliation]) => affiliation === 'owner')
      .map(([jid]) => jid);
  }

  requireOwner(record: LeafNodeRecord, from: Jid): void {
    // §8.x.3: "the requesting entity does not have sufficient privileges" → forbidden.
    if (this.affiliation(record, from) !== 'owner') throw stanzaError.forbidden('Only an owner of the node may do this');
  }

  /** Why `jid` may not see the node's items or subscribe (undefined: it may), per §4.5 access models. */
  async accessError(record: LeafNodeRecord, jid: Jid): Promise<StanzaError | undefined> {
    const affiliation = this.affiliation(record, jid);
    if (affiliation === 'outcast') return accessErrors.blocked();
    if (affiliation === 'owner' || affiliation === 'publisher' || affiliation === 'member') return undefined;
    // §4.1: publish-only entities may publish but not retrieve.
    if (affiliation === 'publish-only') return stanzaError.forbidden('Publish-only affiliation');
    const { access_model: model, roster_groups_allowed: groups } = record.config;
    if (model === 'open') return undefined;
    if (model === 'whitelist') return accessErrors.closedNode();
    for (const owner of this.owners(record)) {
      const item = await this.host.rosterItem(owner, jid.bareString);
      if (!item) continue;
      if (model === 'presence' && (item.subscription === 'from' || item.subscription === 'both')) return undefined;
      if (model === 'roster' && item.groups.some((group) => groups.includes(group))) return undefined;
    }
    return model === 'presence' ? accessErrors.presenceRequired() : accessErrors.notInRosterGroup();
  }

  async checkAccess(record: LeafNodeRecord, jid: Jid): Promise<void> {
    const error = await this.accessError(record, jid);
    if (error) throw error;
  }

  newRecord(creator: Jid | undefined, config: Partial<NodeConfig>): LeafNodeRecord {
    const affiliations: Record<string, Affiliation> = {};
    if (creator && this.host.pepOwner === undefined) affiliations[creator.bareString] = 'owner';
    return { kind: 'leaf', config: { ...this.host.defaults, ...config }, affiliations, subscriptions: [], createdAt: Date.now() };
  }

  // ---- publisher use cases (§7) ----

  /** §7.1 publish; `from` undefined = the server on the PEP owner's behalf. */
  async publish(from: Jid | undefined, name: string, itemId: string, payload: XmlElement | undefined, options: PublishOptions = {}): Promise<void> {
    const { store } = this.host;
    let record = await store.node(name);
    const created = !record;
    if (!record) {
      // §7.1.4 auto-create, with publish-options as the new node's configuration (§7.1.5).
      if (from && !this.host.autoCreate) throw noSuchNode();
      if (from && !this.host.mayCreate(from)) throw stanzaError.forbidden('Not allowed to create nodes here');
      record = this.newRecord(from, { ...this.host.nodeDefaults?.(name), ...options.createWith, ...options.preconditions });
    } else if (options.preconditions) {
      checkPreconditions(record.config, options.preconditions);
    }
    if (from && !this.mayPublish(record, from)) throw stanzaError.forbidden('Not allowed to publish to this node');
    // §7.1.3.6: a node that stores or delivers payloads needs one.
    if (!payload && (record.config.persist_items || record.config.deliver_payloads)) {
      throw stanzaError.badRequest('The item needs a payload', { app: pubsubCondition('payload-required') });
    }
    if (created) await store.saveNode(name, record);
    const item: ItemRecord = { id: itemId, payload: payload?.toString() ?? '', publisher: from?.toString() ?? '', stamp: Date.now() };
    await store.addItem(name, record.config, item, itemLimit(record.config, this.host.maxItems));
    if (created) this.events.push({ type: 'created', node: name });
    this.events.push({ type: 'published', node: name, itemId, payload, publisher: from });
    const items = x('items', { node: name }, this.itemElement(item, record.config.deliver_payloads));
    await this.notify(name, record, items);
  }

  private mayPublish(record: LeafNodeRecord, from: Jid): boolean {
    const affiliation = this.affiliation(record, from);
    if (affiliation === 'owner' || affiliation === 'publisher' || affiliation === 'publish-only') return true;
    if (affiliation === 'outcast') return false;
    if (record.config.publish_model === 'open') return true;
    return record.config.publish_model === 'subscribers' && record.subscriptions.some((sub) => tryParseJid(sub.jid)?.bareString === from.bareString);
  }

  /** §7.2 retract; `notify` is the request's attribute (absent: the node's notify_retract decides). */
  async retract(from: Jid | undefined, name: string, itemId: string, notify?: boolean): Promise<void> {
    const record = await this.node(name);
    if (from && !this.mayRetract(record, from)) throw stanzaError.forbidden('Not allowed to retract from this node');
    if (!(await this.host.store.removeItem(name, record.config, itemId))) throw stanzaError.itemNotFound('No such item');
    this.events.push({ type: 'retracted', node: name, itemId, by: from });
    // §7.2.2.1: notify when the node is configured to, or when the request asks for it.
    if (notify ?? record.config.notify_retract) await this.notify(name, record, x('items', { node: name }, x('retract', { id: itemId })));
  }

  private mayRetract(record: LeafNodeRecord, from: Jid): boolean {
    const affiliation = this.affiliation(record, from);
    return affiliation === 'owner' || affiliation === 'publisher';
  }

  // ---- subscriber use cases (§6) ----

  /** §6.5 items: all, the newest `max`, or those with the given ids. */
  async items(from: Jid, name: string, query: { max?: number; ids?: string[] } = {}): Promise<XmlElement> {
    const record = await this.node(name);
    await this.checkAccess(record, from);
    let items = await this.host.store.listItems(name, record.config);
    if (query.ids && query.ids.length > 0) {
      const wanted = new Set(query.ids);
      items = items.filter((item) => wanted.has(item.id));
      if (items.length === 0) throw stanzaError.itemNotFound('No such item');
    }
    // §6.5.7: "the service MUST return the N most recent items".
    if (query.max !== undefined) items = items.slice(-query.max);
    return x('items', { node: name }, ...items.map((item) => this.itemElement(item, true)));
  }

  /** §6.1 subscribe; returns the <subscription/> for the result. */
  async subscribe(from: Jid, name: string, jid: Jid): Promise<XmlElement> {
    // §6.1.3.1: "the bare JID portion of the 'jid' attribute [MUST match] the bare JID portion of the 'from'".
    if (jid.bareString !== from.bareString) throw stanzaError.badRequest('jid does not match the requester', { app: pubsubCondition('invalid-jid') });
    const record = await this.node(name);
    await this.checkAccess(record, from);
    let subscription = record.subscriptions.find((sub) => sub.jid === jid.toString());
    if (!subscription) {
      subscription = { jid: jid.toString(), subid: randomBytes(8).toString('hex'), deliver: true };
      record.subscriptions.push(subscription);
      await this.host.store.saveNode(name, record);
    }
    // §6.1.7: the last published item goes to a new subscriber when the node says so.
    if (record.config.send_last_published_item !== 'never') await this.sendLastItem(name, record, jid.toString());
    return this.subscriptionElement(name, subscription);
  }

  /** §6.2 unsubscribe. */
  async unsubscribe(from: Jid, name: string, jid: Jid, subid: string | undefined): Promise<void> {
    const record = await this.node(name);
    // §6.2.3.3: only the subscriber itself (or an owner) may end a subscription.
    if (jid.bareString !== from.bareString && this.affiliation(record, from) !== 'owner') throw stanzaError.forbidden('Not your subscription');
    const subscription = record.subscriptions.find((sub) => sub.jid === jid.toString());
    if (!subscription) throw stanzaError.unexpectedRequest('Not subscribed', { app: pubsubCondition('not-subscribed') });
    if (subid !== undefined && subid !== subscription.subid) throw stanzaError.notAcceptable('No such subscription id', { app: pubsubCondition('invalid-subid') });
    record.subscriptions = record.subscriptions.filter((sub) => sub !== subscription);
    await this.host.store.saveNode(name, record);
  }

  subscriptionElement(name: string, sub: SubscriptionRecord): XmlElement {
    return x('subscription', { node: name, jid: sub.jid, subid: sub.subid, subscription: 'subscribed' });
  }

  /** The requester's subscription to a node, or unexpected-request/not-subscribed (§6.3.4.3). */
  subscriptionOf(record: LeafNodeRecord, jid: Jid): SubscriptionRecord {
    const subscription = record.subscriptions.find((sub) => sub.jid === jid.toString());
    if (!subscription) throw stanzaError.unexpectedRequest('Not subscribed', { app: pubsubCondition('not-subscribed') });
    return subscription;
  }

  // ---- accounts that are gone ----

  /**
   * A deleted account leaves no trace on this service: its subscriptions (bare or full JID) and
   * affiliations go, and a node it was the only owner of is deleted, with its notification (a
   * node without an owner could never be managed again; §8.9.2.4 keeps one for the same reason).
   */
  async forgetAccount(bare: string): Promise<void> {
    const { store } = this.host;
    for (const { name, record } of await store.listNodes()) {
      const subscriptions = record.subscriptions.filter((sub) => tryParseJid(sub.jid)?.bareString !== bare);
      const affiliated = bare in record.affiliations;
      if (subscriptions.length === record.subscriptions.length && !affiliated) continue;
      record.subscriptions = subscriptions;
      delete record.affiliations[bare];
      if (this.host.pepOwner === undefined && this.owners(record).length === 0) {
        if (record.config.notify_delete) await this.notify(name, record, x('delete', { node: name }));
        await store.deleteNode(name);
        this.events.push({ type: 'deleted', node: name });
        continue;
      }
      await store.saveNode(name, record);
    }
  }

  // ---- notifications ----

  itemElement(item: ItemRecord, withPayload: boolean): XmlElement {
    return x('item', { id: item.id }, withPayload && item.payload !== '' ? parseXml(item.payload) : undefined);
  }

  /** Queues an event for everyone entitled to it (subscribers and, for PEP, interested resources). */
  async notify(name: string, record: LeafNodeRecord, ...children: XmlElement[]): Promise<void> {
    if (!record.config.deliver_notifications) return;
    for (const to of await this.recipients(name, record)) {
      this.outbox.push(eventMessage(this.host.jid, to, record.config.notification_type, ...children.map((child) => child.clone())));
    }
  }

  async recipients(name: string, record: LeafNodeRecord): Promise<string[]> {
    const interested = this.host.interested?.(name) ?? [];
    const interestedBare = new Set(interested.map((jid) => tryParseJid(jid)?.bareString));
    const out = new Set<string>();
    for (const sub of record.subscriptions) {
      const jid = tryParseJid(sub.jid);
      if (!jid || !sub.deliver) continue;
      // XEP-0163 §4.3.2: with presence information about a bare-JID subscriber, notify its
      // interested resources instead (once each), not the bare JID as well.
      if (jid.resource === '' && interestedBare.has(jid.bareString)) continue;
      if (!(await this.accessError(record, jid))) out.add(sub.jid);
    }
    for (const full of interested) {
      const jid = tryParseJid(full);
      if (jid && !(await this.accessError(record, jid))) out.add(full);
    }
    return [...out];
  }

  /** The node's last item to one JID, with its publication time (XEP-0163 §4.3.4, XEP-0060 §6.1.7). */
  async sendLastItem(name: string, record: LeafNodeRecord, to: string): Promise<void> {
    const last = await this.host.store.lastItem(name, record.config);
    if (!last || !record.config.deliver_notifications) return;
    const message = eventMessage(this.host.jid, to, record.config.notification_type, x('items', { node: name }, this.itemElement(last, record.config.deliver_payloads)));
    message.append(delayElement(this.host.jid, last.stamp));
    this.outbox.push(message);
  }
}
