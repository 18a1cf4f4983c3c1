import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
const ENABLE = `<iq type='set'><enable xmlns='${CARBONS}'/></iq>`;
/** The message archive (modules/mam) numbers what romeo's account keeps; carbons carry the number (XEP-0313 §3.5). */
const ARCHIVED = `<stanza-id xmlns='urn:xmpp:sid:0' by='romeo@localhost' id='{any}'/>`;
const DISABLE = `<iq type='set'><disable xmlns='${CARBONS}'/></iq>`;

/**
 * The wrapper §7/§8 prescribe around `inner` (a pattern for the forwarded message, with
 * xmlns='jabber:client'); `type` undefined for a message without one.
 */
function carbon(direction: 'sent' | 'received', resource: string, type: string | undefined, inner: string): string {
  const typeAttr = type === undefined ? '' : ` type='${type}'`;
  return `<message from='romeo@localhost' to='romeo@localhost/${resource}'${typeAttr}><${direction} xmlns='${CARBONS}'><forwarded xmlns='${FORWARD}'>${inner}</forwarded></${direction}></message>`;
}

async function ok(client: XmppClient, request: string): Promise<void> {
  const answer = await client.iq(request);
  assert.equal(answer.attrs.type, 'result', answer.toString());
}

interface Party {
  server: TestServer;
  /** Carbons enabled on r1 and r2, not on r3; none has sent presence. */
  r1: XmppClient;
  r2: XmppClient;
  r3: XmppClient;
  juliet: XmppClient;
}

async function party(t: Parameters<typeof startServer>[0]): Promise<Party> {
  const server = await startServer(t);
  const [r1, r2, r3, juliet] = await Promise.all([
    server.login('romeo', { resource: 'r1' }),
    server.login('romeo', { resource: 'r2' }),
    server.login('romeo', { resource: 'r3' }),
    server.login('juliet', { resource: 'balcony' }),
  ]);
  await ok(r1, ENABLE);
  await ok(r2, ENABLE);
  return { server, r1, r2, r3, juliet };
}

/** Fails when any of the clients receives something within `ms` (one wait for all). */
async function nothingMore(ms: number, ...clients: XmppClient[]): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  for (const client of clients) await client.expectNothing(0);
}

describe('carbons: enabling', () => {
  test('disco#info of the server → lists urn:xmpp:carbons:2', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const features = answer.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(CARBONS), features.join(' '));
  });

  test('enable and disable, each twice, without or with to=own bare JID → empty results (§10.1)', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    await iqExpect(romeo, `<iq type='set' id='e1'><enable xmlns='${CARBONS}'/></iq>`, `<iq type='result' id='e1' to='romeo@localhost/r1'/>`, { strict: true });
    await iqExpect(romeo, `<iq type='set' id='e2' to='romeo@localhost'><enable xmlns='${CARBONS}'/></iq>`, `<iq type='result' id='e2' from='romeo@localhost' to='romeo@localhost/r1'/>`, { strict: true });
    await iqExpect(romeo, `<iq type='set' id='d1'><disable xmlns='${CARBONS}'/></iq>`, `<iq type='result' id='d1' to='romeo@localhost/r1'/>`, { strict: true });
    await iqExpect(romeo, `<iq type='set' id='d2'><disable xmlns='${CARBONS}'/></iq>`, `<iq type='result' id='d2' to='romeo@localhost/r1'/>`, { strict: true });
  });

  test('enable addressed to another account → forbidden', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='set' id='x1' to='juliet@localhost'><enable xmlns='${CARBONS}'/></iq>`, `<iq type='error' id='x1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
  });

  test('enable with a get instead of a set → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' id='g1'><enable xmlns='${CARBONS}'/></iq>`, `<iq type='error' id='g1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });
});

describe('carbons: sent copies (§8)', () => {
  test('chat from r1 → the original to the contact, a sent copy to r2 only (not r1, not r3 without carbons)', async (t) => {
    const { r1, r2, r3, juliet } = await party(t);
    r1.send(`<message to='juliet@localhost/balcony' type='chat' id='m1'><body>hi</body><thread>t1</thread></message>`);
    await juliet.expect(`<message from='romeo@localhost/r1' to='juliet@localhost/balcony' type='chat' id='m1'><body>hi</body></message>`);
    await r2.expect(
      carbon('sent', 'r2', 'chat', `<message xmlns='jabber:client' from='romeo@localhost/r1' to='juliet@localhost/balcony' type='chat' id='m1'><body>hi</body><thread>t1</thread>${ARCHIVED}</message>`),
      { strict: true },
    );
    await nothingMore(150, r1, r2, r3);
  });

  test('chat from r3, which has carbons off → sent copies to r1 and r2 all the same', async (t) => {
    const { r1, r2, r3, juliet } = await party(t);
    r3.send(`<message to='juliet@localhost' type='chat'><body>from r3</body></message>`);
    await r1.expect(carbon('sent', 'r1', 'chat', `<message xmlns='jabber:client' from='romeo@localhost/r3' to='juliet@localhost'><body>from r3</body></message>`));
    await r2.expect(carbon('sent', 'r2', 'chat', `<message xmlns='jabber:client' from='romeo@localhost/r3' to='juliet@localhost'><body>from r3</body></message>`));
    await nothingMore(100, r3, juliet); // juliet has sent no presence: the chat to her bare JID waits offline
  });

  test('normal message with a body → copied; normal without body or IM payload → not; chat state of type chat → copied', async (t) => {
    const { r1, r2 } = await party(t);
    r1.send(`<message to='juliet@localhost/balcony'><body>normal</body></message>`);
    await r2.expect(carbon('sent', 'r2', undefined, `<message xmlns='jabber:client'><body>normal</body></message>`));
    r1.send(`<message to='juliet@localhost/balcony' type='normal'><x xmlns='urn:example:custom'/></message>`);
    await r2.expectNothing(150);
    r1.send(`<message to='juliet@localhost/balcony' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    await r2.expect(carbon('sent', 'r2', 'chat', `<message xmlns='jabber:client'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`));
  });

  test('headline and groupchat → not copied', async (t) => {
    const { r1, r2 } = await party(t);
    r1.send(`<message to='juliet@localhost/balcony' type='headline'><body>news</body></message>`);
    r1.send(`<message to='room@conference.example/juliet' type='groupchat'><body>all</body></message>`);
    await r2.expectNothing(200);
  });

  test('private message to a MUC occupant (muc#user marker, full JID) → copied', async (t) => {
    const { r1, r2 } = await party(t);
    r1.send(`<message to='juliet@localhost/balcony' type='normal'><x xmlns='http://jabber.org/protocol/muc#user'/><thread>pm</thread></message>`);
    await r2.expect(carbon('sent', 'r2', 'normal', `<message xmlns='jabber:client' to='juliet@localhost/balcony'><x xmlns='http://jabber.org/protocol/muc#user'/></message>`));
  });

  test('message to another own resource → r2 gets the original only; r3 with carbons on gets a sent copy', async (t) => {
    const { r1, r2, r3 } = await party(t);
    await ok(r3, ENABLE);
    r1.send(`<message to='romeo@localhost/r2' type='chat'><body>note</body></message>`);
    await r2.expect(`<message from='romeo@localhost/r1' to='romeo@localhost/r2' type='chat'><body>note</body></message>`);
    await r3.expect(carbon('sent', 'r3', 'chat', `<message xmlns='jabber:client' from='romeo@localhost/r1' to='romeo@localhost/r2'><body>note</body></message>`));
    await nothingMore(150, r1, r2, r3);
  });
});

describe('carbons: received copies (§7)', () => {
  test('chat to r1 → r1 gets the original, r2 a received copy, r3 nothing', async (t) => {
    const { r1, r2, r3, juliet } = await party(t);
    juliet.send(`<message to='romeo@localhost/r1' type='chat' id='j1'><body>wherefore</body></message>`);
    await r1.expect(`<message from='juliet@localhost/balcony' to='romeo@localhost/r1' type='chat' id='j1'><body>wherefore</body>${ARCHIVED}</message>`, { strict: true });
    await r2.expect(
      carbon('received', 'r2', 'chat', `<message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost/r1' type='chat' id='j1'><body>wherefore</body>${ARCHIVED}</message>`),
      { strict: true },
    );
    await nothingMore(150, r1, r2, r3);
  });

  test('chat to the bare JID → the top-priority resource gets the original, other enabled ones a received copy', async (t) => {
    const { r1, r2, r3, juliet } = await party(t);
    // One after the other, each waiting for its own presence to come back: all available then.
    for (const [client, priority] of [[r1, 5], [r2, 1], [r3, 1]] as const) {
      client.send(`<presence><priority>${priority}</priority></presence>`);
      await client.waitFor(`<presence from='${client.jid}'/>`);
    }
    juliet.send(`<message to='romeo@localhost' type='chat'><body>to bare</body></message>`);
    await r1.waitFor(`<message from='juliet@localhost/balcony' to='romeo@localhost' type='chat'><body>to bare</body>${ARCHIVED}</message>`, { strict: true });
    await r2.waitFor(carbon('received', 'r2', 'chat', `<message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost'><body>to bare</body></message>`));
    await new Promise((resolve) => setTimeout(resolve, 150));
    for (const client of [r1, r2, r3]) {
      const messages = client.received.filter((el) => el.name === 'message');
      assert.equal(messages.length, client === r3 ? 0 : 1, `${client.jid}: ${messages.map((el) => el.toString()).join('\n')}`);
    }
  });

  test('private message from an occupant (muc#user marker, from a full JID) → not copied; a mediated invitation → copied', async (t) => {
    const { r1, r2, juliet } = await party(t);
    juliet.send(`<message to='romeo@localhost/r1' type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`);
    await r1.expect(`<message><body>psst</body></message>`);
    await r2.expectNothing(150);
    juliet.send(`<message to='romeo@localhost/r1'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='juliet@localhost'/></x></message>`);
    await r1.expect(`<message><x xmlns='http://jabber.org/protocol/muc#user'><invite/></x></message>`);
    await r2.expect(carbon('received', 'r2', undefined, `<message xmlns='jabber:client'><x xmlns='http://jabber.org/protocol/muc#user'><invite/></x></message>`));
  });

  test('a message already holding a carbon <received/> → not copied again', async (t) => {
    const { r1, r2, juliet } = await party(t);
    juliet.send(
      `<message to='romeo@localhost/r1' type='chat'><received xmlns='${CARBONS}'><forwarded xmlns='${FORWARD}'><message xmlns='jabber:client' from='tybalt@localhost/x' to='romeo@localhost' type='chat'><body>forged</body></message></forwarded></received></message>`,
    );
    await r1.expect(`<message from='juliet@localhost/balcony'/>`);
    await r2.expectNothing(150);
  });

  test('chat to an unknown account → sent copy, then a received copy of the error bounce from its bare JID', async (t) => {
    const { r1, r2 } = await party(t);
    r1.send(`<message to='nobody@localhost' type='chat' id='n1'><body>anyone?</body></message>`);
    await r1.expect(`<message type='error' from='nobody@localhost' id='n1'/>`);
    await r2.expect(carbon('sent', 'r2', 'chat', `<message xmlns='jabber:client' to='nobody@localhost'/>`));
    await r2.expect(
      carbon('received', 'r2', 'error', `<message xmlns='jabber:client' type='error' from='nobody@localhost' to='romeo@localhost/r1' id='n1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`),
    );
  });
});

describe('carbons: opting out', () => {
  test('<private/> → no sent copy and no received copy; the original keeps <private/> (§9)', async (t) => {
    const { r1, r2, juliet } = await party(t);
    r1.send(`<message to='juliet@localhost/balcony' type='chat'><body>secret</body><private xmlns='${CARBONS}'/></message>`);
    await juliet.expect(`<message from='romeo@localhost/r1'><body>secret</body><private xmlns='${CARBONS}'/></message>`);
    juliet.send(`<message to='romeo@localhost/r1' type='chat'><body>secret too</body><private xmlns='${CARBONS}'/></message>`);
    await r1.expect(`<message from='juliet@localhost/balcony'><body>secret too</body><private xmlns='${CARBONS}'/></message>`);
    await r2.expectNothing(150);
  });

  test('XEP-0334 <no-copy/> → no sent copy and no received copy', async (t) => {
    const { r1, r2, juliet } = await party(t);
    r1.send(`<message to='juliet@localhost/balcony' type='chat'><body>one</body><no-copy xmlns='urn:xmpp:hints'/></message>`);
    await juliet.expect(`<message from='romeo@localhost/r1'><body>one</body></message>`);
    juliet.send(`<message to='romeo@localhost/r1' type='chat'><body>two</body><no-copy xmlns='urn:xmpp:hints'/></message>`);
    await r1.expect(`<message from='juliet@localhost/balcony'><body>two</body></message>`);
    await r2.expectNothing(150);
  });

  test('after <disable/> → no more copies for that resource; the others still get theirs', async (t) => {
    const { r1, r2, r3, juliet } = await party(t);
    await ok(r3, ENABLE);
    await ok(r2, DISABLE);
    juliet.send(`<message to='romeo@localhost/r1' type='chat'><body>after</body></message>`);
    await r1.expect(`<message><body>after</body></message>`);
    await r3.expect(carbon('received', 'r3', 'chat', `<message xmlns='jabber:client'><body>after</body></message>`));
    await r2.expectNothing(150);
  });
});
