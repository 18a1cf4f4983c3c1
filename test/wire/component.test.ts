// External components, XEP-0114 (server/component.ts): the handshake and its refusals, routing
// between users and a connected component, the checks on what a component sends, and the bounces
// for a configured component that is not connected. The components here are raw sockets
// (component-helpers.ts) so every wrong input can be sent; test/wire/component-client.test.ts uses
// Herald's own component client.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { GATEWAY, SECRET, componentServer, connectComponent, handshake, openComponentStream, streamHeader, until } from './component-helpers.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { handshakeDigest } from '../../server/protocol/xep0114.js';

const ITEMS = 'http://jabber.org/protocol/disco#items';

describe('components: handshake (XEP-0114 §3)', () => {
  test('right secret → the server header names the domain, then an empty <handshake/>', async (t) => {
    const server = await componentServer(t);
    const gw = await openComponentStream(t, server, GATEWAY);
    const header = await streamHeader(gw);
    assert.equal(header.contentNs, 'jabber:component:accept');
    assert.equal(header.attrs.from, GATEWAY);
    assert.match(header.attrs.id ?? '', /^[0-9a-f]{24}$/);
    // Upper-case hex is accepted too (as Prosody does).
    gw.send(`<handshake>${handshakeDigest(header.attrs.id!, SECRET).toUpperCase()}</handshake>`);
    await gw.expect(`<handshake/>`, { strict: true });
    assert.equal(server.server.externalComponents.isConnected(GATEWAY), true);
  });

  test('wrong secret → not-authorized, and the domain stays unconnected', async (t) => {
    const server = await componentServer(t);
    const gw = await handshake(t, server, GATEWAY, 'not the secret');
    await gw.expectStreamError('not-authorized');
    assert.equal(server.server.externalComponents.isConnected(GATEWAY), false);
  });

  test('a domain that is not configured → host-unknown', async (t) => {
    const server = await componentServer(t);
    const other = await openComponentStream(t, server, 'other.localhost');
    await other.expectStreamError('host-unknown');
  });

  test('a stream header without to → improper-addressing', async (t) => {
    const server = await componentServer(t);
    const gw = await openComponentStream(t, server, GATEWAY, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`);
    await gw.expectStreamError('improper-addressing');
  });

  test('a jabber:client stream on the component port → invalid-namespace', async (t) => {
    const server = await componentServer(t);
    const gw = await openComponentStream(t, server, GATEWAY, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${GATEWAY}' version='1.0'>`);
    await gw.expectStreamError('invalid-namespace');
  });

  test('a stanza before the handshake → not-authorized, and it is not routed', async (t) => {
    const server = await componentServer(t);
    const juliet = await server.login('juliet');
    const gw = await openComponentStream(t, server, GATEWAY);
    await streamHeader(gw);
    gw.send(`<message from='${GATEWAY}' to='juliet@localhost'><body>early</body></message>`);
    await gw.expectStreamError('not-authorized');
    await juliet.expectNothing(200);
  });

  test('a second component for a connected domain → conflict; the first keeps its traffic', async (t) => {
    const server = await componentServer(t);
    const first = await connectComponent(t, server);
    const second = await handshake(t, server, GATEWAY, SECRET);
    await second.expectStreamError('conflict');
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message to='${GATEWAY}' id='m1'><body>still there?</body></message>`);
    await first.expect(`<message to='${GATEWAY}' from='romeo@localhost/r1' id='m1'><body>still there?</body></message>`);
  });

  test('a components entry naming the server domain → startup fails naming the key', async () => {
    await assert.rejects(
      startServer({ config: { components: { localhost: { secret: SECRET } } } }),
      (err: Error) => err.message.includes('components.localhost') && err.message.includes('serves itself'),
    );
  });

  test('a components entry on the domain of an in-process service → startup fails', async () => {
    await assert.rejects(startServer({ config: { components: { 'push.localhost': { secret: SECRET } } } }), /push\.localhost is served already/);
  });
});

describe('components: routing', () => {
  test('a user messages the component domain; the component receives it and answers the user', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message to='${GATEWAY}' id='m1' type='chat'><body>hello gateway</body></message>`);
    await gw.expect(`<message from='romeo@localhost/r1' to='${GATEWAY}' id='m1' type='chat'><body>hello gateway</body></message>`);
    gw.send(`<message from='bot@${GATEWAY}/x' to='romeo@localhost/r1' id='m2' type='chat'><body>hello romeo</body></message>`);
    await romeo.expect(`<message from='bot@${GATEWAY}/x' to='romeo@localhost/r1' id='m2' type='chat'><body>hello romeo</body></message>`);
  });

  test('a stanza the component writes with xmlns=jabber:client is routed like any other', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    const romeo = await server.login('romeo', { resource: 'r1' });
    gw.send(`<message xmlns='jabber:client' from='${GATEWAY}' to='romeo@localhost/r1' id='c1'><body>compat</body></message>`);
    await romeo.expect(`<message from='${GATEWAY}' id='c1'><body>compat</body></message>`);
  });

  test('a user IQ to a JID at the component gets the component answer', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const answer = romeo.iq(`<iq type='get' to='room@${GATEWAY}' id='q1'><query xmlns='jabber:iq:version'/></iq>`);
    const request = await gw.expect(`<iq type='get' from='romeo@localhost/r1' to='room@${GATEWAY}' id='q1'><query xmlns='jabber:iq:version'/></iq>`);
    gw.send(`<iq type='result' from='room@${GATEWAY}' to='${request.attrs.from}' id='q1'><query xmlns='jabber:iq:version'><name>gw</name></query></iq>`);
    assert.equal((await answer).getChild('query', 'jabber:iq:version')?.getChildText('name'), 'gw');
  });

  test('the component asks the server (ping to the domain) and gets the answer', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    const answer = await gw.iq(`<iq type='get' from='${GATEWAY}' to='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(answer.attrs.type, 'result', answer.toString());
    assert.equal(answer.attrs.to, GATEWAY);
  });

  test('a stanza from a domain that is not the component own → invalid-from, and nothing is delivered', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    const romeo = await server.login('romeo');
    gw.send(`<message from='admin@localhost' to='romeo@localhost'><body>spoofed</body></message>`);
    await gw.expectStreamError('invalid-from');
    await romeo.expectNothing(200);
    await until(() => !server.server.externalComponents.isConnected(GATEWAY), 'the component to be disconnected');
  });

  test('a subdomain of the component domain is not its own either → invalid-from', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    gw.send(`<message from='sub.${GATEWAY}' to='romeo@localhost'><body>spoofed</body></message>`);
    await gw.expectStreamError('invalid-from');
  });

  test('a stanza without to → improper-addressing', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    gw.send(`<message from='${GATEWAY}'><body>to whom?</body></message>`);
    await gw.expectStreamError('improper-addressing');
  });

  test('an IQ request without id → bad-request back to the component, the stream stays', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    gw.send(`<iq type='get' from='${GATEWAY}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await gw.expect(`<iq type='error' from='localhost' to='${GATEWAY}'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    await iqExpect(gw, `<iq type='get' from='${GATEWAY}' to='localhost' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>`, `<iq type='result' id='p2'/>`);
  });

  test('component not connected → message and IQ bounce with wait/service-unavailable; errors are not answered', async (t) => {
    const server = await componentServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message to='${GATEWAY}' id='m1'><body>anyone?</body></message>`);
    await romeo.expect(`<message type='error' from='${GATEWAY}' id='m1'>${stanzaErrorPattern('wait', 'service-unavailable')}</message>`);
    await iqExpect(
      romeo,
      `<iq type='get' to='${GATEWAY}' id='q1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      `<iq type='error' from='${GATEWAY}' id='q1'>${stanzaErrorPattern('wait', 'service-unavailable')}</iq>`,
    );
    romeo.send(`<message to='${GATEWAY}' type='error' id='e1'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    await romeo.expectNothing(200);
  });

  test('component connection lost → stanzas for it bounce from then on', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    const romeo = await server.login('romeo', { resource: 'r1' });
    gw.dropTcp();
    await until(() => !server.server.externalComponents.isConnected(GATEWAY), 'the component to be disconnected');
    romeo.send(`<message to='${GATEWAY}' id='m1'><body>gone?</body></message>`);
    await romeo.expect(`<message type='error' from='${GATEWAY}' id='m1'>${stanzaErrorPattern('wait', 'service-unavailable')}</message>`);
  });

  test('the component closes its stream → the server closes too, and it may connect again', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    await gw.close();
    assert.equal(gw.streamClosedByServer, true);
    await until(() => !server.server.externalComponents.isConnected(GATEWAY), 'the component to be disconnected');
    await connectComponent(t, server);
  });

  test('the configured component domains are in the server disco#items', async (t) => {
    const server = await componentServer(t, { 'irc.localhost': { secret: 'other' } });
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='d1'><query xmlns='${ITEMS}'/></iq>`,
      `<iq type='result' id='d1'><query xmlns='${ITEMS}'><item jid='${GATEWAY}'/><item jid='irc.localhost'/></query></iq>`,
    );
  });

  test('a stanza over limits.max_stanza_size from the component → policy-violation', async (t) => {
    const server = await componentServer(t, {}, { limits: { max_stanza_size: '4 KiB' } });
    const gw = await connectComponent(t, server);
    gw.send(`<message from='${GATEWAY}' to='romeo@localhost'><body>${'x'.repeat(5000)}</body></message>`);
    await gw.expectStreamError('policy-violation');
  });

  test('server shutdown → system-shutdown to the component', async (t) => {
    const server = await componentServer(t);
    const gw = await connectComponent(t, server);
    await server.stop();
    await gw.expectStreamError('system-shutdown');
  });
});
