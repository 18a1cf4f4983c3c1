// RFC 6120 §7 resource binding, and the RFC 3921 session request old clients still send.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { BIND_NS, connectTls, STANZAS_NS } from './c2s-helpers.js';

const SESSION_NS = 'urn:ietf:params:xml:ns:xmpp-session';
const PING = `<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;

/** An authenticated stream, not yet bound. */
async function authenticated(t: Parameters<typeof connectTls>[0], server: Awaited<ReturnType<typeof startServer>>, username = 'romeo') {
  await server.createUser(username);
  const client = await connectTls(t, server);
  await client.authenticate(username, 'password');
  return client;
}

describe('c2s bind (RFC 6120 §7)', () => {
  test('client-chosen resource → that full JID', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    const reply = await client.iq(`<iq type='set' id='b1'><bind xmlns='${BIND_NS}'><resource>balcony</resource></bind></iq>`);
    assert.equal(reply.attrs.type, 'result');
    assert.equal(reply.getChild('bind', BIND_NS)?.getChildText('jid'), 'romeo@localhost/balcony');
    assert.ok(server.server.sessions.get('romeo@localhost', 'balcony'));
  });

  test('resource normalised (RFC 7622) → the normalised full JID', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    const jid = await client.bind('Cafe\u0301');
    assert.equal(jid, 'romeo@localhost/Caf\u00e9');
  });

  test('no <resource/> → a server-chosen resource, unique per bind', async (t) => {
    const server = await startServer(t);
    const first = await authenticated(t, server);
    const jid1 = await first.bind();
    const second = await authenticated(t, server);
    const jid2 = await second.bind();
    assert.match(jid1, /^romeo@localhost\/.{4,}$/);
    assert.match(jid2, /^romeo@localhost\/.{4,}$/);
    assert.notEqual(jid1, jid2);
  });

  test('invalid resource (over 1023 octets) → bad-request, and the stream can still bind', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    const reply = await client.iq(`<iq type='set' id='b1'><bind xmlns='${BIND_NS}'><resource>${'x'.repeat(1024)}</resource></bind></iq>`);
    assert.equal(reply.attrs.type, 'error');
    assert.ok(reply.getChild('error')?.getChild('bad-request', STANZAS_NS), reply.toString());
    assert.equal(await client.bind('ok'), 'romeo@localhost/ok');
  });

  test('resource with a character PRECIS forbids (U+2028) → bad-request', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    const reply = await client.iq(`<iq type='set' id='b1'><bind xmlns='${BIND_NS}'><resource>a\u2028b</resource></bind></iq>`);
    assert.ok(reply.getChild('error')?.getChild('bad-request', STANZAS_NS), reply.toString());
  });

  test('same full JID bound from another connection → the old stream gets conflict, the new one works', async (t) => {
    const server = await startServer(t);
    const old = await server.login('romeo', { resource: 'phone' });
    const fresh = await server.login('romeo', { resource: 'phone' });
    await old.expectStreamError('conflict');
    assert.equal(fresh.jid, 'romeo@localhost/phone');
    assert.equal((await fresh.iq(PING)).attrs.type, 'result');
    assert.equal(server.server.sessions.resourcesOf('romeo@localhost').length, 1);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost/phone' type='chat' id='m1'><body>hi</body></message>`);
    await fresh.expect(`<message id='m1'/>`);
  });

  test('a stanza after authentication but before bind → stream error not-authorized', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    client.send(`<message to='juliet@localhost'><body>unbound</body></message>`);
    await client.expectStreamError('not-authorized');
  });

  test('an IQ other than bind before bind → stream error not-authorized', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    client.send(PING);
    await client.expectStreamError('not-authorized');
  });

  test('session request (RFC 3921) after bind → empty result', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='set' id='s1'><session xmlns='${SESSION_NS}'/></iq>`);
    assert.equal(reply.attrs.type, 'result');
    assert.equal(reply.elements().length, 0);
  });

  test('session request addressed to the domain after bind → result from the domain', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const reply = await romeo.iq(`<iq type='set' id='s2' to='localhost'><session xmlns='${SESSION_NS}'/></iq>`);
    assert.equal(reply.attrs.type, 'result');
    assert.equal(reply.attrs.from, 'localhost');
  });

  test('session request before bind → result', async (t) => {
    const server = await startServer(t);
    const client = await authenticated(t, server);
    const reply = await client.iq(`<iq type='set' id='s0'><session xmlns='${SESSION_NS}'/></iq>`);
    assert.equal(reply.attrs.type, 'result');
    await client.bind('r1');
  });

  test('c2s.max_resources reached → resource-constraint (wait); replacing a bound resource is still allowed', async (t) => {
    const server = await startServer(t, { config: { c2s: { max_resources: 2 } } });
    await server.login('romeo', { resource: 'one' });
    await server.login('romeo', { resource: 'two' });
    const third = await authenticated(t, server);
    const reply = await third.iq(`<iq type='set' id='b3'><bind xmlns='${BIND_NS}'><resource>three</resource></bind></iq>`);
    const error = reply.getChild('error');
    assert.equal(error?.attrs.type, 'wait');
    assert.ok(error?.getChild('resource-constraint', STANZAS_NS), reply.toString());
    assert.equal(await third.bind('two'), 'romeo@localhost/two');
  });

  test('binding a second resource on a bound stream → not-allowed, the first binding stays', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'first' });
    const reply = await romeo.iq(`<iq type='set' id='b2'><bind xmlns='${BIND_NS}'><resource>second</resource></bind></iq>`);
    assert.equal(reply.attrs.type, 'error');
    const error = reply.getChild('error');
    assert.equal(error?.attrs.type, 'cancel');
    assert.ok(error?.getChild('not-allowed', STANZAS_NS), reply.toString());
    assert.equal(server.server.sessions.get('romeo@localhost', 'second'), undefined);
    assert.ok(server.server.sessions.get('romeo@localhost', 'first'));
    assert.equal((await romeo.iq(PING)).attrs.type, 'result');
  });
});
