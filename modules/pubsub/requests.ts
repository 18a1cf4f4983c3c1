// Dispatches one `<pubsub/>` or `<pubsub xmlns='…#owner'/>` IQ payload to the engine, by verb, and
// builds the result payload (XEP-0060 §5–§8). Shared by the pubsub service and PEP.
import { tryParseJid, x, type Jid, type XmlElement } from '../../server/module-api.js';
import { StanzaError, stanzaError } from '../../server/errors.js';
import { buildForm, field, formValue, parseBoolean, type DataForm } from '../../server/protocol/xep0004.js';
import { parseConfig, type NodeConfig } from './config.js';
import type { PubsubEngine } from './engine.js';
import * as owner from './owner.js';
import { parsePublish, publishResult } from './publish.js';
import {
  NS_PUBSUB,
  NS_PUBSUB_NODE_CONFIG,
  NS_PUBSUB_SUBSCRIBE_OPTIONS,
  formIn,
  maxItemsAttr,
  preconditionNotMet,
  pubsubCondition,
  readRequest,
  requireNode,
  sibling,
  unsupported,
  type PubsubRequest,
} from './protocol.js';

type Handler = (engine: PubsubEngine, request: PubsubRequest, from: Jid) => Promise<XmlElement | undefined>;

const entity: Record<'get' | 'set', Record<string, Handler>> = {
  set: {
    publish: async (engine, { payload }, from) => {
      const request = parsePublish(payload);
      await engine.publish(from, request.node, request.itemId, request.payload, { preconditions: preconditions(request.options, engine.host.maxItems) });
      return publishResult(request.node, request.itemId);
    },
    retract: async (engine, request, from) => {
      const node = requireNode(request);
      const ids = request.element.getChildren('item').map((item) => item.attrs.id);
      // §7.2.3.3: "the request does not specify an ItemID" → bad-request + item-required.
      if (ids.length === 0 || ids.some((id) => !id)) throw stanzaError.badRequest('Name the item to retract', { app: pubsubCondition('item-required') });
      const notify = parseBoolean(request.element.attrs.notify);
      for (const id of ids) await engine.retract(from, node, id!, notify);
      return undefined;
    },
    subscribe: async (engine, request, from) => {
      const subscription = await engine.subscribe(from, requireNode(request), subscriberJid(request));
      return x('pubsub', { xmlns: NS_PUBSUB }, subscription);
    },
    unsubscribe: async (engine, request, from) => {
      await engine.unsubscribe(from, requireNode(request), subscriberJid(request), request.element.attrs.subid);
      return undefined;
    },
    create: async (engine, request, from) => {
      const form = formIn(sibling(request.payload, 'configure'), NS_PUBSUB_NODE_CONFIG);
      const name = await owner.createNode(engine, from, request.node, form);
      // §8.1.2: an instant node's name comes back in the result.
      return request.node === undefined ? x('pubsub', { xmlns: NS_PUBSUB }, x('create', { node: name })) : undefined;
    },
    options: async (engine, request, from) => {
      const jid = subscriberJid(request);
      if (jid.bareString !== from.bareString) throw stanzaError.forbidden('Not your subscription');
      const record = await engine.node(requireNode(request));
      const subscription = engine.subscriptionOf(record, jid);
      const form = formIn(request.element, NS_PUBSUB_SUBSCRIBE_OPTIONS);
      const deliver = form ? parseBoolean(formValue(form, 'pubsub#deliver')) : undefined;
      if (deliver !== undefined) subscription.deliver = deliver;
      await engine.host.store.saveNode(requireNode(request), record);
      return undefined;
    },
  },
  get: {
    items: async (engine, request, from) => {
      const ids = request.element.getChildren('item').map((item) => item.attrs.id ?? '');
      const max = maxItemsAttr(request.element);
      const items = await engine.items(from, requireNode(request), { ids, ...(max !== undefined && { max }) });
      return x('pubsub', { xmlns: NS_PUBSUB }, items);
    },
    subscriptions: async (engine, request, from) => {
      const out = x('subscriptions', { node: request.node });
      for (const { name, record } of await nodesIn(engine, request.node)) {
        for (const sub of record.subscriptions) if (tryParseJid(sub.jid)?.bareString === from.bareString) out.append(engine.subscriptionElement(name, sub));
      }
      return x('pubsub', { xmlns: NS_PUBSUB }, out);
    },
    affiliations: async (engine, request, from) => {
      const out = x('affiliations', { node: request.node });
      for (const { name, record } of await nodesIn(engine, request.node)) {
        const affiliation = engine.affiliation(record, from);
        if (affiliation !== 'none') out.append(x('affiliation', { node: name, affiliation }));
      }
      return x('pubsub', { xmlns: NS_PUBSUB }, out);
    },
    options: async (engine, request, from) => {
      const node = requireNode(request);
      const jid = subscriberJid(request);
      if (jid.bareString !== from.bareString) throw stanzaError.forbidden('Not your subscription');
      const subscription = engine.subscriptionOf(await engine.node(node), jid);
      return x('pubsub', { xmlns: NS_PUBSUB }, x('options', { node, jid: jid.toString() }, buildForm(optionsForm(subscription.deliver))));
    },
    // §6.4: the default subscription options.
    default: async () => x('pubsub', { xmlns: NS_PUBSUB }, x('default', null, buildForm(optionsForm(true)))),
  },
};

const ownerVerbs: Record<'get' | 'set', Record<string, Handler>> = {
  get: {
    configure: (engine, request, from) => owner.configurationOf(engine, from, requireNode(request)),
    default: async (engine) => owner.defaultConfiguration(engine),
    subscriptions: (engine, request, from) => owner.subscriptionsOfNode(engine, from, requireNode(request)),
    affiliations: (engine, request, from) => owner.affiliationsOfNode(engine, from, requireNode(request)),
  },
  set: {
    configure: async (engine, request, from) => {
      await owner.configure(engine, from, requireNode(request), formIn(request.element, NS_PUBSUB_NODE_CONFIG));
      return undefined;
    },
    delete: async (engine, request, from) => {
      await owner.deleteNode(engine, from, requireNode(request), request.element.getChild('redirect')?.attrs.uri);
      return undefined;
    },
    purge: async (engine, request, from) => {
      await owner.purgeNode(engine, from, requireNode(request));
      return undefined;
    },
    subscriptions: async (engine, request, from) => {
      await owner.modifySubscriptions(engine, from, requireNode(request), request.element.getChildren('subscription'));
      return undefined;
    },
    affiliations: async (engine, request, from) => {
      await owner.modifyAffiliations(engine, from, requireNode(request), request.element.getChildren('affiliation'));
      return undefined;
    },
  },
};

/** Runs one pubsub IQ payload; returns the result payload (undefined: an empty result). */
export function handlePubsubIq(engine: PubsubEngine, type: 'get' | 'set', payload: XmlElement, from: Jid): Promise<XmlElement | undefined> {
  const request = readRequest(payload);
  const handler = (request.owner ? ownerVerbs : entity)[type][request.verb];
  if (!handler) throw unsupported(request.verb);
  return handler(engine, request, from);
}

/**
 * §7.1.5: publish-options are preconditions. One the service cannot take at all (an impossible
 * value) cannot be met either, so it fails the same way.
 */
function preconditions(form: DataForm | undefined, maxItems: number): Partial<NodeConfig> | undefined {
  if (!form) return undefined;
  try {
    return parseConfig(form, maxItems);
  } catch (err) {
    if (err instanceof StanzaError && err.condition === 'not-acceptable') throw preconditionNotMet(err.text ?? 'value');
    throw err;
  }
}

/** §6.1.3.x: the 'jid' of subscribe, unsubscribe and options, required and valid. */
function subscriberJid(request: PubsubRequest): Jid {
  const value = request.element.attrs.jid;
  const jid = value === undefined ? undefined : tryParseJid(value);
  if (!jid) throw stanzaError.badRequest('A valid jid is needed', { app: pubsubCondition(value === undefined ? 'jid-required' : 'invalid-jid') });
  return jid;
}

async function nodesIn(engine: PubsubEngine, node: string | undefined) {
  if (node === undefined) return engine.host.store.listNodes();
  const record = await engine.host.store.node(node);
  return record ? [{ name: node, record }] : [];
}

function optionsForm(deliver: boolean): DataForm {
  return {
    type: 'form',
    fields: [field('FORM_TYPE', 'hidden', { values: [NS_PUBSUB_SUBSCRIBE_OPTIONS] }), field('pubsub#deliver', 'boolean', { label: 'Receive notifications', values: [deliver ? '1' : '0'] })],
  };
}
