import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startServer, XmppClient } from '../../bin/testing.js';

/** Opens a raw WebSocket with the given subprotocols and collects its messages. */
async function rawSocket(url: string, protocols: string[] = ['xmpp']): Promise<{ ws: WebSocket; messages: string[]; next(): Promise<string>; closed: Promise<number> }> {
  const ws = new WebSocket(url, protocols);
  const messages: string[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (data) => {
    messages.push(String(data));
    wake?.();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let read = 0;
  return {
    ws,
    messages,
    closed,
    async next() {
      const deadline = Date.now() + 3000;
      while (messages.length <= read) {
        if (Date.now() > deadline) throw new Error(`no message; got: ${messages.join(' | ')}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      return messages[read++]!;
    },
  };
}

describe('websocket (RFC 7395)', () => {
  test('login, roster and a message over WebSocket, to a TCP client', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const romeo = await server.login('romeo', { resource: 'browser', websocket: server.websocketUrl });
    assert.equal(romeo.jid, 'romeo@localhost/browser');
    const roster = await romeo.iq(`<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`);
    assert.equal(roster.attrs.type, 'result');
    romeo.send(`<message xmlns='jabber:client' to='juliet@localhost/balcony' type='chat'><body>over ws</body></message>`);
    await juliet.expect(`<message from='romeo@localhost/browser' type='chat'><body>over ws</body></message>`);
    juliet.send(`<message to='romeo@localhost/browser' type='chat'><body>back over tcp</body></message>`);
    await romeo.expect(`<message from='juliet@localhost/balcony'><body>back over tcp</body></message>`);
  });

  test('each server message is one element: <open/>, features with xmlns:stream, stanzas with xmlns jabber:client', async (t) => {
    const server = await startServer(t);
    const raw = await rawSocket(server.websocketUrl);
    raw.ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`);
    const open = await raw.next();
    assert.match(open, /^<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='[^']+' from='localhost' version='1.0'/);
    const features = await raw.next();
    assert.match(features, /^<stream:features xmlns:stream='http:\/\/etherx.jabber.org\/streams'>/);
    assert.match(features, /SCRAM-SHA-1/);
    raw.ws.send(`<message xmlns='jabber:client' to='juliet@localhost'><body>hi</body></message>`);
    // Not authenticated: a stream error, then <close/>.
    const error = await raw.next();
    assert.match(error, /^<stream:error xmlns:stream='http:\/\/etherx.jabber.org\/streams'><not-authorized/);
    assert.equal(await raw.next(), `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`);
  });

  test('a message with two elements → not-well-formed', async (t) => {
    const server = await startServer(t);
    const raw = await rawSocket(server.websocketUrl);
    raw.ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/><open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`);
    while (!(await raw.next()).includes('not-well-formed'));
    assert.equal(await raw.closed, 1000);
  });

  test('a message holding half an element → not-well-formed', async (t) => {
    const server = await startServer(t);
    const raw = await rawSocket(server.websocketUrl);
    raw.ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'`);
    while (!(await raw.next()).includes('not-well-formed'));
  });

  test('without the xmpp subprotocol the upgrade is refused', async (t) => {
    const server = await startServer(t);
    await assert.rejects(rawSocket(server.websocketUrl, ['chat']));
  });

  test('<close/> from the client is answered with <close/> and the connection ends', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { websocket: server.websocketUrl });
    await romeo.close();
    assert.ok(romeo.streamClosedByServer || romeo.closed);
  });

  test('wss:// on the HTTPS listener: -PLUS offered (channel binding to the TLS under the WebSocket), SCRAM-SHA-256 login', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const probe = await XmppClient.connect({ port: 0, domain: 'localhost', websocket: server.secureWebsocketUrl });
    const mechanisms = probe.features!.getChild('mechanisms')!.getChildren('mechanism').map((m) => m.text());
    assert.ok(mechanisms.includes('SCRAM-SHA-256-PLUS'), mechanisms.join());
    await probe.close();
    const romeo = await XmppClient.login({ port: 0, domain: 'localhost', websocket: server.secureWebsocketUrl, username: 'romeo', password: 'password', mechanism: 'SCRAM-SHA-256' });
    assert.ok(romeo.jid.startsWith('romeo@localhost/'));
    await romeo.close();
  });

  test('host-meta (XEP-0156) lists the WebSocket endpoint, in XRD and JSON, to any origin', async (t) => {
    const server = await startServer(t);
    const base = `http://127.0.0.1:${server.server.ports.http}`;
    const xrd = await fetch(`${base}/.well-known/host-meta`);
    assert.equal(xrd.status, 200);
    assert.equal(xrd.headers.get('access-control-allow-origin'), '*');
    assert.match(await xrd.text(), /<Link rel='urn:xmpp:alt-connections:websocket' href='ws:\/\/127\.0\.0\.1:\d+\/xmpp-websocket'\/>/);
    const json = (await (await fetch(`${base}/.well-known/host-meta.json`)).json()) as { links: { rel: string; href: string }[] };
    assert.deepEqual(json.links[0]?.rel, 'urn:xmpp:alt-connections:websocket');
    assert.match(json.links[0]!.href, /^ws:\/\/127\.0\.0\.1:\d+\/xmpp-websocket$/);
    assert.equal((await fetch(`${base}/nothing-here`)).status, 404);
  });

  test('see_other_uri: the client is sent elsewhere with <close see-other-uri/>', async (t) => {
    const server = await startServer(t, { config: { http: { see_other_uri: 'wss://other.example/xmpp-websocket' } } });
    const raw = await rawSocket(server.websocketUrl);
    raw.ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`);
    assert.equal(await raw.next(), `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example/xmpp-websocket'/>`);
  });
});
