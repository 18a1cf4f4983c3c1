// How servers prove who they are: SASL EXTERNAL (XEP-0178) when both trust each other's
// certificates (leaf certificates from a throw-away CA given as s2s.ca_file), multiplexed domains
// accepted on the certificate's word, and the s2s.require_valid_certificates policy on either side.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFederation, type TestServer } from '../../bin/testing.js';
import { defineModule, x } from '../../server/module-api.js';
import { builtinModules } from '../../modules/index.js';
import type { XmppClient } from '../../server/client.js';
import { createTestCa } from './s2s-helpers.js';

async function online(server: TestServer, name: string): Promise<XmppClient> {
  const client = await server.login(name, { resource: 'r1' });
  client.send('<presence/>');
  await client.expect(`<presence from='${name}@${server.domain}/r1'/>`);
  return client;
}

/** a.test and b.test with leaf certificates from one CA that both trust. */
async function trustingPair(t: { after(fn: () => unknown): void }, extraA: Parameters<typeof startFederation>[1] = {}) {
  const ca = createTestCa();
  const files = ca.files(t, { a: ca.issue(['a.test', '*.a.test']), b: ca.issue(['b.test', '*.b.test']) });
  const config = (name: 'a' | 'b') => ({ tls: files.cert(name), s2s: { ca_file: files.caFile } });
  const [a, b] = await startFederation(t, { domain: 'a.test', config: config('a'), ...extraA }, { domain: 'b.test', config: config('b') });
  return [a!, b!] as const;
}

const relayComponent = defineModule({
  name: 'test_relay',
  setup(m) {
    const svc = m.component('svc');
    svc.onMessage(({ stanza }) => {
      m.route(x('message', { from: svc.domain, to: stanza.getChildText('body') ?? '', id: 'relayed' }, x('body', null, 'from the component')));
    });
  },
});

describe('s2s: SASL EXTERNAL (XEP-0178)', () => {
  test('certificates from a CA both servers trust → SASL EXTERNAL in both directions, messages flow', async (t) => {
    const [a, b] = await trustingPair(t);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='e1'><body>signed</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' id='e1'><body>signed</body></message>`);
    juliet.send(`<message to='romeo@a.test' id='e2'><body>sealed</body></message>`);
    await romeo.expect(`<message from='juliet@b.test/r1' id='e2'><body>sealed</body></message>`);

    assert.deepEqual(a.server.s2s.outgoingTo('b.test')?.authenticated, { 'a.test': 'sasl-external' });
    assert.deepEqual(b.server.s2s.outgoingTo('a.test')?.authenticated, { 'b.test': 'sasl-external' });
    const incoming = b.server.s2s.connections().filter((c) => c.direction === 'in');
    assert.deepEqual(incoming.map((c) => c.authenticated), [{ 'a.test': 'sasl-external' }]);
  });

  test('a certificate without the clientAuth usage (as public CAs issue them since 2026) still authenticates with SASL EXTERNAL', async (t) => {
    const ca = createTestCa();
    const files = ca.files(t, { a: ca.issue(['a.test'], { serverAuthOnly: true }), b: ca.issue(['b.test'], { serverAuthOnly: true }) });
    const config = (name: 'a' | 'b') => ({ tls: files.cert(name), s2s: { ca_file: files.caFile } });
    const [a, b] = await startFederation(t, { domain: 'a.test', config: config('a') }, { domain: 'b.test', config: config('b') });
    const romeo = await online(a!, 'romeo');
    const juliet = await online(b!, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='le'><body>server-only certificate</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' id='le'/>`);
    assert.deepEqual(a!.server.s2s.outgoingTo('b.test')?.authenticated, { 'a.test': 'sasl-external' });
  });

  test('a certificate from a CA the receiver does not trust → no EXTERNAL, dialback instead', async (t) => {
    const ca = createTestCa();
    const other = createTestCa('Someone Else');
    const files = ca.files(t, { a: other.issue(['a.test']), b: ca.issue(['b.test']) });
    const [a, b] = await startFederation(
      t,
      { domain: 'a.test', config: { tls: files.cert('a'), s2s: { ca_file: files.caFile } } },
      { domain: 'b.test', config: { tls: files.cert('b'), s2s: { ca_file: files.caFile } } },
    );
    const romeo = await online(a!, 'romeo');
    const juliet = await online(b!, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='u1'><body>hi</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' id='u1'/>`);
    assert.deepEqual(a!.server.s2s.outgoingTo('b.test')?.authenticated, { 'a.test': 'dialback' });
    // The other way round b.test's certificate is trusted by a.test: EXTERNAL.
    assert.deepEqual(b!.server.s2s.outgoingTo('a.test')?.authenticated, { 'b.test': 'sasl-external' });
  });

  test('a component domain the certificate covers is multiplexed on the stream without a dialback connect-back', async (t) => {
    const [a, b] = await trustingPair(t, { moduleList: [...builtinModules, relayComponent] });
    // No route from b.test to svc.a.test: a connect-back could not happen.
    b.server.s2s.setRoute('svc.a.test', undefined);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    romeo.send(`<message to='svc.a.test' id='c1'><body>juliet@b.test</body></message>`);
    await juliet.expect(`<message from='svc.a.test' id='relayed'><body>from the component</body></message>`);
    assert.deepEqual(a.server.s2s.outgoingTo('b.test')?.authenticated, { 'a.test': 'sasl-external', 'svc.a.test': 'dialback' });
    const incoming = b.server.s2s.connections().filter((c) => c.direction === 'in');
    assert.deepEqual(incoming.map((c) => c.authenticated), [{ 'a.test': 'sasl-external', 'svc.a.test': 'dialback-certificate' }]);
  });
});

describe('s2s: s2s.require_valid_certificates', () => {
  test('sender requires valid certificates, receiver’s is self-signed → the message bounces with remote-server-not-found', async (t) => {
    const [a, b] = await startFederation(t, { domain: 'a.test', config: { s2s: { require_valid_certificates: true } } }, { domain: 'b.test' });
    const romeo = await online(a!, 'romeo');
    const juliet = await online(b!, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='p1'><body>hi</body></message>`);
    await romeo.expect(`<message type='error' from='juliet@b.test' id='p1'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    await juliet.expectNothing(100);
  });

  test('receiver requires valid certificates, sender’s is self-signed → dialback error not-authorized, the message bounces with remote-server-timeout', async (t) => {
    const [a, b] = await startFederation(t, { domain: 'a.test' }, { domain: 'b.test', config: { s2s: { require_valid_certificates: true } } });
    const romeo = await online(a!, 'romeo');
    const juliet = await online(b!, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='p2'><body>hi</body></message>`);
    await romeo.expect(`<message type='error' from='juliet@b.test' id='p2'><error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    await juliet.expectNothing(100);
  });

  test('both require valid certificates and have them from a trusted CA → delivered', async (t) => {
    const ca = createTestCa();
    const files = ca.files(t, { a: ca.issue(['a.test']), b: ca.issue(['b.test']) });
    const config = (name: 'a' | 'b') => ({ tls: files.cert(name), s2s: { ca_file: files.caFile, require_valid_certificates: true } });
    const [a, b] = await startFederation(t, { domain: 'a.test', config: config('a') }, { domain: 'b.test', config: config('b') });
    const romeo = await online(a!, 'romeo');
    const juliet = await online(b!, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='p3'><body>hi</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' id='p3'/>`);
  });
});
