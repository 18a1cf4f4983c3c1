import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type XmppClient } from '../../bin/testing.js';
import { befriend, online } from './presence-helpers.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const NS = 'urn:xmpp:blocking';
const BLOCKED = `${stanzaErrorPattern('modify', 'not-acceptable', `<blocked xmlns='urn:xmpp:blocking:errors'/>`)}`;

const block = (...jids: string[]) => `<iq type='set'><block xmlns='${NS}'>${jids.map((jid) => `<item jid='${jid}'/>`).join('')}</block></iq>`;
const unblock = (...jids: string[]) => `<iq type='set'><unblock xmlns='${NS}'>${jids.map((jid) => `<item jid='${jid}'/>`).join('')}</unblock></iq>`;

async function blocklist(client: XmppClient): Promise<string[]> {
  const answer = await client.iq(`<iq type='get'><blocklist xmlns='${NS}'/></iq>`);
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer.getChild('blocklist', NS)!.getChildren('item').map((item) => item.attrs.jid!);
}

async function ok(client: XmppClient, request: string): Promise<void> {
  const answer = await client.iq(request);
  assert.equal(answer.attrs.type, 'result', answer.toString());
}

describe('blocking: the list', () => {
  test('blocklist never set → an empty <blocklist/>', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='get' id='b1'><blocklist xmlns='${NS}'/></iq>`, `<iq type='result' id='b1' to='{any}'><blocklist xmlns='${NS}'/></iq>`, { strict: true });
  });

  test('block → result, pushed to resources that asked for the list only, listed, kept across a restart', async (t) => {
    const server = await startServer(t);
    const r1 = await server.login('juliet', { resource: 'r1' });
    const r2 = await server.login('juliet', { resource: 'r2' });
    assert.deepEqual(await blocklist(r1), []);
    await ok(r2, block('Iago@localhost', 'evil.example'));
    await r1.expect(`<iq type='set' to='juliet@localhost/r1'><block xmlns='${NS}'><item jid='iago@localhost'/><item jid='evil.example'/></block></iq>`);
    await r2.expectNothing(100); // never asked for the list
    assert.deepEqual(await blocklist(r2), ['evil.example', 'iago@localhost']);
    await server.restart();
    const again = await server.login('juliet', { resource: 'r1' });
    assert.deepEqual(await blocklist(again), ['evil.example', 'iago@localhost']);
  });

  test('block without items → bad-request; an item that is no JID → jid-malformed; nothing changes', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='set' id='e1'><block xmlns='${NS}'/></iq>`, `<iq type='error' id='e1'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    await iqExpect(juliet, `<iq type='set' id='e2'><block xmlns='${NS}'><item jid='ok@localhost'/><item jid='bad@@localhost'/></block></iq>`, `<iq type='error' id='e2'>${stanzaErrorPattern('modify', 'jid-malformed')}</iq>`);
    assert.deepEqual(await blocklist(juliet), []);
  });

  test('blocklist beyond max_items → resource-constraint', async (t) => {
    const server = await startServer(t, { modules: { blocking: { max_items: 2 } } });
    const juliet = await server.login('juliet');
    await ok(juliet, block('a@localhost', 'b@localhost'));
    await iqExpect(juliet, `<iq type='set' id='e3'><block xmlns='${NS}'><item jid='c@localhost'/></block></iq>`, `<iq type='error' id='e3'>${stanzaErrorPattern('wait', 'resource-constraint')}</iq>`);
  });

  test('unblock one, then unblock all → pushed as sent; the list empties', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'r1' });
    await blocklist(juliet);
    await ok(juliet, block('a@localhost', 'b@localhost', 'c@localhost'));
    await juliet.waitFor(`<iq type='set'><block xmlns='${NS}'/></iq>`);
    await ok(juliet, unblock('b@localhost'));
    await juliet.waitFor(`<iq type='set'><unblock xmlns='${NS}'><item jid='b@localhost'/></unblock></iq>`);
    assert.deepEqual(await blocklist(juliet), ['a@localhost', 'c@localhost']);
    await ok(juliet, unblock());
    await juliet.waitFor(`<iq type='set'><unblock xmlns='${NS}'/></iq>`, { strict: false });
    assert.deepEqual(await blocklist(juliet), []);
  });

  test("blocklist of another account → forbidden", async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const iago = await server.login('iago');
    await iqExpect(iago, `<iq type='get' to='juliet@localhost' id='e4'><blocklist xmlns='${NS}'/></iq>`, `<iq type='error' id='e4'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
  });
});

describe('blocking: enforcement', () => {
  test('from a blocked JID: message and IQ → service-unavailable, presence dropped silently; nothing reaches the user', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const iago = await server.login('iago', { resource: 'r1' });
    // Before the block, directed presence gets through.
    iago.send(`<presence to='juliet@localhost/balcony'/>`);
    await juliet.expect(`<presence from='iago@localhost/r1'/>`);
    await ok(juliet, block('iago@localhost'));
    iago.send(`<message to='juliet@localhost/balcony' type='chat' id='m1'><body>hi</body></message>`);
    await iago.expect(`<message type='error' id='m1' from='juliet@localhost/balcony'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`);
    await iqExpect(iago, `<iq type='get' to='juliet@localhost/balcony' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`, `<iq type='error' id='q1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    await iqExpect(iago, `<iq type='get' to='juliet@localhost' id='q2'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='error' id='q2'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    iago.send(`<presence to='juliet@localhost/balcony'/>`);
    iago.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await iago.expectNothing(150);
    await juliet.expectNothing(100);
  });

  test('from a blocked JID to the account while offline → service-unavailable, not stored', async (t) => {
    const server = await startServer(t);
    const first = await server.login('juliet', { resource: 'r1' });
    await ok(first, block('iago@localhost'));
    await first.close();
    const iago = await server.login('iago', { resource: 'r1' });
    iago.send(`<message to='juliet@localhost' type='chat' id='m2'><body>hi</body></message>`);
    await iago.expect(`<message type='error' id='m2'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`);
    const juliet = await server.login('juliet', { resource: 'r2' });
    juliet.send('<presence/>');
    await juliet.waitFor(`<presence from='juliet@localhost/r2'/>`);
    await juliet.expectNothing(200);
  });

  test('to a blocked JID → not-acceptable with <blocked/>, not delivered', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const iago = await server.login('iago', { resource: 'r1' });
    await ok(juliet, block('iago@localhost'));
    juliet.send(`<message to='iago@localhost/r1' type='chat' id='o1'><body>go away</body></message>`);
    await juliet.expect(`<message type='error' id='o1'>${BLOCKED}</message>`);
    await iqExpect(juliet, `<iq type='get' to='iago@localhost/r1' id='o2'><ping xmlns='urn:xmpp:ping'/></iq>`, `<iq type='error' id='o2'>${BLOCKED}</iq>`);
    juliet.send(`<presence to='iago@localhost' type='subscribe' id='o3'/>`);
    await juliet.expect(`<presence type='error' id='o3'>${BLOCKED}</presence>`);
    await iago.expectNothing(150);
  });

  test('JID matching: a full JID blocks that resource only; a domain blocks its users but never the own account', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const juliet2 = await server.login('juliet', { resource: 'tomb' });
    const iago1 = await server.login('iago', { resource: 'r1' });
    const iago2 = await server.login('iago', { resource: 'r2' });
    await ok(juliet, block('iago@localhost/r1'));
    iago1.send(`<message to='juliet@localhost/balcony' id='j1'><body>1</body></message>`);
    await iago1.expect(`<message type='error' id='j1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`);
    iago2.send(`<message to='juliet@localhost/balcony' id='j2'><body>2</body></message>`);
    await juliet.expect(`<message from='iago@localhost/r2' id='j2'><body>2</body></message>`);
    await ok(juliet, block('localhost'));
    iago2.send(`<message to='juliet@localhost/balcony' id='j3'><body>3</body></message>`);
    await iago2.expect(`<message type='error' id='j3'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`);
    // XEP-0191 §5: "MUST NOT block communications from one of a user's resources to another".
    juliet2.send(`<message to='juliet@localhost/balcony' id='j4'><body>4</body></message>`);
    await juliet.expect(`<message from='juliet@localhost/tomb' id='j4'><body>4</body></message>`);
  });

  test('block a contact with a subscription → it gets unavailable presence and no more updates; unblock → current presence again, both ways', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await online(server, 'romeo', 'r1');
    const juliet = await online(server, 'juliet', 'balcony');
    await romeo.waitFor(`<presence from='juliet@localhost/balcony'/>`);
    await juliet.waitFor(`<presence from='romeo@localhost/r1'/>`);
    await ok(juliet, block('romeo@localhost'));
    await romeo.waitFor(`<presence type='unavailable' from='juliet@localhost/balcony'/>`);
    juliet.send(`<presence><status>away</status></presence>`);
    await juliet.waitFor(`<presence from='juliet@localhost/balcony'><status>away</status></presence>`);
    await romeo.expectNothing(150); // juliet's broadcast does not reach romeo
    romeo.send(`<presence><status>pining</status></presence>`);
    await romeo.waitFor(`<presence from='romeo@localhost/r1'><status>pining</status></presence>`);
    await juliet.expectNothing(150); // nor romeo's juliet
    await ok(juliet, unblock('romeo@localhost'));
    await romeo.waitFor(`<presence from='juliet@localhost/balcony'><status>away</status></presence>`);
    await juliet.waitFor(`<presence from='romeo@localhost/r1'><status>pining</status></presence>`); // the probe's answer
  });
});
