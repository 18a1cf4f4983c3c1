// Reaching other servers, and what happens when that fails (RFC 6120 §10.4.3): stanzas come back
// to their senders as errors — remote-server-not-found when there is no server to talk to,
// remote-server-timeout when it does not answer in time, resource-constraint past s2s.max_queue —
// and DNS: SRV records through s2s.dns_servers, direct TLS (XEP-0368), a '.' target.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import type { XmppClient } from '../../server/client.js';
import { closedPort, silentServer, startDnsStub } from './s2s-helpers.js';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

async function online(server: TestServer, name: string): Promise<XmppClient> {
  const client = await server.login(name, { resource: 'r1' });
  client.send('<presence/>');
  await client.expect(`<presence from='${name}@${server.domain}/r1'/>`);
  return client;
}

describe('s2s: unreachable servers', () => {
  test('nothing listens at the mapped address → the message bounces with remote-server-not-found', async (t) => {
    const port = await closedPort();
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { host_map: { 'nowhere.test': `127.0.0.1:${port}` } } } });
    const romeo = await online(a, 'romeo');
    romeo.send(`<message to='juliet@nowhere.test' id='n1'><body>anyone?</body></message>`);
    await romeo.expect(`<message type='error' from='juliet@nowhere.test' to='romeo@a.test/r1' id='n1'><error type='cancel'><remote-server-not-found xmlns='${STANZAS}'/></error></message>`);
  });

  test('a domain with no SRV and no address records → remote-server-not-found, for an IQ and a subscription request too', async (t) => {
    const dns = await startDnsStub(t, {});
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { dns_servers: [dns.address] } } });
    const romeo = await online(a, 'romeo');
    const answer = await romeo.iq(`<iq type='get' to='unknown.test' id='q1'><query xmlns='jabber:iq:version'/></iq>`);
    assert.equal(answer.attrs.type, 'error');
    assert.ok(answer.getChild('error')?.getChild('remote-server-not-found', STANZAS));
    assert.ok(dns.queries.includes('SRV _xmpp-server._tcp.unknown.test'));
    assert.ok(dns.queries.includes('SRV _xmpps-server._tcp.unknown.test'));
    assert.ok(dns.queries.includes('A unknown.test'), 'falls back to the address records');
    // RFC 6120 §8.3.1 / Prosody: a subscription request is answered with a presence error.
    romeo.send(`<presence to='juliet@unknown.test' type='subscribe' id='s1'/>`);
    await romeo.waitFor(`<presence type='error' from='juliet@unknown.test' id='s1'><error><remote-server-not-found xmlns='${STANZAS}'/></error></presence>`);
  });

  test("an _xmpp-server SRV record with target '.' (no service) → remote-server-not-found without an address fallback", async (t) => {
    const dns = await startDnsStub(t, { srv: { '_xmpp-server._tcp.closed.test': [{ priority: 0, weight: 0, port: 0, target: '.' }] }, a: { 'closed.test': ['127.0.0.1'] } });
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { dns_servers: [dns.address] } } });
    const romeo = await online(a, 'romeo');
    romeo.send(`<message to='juliet@closed.test' id='d1'><body>hi</body></message>`);
    await romeo.expect(`<message type='error' from='juliet@closed.test' id='d1'><error><remote-server-not-found xmlns='${STANZAS}'/></error></message>`);
    assert.ok(!dns.queries.includes('A closed.test'));
  });

  test('a server that accepts the connection but never answers → remote-server-timeout after s2s.connect_timeout', async (t) => {
    const port = await silentServer(t);
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { connect_timeout: '300ms', host_map: { 'silent.test': `127.0.0.1:${port}` } } } });
    const romeo = await online(a, 'romeo');
    const sent = Date.now();
    romeo.send(`<message to='juliet@silent.test' id='t1'><body>hello?</body></message>`);
    await romeo.expect(`<message type='error' from='juliet@silent.test' id='t1'><error type='wait'><remote-server-timeout xmlns='${STANZAS}'/></error></message>`);
    assert.ok(Date.now() - sent >= 250, 'not before the timeout');
  });

  test('more stanzas than s2s.max_queue while connecting → the extra ones bounce at once with resource-constraint', async (t) => {
    const port = await silentServer(t);
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { max_queue: 2, connect_timeout: '400ms', host_map: { 'silent.test': `127.0.0.1:${port}` } } } });
    const romeo = await online(a, 'romeo');
    for (let i = 1; i <= 3; i++) romeo.send(`<message to='juliet@silent.test' id='m${i}'><body>${i}</body></message>`);
    await romeo.expect(`<message type='error' id='m3'><error type='wait'><resource-constraint xmlns='${STANZAS}'/></error></message>`);
    await romeo.expect(`<message type='error' id='m1'><error><remote-server-timeout xmlns='${STANZAS}'/></error></message>`);
    await romeo.expect(`<message type='error' id='m2'><error><remote-server-timeout xmlns='${STANZAS}'/></error></message>`);
  });

  test('an error stanza for an unreachable domain is not answered with another error', async (t) => {
    const port = await closedPort();
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { host_map: { 'nowhere.test': `127.0.0.1:${port}` } } } });
    const romeo = await online(a, 'romeo');
    romeo.send(`<message to='juliet@nowhere.test' type='error' id='e1'><error type='cancel'><item-not-found xmlns='${STANZAS}'/></error></message>`);
    romeo.send(`<message to='juliet@nowhere.test' id='e2'><body>then this</body></message>`);
    await romeo.expect(`<message type='error' id='e2'/>`); // the first one's bounce would have come first
  });
});

describe('s2s: DNS resolution (s2s.dns_servers)', () => {
  test('an _xmpps-server SRV record leads to direct TLS (XEP-0368, ALPN xmpp-server); the reply comes back by host_map', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const dns = await startDnsStub(t, {
      srv: {
        '_xmpps-server._tcp.b.test': [{ priority: 0, weight: 5, port: b.s2sDirectTlsPort, target: 'xmpp.b.test' }],
        '_xmpp-server._tcp.b.test': [{ priority: 10, weight: 5, port: await closedPort(), target: 'xmpp.b.test' }],
      },
      a: { 'xmpp.b.test': ['127.0.0.1'] },
    });
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { dns_servers: [dns.address] } } });
    b.server.s2s.setRoute('a.test', `127.0.0.1:${a.s2sPort}`);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='srv1'><body>via SRV</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' id='srv1'/>`);
    juliet.send(`<message to='romeo@a.test' id='srv2'><body>back</body></message>`);
    await romeo.expect(`<message from='juliet@b.test/r1' id='srv2'/>`);
    const out = a.server.s2s.connections().find((c) => c.direction === 'out') as { secure: boolean; target?: { directTls: boolean; source: string; host: string } } | undefined;
    assert.equal(out?.target?.directTls, true);
    assert.equal(out?.target?.source, 'srv');
    assert.equal(out?.target?.host, 'xmpp.b.test');
    assert.equal(out?.secure, true);
  });

  test('when the first SRV target refuses the connection, the next one (by priority) is tried', async (t) => {
    const b = await startServer(t, { domain: 'b.test' });
    const dns = await startDnsStub(t, {
      srv: {
        '_xmpp-server._tcp.b.test': [
          { priority: 20, weight: 0, port: b.s2sPort, target: 'good.b.test' },
          { priority: 10, weight: 0, port: await closedPort(), target: 'bad.b.test' },
        ],
      },
      a: { 'good.b.test': ['127.0.0.1'], 'bad.b.test': ['127.0.0.1'] },
    });
    const a = await startServer(t, { domain: 'a.test', config: { s2s: { dns_servers: [dns.address] } } });
    b.server.s2s.setRoute('a.test', `127.0.0.1:${a.s2sPort}`);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='f1'><body>second try</body></message>`);
    await juliet.expect(`<message id='f1'/>`);
    const queried = dns.queries.filter((q) => q.startsWith('A '));
    assert.deepEqual(queried.slice(0, 2), ['A bad.b.test', 'A good.b.test']);
  });
});
