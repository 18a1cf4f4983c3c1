// XEP-0060 §7.1 publish requests, read into a typed value: which node, the one item, and the
// publish-options form (XEP-0060 §7.1.5, where XEP-0357 §5 puts the node's secret). Errors are the
// ones §7.1.3 lists; what a node kind accepts as payload is decided by the caller.
import { randomId, x, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { formType, formValue, parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const NS_PUBSUB_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
/** Disco features of what this service does (XEP-0060 §10: pubsub#<feature>). */
export const PUBSUB_FEATURES = [NS_PUBSUB, `${NS_PUBSUB}#publish`, `${NS_PUBSUB}#publish-options`];

const MAX_ITEM_ID_LENGTH = 256;

export interface PublishRequest {
  node: string;
  /** The item's id, from the publisher or made up here (XEP-0060 §7.1.2: the service generates one). */
  itemId: string;
  item: XmlElement;
  /** The item's payload: its one child element (XEP-0060 §7.1.3.5 allows no more). */
  payload: XmlElement | undefined;
  /** The publish-options form, when one came (FORM_TYPE pubsub#publish-options). */
  options: DataForm | undefined;
}

/** A pubsub#errors application condition: `<item-required xmlns='…pubsub#errors'/>`. */
export function pubsubCondition(name: string, attrs: Record<string, string> = {}): XmlElement {
  return x(name, { xmlns: NS_PUBSUB_ERRORS, ...attrs });
}

/** Reads `<pubsub><publish node><item/></publish><publish-options/></pubsub>`. */
export function parsePublish(pubsub: XmlElement): PublishRequest {
  const publish = ownChild(pubsub, 'publish');
  if (!publish) {
    // XEP-0060 §7.1.3.2-style answer for every other pubsub request: this service only takes publishes.
    const asked = pubsub.firstElement()?.name ?? 'unknown';
    throw stanzaError.featureNotImplemented(`${asked} is not supported by this service`, {
      app: pubsubCondition('unsupported', { feature: asked }),
    });
  }
  const node = publish.attrs.node;
  if (!node) throw stanzaError.badRequest('publish without a node', { app: pubsubCondition('nodeid-required') });
  const items = publish.elements().filter((el) => el.name === 'item');
  // XEP-0060 §7.1.3.6: a persistent node needs an item; §7.1.3.5: one item, one payload.
  if (items.length === 0) throw stanzaError.badRequest('publish without an item', { app: pubsubCondition('item-required') });
  if (items.length > 1) throw stanzaError.badRequest('one item per publish', { app: pubsubCondition('invalid-payload') });
  const item = items[0]!;
  const payloads = item.elements();
  if (payloads.length > 1) throw stanzaError.badRequest('one payload per item', { app: pubsubCondition('invalid-payload') });
  const givenId = item.attrs.id;
  if (givenId !== undefined && (givenId === '' || givenId.length > MAX_ITEM_ID_LENGTH)) throw stanzaError.badRequest('bad item id');
  return { node, itemId: givenId ?? randomId(12), item, payload: payloads[0], options: publishOptions(pubsub) };
}

function publishOptions(pubsub: XmlElement): DataForm | undefined {
  const formEl = ownChild(pubsub, 'publish-options')?.getChild('x', NS.DATA_FORMS);
  if (!formEl) return undefined;
  const form = parseForm(formEl);
  // XEP-0060 §16.4: FORM_TYPE pubsub#publish-options; a form of another type is not ours to read.
  const type = formType(form);
  return type === undefined || type === NS_PUBSUB_PUBLISH_OPTIONS ? form : undefined;
}

export function optionValue(options: DataForm | undefined, name: string): string | undefined {
  return options ? formValue(options, name) : undefined;
}

/** XEP-0060 §7.1.2: the result names the node and the item id (useful when the service chose it). */
export function publishResult(node: string, itemId: string): XmlElement {
  return x('pubsub', { xmlns: NS_PUBSUB }, x('publish', { node }, x('item', { id: itemId })));
}

/** A child in the parent's own namespace (declared or inherited). */
function ownChild(parent: XmlElement, name: string): XmlElement | undefined {
  const ns = parent.attrs.xmlns;
  return parent.elements().find((el) => el.name === name && (el.attrs.xmlns === undefined || el.attrs.xmlns === ns));
}
