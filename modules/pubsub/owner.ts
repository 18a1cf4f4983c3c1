// XEP-0060 §8 owner use cases on a PubsubEngine: create (and configure), configure, default
// options, delete, purge, and managing subscriptions and affiliations.
import { randomBytes } from 'node:crypto';
import { tryParseJid, x, type Jid, type XmlElement } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import type { DataForm } from '../../server/protocol/xep0004.js';
import { buildForm, configForm, itemLimit, parseConfig, type NodeConfig } from './config.js';
import type { PubsubEngine } from './engine.js';
import { NS_PUBSUB_OWNER, pubsubCondition } from './protocol.js';
import type { Affiliation } from './store.js';

const AFFILIATIONS = new Set<string>(['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast']);

/** §8.1 create (with §8.1.3 configure); returns the node's name (made up for an instant node). */
export async function createNode(engine: PubsubEngine, from: Jid, requested: string | undefined, form: DataForm | undefined): Promise<string> {
  const { host } = engine;
  if (!host.mayCreate(from)) throw stanzaError.forbidden('Not allowed to create nodes here');
  // §8.1.2 instant nodes; XEP-0163 §5: PEP nodes are named after their namespace, never made up.
  if (requested === undefined && host.pepOwner !== undefined) throw stanzaError.notAcceptable('Name the node', { app: pubsubCondition('nodeid-required') });
  const name = requested ?? randomBytes(9).toString('hex');
  // §8.1.3.x: "If the requested NodeID already exists, the service MUST return a <conflict/> error."
  if (await host.store.node(name)) throw stanzaError.conflict('The node exists');
  const config = form ? parseConfig(form, host.maxItems) : {};
  await host.store.saveNode(name, engine.newRecord(from, { ...host.nodeDefaults?.(name), ...config }));
  engine.events.push({ type: 'created', node: name });
  return name;
}

/** §8.2.1: the configuration form of a node. */
export async function configurationOf(engine: PubsubEngine, from: Jid, name: string): Promise<XmlElement> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  return ownerPayload(x('configure', { node: name }, buildForm(configForm(name, record.config, engine.host.maxItems))));
}

/** §8.2.4: a submitted form changes the configuration; a cancel leaves it as it is. */
export async function configure(engine: PubsubEngine, from: Jid, name: string, form: DataForm | undefined): Promise<void> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  if (!form) throw stanzaError.badRequest('A configuration form is needed', { app: pubsubCondition('invalid-options') });
  if (form.type === 'cancel') return;
  const changes = parseConfig(form, engine.host.maxItems);
  record.config = { ...record.config, ...changes };
  // XEP-0163 §8.1 (and XEP-0060 §4.5): subscribers who lost access lose their subscription.
  const kept = [];
  for (const sub of record.subscriptions) {
    const jid = tryParseJid(sub.jid);
    if (jid && !(await engine.accessError(record, jid))) kept.push(sub);
  }
  record.subscriptions = kept;
  await engine.host.store.saveNode(name, record);
  // A smaller max_items takes effect now, not at the next publish: items beyond it are gone.
  await engine.host.store.trim(name, record.config, itemLimit(record.config, engine.host.maxItems));
  engine.events.push({ type: 'configured', node: name });
  // §8.2.5: "If the node is configured to notify subscribers of configuration changes ..."
  if (record.config.notify_config) {
    const formResult = record.config.deliver_payloads ? buildForm({ ...configForm(undefined, record.config, engine.host.maxItems), type: 'result' }) : undefined;
    await engine.notify(name, record, x('configuration', { node: name }, formResult));
  }
}

/** §8.3: the default configuration form. */
export function defaultConfiguration(engine: PubsubEngine): XmlElement {
  return ownerPayload(x('default', null, buildForm(configForm(undefined, engine.host.defaults, engine.host.maxItems))));
}

/** §8.4 delete, with the §8.4.2 notification (and redirect). */
export async function deleteNode(engine: PubsubEngine, from: Jid, name: string, redirect: string | undefined): Promise<void> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  if (record.config.notify_delete) await engine.notify(name, record, x('delete', { node: name }, redirect ? x('redirect', { uri: redirect }) : undefined));
  await engine.host.store.deleteNode(name);
  engine.events.push({ type: 'deleted', node: name });
}

/** §8.5 purge: every item goes; subscribers get one <purge/> instead of a retract each (§8.5.2). */
export async function purgeNode(engine: PubsubEngine, from: Jid, name: string): Promise<void> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  await engine.host.store.clearItems(name);
  engine.events.push({ type: 'purged', node: name });
  if (record.config.notify_retract) await engine.notify(name, record, x('purge', { node: name }));
}

/** §8.8.1: the subscriptions to a node. */
export async function subscriptionsOfNode(engine: PubsubEngine, from: Jid, name: string): Promise<XmlElement> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  const subs = record.subscriptions.map((sub) => x('subscription', { jid: sub.jid, subscription: 'subscribed', subid: sub.subid }));
  return ownerPayload(x('subscriptions', { node: name }, ...subs));
}

/** §8.8.2: an owner subscribes or unsubscribes entities ('subscribed' or 'none'). */
export async function modifySubscriptions(engine: PubsubEngine, from: Jid, name: string, changes: XmlElement[]): Promise<void> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  for (const change of changes) {
    const jid = tryParseJid(change.attrs.jid ?? '');
    const state = change.attrs.subscription;
    if (!jid || (state !== 'subscribed' && state !== 'none')) throw stanzaError.badRequest('Each subscription needs a jid and subscribed or none');
    record.subscriptions = record.subscriptions.filter((sub) => sub.jid !== jid.toString());
    if (state === 'subscribed') record.subscriptions.push({ jid: jid.toString(), subid: randomBytes(8).toString('hex'), deliver: true });
  }
  await engine.host.store.saveNode(name, record);
}

/** §8.9.1: the affiliations of a node. */
export async function affiliationsOfNode(engine: PubsubEngine, from: Jid, name: string): Promise<XmlElement> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  const entries: [string, Affiliation][] = Object.entries(record.affiliations);
  if (engine.host.pepOwner !== undefined) entries.unshift([engine.host.pepOwner, 'owner']);
  return ownerPayload(x('affiliations', { node: name }, ...entries.map(([jid, affiliation]) => x('affiliation', { jid, affiliation }))));
}

/** §8.9.2: an owner changes affiliations; 'none' removes one, 'outcast' also ends subscriptions. */
export async function modifyAffiliations(engine: PubsubEngine, from: Jid, name: string, changes: XmlElement[]): Promise<void> {
  const record = await engine.node(name);
  engine.requireOwner(record, from);
  const next = { ...record.affiliations };
  for (const change of changes) {
    const jid = tryParseJid(change.attrs.jid ?? '')?.bare;
    const affiliation = change.attrs.affiliation ?? '';
    if (!jid || !AFFILIATIONS.has(affiliation)) throw stanzaError.badRequest('Each affiliation needs a jid and a known affiliation');
    // XEP-0163 §3: the account is the one owner of its PEP nodes, and stays so.
    if (jid.toString() === engine.host.pepOwner) throw stanzaError.notAcceptable('The account owns its nodes');
    if (affiliation === 'none') delete next[jid.toString()];
    else next[jid.toString()] = affiliation as Affiliation;
    if (affiliation === 'outcast') record.subscriptions = record.subscriptions.filter((sub) => tryParseJid(sub.jid)?.bareString !== jid.toString());
  }
  // §8.9.2.4 (and §8.9.3): a node must keep an owner.
  if (engine.host.pepOwner === undefined && !Object.values(next).includes('owner')) throw stanzaError.notAcceptable('A node needs an owner');
  record.affiliations = next;
  await engine.host.store.saveNode(name, record);
}

function ownerPayload(child: XmlElement): XmlElement {
  return x('pubsub', { xmlns: NS_PUBSUB_OWNER }, child);
}

export type { NodeConfig };
