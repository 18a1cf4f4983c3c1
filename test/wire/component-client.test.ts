// Herald's XEP-0114 component client (server/component-client.ts), against Herald's component port:
// the handshake, stanzas both ways, reconnection with backoff, refusals, and a clean stop.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ComponentClient, type ComponentClientOptions } from '../../server/component-client.js';
import { silentLogger } from '../../server/log.js';
import { x, type XmlElement } from '../../server/xml/element.js';
import { GATEWAY, SECRET, componentServer, freePort, until } from './component-helpers.js';
import { connect, createServer } from 'node:net';
import { createHash } from 'node:crypto';

/** A component client for gw.localhost that keeps what it receives. */
function client(t: { after(fn: () => unknown): void }, port: number, options: Partial<ComponentClientOptions> = {}): { link: ComponentClient; received: XmlElement[]; events: string[] } {
  const received: XmlElement[] = [];
  const events: string[] = [];
  const link = new ComponentClient(
    { host: '127.0.0.1', port, domain: GATEWAY, secret: SECRET, log: silentLogger, reconnect: { minDelayMs: 20, maxDelayMs: 100 }, ...options },
    { stanza: (el) => received.push(el), connected: () => events.push('connected'), disconnected: (reason) => events.push(`disconnected: ${reason}`) },
  );
  t.after(() => link.stop());
  link.start();
  return { link, received, events };
}

describe('component client (XEP-0114, connecting side)', () => {
  test('handshake, then a user message comes in and the answer goes out', async (t) => {
    const server = await componentServer(t);
    const { link, received } = client(t, server.componentPort);
    await link.whenConnected();
    assert.equal(server.server.externalComponents.isConnected(GATEWAY), true);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message to='echo@${GATEWAY}' id='m1'><body>ping</body></message>`);
    await until(() => received.length > 0, 'the message at the component');
    assert.equal(received[0]!.attrs.from, 'romeo@localhost/r1');
    assert.equal(received[0]!.getChildText('body'), 'ping');
    assert.equal(link.send(x('message', { from: `echo@${GATEWAY}`, to: 'romeo@localhost/r1', id: 'm2' }, x('body', null, 'pong'))), true);
    await romeo.expect(`<message from='echo@${GATEWAY}' id='m2'><body>pong</body></message>`);
  });

  test('the server drops the connection → disconnected, then reconnected, and stanzas flow again', async (t) => {
    const server = await componentServer(t);
    const { link, received, events } = client(t, server.componentPort);
    await link.whenConnected();
    server.server.externalComponents.disconnect(GATEWAY);
    await until(() => events.length >= 3, 'a reconnection');
    assert.equal(events[0], 'connected');
    assert.match(events[1]!, /^disconnected: stream error: reset/);
    assert.equal(events[2], 'connected');
    await until(() => server.server.externalComponents.isConnected(GATEWAY), 'the server to see it again');
    const romeo = await server.login('romeo');
    romeo.send(`<message to='${GATEWAY}' id='m3'><body>again</body></message>`);
    await until(() => received.some((el) => el.attrs.id === 'm3'), 'the message after reconnecting');
  });

  test('nothing listening yet → send() refuses, and it retries until the server is there', async (t) => {
    const server = await componentServer(t);
    const port = await freePort();
    const { link } = client(t, port);
    await until(() => link.lastError !== undefined, 'a failed attempt');
    assert.match(link.lastError!, /socket error/);
    assert.equal(link.send(x('message', { from: GATEWAY, to: 'romeo@localhost' })), false, 'nothing is sent while disconnected');
    // Now something listens there: a relay to the server's component port.
    const relay = createServer((socket) => {
      const upstream = connect(server.componentPort, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => relay.close(resolve)));
    await link.whenConnected(3000);
    assert.equal(link.lastError, undefined);
    await link.stop();
  });

  test('wrong secret → not-authorized, never connected', async (t) => {
    const server = await componentServer(t);
    const { link, events } = client(t, server.componentPort, { secret: 'wrong' });
    await until(() => link.lastError === 'not-authorized', 'the refusal');
    await assert.rejects(link.whenConnected(200), /not-authorized/);
    assert.deepEqual(events, []);
  });

  test('an unknown domain → host-unknown', async (t) => {
    const server = await componentServer(t);
    const { link } = client(t, server.componentPort, { domain: 'nope.localhost' });
    await until(() => link.lastError === 'host-unknown', 'the refusal');
  });

  test('a scripted server: the header names the domain, the digest is SHA-1(id + secret), and jabber:client stanzas are taken', async (t) => {
    let received = '';
    const relay = createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString();
        if (received.includes(`to='${GATEWAY}'>`) && !received.includes('<handshake')) {
          socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='${GATEWAY}' id='3BF96D32'>`);
        }
        const digest = createHash('sha1').update(`3BF96D32${SECRET}`).digest('hex');
        if (received.includes(`<handshake>${digest}</handshake>`) && !received.includes('sent')) {
          received += 'sent';
          socket.write(`<handshake/><message xmlns='jabber:client' from='romeo@example.org/r' to='${GATEWAY}' id='c1'><body>hi</body></message>`);
        }
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => relay.close(resolve)));
    const port = (relay.address() as { port: number }).port;
    const { link, received: stanzas } = client(t, port);
    await link.whenConnected();
    assert.match(received, /^<\?xml version='1.0'\?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http:\/\/etherx.jabber.org\/streams' to='gw.localhost'>/);
    await until(() => stanzas.length > 0, 'the message');
    assert.equal(stanzas[0]!.toString(), `<message from='romeo@example.org/r' to='${GATEWAY}' id='c1'><body>hi</body></message>`);
    await link.stop();
  });

  test('stop() closes the stream: the server sees the component go, and it does not come back', async (t) => {
    const server = await componentServer(t);
    const { link } = client(t, server.componentPort);
    await link.whenConnected();
    await link.stop();
    await until(() => !server.server.externalComponents.isConnected(GATEWAY), 'the server to see it go');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(server.server.externalComponents.isConnected(GATEWAY), false);
    assert.equal(link.connected, false);
  });
});
