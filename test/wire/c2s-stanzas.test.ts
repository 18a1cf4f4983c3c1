// RFC 6120 §8 stanza checks on a client stream and the router's answers for what nobody handles
// (RFC 6120 §10, RFC 6121 §8), over real sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { STANZAS_NS } from './c2s-helpers.js';

const ERR = STANZAS_NS;

describe("c2s stanzas: 'from' (RFC 6120 §8.1.2.1)", () => {
  test("someone else's JID in 'from' → stream error invalid-from", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message from='juliet@localhost/balcony' to='nurse@localhost'><body>spoof</body></message>`);
    await romeo.expectStreamError('invalid-from');
  });

  test("another resource of one's own account in 'from' → invalid-from", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message from='romeo@localhost/r2' to='juliet@localhost'><body>spoof</body></message>`);
    await romeo.expectStreamError('invalid-from');
  });

  test("'from' that is not a JID at all → invalid-from", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<presence from='@@@'/>`);
    await romeo.expectStreamError('invalid-from');
  });

  test("own bare JID in 'from' → accepted and restamped with the full JID", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(`<message from='romeo@localhost' to='juliet@localhost/balcony' type='chat' id='m1'><body>hi</body></message>`);
    await juliet.expect(`<message from='romeo@localhost/r1' to='juliet@localhost/balcony' id='m1'/>`);
  });

  test("own full JID in another case in 'from' → accepted, stamped in normalised form", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(`<message from='ROMEO@LocalHost/r1' to='juliet@localhost/balcony' type='chat' id='m2'><body>hi</body></message>`);
    await juliet.expect(`<message from='romeo@localhost/r1' id='m2'/>`);
  });

  test("no 'from' → stamped with the full JID", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(`<message to='juliet@localhost/balcony' type='chat' id='m3'><body>hi</body></message>`);
    await juliet.expect(`<message from='romeo@localhost/r1' id='m3'/>`);
  });
});

describe('c2s stanzas: malformed stanzas (RFC 6120 §8.2, §8.3)', () => {
  test("invalid 'to' → jid-malformed (modify), stream stays open", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<message to='juliet@localhost/' id='bad-to'><body>x</body></message>`);
    await romeo.expect(`<message type='error' id='bad-to'><error type='modify'><jid-malformed xmlns='${ERR}'/></error></message>`);
    const reply = await romeo.iq(`<iq type='get' to='a@b@c' id='bad-to-iq'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.ok(reply.getChild('error')?.getChild('jid-malformed', ERR), reply.toString());
  });

  test('IQ without id → bad-request', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await romeo.expect(`<iq type='error'><error type='modify'><bad-request xmlns='${ERR}'/></error></iq>`);
  });

  test('IQ get with two children → bad-request', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='get' to='localhost' id='two'><ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:version'/></iq>`);
    assert.equal(reply.attrs.type, 'error');
    assert.ok(reply.getChild('error')?.getChild('bad-request', ERR), reply.toString());
  });

  test('IQ set with no child → bad-request', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='set' to='localhost' id='none'/>`);
    assert.ok(reply.getChild('error')?.getChild('bad-request', ERR), reply.toString());
  });

  test('IQ of an unknown type → bad-request', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='fetch' to='localhost' id='odd'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(reply.attrs.type, 'error');
    assert.ok(reply.getChild('error')?.getChild('bad-request', ERR), reply.toString());
  });

  test('IQ with no type → bad-request', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq to='localhost' id='untyped'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.ok(reply.getChild('error')?.getChild('bad-request', ERR), reply.toString());
  });

  test('presence of an unknown type → bad-request', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<presence type='sleepy' id='p1'/>`);
    await romeo.expect(`<presence type='error' id='p1'><error type='modify'><bad-request xmlns='${ERR}'/></error></presence>`);
  });

  test('unknown top-level element in jabber:client → stream error unsupported-stanza-type', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<note to='juliet@localhost'>hi</note>`);
    await romeo.expectStreamError('unsupported-stanza-type');
  });
});

describe('c2s stanzas: nobody to answer (RFC 6120 §10.3, RFC 6121 §8)', () => {
  test('IQ to the server in an unknown namespace → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='get' to='localhost' id='u1'><query xmlns='urn:example:nothing'/></iq>`);
    assert.equal(reply.attrs.type, 'error');
    assert.equal(reply.attrs.from, 'localhost');
    const error = reply.getChild('error');
    assert.equal(error?.attrs.type, 'cancel');
    assert.ok(error?.getChild('service-unavailable', ERR), reply.toString());
  });

  test('IQ with no to in an unknown namespace → service-unavailable from the account', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='get' id='u2'><query xmlns='urn:example:nothing'/></iq>`);
    assert.ok(reply.getChild('error')?.getChild('service-unavailable', ERR), reply.toString());
  });

  test('IQ to a user that does not exist → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='get' to='nobody@localhost' id='u3'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(reply.attrs.from, 'nobody@localhost');
    assert.ok(reply.getChild('error')?.getChild('service-unavailable', ERR), reply.toString());
  });

  test('IQ to a full JID that is not connected → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    const reply = await romeo.iq(`<iq type='get' to='juliet@localhost/gone' id='u4'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.ok(reply.getChild('error')?.getChild('service-unavailable', ERR), reply.toString());
  });

  test('message to a user that does not exist → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message to='nobody@localhost' type='chat' id='m1'><body>hello?</body></message>`);
    await romeo.expect(
      `<message type='error' id='m1' from='nobody@localhost' to='romeo@localhost/r1'><error type='cancel'><service-unavailable xmlns='${ERR}'/></error></message>`,
    );
  });

  test('presence to a user that does not exist → silently ignored', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<presence to='nobody@localhost' id='p1'/>`);
    romeo.send(`<presence to='nobody@localhost/res' id='p2'/>`);
    romeo.send(`<presence to='nobody@localhost' type='unavailable' id='p3'/>`);
    await romeo.expectNothing(300);
  });

  test('message to a remote domain → remote-server-not-found (no federation yet)', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<message to='juliet@capulet.example' type='chat' id='m2'><body>far away</body></message>`);
    await romeo.expect(`<message type='error' id='m2' from='juliet@capulet.example'><error type='cancel'><remote-server-not-found xmlns='${ERR}'/></error></message>`);
  });

  test('IQ to a remote domain → remote-server-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='get' to='capulet.example' id='r1'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.ok(reply.getChild('error')?.getChild('remote-server-not-found', ERR), reply.toString());
  });

  test('IQ results and errors that go nowhere are never answered with an error', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    romeo.send(`<iq type='result' to='localhost' id='x1'/>`);
    romeo.send(`<iq type='result' to='nobody@localhost' id='x2'/>`);
    romeo.send(`<iq type='error' to='juliet@localhost' id='x3'><error type='cancel'><item-not-found xmlns='${ERR}'/></error></iq>`);
    romeo.send(`<iq type='result' to='juliet@localhost/gone' id='x4'/>`);
    romeo.send(`<iq type='error' to='capulet.example' id='x5'><error type='cancel'><item-not-found xmlns='${ERR}'/></error></iq>`);
    romeo.send(`<iq type='result' id='x6'/>`);
    await romeo.expectNothing(300);
  });

  test('message errors that go nowhere are never answered', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    romeo.send(`<message type='error' to='nobody@localhost' id='e1'><error type='cancel'><gone xmlns='${ERR}'/></error></message>`);
    romeo.send(`<message type='error' to='juliet@localhost/gone' id='e2'><error type='cancel'><gone xmlns='${ERR}'/></error></message>`);
    romeo.send(`<message type='error' to='localhost' id='e3'><error type='cancel'><gone xmlns='${ERR}'/></error></message>`);
    romeo.send(`<message type='error' to='juliet@capulet.example' id='e4'><error type='cancel'><gone xmlns='${ERR}'/></error></message>`);
    await romeo.expectNothing(300);
  });

  test('message of type normal to an offline full JID → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    romeo.send(`<message to='juliet@localhost/gone' id='n1'><body>hi</body></message>`);
    await romeo.expect(`<message type='error' id='n1'><error type='cancel'><service-unavailable xmlns='${ERR}'/></error></message>`);
  });

  test('groupchat message to a bare JID → service-unavailable, even with the user online', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet', { presence: true });
    romeo.send(`<message to='juliet@localhost' type='groupchat' id='g1'><body>all of you</body></message>`);
    await romeo.expect(`<message type='error' id='g1'><error type='cancel'><service-unavailable xmlns='${ERR}'/></error></message>`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Presence traffic is fine; the groupchat message itself must not arrive.
    assert.ok(!juliet.received.some((el) => el.name === 'message'), 'groupchat to a bare JID was delivered');
  });

  test('groupchat message to an offline full JID → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    romeo.send(`<message to='juliet@localhost/gone' type='groupchat' id='g2'><body>x</body></message>`);
    await romeo.expect(`<message type='error' id='g2'><error type='cancel'><service-unavailable xmlns='${ERR}'/></error></message>`);
  });

  test('message to the server domain → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<message to='localhost' id='h1'><body>hello server</body></message>`);
    await romeo.expect(`<message type='error' id='h1' from='localhost'><error type='cancel'><service-unavailable xmlns='${ERR}'/></error></message>`);
  });
});

describe('c2s stanzas: IQ between clients', () => {
  test('IQ error reply from a client → routed back to the asker', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(`<iq type='get' to='juliet@localhost/balcony' id='v2'><query xmlns='urn:example:x'/></iq>`);
    await juliet.expect(`<iq type='get' id='v2'/>`);
    juliet.send(`<iq type='error' to='romeo@localhost/r1' id='v2'><error type='cancel'><feature-not-implemented xmlns='${ERR}'/></error></iq>`);
    await romeo.expect(`<iq type='error' from='juliet@localhost/balcony' id='v2'><error><feature-not-implemented xmlns='${ERR}'/></error></iq>`);
  });
});
