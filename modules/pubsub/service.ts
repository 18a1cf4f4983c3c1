// The general XEP-0060 service at pubsub.<domain> (disco identity pubsub/service): leaf nodes that
// users create (as config allows), own, configure and delete, subscriptions and notifications,
// node discovery. Collections, the 'authorize' access model, pending subscriptions and
// subscription leases are left out.
import { parseJid, x, type Jid, type LocalComponent, type ModuleContext, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import type { RosterService } from '../../server/protocol/rfc6121.js';
import { BASE_DEFAULTS, buildForm, metaDataForm, type NodeConfig } from './config.js';
import { PubsubEngine, type EngineHost } from './engine.js';
import { NS_PUBSUB, NS_PUBSUB_OWNER, pubsubFeatures } from './protocol.js';
import { handlePubsubIq } from './requests.js';
import { NodeStore, type LeafNodeRecord, type StoredItem, type TransientItems } from './store.js';

export type NodeCreation = 'local' | 'anyone' | 'nobody';

export interface ServiceOptions {
  domain: string;
  nodeCreation: NodeCreation;
  maxItems: number;
  defaults: Partial<NodeConfig>;
}

/** The engine's host for a local account's roster questions (presence and roster access models). */
export function localRoster(m: ModuleContext<unknown>, roster: RosterService): EngineHost['rosterItem'] {
  return async (ownerBare, contactBare) => {
    const owner = parseJid(ownerBare);
    if (owner.domain !== m.host || owner.local === '') return undefined;
    return roster.getItem(owner.local, contactBare);
  };
}

/** Runs one request on a fresh engine; its notifications go out after the answer. */
export async function runEngine<T>(m: ModuleContext<unknown>, engine: PubsubEngine, work: (engine: PubsubEngine) => Promise<T>): Promise<T> {
  const result = await work(engine);
  const outbox = engine.outbox.splice(0);
  // After the caller's answer is written (the router replies when the handler resolves).
  if (outbox.length > 0) setImmediate(() => outbox.forEach((stanza) => m.route(stanza)));
  return result;
}

export function startService(m: ModuleContext<unknown>, roster: RosterService, options: ServiceOptions): LocalComponent {
  const component = m.component(options.domain);
  const transient: TransientItems = new Map();
  const defaults: NodeConfig = { ...BASE_DEFAULTS, ...options.defaults };
  const store = new NodeStore(m.store.map<LeafNodeRecord>('service_nodes'), m.store.archive<StoredItem>('service_items'), transient, '', defaults);
  const host: EngineHost = {
    jid: component.domain,
    store,
    maxItems: options.maxItems,
    defaults,
    pepOwner: undefined,
    autoCreate: false,
    mayCreate: (from) => mayCreate(options.nodeCreation, from, m.host),
    rosterItem: localRoster(m, roster),
  };

  component.identities.push({ category: 'pubsub', type: 'service', name: 'Publish-subscribe' });
  for (const feature of pubsubFeatures(['instant-nodes'])) component.features.add(feature);
  m.discoItem(component.domain, 'Publish-subscribe');

  for (const type of ['get', 'set'] as const) {
    for (const ns of [NS_PUBSUB, NS_PUBSUB_OWNER]) {
      component.iq(type, ns, 'pubsub', ({ payload, from }) => runEngine(m, new PubsubEngine(host), (engine) => handlePubsubIq(engine, type, payload, from)));
    }
  }

  // A deleted account's subscriptions and affiliations go; nodes it alone owned are deleted.
  m.on('user:deleted', ({ username }) => runEngine(m, new PubsubEngine(host), (engine) => engine.forgetAccount(`${username}@${m.host}`)));

  // XEP-0060 §5.1/§5.2: the nodes of the service (those the requester may see) and their items.
  component.itemsQuery = async (node, from) => {
    const engine = new PubsubEngine(host);
    if (node === undefined) {
      const out = x('query', { xmlns: NS.DISCO_ITEMS });
      for (const { name, record } of await store.listNodes()) {
        if (!(await engine.accessError(record, from))) out.append(x('item', { jid: component.domain, node: name, name: record.config.title || undefined }));
      }
      return out;
    }
    return nodeItems(engine, node, from);
  };
  // §5.3: a node's identity and meta-data.
  component.infoNode = async (node, from) => nodeInfo(new PubsubEngine(host), node, from);
  return component;
}

/** modules.pubsub.node_creation: may `from` create nodes on the service of `domain`? */
export function mayCreate(policy: NodeCreation, from: Jid, domain: string): boolean {
  if (policy === 'anyone') return true;
  return policy === 'local' && from.domain === domain && from.local !== '';
}

/** disco#info of a node for a requester who may see it (null: no such node, or not for them). */
export async function nodeInfo(engine: PubsubEngine, node: string, from: Jid): Promise<XmlElement | null> {
  const record = await engine.host.store.node(node);
  if (!record || (await engine.accessError(record, from))) return null;
  return x(
    'query',
    { xmlns: NS.DISCO_INFO, node },
    x('identity', { category: 'pubsub', type: 'leaf' }),
    x('feature', { var: NS_PUBSUB }),
    buildForm(metaDataForm(record.config, engine.owners(record))),
  );
}

/** §5.5: a node's items as disco items (the item ids as names). */
export async function nodeItems(engine: PubsubEngine, node: string, from: Jid): Promise<XmlElement | null> {
  const record = await engine.host.store.node(node);
  if (!record || (await engine.accessError(record, from))) return null;
  const items = await engine.host.store.listItems(node, record.config);
  return x('query', { xmlns: NS.DISCO_ITEMS, node }, ...items.map((item) => x('item', { jid: engine.host.jid, name: item.id })));
}
