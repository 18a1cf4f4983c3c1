// XEP-0114 handshake digest (server/protocol/xep0114.ts) and the `herald appserver` argument parsing
// (bin/appserver.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { componentStreamHeader, handshakeDigest, handshakeMatches, serverStreamHeader } from '../../server/protocol/xep0114.js';
import { appServerConfig, componentDomain, hostPort, INTERNAL_DOMAIN } from '../../bin/appserver.js';
import { configSchema } from '../../conf/schema.js';

describe('xep0114: handshake', () => {
  test('digest = lowercase hex SHA-1 of stream id + secret', () => {
    // echo -n '3BF96D32secret' | sha1sum
    assert.equal(handshakeDigest('3BF96D32', 'secret'), 'b09ea9b3b7f586be8a08d0a3dd7466f110aeb136');
    assert.equal(handshakeDigest('id', 'sécret'), createHash('sha1').update('idsécret', 'utf8').digest('hex'));
  });

  test('matches: case and surrounding whitespace do not matter; another secret or id does', () => {
    const digest = handshakeDigest('abc', 's3cret');
    assert.equal(handshakeMatches(digest, 'abc', 's3cret'), true);
    assert.equal(handshakeMatches(`  ${digest.toUpperCase()}\n`, 'abc', 's3cret'), true);
    assert.equal(handshakeMatches(digest, 'abd', 's3cret'), false);
    assert.equal(handshakeMatches(digest, 'abc', 'other'), false);
    assert.equal(handshakeMatches('', 'abc', 's3cret'), false);
    assert.equal(handshakeMatches(digest.slice(1), 'abc', 's3cret'), false);
  });

  test('stream headers: jabber:component:accept, no version, attributes escaped', () => {
    assert.equal(componentStreamHeader('gw.example'), `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example'>`);
    assert.match(serverStreamHeader("a'b", 'i&d'), /from='a&apos;b' id='i&amp;d'>$/);
  });
});

describe('herald appserver: arguments and config', () => {
  test('host:port, [IPv6]:port, host alone (5347); bad ports refused', () => {
    assert.deepEqual(hostPort('127.0.0.1:5347'), { host: '127.0.0.1', port: 5347 });
    assert.deepEqual(hostPort('[::1]:6000'), { host: '::1', port: 6000 });
    assert.deepEqual(hostPort('xmpp.example.org'), { host: 'xmpp.example.org', port: 5347 });
    assert.throws(() => hostPort('host:0'), /port/);
    assert.throws(() => hostPort('host:99999'), /port/);
    assert.throws(() => hostPort('a b:1'), /host:port/);
  });

  test('the component domain is normalised and needs a dot', () => {
    assert.equal(componentDomain('Push.Example.ORG'), 'push.example.org');
    assert.throws(() => componentDomain('push'), /component domain/);
    assert.throws(() => componentDomain('user@push.example.org'));
  });

  test('the inner config: no listeners but HTTP when asked, only the app server modules, push service and app server on the domain', () => {
    const base = configSchema.parse({ modules: { appserver: { max_devices: 3 }, push: { include_body: true } }, modules_disabled: ['pubsub'], components: { 'x.localhost': { secret: 's' } } });
    const config = appServerConfig({ component: 'localhost:5347', domain: 'push.example.org', secret: 's', config: base, httpPort: 0 });
    assert.equal(config.domain, INTERNAL_DOMAIN);
    for (const key of ['c2s', 'c2s_direct_tls', 's2s', 's2s_direct_tls', 'component', 'http', 'https'] as const) assert.equal(config.listen[key], 0, key);
    assert.deepEqual(config.components, {});
    assert.deepEqual(config.modules_disabled, []);
    assert.deepEqual(config.modules, { appserver: { max_devices: 3, jid: 'push.example.org', allow_remote: true }, pubsub: { push_service: 'push.example.org' } });
    assert.equal(appServerConfig({ component: 'localhost', domain: 'push.example.org', secret: 's', config: base }).listen.http, base.listen.http, 'a given config keeps its HTTP listener');
    assert.equal(appServerConfig({ component: 'localhost', domain: 'push.example.org', secret: 's' }).listen.http, 0, 'no config: no HTTP');
  });
});
