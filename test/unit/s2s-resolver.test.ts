// Finding a remote domain's server: s2s.host_map, SRV records mixed from _xmpps-server and
// _xmpp-server (XEP-0368) in RFC 2782 order, '.' targets, the address fallback, and host names
// resolved through s2s.dns_servers (a DNS stub on loopback).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { S2sResolver, ResolveError, orderSrv, parseHostPort } from '../../server/s2s/resolver.js';
import { startDnsStub } from '../wire/s2s-helpers.js';

/** A fixed sequence of "random" numbers, repeating. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('s2s resolver: RFC 2782 order', () => {
  test('lower priority first, whatever the weights', () => {
    const records = [
      { name: 'c', priority: 30, weight: 100 },
      { name: 'a', priority: 10, weight: 0 },
      { name: 'b', priority: 20, weight: 50 },
    ];
    assert.deepEqual(orderSrv(records, () => 0.99).map((r) => r.name), ['a', 'b', 'c']);
  });

  test('within one priority, the pick follows the running sum of weights', () => {
    const records = [
      { name: 'light', priority: 0, weight: 10 },
      { name: 'heavy', priority: 0, weight: 90 },
    ];
    // total 100: pick = floor(r * 101); 0..10 → light, 11..100 → heavy.
    assert.deepEqual(orderSrv(records, sequence(0.05, 0)).map((r) => r.name), ['light', 'heavy']);
    assert.deepEqual(orderSrv(records, sequence(0.5, 0)).map((r) => r.name), ['heavy', 'light']);
  });

  test('weights are honoured statistically: 90/10 split gives the heavy record first about 90% of the time', () => {
    const records = [
      { name: 'light', priority: 0, weight: 10 },
      { name: 'heavy', priority: 0, weight: 90 },
    ];
    let heavyFirst = 0;
    for (let i = 0; i < 2000; i++) if (orderSrv(records)[0]!.name === 'heavy') heavyFirst++;
    assert.ok(heavyFirst > 1650 && heavyFirst < 1950, `heavy first ${heavyFirst} of 2000`);
  });

  test('zero-weight records come last unless the draw is 0', () => {
    const records = [
      { name: 'zero', priority: 0, weight: 0 },
      { name: 'some', priority: 0, weight: 5 },
    ];
    assert.deepEqual(orderSrv(records, sequence(0.5)).map((r) => r.name), ['some', 'zero']);
    assert.deepEqual(orderSrv(records, sequence(0)).map((r) => r.name), ['zero', 'some']);
  });
});

describe('s2s resolver: host_map values', () => {
  test("'host:port', '[v6]:port', a bare host (port 5269)", () => {
    assert.deepEqual(parseHostPort('127.0.0.1:5270'), { host: '127.0.0.1', port: 5270 });
    assert.deepEqual(parseHostPort('[::1]:5271'), { host: '::1', port: 5271 });
    assert.deepEqual(parseHostPort('xmpp.example.net'), { host: 'xmpp.example.net', port: 5269 });
    assert.deepEqual(parseHostPort('::1'), { host: '::1', port: 5269 });
  });

  test('a bad port or garbage → an error naming the value', () => {
    assert.throws(() => parseHostPort('host:0'), /host:0/);
    assert.throws(() => parseHostPort('host:99999'), /host:99999/);
    assert.throws(() => parseHostPort('a b:1'), /a b:1/);
  });
});

describe('s2s resolver: resolution', () => {
  test('host_map wins over DNS (no query is sent)', async (t) => {
    const dns = await startDnsStub(t, {});
    const resolver = new S2sResolver({ hostMap: new Map([['b.test', '127.0.0.1:6000']]), dnsServers: [dns.address] });
    assert.deepEqual(await resolver.resolve('b.test'), [{ host: '127.0.0.1', port: 6000, directTls: false, source: 'host_map' }]);
    assert.deepEqual(dns.queries, []);
  });

  test('_xmpps-server and _xmpp-server records are one list ordered by priority (XEP-0368 §3)', async (t) => {
    const dns = await startDnsStub(t, {
      srv: {
        '_xmpps-server._tcp.b.test': [{ priority: 5, weight: 0, port: 5270, target: 'tls.b.test' }],
        '_xmpp-server._tcp.b.test': [
          { priority: 1, weight: 0, port: 5269, target: 'one.b.test' },
          { priority: 9, weight: 0, port: 5269, target: 'nine.b.test' },
        ],
      },
    });
    const resolver = new S2sResolver({ hostMap: new Map(), dnsServers: [dns.address] });
    assert.deepEqual(await resolver.resolve('b.test'), [
      { host: 'one.b.test', port: 5269, directTls: false, source: 'srv' },
      { host: 'tls.b.test', port: 5270, directTls: true, source: 'srv' },
      { host: 'nine.b.test', port: 5269, directTls: false, source: 'srv' },
    ]);
  });

  test("_xmpps-server '.' only rules out direct TLS; the _xmpp-server records still count", async (t) => {
    const dns = await startDnsStub(t, {
      srv: {
        '_xmpps-server._tcp.b.test': [{ priority: 0, weight: 0, port: 0, target: '.' }],
        '_xmpp-server._tcp.b.test': [{ priority: 0, weight: 0, port: 5269, target: 'xmpp.b.test' }],
      },
    });
    const resolver = new S2sResolver({ hostMap: new Map(), dnsServers: [dns.address] });
    assert.deepEqual(await resolver.resolve('b.test'), [{ host: 'xmpp.b.test', port: 5269, directTls: false, source: 'srv' }]);
  });

  test("_xmpp-server '.' alone → ResolveError (the domain offers no federation), no address fallback", async (t) => {
    const dns = await startDnsStub(t, { srv: { '_xmpp-server._tcp.b.test': [{ priority: 0, weight: 0, port: 0, target: '.' }] } });
    const resolver = new S2sResolver({ hostMap: new Map(), dnsServers: [dns.address] });
    await assert.rejects(resolver.resolve('b.test'), ResolveError);
  });

  test('no SRV records → the domain itself on port 5269 (RFC 6120 §3.2.2); its addresses come from the configured DNS', async (t) => {
    const dns = await startDnsStub(t, { a: { 'b.test': ['127.0.0.7'] } });
    const resolver = new S2sResolver({ hostMap: new Map(), dnsServers: [dns.address] });
    assert.deepEqual(await resolver.resolve('b.test'), [{ host: 'b.test', port: 5269, directTls: false, source: 'fallback' }]);
    assert.deepEqual(await resolver.addresses('b.test'), ['127.0.0.7']);
    assert.deepEqual(await resolver.addresses('none.test'), []);
    assert.deepEqual(await resolver.addresses('192.0.2.1'), ['192.0.2.1']);
  });
});
