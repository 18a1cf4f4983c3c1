// Helpers for the PEP, pubsub, bookmarks and avatars wire tests: roster subscriptions set up
// directly, clients that announce entity capabilities (XEP-0115) and answer the server's
// disco#info query for them, and pubsub request builders.
import assert from 'node:assert/strict';
import type { TestServer, XmppClient } from '../../bin/testing.js';
import { capsVerification } from '../../server/protocol/xep0115.js';
import { parseXml } from '../../server/xml/parser.js';
import { x, type XmlElement } from '../../server/xml/element.js';

export const PUBSUB = 'http://jabber.org/protocol/pubsub';
export const PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const CAPS_NODE = 'https://herald.test/client';

/** Puts each in the other's roster with subscription 'both' (and groups for `a`'s item, if given). */
export async function mutual(server: TestServer, a: string, b: string, groupsOfB: string[] = []): Promise<void> {
  await server.createUser(a);
  await server.createUser(b);
  const roster = server.server.service('roster')!;
  await roster.setItem(a, { jid: `${b}@localhost`, subscription: 'both', groups: groupsOfB });
  await roster.setItem(b, { jid: `${a}@localhost`, subscription: 'both', groups: [] });
}

/** A disco#info answer for a client with these features, and its XEP-0115 ver. */
export function clientInfo(features: string[]): { query: XmlElement; ver: string } {
  const query = x('query', { xmlns: DISCO_INFO }, x('identity', { category: 'client', type: 'pc', name: 'test' }), ...features.map((v) => x('feature', { var: v })));
  return { query, ver: capsVerification(query) };
}

/**
 * Sends available presence with caps for `features` and answers the server's disco#info query
 * (unless `queried` is false: the server knows this ver already), then makes sure the server is
 * done with it. Features get a per-client marker so every client has its own ver.
 */
export async function announce(
  client: XmppClient,
  features: string[],
  options: { queried?: boolean; presence?: string; shared?: boolean; ver?: string } = {},
): Promise<void> {
  const info = clientInfo(options.shared ? features : [...features, `urn:test:${client.jid}`]);
  const { query } = info;
  const ver = options.ver ?? info.ver;
  client.send(options.presence ?? `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='${CAPS_NODE}' ver='${ver}'/></presence>`);
  if (options.queried !== false) await answerDisco(client, query, ver);
  await sync(client);
}

/** Waits for the server's caps disco#info query and answers it with `query`. */
export async function answerDisco(client: XmppClient, query: XmlElement, ver: string): Promise<void> {
  const get = await client.waitFor(`<iq type='get'><query xmlns='${DISCO_INFO}' node='${CAPS_NODE}#${ver}'/></iq>`);
  client.send(x('iq', { type: 'result', id: get.attrs.id, to: get.attrs.from }, query.clone().withAttrs({ node: `${CAPS_NODE}#${ver}` })));
}

/** Logs in and announces caps with these features (so the account's PEP and contacts' see them). */
export async function onlineWithCaps(server: TestServer, username: string, resource: string, features: string[]): Promise<XmppClient> {
  const client = await server.login(username, { resource });
  await announce(client, features);
  return client;
}

/** A round trip, so what the server does for earlier stanzas of this client is done. */
export async function sync(client: XmppClient): Promise<void> {
  const answer = await client.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  assert.equal(answer.attrs.type, 'result');
}

/** The publish IQ; `options` become publish-options fields. */
export function publishIq(node: string, itemId: string | undefined, payload: string, options: Record<string, string> = {}, to?: string): string {
  const id = itemId === undefined ? '' : ` id='${itemId}'`;
  const toAttr = to === undefined ? '' : ` to='${to}'`;
  return `<iq type='set'${toAttr}><pubsub xmlns='${PUBSUB}'><publish node='${node}'><item${id}>${payload}</item></publish>${publishOptions(options)}</pubsub></iq>`;
}

export function publishOptions(options: Record<string, string>): string {
  const entries = Object.entries(options);
  if (entries.length === 0) return '';
  const fields = entries.map(([name, value]) => `<field var='pubsub#${name}'><value>${value}</value></field>`).join('');
  return `<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field>${fields}</x></publish-options>`;
}

/** A submitted node configuration form (pubsub#node_config) with these fields. */
export function configForm(fields: Record<string, string | string[]>): string {
  const out = Object.entries(fields)
    .map(([name, value]) => `<field var='pubsub#${name}'>${(Array.isArray(value) ? value : [value]).map((v) => `<value>${v}</value>`).join('')}</field>`)
    .join('');
  return `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field>${out}</x>`;
}

/** Publishes and asserts a result. */
export async function publish(client: XmppClient, node: string, itemId: string | undefined, payload: string, options: Record<string, string> = {}, to?: string): Promise<XmlElement> {
  const answer = await client.iq(publishIq(node, itemId, payload, options, to));
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer;
}

/** The pubsub error pattern: condition plus an optional pubsub#errors condition. */
export function pubsubError(type: string, condition: string, pubsubCondition?: string): string {
  const app = pubsubCondition ? `<${pubsubCondition} xmlns='${PUBSUB_ERRORS}'/>` : '';
  return `<iq type='error'><error type='${type}'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>${app}</error></iq>`;
}

export function itemsIq(node: string, to?: string, extra = ''): string {
  return `<iq type='get'${to ? ` to='${to}'` : ''}><pubsub xmlns='${PUBSUB}'><items node='${node}'${extra}/></pubsub></iq>`;
}

/** The item ids in an items result, in order. */
export function itemIds(answer: XmlElement): string[] {
  const items = answer.getChild('pubsub', PUBSUB)?.getChild('items');
  return (items?.getChildren('item') ?? []).map((item) => item.attrs.id ?? '');
}

/** Collects what arrives for `ms` and fails if any of it is a pubsub event notification. */
export async function expectNoEvent(client: XmppClient, ms = 250): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return;
    const stanza = await client.next(left).catch(() => undefined);
    if (!stanza) return;
    assert.ok(!(stanza.name === 'message' && stanza.getChild('event', PUBSUB_EVENT)), `unexpected notification: ${stanza.toString()}`);
  }
}

/** Waits for the next pubsub event notification (skipping presence and the like). */
export function nextEvent(client: XmppClient, pattern = `<message><event xmlns='${PUBSUB_EVENT}'/></message>`): Promise<XmlElement> {
  return client.waitFor(pattern);
}

export { parseXml };
