// Federation between two Herald servers on loopback (a.test and b.test, each with a static route to
// the other): messages, IQs and presence subscriptions both ways over Server Dialback — their
// self-signed certificates are not trusted, which is the default case — queueing while a
// connection is set up, multiplexing a component domain on the server's stream, and idle close.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFederation, type TestServer } from '../../bin/testing.js';
import { defineModule, x } from '../../server/module-api.js';
import { builtinModules } from '../../modules/index.js';
import type { XmppClient } from '../../server/client.js';

const ROSTER = 'jabber:iq:roster';

async function pair(t: { after(fn: () => unknown): void }, config: Parameters<typeof startFederation>[1]['config'] = {}): Promise<[TestServer, TestServer]> {
  const [a, b] = await startFederation(t, { domain: 'a.test', config }, { domain: 'b.test', config });
  return [a!, b!];
}

async function online(server: TestServer, name: string): Promise<XmppClient> {
  const client = await server.login(name, { resource: 'r1' });
  client.send('<presence/>');
  await client.expect(`<presence from='${name}@${server.domain}/r1'/>`);
  return client;
}

describe('s2s: dialback between servers that do not trust each other’s certificates', () => {
  test('a message from a.test to b.test and the reply back arrive; both directions used dialback over TLS', async (t) => {
    const [a, b] = await pair(t);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    romeo.send(`<message to='juliet@b.test' type='chat' id='m1'><body>Wherefore art thou?</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' to='juliet@b.test' type='chat' id='m1'><body>Wherefore art thou?</body></message>`);
    juliet.send(`<message to='romeo@a.test/r1' type='chat' id='m2'><body>Here.</body></message>`);
    await romeo.expect(`<message from='juliet@b.test/r1' to='romeo@a.test/r1' type='chat' id='m2'><body>Here.</body></message>`);

    const out = a.server.s2s.outgoingTo('b.test');
    assert.deepEqual(out?.authenticated, { 'a.test': 'dialback' });
    assert.equal(out?.secure, true);
    assert.deepEqual(b.server.s2s.outgoingTo('a.test')?.authenticated, { 'b.test': 'dialback' });
    const incomingAtB = b.server.s2s.connections().filter((c) => c.direction === 'in' && c.remote === 'a.test');
    assert.deepEqual(incomingAtB.map((c) => c.authenticated), [{ 'a.test': 'dialback' }]);
  });

  test('stanzas sent while the connection is being set up are queued and delivered in order', async (t) => {
    const [a, b] = await pair(t);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    for (let i = 1; i <= 5; i++) romeo.send(`<message to='juliet@b.test' id='q${i}'><body>${i}</body></message>`);
    for (let i = 1; i <= 5; i++) await juliet.expect(`<message from='romeo@a.test/r1' id='q${i}'><body>${i}</body></message>`);
  });

  test('an IQ to the remote server is answered by it, the result routed back over the other stream', async (t) => {
    const [a] = await pair(t);
    const romeo = await online(a, 'romeo');
    const result = await romeo.iq(`<iq type='get' to='b.test' id='v1'><query xmlns='jabber:iq:version'/></iq>`);
    assert.equal(result.attrs.type, 'result');
    assert.equal(result.attrs.from, 'b.test');
    assert.equal(result.getChild('query', 'jabber:iq:version')?.getChildText('name'), 'Herald');
  });

  test('an IQ to an account that does not exist on the remote server → service-unavailable from there', async (t) => {
    const [a] = await pair(t);
    const romeo = await online(a, 'romeo');
    const result = await romeo.iq(`<iq type='get' to='nobody@b.test' id='v2'><query xmlns='jabber:iq:version'/></iq>`);
    assert.equal(result.attrs.type, 'error');
    assert.ok(result.getChild('error')?.getChild('service-unavailable'), 'service-unavailable');
  });

  test('presence subscription across domains both ways: rosters show both, presence flows', async (t) => {
    const [a, b] = await pair(t);
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    await romeo.iq(`<iq type='get' id='r0'><query xmlns='${ROSTER}'/></iq>`);
    await juliet.iq(`<iq type='get' id='r0'><query xmlns='${ROSTER}'/></iq>`);

    romeo.send(`<presence to='juliet@b.test' type='subscribe'/>`);
    await romeo.waitFor(`<iq type='set'><query xmlns='${ROSTER}'><item jid='juliet@b.test' subscription='none' ask='subscribe'/></query></iq>`);
    await juliet.waitFor(`<presence from='romeo@a.test' type='subscribe'/>`);
    juliet.send(`<presence to='romeo@a.test' type='subscribed'/>`);
    await romeo.waitFor(`<presence from='juliet@b.test' type='subscribed'/>`);
    await romeo.waitFor(`<iq type='set'><query xmlns='${ROSTER}'><item jid='juliet@b.test' subscription='to'/></query></iq>`);
    await romeo.waitFor(`<presence from='juliet@b.test/r1'/>`); // §3.1.5: her current presence follows the approval

    juliet.send(`<presence to='romeo@a.test' type='subscribe'/>`);
    await romeo.waitFor(`<presence from='juliet@b.test' type='subscribe'/>`);
    romeo.send(`<presence to='juliet@b.test' type='subscribed'/>`);
    await juliet.waitFor(`<iq type='set'><query xmlns='${ROSTER}'><item jid='romeo@a.test' subscription='both'/></query></iq>`);
    await juliet.waitFor(`<presence from='romeo@a.test/r1'/>`);

    const romeoRoster = await romeo.iq(`<iq type='get' id='r1'><query xmlns='${ROSTER}'/></iq>`);
    assert.equal(romeoRoster.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription, 'both');
    // Presence now follows the subscription: an update from romeo reaches juliet.
    romeo.send(`<presence><show>away</show></presence>`);
    await juliet.waitFor(`<presence from='romeo@a.test/r1'><show>away</show></presence>`);
  });
});

/** A component on a.test ('svc.a.test') that answers every message it gets with one to `forward_to`. */
const relayComponent = defineModule({
  name: 'test_relay',
  setup(m) {
    const svc = m.component('svc');
    svc.onMessage(({ stanza, from }) => {
      const target = stanza.getChildText('body') ?? '';
      m.route(x('message', { from: svc.domain, to: target, id: `relay-${stanza.attrs.id ?? ''}` }, x('body', null, `relayed for ${from.bareString}`)));
    });
  },
});

describe('s2s: multiplexing (XEP-0220 §2.6)', () => {
  test('a component domain of a.test sends to b.test on the a.test stream, authenticated by its own dialback', async (t) => {
    const [a, b] = await startFederation(
      t,
      { domain: 'a.test', moduleList: [...builtinModules, relayComponent] },
      { domain: 'b.test' },
    );
    const romeo = await online(a!, 'romeo');
    const juliet = await online(b!, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='first'><body>hello</body></message>`);
    await juliet.expect(`<message from='romeo@a.test/r1' id='first'/>`);
    romeo.send(`<message to='svc.a.test' id='x1'><body>juliet@b.test</body></message>`);
    await juliet.expect(`<message from='svc.a.test' id='relay-x1'><body>relayed for romeo@a.test</body></message>`);

    const outgoing = a!.server.s2s.connections().filter((c) => c.direction === 'out');
    assert.equal(outgoing.length, 1, 'one stream to b.test carries both domains');
    // The other way: b.test opens a stream to the component's domain, which a.test accepts as its own.
    juliet.send(`<message to='svc.a.test' id='x2'><body>romeo@a.test</body></message>`);
    await romeo.expect(`<message from='svc.a.test' id='relay-x2'><body>relayed for juliet@b.test</body></message>`);
    assert.deepEqual(outgoing[0]!.authenticated, { 'a.test': 'dialback', 'svc.a.test': 'dialback' });
    const incoming = b!.server.s2s.connections().filter((c) => c.direction === 'in' && c.remote === 'a.test');
    assert.deepEqual(incoming.map((c) => c.authenticated), [{ 'a.test': 'dialback', 'svc.a.test': 'dialback' }]);
  });
});

describe('s2s: idle connections', () => {
  test('connections without stanzas for s2s.idle_timeout close cleanly; the next stanza opens a new one', async (t) => {
    const [a, b] = await pair(t, { s2s: { idle_timeout: '300ms' } });
    const romeo = await online(a, 'romeo');
    const juliet = await online(b, 'juliet');
    romeo.send(`<message to='juliet@b.test' id='i1'><body>one</body></message>`);
    await juliet.expect(`<message id='i1'/>`);
    assert.equal(a.server.s2s.connections().length > 0, true);
    const deadline = Date.now() + 3000;
    while ((a.server.s2s.connections().length > 0 || b.server.s2s.connections().length > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(a.server.s2s.connections(), []);
    assert.deepEqual(b.server.s2s.connections(), []);
    romeo.send(`<message to='juliet@b.test' id='i2'><body>two</body></message>`);
    await juliet.expect(`<message id='i2'/>`);
  });
});
