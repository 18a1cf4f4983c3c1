// Helpers shared by the roster, presence and subscription wire tests.
import assert from 'node:assert/strict';
import { matchElement, type XmppClient } from '../../bin/testing.js';
import type { TestServer } from '../../bin/testing.js';
import { parseXml } from '../../server/xml/parser.js';
import type { XmlElement } from '../../server/xml/element.js';

export const ROSTER_GET = `<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`;

/** Asks for the roster (making the resource "interested"); returns the result. */
export async function getRoster(client: XmppClient, ver?: string): Promise<XmlElement> {
  const answer = await client.iq(ver === undefined ? ROSTER_GET : `<iq type='get'><query xmlns='jabber:iq:roster' ver='${ver}'/></iq>`);
  assert.equal(answer.attrs.type, 'result', `roster get failed: ${answer.toString()}`);
  return answer;
}

/** The roster items of a roster result, by JID. */
export function itemsOf(result: XmlElement): Map<string, XmlElement> {
  const query = result.getChild('query', 'jabber:iq:roster');
  return new Map((query?.getChildren('item') ?? []).map((item) => [item.attrs.jid!, item]));
}

/** Logs in, fetches the roster and sends initial presence; returns once its own presence came back. */
export async function online(server: TestServer, username: string, resource: string, presence = '<presence/>'): Promise<XmppClient> {
  const client = await server.login(username, { resource });
  await getRoster(client);
  client.send(presence);
  await client.expect(`<presence from='${username}@localhost/${resource}'/>`);
  return client;
}

/** The roster push pattern (strict: exactly these attributes and this one item). */
export function push(username: string, resource: string, item: string): string {
  return `<iq type='set' id='{any}' from='${username}@localhost' to='${username}@localhost/${resource}'><query xmlns='jabber:iq:roster' ver='{any}'>${item}</query></iq>`;
}

export async function expectPush(client: XmppClient, item: string): Promise<XmlElement> {
  const [username, rest] = client.jid.split('@') as [string, string];
  return client.expect(push(username, rest.split('/')[1]!, item), { strict: true });
}

/** The next `patterns.length` stanzas must match the patterns, in any order. */
export async function expectUnordered(client: XmppClient, patterns: string[], options: { strict?: boolean } = {}): Promise<XmlElement[]> {
  const got: XmlElement[] = [];
  for (let i = 0; i < patterns.length; i++) got.push(await client.next());
  const left = patterns.map((p) => parseXml(p));
  for (const stanza of got) {
    const index = left.findIndex((p) => matchElement(p, stanza, options.strict ?? false, '') === undefined);
    assert.ok(index >= 0, `unexpected stanza ${stanza.toString()}\nstill expected:\n${left.map((p) => '  ' + p.toString()).join('\n')}`);
    left.splice(index, 1);
  }
  return got;
}

/** Makes a and b subscribed to each other ('both'), with short-lived sessions that never go available. */
export async function befriend(server: TestServer, a: string, b: string): Promise<void> {
  const ca = await server.login(a, { resource: 'setup' });
  const cb = await server.login(b, { resource: 'setup' });
  ca.send(`<presence to='${b}@localhost' type='subscribe'/>`);
  cb.send(`<presence to='${a}@localhost' type='subscribe'/>`);
  // Whichever comes first, a request or its answer (then a pre-approval), both end in 'both'.
  ca.send(`<presence to='${b}@localhost' type='subscribed'/>`);
  cb.send(`<presence to='${a}@localhost' type='subscribed'/>`);
  await waitForSubscription(ca, `${b}@localhost`, 'both');
  await waitForSubscription(cb, `${a}@localhost`, 'both');
  await ca.close();
  await cb.close();
}

/** Polls the roster until the contact has the subscription state. */
export async function waitForSubscription(client: XmppClient, contact: string, subscription: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const item = itemsOf(await client.iq(ROSTER_GET)).get(contact);
    if ((item?.attrs.subscription ?? 'none') === subscription && item?.attrs.ask === undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`${client.jid}: ${contact} never reached subscription '${subscription}'`);
}
