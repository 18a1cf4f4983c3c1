// XEP-0060 Publish-Subscribe (1.26.0) on the wire, shared by the pubsub service (pubsub.<domain>)
// and PEP (XEP-0163, every account's bare JID): namespaces, the disco features the engine backs,
// reading requests into typed values and building event notifications. Errors are the ones the
// XEP lists per use case, with their pubsub#errors application conditions.
import { randomId, x, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { formType, parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import { stanzaError, type StanzaError } from '../../server/errors.js';
import { NS_PUBSUB, NS_PUBSUB_PUBLISH_OPTIONS, pubsubCondition } from './publish.js';

export { NS_PUBSUB, NS_PUBSUB_ERRORS, NS_PUBSUB_PUBLISH_OPTIONS, pubsubCondition } from './publish.js';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const NS_PUBSUB_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const NS_PUBSUB_META_DATA = 'http://jabber.org/protocol/pubsub#meta-data';
export const NS_PUBSUB_SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';

/** XEP-0060 §10 features both the service and PEP support (disco#info: `pubsub#<name>`). */
const ENGINE_FEATURES = [
  'access-open',
  'access-presence',
  'access-roster',
  'access-whitelist',
  'config-node',
  'config-node-max',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'item-ids',
  'last-published',
  'manage-subscriptions',
  'member-affiliation',
  'meta-data',
  'modify-affiliations',
  'outcast-affiliation',
  'persistent-items',
  'publish',
  'publish-options',
  'publisher-affiliation',
  'purge-nodes',
  'retract-items',
  'retrieve-affiliations',
  'retrieve-default',
  'retrieve-items',
  'retrieve-subscriptions',
  'subscribe',
  'subscription-options',
];

/** The disco features of a service; PEP adds what XEP-0163 §9 asks of it. */
export function pubsubFeatures(extra: string[] = []): string[] {
  return [NS_PUBSUB, ...[...ENGINE_FEATURES, ...extra].map((name) => `${NS_PUBSUB}#${name}`)];
}

/** One request of the `<pubsub/>` or `<pubsub xmlns='…#owner'/>` payload, by its first child. */
export interface PubsubRequest {
  owner: boolean;
  /** The verb: publish, retract, items, subscribe, configure, delete, ... */
  verb: string;
  element: XmlElement;
  /** The node named on the verb's element (undefined when absent or empty). */
  node: string | undefined;
  /** The whole payload, for siblings (publish-options, configure after create, options after subscribe). */
  payload: XmlElement;
}

export function readRequest(payload: XmlElement): PubsubRequest {
  const owner = payload.attrs.xmlns === `${NS_PUBSUB}#owner`;
  const element = payload.elements().find((el) => el.attrs.xmlns === undefined || el.attrs.xmlns === payload.attrs.xmlns);
  if (!element) throw stanzaError.badRequest('Empty pubsub request');
  const node = element.attrs.node;
  return { owner, verb: element.name, element, node: node === '' ? undefined : node, payload };
}

/** XEP-0060: most use cases need a node; without one the answer is nodeid-required. */
export function requireNode(request: PubsubRequest): string {
  if (request.node === undefined) throw stanzaError.badRequest('No node given', { app: pubsubCondition('nodeid-required') });
  return request.node;
}

/** A child of the pubsub payload in its own namespace (publish-options, configure, options). */
export function sibling(payload: XmlElement, name: string): XmlElement | undefined {
  const ns = payload.attrs.xmlns;
  return payload.elements().find((el) => el.name === name && (el.attrs.xmlns === undefined || el.attrs.xmlns === ns));
}

/** The data form inside an element, when it has one of the expected FORM_TYPE (or none). */
export function formIn(parent: XmlElement | undefined, type: string): DataForm | undefined {
  const formEl = parent?.getChild('x', NS.DATA_FORMS);
  if (!formEl) return undefined;
  const form = parseForm(formEl);
  const given = formType(form);
  if (given !== undefined && given !== type) throw stanzaError.badRequest(`Expected a ${type} form`, { app: pubsubCondition('invalid-options') });
  return form;
}

export function publishOptionsForm(payload: XmlElement): DataForm | undefined {
  return formIn(sibling(payload, 'publish-options'), NS_PUBSUB_PUBLISH_OPTIONS);
}

/** XEP-0060 §6.5.7: max_items on an items request, a positive integer. */
export function maxItemsAttr(element: XmlElement): number | undefined {
  const value = element.attrs.max_items;
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw stanzaError.badRequest('max_items is a positive integer');
  return Number(value);
}

/** XEP-0060 §12.4: a notification is a message from the service carrying an <event/>. */
export function eventMessage(from: string, to: string, type: string, ...children: XmlElement[]): XmlElement {
  return x('message', { from, to, type, id: randomId(9) }, x('event', { xmlns: NS_PUBSUB_EVENT }, ...children));
}

/** XEP-0082 DateTime for a <delay/> on the last published item (XEP-0163 §4.3.4 example). */
export function delayElement(from: string, stamp: number): XmlElement {
  return x('delay', { xmlns: NS.DELAY, from, stamp: new Date(stamp).toISOString().replace(/\.\d{3}Z$/, 'Z') });
}

/** The errors XEP-0060 gives by access model when an entity may not see a node (§6.1.3, §6.5.9). */
export const accessErrors = {
  /** §6.5.9.3 / §6.1.3.2: presence access model, no presence subscription. */
  presenceRequired: (): StanzaError =>
    stanzaError.notAuthorized('Only contacts with a presence subscription may see this node', { app: pubsubCondition('presence-subscription-required') }),
  /** §6.5.9.4 / §6.1.3.3: roster access model, not in an allowed group. */
  notInRosterGroup: (): StanzaError => stanzaError.notAuthorized('Not in an allowed roster group', { app: pubsubCondition('not-in-roster-group') }),
  /** §6.5.9.5 / §6.1.3.4: whitelist access model, not on the whitelist. */
  closedNode: (): StanzaError => stanzaError.notAllowed('This node is open to its whitelist only', { app: pubsubCondition('closed-node') }),
  /** §6.5.9.8 / §6.1.3.6: an outcast. */
  blocked: (): StanzaError => stanzaError.forbidden('Blocked from this node'),
};

/** §7.1.5: publish-options that the node's configuration does not satisfy. */
export function preconditionNotMet(field: string): StanzaError {
  return stanzaError.conflict(`Node configuration does not match publish-options (${field})`, { app: pubsubCondition('precondition-not-met') });
}

export function noSuchNode(): StanzaError {
  return stanzaError.itemNotFound('No such node');
}

export function unsupported(feature: string): StanzaError {
  return stanzaError.featureNotImplemented(`${feature} is not supported`, { app: pubsubCondition('unsupported', { feature }) });
}
