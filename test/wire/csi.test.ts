import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { befriend, online } from './presence-helpers.js';

const CSI = 'urn:xmpp:csi:0';
const INACTIVE = `<inactive xmlns='${CSI}'/>`;
const ACTIVE = `<active xmlns='${CSI}'/>`;
const COMPOSING = `<composing xmlns='http://jabber.org/protocol/chatstates'/>`;
const PAUSED = `<paused xmlns='http://jabber.org/protocol/chatstates'/>`;
const DELAY = `<delay xmlns='urn:xmpp:delay' from='localhost' stamp='{any}'/>`;

/** Waits until the server has handled everything `client` sent so far (a ping round trip). */
async function settled(client: XmppClient): Promise<void> {
  const answer = await client.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  assert.equal(answer.attrs.type, 'result');
}

/** romeo/phone available, once the answer to its probe of juliet (offline: unavailable) is in. */
async function phoneOnline(server: TestServer): Promise<XmppClient> {
  const romeo = await online(server, 'romeo', 'phone');
  await romeo.expect(`<presence from='juliet@localhost' type='unavailable'/>`);
  return romeo;
}

describe('csi: the stream feature', () => {
  test('after authentication → <csi/> among the stream features; before → not', async (t) => {
    const server = await startServer(t);
    const client = await server.connect();
    await client.startTls();
    assert.equal(client.features?.getChild('csi', CSI), undefined, client.features?.toString());
    const romeo = await server.login('romeo');
    assert.ok(romeo.features?.getChild('csi', CSI), romeo.features?.toString());
  });

  test('an unknown element in urn:xmpp:csi:0 → unsupported-stanza-type stream error', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<sleepy xmlns='${CSI}'/>`);
    await romeo.expectStreamError('unsupported-stanza-type');
  });
});

describe('csi: holding back', () => {
  test("inactive → a contact's presence and chat state wait; <active/> → the newest presence only, then the chat state, stamped", async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await phoneOnline(server);
    romeo.send(INACTIVE);
    const juliet = await online(server, 'juliet', 'balcony'); // romeo would see her come online
    juliet.send(`<presence><show>away</show></presence>`);
    juliet.send(`<message to='romeo@localhost/phone' type='chat'><thread>t1</thread>${COMPOSING}</message>`);
    await settled(juliet);
    await romeo.expectNothing(150);
    romeo.send(ACTIVE);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'><show>away</show>${DELAY}</presence>`, { strict: true });
    await romeo.expect(`<message from='juliet@localhost/balcony' to='romeo@localhost/phone' type='chat'><thread>t1</thread>${COMPOSING}${DELAY}</message>`, { strict: true });
    await romeo.expectNothing(150);
    // Active again: nothing waits any more.
    juliet.send(`<presence><show>dnd</show></presence>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'><show>dnd</show></presence>`, { strict: true }); // no delay stamp
  });

  test('a later unavailable from the same full JID replaces the held available presence', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await phoneOnline(server);
    romeo.send(INACTIVE);
    const juliet = await online(server, 'juliet', 'balcony');
    await juliet.close();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await romeo.expectNothing(0);
    romeo.send(ACTIVE);
    await romeo.expect(`<presence from='juliet@localhost/balcony' type='unavailable'/>`);
    await romeo.expectNothing(150);
  });

  test('inactive → a message with a body arrives at once, after what was held, in the original order', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await phoneOnline(server);
    romeo.send(INACTIVE);
    const juliet = await online(server, 'juliet', 'balcony');
    const nurse = await server.login('nurse', { resource: 'r1' });
    nurse.send(`<message to='romeo@localhost/phone' type='chat'>${COMPOSING}</message>`);
    await settled(nurse);
    juliet.send(`<message to='romeo@localhost/phone' type='chat'>${COMPOSING}</message>`);
    await settled(juliet);
    nurse.send(`<message to='romeo@localhost/phone' type='chat'>${PAUSED}</message>`); // replaces nurse's composing
    await settled(nurse);
    await romeo.expectNothing(100);
    juliet.send(`<message to='romeo@localhost/phone' type='chat'><body>art thou there?</body>${PAUSED}</message>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony'/>`);
    await romeo.expect(`<message from='juliet@localhost/balcony'>${COMPOSING}</message>`);
    await romeo.expect(`<message from='nurse@localhost/r1'>${PAUSED}</message>`);
    const message = await romeo.expect(`<message from='juliet@localhost/balcony'><body>art thou there?</body></message>`);
    assert.equal(message.getChild('delay', 'urn:xmpp:delay'), undefined, 'what was not held carries no delay');
    await romeo.expectNothing(150);
    // Still inactive: presence waits again.
    juliet.send(`<presence><show>xa</show></presence>`);
    await romeo.expectNothing(150);
  });

  test('held stanzas beyond max_held → all of them are sent, in order; later ones wait again', async (t) => {
    const server = await startServer(t, { modules: { csi: { max_held: 2 } } });
    const romeo = await online(server, 'romeo', 'phone');
    const senders = await Promise.all(['r1', 'r2', 'r3'].map((resource) => server.login('juliet', { resource })));
    romeo.send(INACTIVE);
    await settled(romeo);
    for (const sender of senders.slice(0, 2)) {
      sender.send(`<message to='romeo@localhost/phone' type='chat'>${COMPOSING}</message>`);
      await settled(sender);
    }
    await romeo.expectNothing(100);
    senders[2]!.send(`<message to='romeo@localhost/phone' type='chat'>${COMPOSING}</message>`);
    for (const resource of ['r1', 'r2', 'r3']) await romeo.expect(`<message from='juliet@localhost/${resource}'>${COMPOSING}</message>`);
    senders[0]!.send(`<message to='romeo@localhost/phone' type='chat'>${PAUSED}</message>`);
    await romeo.expectNothing(150);
  });

  test('IQs are never held and flush what waits first; a subscription request is not held either', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'phone');
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(INACTIVE);
    await settled(romeo);
    juliet.send(`<message to='romeo@localhost/phone' type='chat'>${COMPOSING}</message>`);
    await settled(juliet);
    juliet.send(`<iq type='get' to='romeo@localhost/phone' id='v1'><query xmlns='jabber:iq:version'/></iq>`);
    await romeo.expect(`<message from='juliet@localhost/balcony'>${COMPOSING}</message>`);
    await romeo.expect(`<iq type='get' from='juliet@localhost/balcony' id='v1'/>`);
    // The client's own IQs are answered while it is inactive.
    await settled(romeo);
    juliet.send(`<presence to='romeo@localhost' type='subscribe'/>`);
    await romeo.expect(`<presence from='juliet@localhost' type='subscribe'/>`);
  });

  test('carbons while inactive → a chat-state copy waits, a copy with a body does not', async (t) => {
    const server = await startServer(t);
    const phone = await online(server, 'romeo', 'phone');
    const desk = await server.login('romeo', { resource: 'desk' });
    await server.login('juliet', { resource: 'balcony' });
    assert.equal((await phone.iq(`<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)).attrs.type, 'result');
    phone.send(INACTIVE);
    await settled(phone);
    desk.send(`<message to='juliet@localhost/balcony' type='chat'>${COMPOSING}</message>`);
    await settled(desk);
    await phone.expectNothing(100);
    desk.send(`<message to='juliet@localhost/balcony' type='chat'><body>hello</body></message>`);
    await phone.expect(`<message from='romeo@localhost'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message>${COMPOSING}</message></forwarded></sent>${DELAY}</message>`);
    await phone.expect(`<message from='romeo@localhost'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message><body>hello</body></message></forwarded></sent></message>`);
  });

  test('stream resumed (XEP-0198) → active again: what waited comes after <resumed/>', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await phoneOnline(server);
    romeo.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`);
    const enabled = await romeo.expect(`<enabled xmlns='urn:xmpp:sm:3' resume='true' id='{any}'/>`);
    romeo.send(INACTIVE);
    const juliet = await online(server, 'juliet', 'balcony');
    await settled(juliet);
    await romeo.expectNothing(100);
    romeo.dropTcp();
    const again = await server.connect();
    await again.startTls();
    await again.authenticate('romeo', 'password');
    again.send(`<resume xmlns='urn:xmpp:sm:3' previd='${enabled.attrs.id}' h='0'/>`);
    await again.expect(`<resumed xmlns='urn:xmpp:sm:3' previd='${enabled.attrs.id}'/>`);
    await again.expect(`<presence from='juliet@localhost/balcony'>${DELAY}</presence>`);
    // Active now: the next update is not held.
    juliet.send(`<presence><show>chat</show></presence>`);
    await again.waitFor(`<presence from='juliet@localhost/balcony'><show>chat</show></presence>`);
  });
});
