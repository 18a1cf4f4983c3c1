// XEP-0163 Personal Eventing Protocol (1.2.2), the 'pep' module: every account's bare JID is a
// pubsub service run by the engine of this folder (engine.ts), with XEP-0163's defaults (presence
// access model, last item on subscription and presence), auto-create on publish, publish-options,
// node configuration, retract, delete and purge. Notifications reach the account's own resources and
// contacts subscribed to its presence whose entity capabilities ask for '<node>+notify'
// (interest.ts), and explicit subscribers. Other modules publish through the 'pep' service and
// hear of changes through the pep:* hooks (bookmarks, avatars).
// Left out: XEP-0033 replyto addresses on notifications (§4.3.1 SHOULD), collections.
import { z } from 'zod';
import { Priority, defineModule, keyedSerial, parseXml, tryParseJid, x, type Jid, type RouteEvent, type XmlElement } from '../../server/module-api.js';
import { BASE_DEFAULTS, type NodeConfig } from './config.js';
import { PubsubEngine, type EngineHost } from './engine.js';
import { NS_PUBSUB, NS_PUBSUB_OWNER, pubsubFeatures } from './protocol.js';
import { handlePubsubIq } from './requests.js';
import { localRoster, nodeInfo, runEngine } from './service.js';
import { NodeStore, type ItemRecord, type LeafNodeRecord, type StoredItem, type TransientItems } from './store.js';
import { CapsCache, InterestTable, capsOf, type Caps, type Features } from './interest.js';

export type { NodeConfig } from './config.js';

declare module '../../server/hooks.js' {
  interface Hooks {
    /** An item was stored in an account's PEP node (notifications are on their way). `publisher` is undefined when the server published. */
    'pep:item-published': { username: string; node: string; itemId: string; payload: XmlElement | undefined; publisher: Jid | undefined };
    /** An item was removed from an account's PEP node; `by` is undefined when the server retracted it. */
    'pep:item-retracted': { username: string; node: string; itemId: string; by: Jid | undefined };
    'pep:node-purged': { username: string; node: string };
    'pep:node-deleted': { username: string; node: string };
  }
}

export interface PepItem {
  id: string;
  payload: XmlElement | undefined;
  stamp: number;
}

export interface PepService {
  /** Publishes as the account (notifications and hooks as for a client's publish); a new node gets `createWith`. */
  publish(username: string, node: string, itemId: string, payload: XmlElement, createWith?: Partial<NodeConfig>): Promise<void>;
  /** Retracts an item (with notifications); false when there was none. */
  retract(username: string, node: string, itemId: string): Promise<boolean>;
  /** The node's items, oldest first; undefined when the account has no such node. */
  items(username: string, node: string): Promise<PepItem[] | undefined>;
  lastItem(username: string, node: string): Promise<PepItem | undefined>;
  /**
   * The configuration every account's node of this name gets when it is created, below what the
   * creating client asks for in publish-options (a module that knows the node's purpose: private
   * bookmarks must not fall back to the presence access model when a client sends no options).
   */
  setNodeDefaults(node: string, config: Partial<NodeConfig>): void;
}

declare module '../../server/module-api.js' {
  interface Services {
    pep: PepService;
  }
}

/** XEP-0163 §8 "Recommended Defaults". */
const PEP_DEFAULTS: NodeConfig = { ...BASE_DEFAULTS, access_model: 'presence', send_last_published_item: 'on_sub_and_presence' };

export default defineModule({
  name: 'pep',
  xeps: [
    { xep: 163, version: '1.2.2', status: 'complete' },
    { xep: 115, version: '1.6.0', status: 'partial', note: "contacts' capabilities for PEP +notify filtering, verified and cached" },
    { xep: 223, version: '1.1.1', status: 'complete', note: 'private PEP nodes through publish-options and the whitelist access model' },
  ],
  depends: ['roster', 'disco'],
  config: z
    .object({
      max_items: z.number().int().min(1).max(10_000).default(256).describe("Most items one PEP node keeps (what max_items 'max' means)"),
      caps_cache_size: z.number().int().min(10).max(1_000_000).default(5000).describe('Entity capabilities (client software versions) remembered for +notify filtering'),
    })
    .strict(),
  setup(m) {
    const roster = m.service('roster');
    const disco = m.service('disco');
    const nodes = m.store.map<LeafNodeRecord>('nodes');
    const items = m.store.archive<StoredItem>('items');
    const transient: TransientItems = new Map();
    const interest = new InterestTable();
    const caps = new CapsCache((stanza) => m.sendIq(stanza, 10_000), m.config.caps_cache_size);
    const serial = keyedSerial();
    const nodeDefaults = new Map<string, Partial<NodeConfig>>();
    const bareOf = (username: string) => `${username}@${m.host}`;
    const rosterItem = localRoster(m, roster);

    const hostFor = (username: string): EngineHost => ({
      jid: bareOf(username),
      store: new NodeStore(nodes, items, transient, username, PEP_DEFAULTS),
      maxItems: m.config.max_items,
      defaults: PEP_DEFAULTS,
      pepOwner: bareOf(username),
      autoCreate: true,
      mayCreate: (from) => from.bareString === bareOf(username),
      rosterItem,
      nodeDefaults: (node) => nodeDefaults.get(node),
      interested: (node) => interest.interestedIn(username, `${node}+notify`),
    });

    /** Runs engine work for an account, then tells the other modules what changed. */
    const run = <T>(username: string, work: (engine: PubsubEngine) => Promise<T>) =>
      runEngine(m, new PubsubEngine(hostFor(username)), async (engine) => {
        const result = await work(engine);
        for (const event of engine.events) {
          if (event.type === 'published') await m.fire('pep:item-published', { username, ...withoutType(event) });
          else if (event.type === 'retracted') await m.fire('pep:item-retracted', { username, node: event.node, itemId: event.itemId, by: event.by });
          else if (event.type === 'purged') await m.fire('pep:node-purged', { username, node: event.node });
          else if (event.type === 'deleted') await m.fire('pep:node-deleted', { username, node: event.node });
        }
        return result;
      });

    // XEP-0163 §9.1: the account is a pubsub/pep service with the XEP-0060 features it supports.
    disco.accountIdentity('pubsub', 'pep');
    for (const feature of pubsubFeatures(['auto-create', 'auto-subscribe', 'filtered-notifications', 'presence-notifications'])) m.accountFeature(feature);
    disco.accountNodes({
      // §9.2: only the nodes the requester may subscribe to or retrieve items from.
      async items(username, from) {
        const engine = new PubsubEngine(hostFor(username));
        const out: XmlElement[] = [];
        for (const { name, record } of await engine.host.store.listNodes()) {
          if (!(await engine.accessError(record, from))) out.push(x('item', { jid: bareOf(username), node: name }));
        }
        return out;
      },
      info: (username, node, from) => nodeInfo(new PubsubEngine(hostFor(username)), node, from),
    });

    // XEP-0163 §3: requests go to the account's bare JID (or without 'to' from the account itself).
    for (const type of ['get', 'set'] as const) {
      for (const ns of [NS_PUBSUB, NS_PUBSUB_OWNER]) {
        m.iq[type](ns, 'pubsub', ({ payload, from, username }) => run(username, (engine) => handlePubsubIq(engine, type, payload, from)), { scope: 'account' });
      }
    }

    // ---- who is interested: presence with entity capabilities ----

    // The account's own resources (§4.3: notifications go to them too, filtered the same way).
    // Before the presence module, which consumes the stanza.
    m.on(
      'stanza:in',
      ({ stanza, session }) => {
        if (stanza.name !== 'presence') return undefined;
        if (stanza.attrs.to === undefined) {
          track(session.username, session.jid, stanza);
          shareWithOneWayContacts(session.username, session.jid, stanza);
        } else if (stanza.attrs.type === 'unsubscribed') {
          // The account cancels a contact's subscription to its presence: §4 auto-subscription ends.
          const contact = tryParseJid(stanza.attrs.to);
          if (contact) interest.removeBare(session.username, contact.bareString);
        }
        return undefined;
      },
      Priority.DEFAULT + 10,
    );
    // Every table: local contacts that learnt this resource without presence (one-way, below).
    m.on('session:closed', ({ session }) => interest.removeResourceEverywhere(session.fullJid));

    // Contacts: presence a contact sends the account. Before the presence module delivers it.
    m.on(
      'presence/bare',
      ({ stanza, from, to }: RouteEvent) => {
        if (from.bareString === to.bareString) return undefined;
        track(to.local, from, stanza);
        // A local account approved `to`'s subscription: its PEP learns of `to`'s resources now
        // (XEP-0163 §4: contacts with a 'from' subscription), and sends them the last items.
        if (stanza.attrs.type === 'subscribed' && from.domain === m.host && from.local !== '') {
          for (const session of m.sessions.resourcesOf(to.bareString)) {
            if (session.available && session.presence) track(from.local, session.jid, session.presence);
          }
        }
        return undefined;
      },
      Priority.DEFAULT + 10,
    );
    m.on('roster:item-removed', ({ username, item }) => interest.removeBare(username, item.jid));
    m.on('user:deleted', async ({ username }) => {
      interest.forget(username);
      interest.removeEverywhere(bareOf(username));
      for (const key of [...transient.keys()]) if (key.startsWith(`${username}\n`)) transient.delete(key);
      // The store dropped the account's own nodes and items with the account; what is left is its
      // place in other accounts' nodes (explicit subscriptions, whitelist affiliations).
      for (const owner of await nodes.owners()) {
        if (owner !== username) await run(owner, (engine) => engine.forgetAccount(bareOf(username)));
      }
    });

    function track(username: string, from: Jid, presence: XmlElement): void {
      const type = presence.attrs.type;
      if (type === 'unavailable') {
        if (from.resource === '') interest.removeBare(username, from.bareString);
        else interest.remove(username, from.toString());
        return;
      }
      // The contact no longer wants the account's presence: its resources stop getting events now
      // (open nodes included), not only when they next go offline. As Prosody's mod_pep does.
      if (type === 'unsubscribe' && from.bareString !== bareOf(username)) {
        interest.removeBare(username, from.bareString);
        return;
      }
      if (type !== undefined || from.resource === '') return; // subscriptions, probes, errors
      serial(username, () => learn(username, from, capsOf(presence))).catch((err: unknown) => m.log.warn({ err, user: username }, 'caps lookup failed'));
    }

    /**
     * RFC 6121 broadcasts presence to contacts with 'from' or 'both' only, so a local contact whose
     * presence the user receives ('to') without receiving the user's gets none, though the contact's
     * roster has the user as 'from' (XEP-0163 §4: auto-subscribed). Its PEP learns the user's
     * resources from here instead, the way it would from a presence.
     */
    function shareWithOneWayContacts(username: string, jid: Jid, presence: XmlElement): void {
      const type = presence.attrs.type;
      if (type !== undefined && type !== 'unavailable') return;
      roster
        .getItems(username)
        .then((items) => {
          for (const item of items) {
            if (item.subscription !== 'to') continue;
            const contact = tryParseJid(item.jid);
            if (contact && contact.domain === m.host && contact.local !== '' && contact.resource === '') track(contact.local, jid, presence);
          }
        })
        .catch((err: unknown) => m.log.warn({ err, user: username }, 'roster read for pep failed'));
    }

    async function learn(username: string, from: Jid, announced: Caps | undefined): Promise<void> {
      const jid = from.toString();
      const previous = interest.get(username, jid);
      if (previous && previous.ver === announced?.ver) return; // nothing new: no last items again
      // XEP-0163 §4: only contacts with a subscription to the account's presence are auto-subscribed.
      if (from.bareString !== bareOf(username)) {
        const item = await roster.getItem(username, from.bareString);
        if (item?.subscription !== 'from' && item?.subscription !== 'both') return;
      }
      const features = announced ? await caps.features(announced, jid, bareOf(username)) : undefined;
      if (!announced || !features) {
        interest.remove(username, jid);
        return;
      }
      interest.set(username, jid, { ver: announced.ver, features });
      await run(username, (engine) => sendLastItems(engine, from, features, previous?.features));
    }

    /** §4.3.4: the last item of each node the resource newly wants, on its (new) presence. */
    async function sendLastItems(engine: PubsubEngine, to: Jid, features: Features, before: Features | undefined): Promise<void> {
      for (const { name, record } of await engine.host.store.listNodes()) {
        const wanted = `${name}+notify`;
        if (!features.has(wanted) || before?.has(wanted) || record.config.send_last_published_item !== 'on_sub_and_presence') continue;
        if (!(await engine.accessError(record, to))) await engine.sendLastItem(name, record, to.toString());
      }
    }

    // ---- the service other modules use ----

    const toPepItem = (item: ItemRecord): PepItem => ({ id: item.id, payload: item.payload === '' ? undefined : parseXml(item.payload), stamp: item.stamp });
    m.provide('pep', {
      publish: (username, node, itemId, payload, createWith) => run(username, (engine) => engine.publish(undefined, node, itemId, payload, createWith ? { createWith } : {})),
      async retract(username, node, itemId) {
        const store = hostFor(username).store;
        const record = await store.node(node);
        if (!record || !(await store.listItems(node, record.config)).some((item) => item.id === itemId)) return false;
        await run(username, (engine) => engine.retract(undefined, node, itemId));
        return true;
      },
      async items(username, node) {
        const store = hostFor(username).store;
        const record = await store.node(node);
        return record ? (await store.listItems(node, record.config)).map(toPepItem) : undefined;
      },
      async lastItem(username, node) {
        const store = hostFor(username).store;
        const record = await store.node(node);
        const last = record ? await store.lastItem(node, record.config) : undefined;
        return last ? toPepItem(last) : undefined;
      },
      setNodeDefaults(node, config) {
        nodeDefaults.set(node, { ...nodeDefaults.get(node), ...config });
      },
    });

    m.onStop(() => serial.idle());
  },
});

function withoutType<T extends { type: string }>(event: T): Omit<T, 'type'> {
  const { type: _type, ...rest } = event;
  return rest;
}
