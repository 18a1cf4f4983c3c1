// Incoming server-to-server streams from a hand-driven peer: header checks (RFC 6120 §4.9.3),
// stanzas before authentication and from domains the stream did not authenticate, SASL EXTERNAL
// conditions (XEP-0178), and the receiving and authoritative roles of Server Dialback (XEP-0220).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFederation, startServer, type TestServer } from '../../bin/testing.js';
import type { XmppClient } from '../../server/client.js';
import { createTestCa, S2sPeer, DIALBACK_NS, type IssuedCertificate, type TestContextLike } from './s2s-helpers.js';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

async function online(server: TestServer, name: string): Promise<XmppClient> {
  const client = await server.login(name, { resource: 'r1' });
  client.send('<presence/>');
  await client.expect(`<presence from='${name}@${server.domain}/r1'/>`);
  return client;
}

/** b.test trusting a test CA, and a peer certificate for evil.test from that CA. */
async function trustingServer(t: TestContextLike): Promise<{ b: TestServer; evil: IssuedCertificate }> {
  const ca = createTestCa();
  const files = ca.files(t, {});
  const b = await startServer(t, { domain: 'b.test', config: { s2s: { ca_file: files.caFile } } });
  return { b, evil: ca.issue(['evil.test']) };
}

/** A peer authenticated as evil.test by SASL EXTERNAL on b.test. */
async function externalPeer(t: TestContextLike, b: TestServer, evil: IssuedCertificate): Promise<S2sPeer> {
  const peer = await S2sPeer.connect(t, b.s2sPort);
  const attrs = { from: 'evil.test', to: 'b.test' };
  await peer.openStream(attrs);
  const features = await peer.startTls(attrs, evil);
  assert.equal(features.getChild('mechanisms', SASL)?.getChildText('mechanism'), 'EXTERNAL');
  await peer.authenticateExternal(attrs);
  return peer;
}

describe('s2s incoming: stream header', () => {
  test("'to' naming a domain this server does not serve → host-unknown", async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    await peer.openStream({ from: 'a.test', to: 'elsewhere.test' });
    await peer.expectStreamError('host-unknown');
  });

  test("no 'from' → improper-addressing", async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    await peer.openStream({ to: 'b.test' });
    await peer.expectStreamError('improper-addressing');
  });

  test("'from' naming a domain this server serves → invalid-from", async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    await peer.openStream({ from: 'b.test', to: 'b.test' });
    await peer.expectStreamError('invalid-from');
  });

  test('with s2s.require_encryption off, STARTTLS is optional and dialback is offered before TLS', async (t) => {
    const b = await startServer(t, { domain: 'b.test', config: { s2s: { require_encryption: false } } });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const features = await peer.openStream({ from: 'a.test', to: 'b.test' });
    assert.ok(features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls'));
    assert.equal(features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls')?.getChild('required'), undefined);
    assert.ok(features.getChild('dialback', 'urn:xmpp:features:dialback'));
  });

  test('a valid header gets STARTTLS as the only, required feature, and a header with an id', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const features = await peer.openStream({ from: 'a.test', to: 'b.test' });
    assert.ok(features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls')?.getChild('required'));
    assert.equal(features.elements().length, 1);
    assert.equal(peer.header?.attrs.from, 'b.test');
    assert.equal(peer.header?.attrs.to, 'a.test');
    assert.ok(peer.header?.attrs.id);
  });
});

describe('s2s incoming: stanzas', () => {
  test('a stanza before the stream is authenticated → not-authorized', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    await peer.openStream({ from: 'a.test', to: 'b.test' });
    peer.send(`<message from='romeo@a.test' to='juliet@b.test'><body>early</body></message>`);
    await peer.expectStreamError('not-authorized');
  });

  test('after SASL EXTERNAL as evil.test, its stanzas are delivered; one claiming a.test → invalid-from', async (t) => {
    const { b, evil } = await trustingServer(t);
    const juliet = await online(b, 'juliet');
    const peer = await externalPeer(t, b, evil);
    peer.send(`<message from='eve@evil.test/x' to='juliet@b.test' id='ok'><body>hello</body></message>`);
    await juliet.expect(`<message from='eve@evil.test/x' to='juliet@b.test' id='ok'><body>hello</body></message>`);
    peer.send(`<message from='romeo@a.test/x' to='juliet@b.test' id='spoof'><body>it is me</body></message>`);
    await peer.expectStreamError('invalid-from');
    await juliet.expectNothing(100);
  });

  test("a stanza without 'to' → improper-addressing", async (t) => {
    const { b, evil } = await trustingServer(t);
    const peer = await externalPeer(t, b, evil);
    peer.send(`<message from='eve@evil.test'><body>nowhere</body></message>`);
    await peer.expectStreamError('improper-addressing');
  });

  test('a stanza for a domain this server does not serve → host-unknown (nothing is relayed)', async (t) => {
    const { b, evil } = await trustingServer(t);
    const peer = await externalPeer(t, b, evil);
    peer.send(`<message from='eve@evil.test' to='someone@c.test'><body>relay?</body></message>`);
    await peer.expectStreamError('host-unknown');
  });
});

describe('s2s incoming: limits', () => {
  test('a stanza larger than limits.max_stanza_size → policy-violation', async (t) => {
    const b = await startServer(t, { domain: 'b.test', config: { limits: { max_stanza_size: '2 KiB' } } });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    await peer.openStream({ from: 'a.test', to: 'b.test' });
    peer.send(`<message from='romeo@a.test' to='juliet@b.test'><body>${'x'.repeat(4096)}</body></message>`);
    await peer.expectStreamError('policy-violation');
  });

  test('one connection more than limits.max_connections_per_ip (loopback not exempt) → policy-violation', async (t) => {
    const b = await startServer(t, { domain: 'b.test', config: { limits: { max_connections_per_ip: 1, exempt: [] } } });
    const first = await S2sPeer.connect(t, b.s2sPort);
    await first.openStream({ from: 'a.test', to: 'b.test' });
    const second = await S2sPeer.connect(t, b.s2sPort);
    second.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='a.test' to='b.test' version='1.0'>`);
    await second.expectStreamError('policy-violation');
  });
});

describe('s2s incoming: SASL EXTERNAL', () => {
  test('a certificate for another domain than the stream claims → EXTERNAL not offered, and refused when tried', async (t) => {
    const { b, evil } = await trustingServer(t);
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const attrs = { from: 'other.test', to: 'b.test' };
    await peer.openStream(attrs);
    const features = await peer.startTls(attrs, evil);
    assert.equal(features.getChild('mechanisms', SASL), undefined);
    assert.ok(features.getChild('dialback', 'urn:xmpp:features:dialback')?.getChild('errors'));
    peer.send(`<auth xmlns='${SASL}' mechanism='EXTERNAL'>${Buffer.from('other.test').toString('base64')}</auth>`);
    await peer.expect(`<failure xmlns='${SASL}'><not-authorized/></failure>`);
  });

  test('an authorization identity other than the certificate’s domain → invalid-authzid', async (t) => {
    const { b, evil } = await trustingServer(t);
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const attrs = { from: 'evil.test', to: 'b.test' };
    await peer.openStream(attrs);
    await peer.startTls(attrs, evil);
    peer.send(`<auth xmlns='${SASL}' mechanism='EXTERNAL'>${Buffer.from('a.test').toString('base64')}</auth>`);
    await peer.expect(`<failure xmlns='${SASL}'><invalid-authzid/></failure>`);
  });
});

describe('s2s incoming: dialback', () => {
  test('a key the authoritative server (a.test) did not issue → <db:result type=invalid/> and the stream closes', async (t) => {
    const [, b] = await startFederation(t, { domain: 'a.test' }, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b!.s2sPort);
    const attrs = { from: 'a.test', to: 'b.test' };
    await peer.openStream(attrs);
    await peer.startTls(attrs);
    peer.send(`<db:result from='a.test' to='b.test'>${'ab'.repeat(32)}</db:result>`);
    await peer.expect(`<result xmlns='${DIALBACK_NS}' from='b.test' to='a.test' type='invalid'/>`);
    await peer.expectClosed();
  });

  test('a dialback request for a domain this server does not serve → dialback error item-not-found, the stream stays', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const attrs = { from: 'a.test', to: 'b.test' };
    await peer.openStream(attrs);
    await peer.startTls(attrs);
    peer.send(`<db:result from='a.test' to='c.test'>${'ab'.repeat(32)}</db:result>`);
    await peer.expect(`<result xmlns='${DIALBACK_NS}' from='c.test' to='a.test' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></result>`);
    // Still open: as authoritative server it answers a verification.
    peer.send(`<db:verify from='a.test' to='b.test' id='s1'>${b.server.s2s.keys.generate('a.test', 'b.test', 's1')}</db:verify>`);
    await peer.expect(`<verify xmlns='${DIALBACK_NS}' from='b.test' to='a.test' id='s1' type='valid'/>`);
  });

  test('as authoritative server: a key it issued → valid, any other → invalid', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const attrs = { from: 'a.test', to: 'b.test' };
    await peer.openStream(attrs);
    await peer.startTls(attrs);
    const key = b.server.s2s.keys.generate('a.test', 'b.test', 'stream-1');
    peer.send(`<db:verify from='a.test' to='b.test' id='stream-1'>${key}</db:verify>`);
    await peer.expect(`<verify xmlns='${DIALBACK_NS}' from='b.test' to='a.test' id='stream-1' type='valid'/>`);
    peer.send(`<db:verify from='a.test' to='b.test' id='stream-2'>${key}</db:verify>`);
    await peer.expect(`<verify xmlns='${DIALBACK_NS}' from='b.test' to='a.test' id='stream-2' type='invalid'/>`);
  });

  test('an unsolicited <db:result type=valid/> on an incoming stream authenticates nothing', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    const attrs = { from: 'a.test', to: 'b.test' };
    await peer.openStream(attrs);
    await peer.startTls(attrs);
    peer.send(`<db:result from='a.test' to='b.test' type='valid'/>`);
    peer.send(`<message from='romeo@a.test' to='juliet@b.test'><body>sneaky</body></message>`);
    await peer.expectStreamError('not-authorized');
  });

  test('dialback before TLS while encryption is required → dialback error policy-violation', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const peer = await S2sPeer.connect(t, b.s2sPort);
    await peer.openStream({ from: 'a.test', to: 'b.test' });
    peer.send(`<db:result from='a.test' to='b.test'>${'ab'.repeat(32)}</db:result>`);
    await peer.expect(`<result xmlns='${DIALBACK_NS}' from='b.test' to='a.test' type='error'><error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></result>`);
  });
});
