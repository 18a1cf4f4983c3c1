// PEP nodes in XEP-0227 (1.1 §2.7, as Prosody's mod_storage_xep0227 writes and reads them):
//   <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'> with <configure node> (a submitted
//     pubsub#node_config form), <affiliations node>, <subscriptions node>
//   <pubsub xmlns='http://jabber.org/protocol/pubsub'> with <items node><item id>payload</item>
// ↔ the pep module's store (modules/pubsub/pep.ts, modules/pubsub/store.ts): node records in the
// map 'nodes' (key = node name), items in the archive 'items' (with = node name). Node
// configuration goes through the pubsub module's own form codec, so both read it alike.
// When each item was published rides along as an XEP-0203 <delay/> after the item's payload
// (Herald's addition, for the <delay/> on a last published item; Prosody reads the payload, the
// item's first child, and ignores it). Items from a file without one count as published at import.
// (ejabberd's export has no PEP: "Not implemented: PEP nodes export/import".)

import { randomBytes } from 'node:crypto';
import { x, type XmlElement } from '../../server/xml/element.js';
import { tryParseJid } from '../../server/jid.js';
import { buildForm, parseBoolean, parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import { parseXml } from '../../server/xml/parser.js';
import { BASE_DEFAULTS, configForm, parseConfig, type NodeConfig } from '../../modules/pubsub/config.js';
import type { Affiliation, LeafNodeRecord, StoredItem } from '../../modules/pubsub/store.js';
import type { Notice } from './user.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
const NS_DATA = 'jabber:x:data';
const NS_DELAY = 'urn:xmpp:delay';

/** A node's item with when it was published (ms since the epoch), when known. */
export type PepItem = StoredItem & { stamp?: number };

/** XEP-0163 §8 "Recommended Defaults", as modules/pubsub/pep.ts applies them to new nodes. */
const PEP_DEFAULTS: NodeConfig = { ...BASE_DEFAULTS, access_model: 'presence', send_last_published_item: 'on_sub_and_presence' };
/** Accepts every max_items a file may carry; the pep module applies its own limit (max_items) when it trims. */
const ANY_MAX_ITEMS = 1_000_000_000;
const AFFILIATIONS = new Set<Affiliation>(['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast']);

export interface ImportedPepNode {
  name: string;
  record: LeafNodeRecord;
  /** Oldest first. */
  items: PepItem[];
}

interface Draft {
  config: Partial<NodeConfig>;
  affiliations: Record<string, Affiliation>;
  subscriptions: LeafNodeRecord['subscriptions'];
  /** By id, in the order published (a Map keeps insertion order). */
  items: Map<string, PepItem>;
}

/** The <pubsub/> elements of a user → the account's PEP nodes. `ownerBare` is the account. */
export function readPep(owner: XmlElement | undefined, published: XmlElement | undefined, ownerBare: string, notice: Notice, now = Date.now()): ImportedPepNode[] {
  const drafts = new Map<string, Draft>();
  const draft = (name: string) => {
    let found = drafts.get(name);
    if (!found) drafts.set(name, (found = { config: {}, affiliations: {}, subscriptions: [], items: new Map() }));
    return found;
  };
  for (const el of owner?.elements() ?? []) {
    const name = el.attrs.node;
    if (!name) {
      notice('pep', `PEP <${el.name}/> without a node`);
      continue;
    }
    if (el.name === 'configure') readConfigure(el, name, draft(name), notice);
    else if (el.name === 'affiliations') readAffiliations(el, ownerBare, draft(name));
    else if (el.name === 'subscriptions') readSubscriptions(el, draft(name));
    else notice('pep', `PEP <${el.name}/> is not configure, affiliations or subscriptions`);
  }
  for (const items of published?.getChildren('items') ?? []) {
    if (!items.attrs.node) continue;
    const target = draft(items.attrs.node);
    for (const item of items.getChildren('item')) {
      const id = item.attrs.id ?? randomBytes(8).toString('hex');
      // XEP-0060 §7.1.2: an item published again under the same id replaces the earlier one.
      target.items.delete(id);
      target.items.set(id, { id, payload: item.firstElement()?.toString() ?? '', publisher: item.attrs.publisher ?? '', ...publishedAt(item) });
    }
  }
  return [...drafts].map(([name, d]) => {
    const config = { ...PEP_DEFAULTS, ...d.config };
    // Items of a node that does not keep them are not stored (XEP-0060 §4.2); beyond max_items, the newest win.
    const limit = config.max_items === 'max' ? Infinity : config.max_items;
    const items = config.persist_items ? [...d.items.values()].slice(-limit) : [];
    return { name, record: { kind: 'leaf', config, affiliations: d.affiliations, subscriptions: d.subscriptions, createdAt: now }, items };
  });
}

/** The <delay/> Herald writes after an item's payload (never the payload itself). */
function publishedAt(item: XmlElement): { stamp?: number } {
  const delay = item.elements().slice(1).find((el) => el.name === 'delay' && el.attrs.xmlns === NS_DELAY);
  const stamp = Date.parse(delay?.attrs.stamp ?? '');
  return Number.isNaN(stamp) ? {} : { stamp };
}

/** Field by field, so one value Herald does not take (say, an access model it lacks) keeps only that default. */
function readConfigure(el: XmlElement, name: string, target: Draft, notice: Notice): void {
  const formEl = el.getChild('x', NS_DATA);
  if (!formEl) return;
  let form: DataForm;
  try {
    form = parseForm(formEl);
  } catch {
    return notice('pep', `PEP node ${name}: the configuration is not a data form`);
  }
  for (const field of form.fields) {
    try {
      Object.assign(target.config, parseConfig({ type: 'submit', fields: [field] }, ANY_MAX_ITEMS));
    } catch {
      notice('pep', `PEP node ${name}: ${field.var ?? 'a field'} = '${field.values.join(' ')}' is not supported; the default is kept`);
    }
  }
}

function readAffiliations(el: XmlElement, ownerBare: string, target: Draft): void {
  for (const affiliation of el.getChildren('affiliation')) {
    const jid = tryParseJid(affiliation.attrs.jid ?? '')?.bareString;
    const value = affiliation.attrs.affiliation as Affiliation;
    // The account owns its PEP service: its own 'owner' entry is implicit in Herald.
    if (jid && jid !== ownerBare && AFFILIATIONS.has(value) && value !== 'none') target.affiliations[jid] = value;
  }
}

function readSubscriptions(el: XmlElement, target: Draft): void {
  for (const subscription of el.getChildren('subscription')) {
    const jid = tryParseJid(subscription.attrs.jid ?? '');
    // Prosody writes its own exports with the attribute misspelt as 'subscribed'.
    const state = subscription.attrs.subscription ?? subscription.attrs.subscribed;
    if (!jid || state !== 'subscribed') continue;
    const options = subscription.getChild('options')?.getChild('x', NS_DATA);
    const deliver = options ? parseBoolean(parseForm(options).fields.find((f) => f.var === 'pubsub#deliver')?.values[0]) : undefined;
    target.subscriptions.push({ jid: jid.toString(), subid: subscription.attrs.subid ?? randomBytes(8).toString('hex'), deliver: deliver ?? true });
  }
}

/** An account's PEP nodes and items → the two <pubsub/> elements (none when it has no nodes). */
export function pepElements(ownerBare: string, nodes: { name: string; record: LeafNodeRecord; items: PepItem[] }[], skip: (what: string) => void): XmlElement[] {
  if (nodes.length === 0) return [];
  const owner = x('pubsub', { xmlns: NS_PUBSUB_OWNER });
  const published = x('pubsub', { xmlns: NS_PUBSUB });
  for (const { name, record, items } of nodes) {
    const form = configForm(name, record.config, ANY_MAX_ITEMS);
    const submitted: DataForm = { type: 'submit', fields: form.fields.map((f) => ({ var: f.var, ...(f.var === 'FORM_TYPE' && { type: 'hidden' as const }), values: f.values })) };
    owner.append(x('configure', { node: name }, buildForm(submitted)));
    const affiliations = { [ownerBare]: 'owner', ...record.affiliations };
    owner.append(x('affiliations', { node: name }, ...Object.entries(affiliations).map(([jid, affiliation]) => x('affiliation', { jid, affiliation }))));
    if (record.subscriptions.length > 0) {
      owner.append(x('subscriptions', { node: name }, ...record.subscriptions.map((s) => x('subscription', { jid: s.jid, subscription: 'subscribed', subid: s.subid },
        s.deliver ? undefined : x('options', null, buildForm({ type: 'submit', fields: [{ var: 'pubsub#deliver', values: ['0'] }] }))))));
    }
    if (items.length > 0) published.append(x('items', { node: name }, ...items.map((item) => pepItem(item, skip))));
  }
  return published.children.length > 0 ? [owner, published] : [owner];
}

function pepItem(item: PepItem, skip: (what: string) => void): XmlElement {
  const el = x('item', { id: item.id, publisher: item.publisher === '' ? undefined : item.publisher });
  if (item.payload === '') return el; // no payload: a <delay/> would be read as one
  try {
    el.append(parseXml(item.payload));
  } catch (err) {
    skip(`PEP item ${item.id} is not readable XML (${(err as Error).message})`);
    return el;
  }
  if (item.stamp !== undefined) el.append(x('delay', { xmlns: NS_DELAY, stamp: new Date(item.stamp).toISOString() }));
  return el;
}
