// RFC 6120 §4: stream headers, stream errors, features, keepalives and closing, over real sockets.
import net from 'node:net';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { NS } from '../../server/protocol/ns.js';
import { builtinModules } from '../../modules/index.js';
import { connectPlain, connectTls, eventually, openRaw, streamHeader, mechanismsOf, sleep, slowStanzaIn, STREAMS_NS } from './c2s-helpers.js';

describe('c2s stream: header checks (RFC 6120 §4.7, §4.9.3)', () => {
  test('stream element in the wrong namespace → invalid-namespace', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({}, { streamNs: 'http://example.com/not-streams' }));
    await client.expectStreamError('invalid-namespace');
  });

  test('content namespace jabber:server on a client port → invalid-namespace', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({}, { contentNs: 'jabber:server' }));
    await client.expectStreamError('invalid-namespace');
  });

  test("'to' naming a domain this server does not serve → host-unknown", async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({ to: 'elsewhere.example' }));
    await client.expectStreamError('host-unknown');
  });

  test("'to' naming a user JID instead of the domain → host-unknown", async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({ to: 'romeo@localhost' }));
    await client.expectStreamError('host-unknown');
  });

  test('no version attribute → unsupported-version', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({ version: undefined }));
    await client.expectStreamError('unsupported-version');
  });

  test("version='0.9' → unsupported-version", async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({ version: '0.9' }));
    await client.expectStreamError('unsupported-version');
  });

  test("a 'from' that is not a JID → invalid-from", async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({ from: 'juliet@localhost/' }));
    await client.expectStreamError('invalid-from');
  });

  test("no 'to' attribute → the stream opens for the served domain", async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    await client.openStream(streamHeader({ to: undefined }));
    assert.equal(client.header?.attrs.from, 'localhost');
    assert.ok(client.features);
  });

  test("'to' in another case → normalised and accepted", async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    await client.openStream(streamHeader({ to: 'LocalHost' }));
    assert.equal(client.header?.attrs.from, 'localhost');
  });
});

describe('c2s stream: the server header (RFC 6120 §4.7)', () => {
  test("response header carries a fresh id, from=domain, version='1.0' and to=the client's from", async (t) => {
    const server = await startServer(t);
    const first = await openRaw(t, server);
    await first.openStream(streamHeader({ from: 'romeo@localhost' }));
    const header = first.header!;
    assert.equal(header.name, 'stream');
    assert.equal(header.ns, STREAMS_NS);
    assert.equal(header.contentNs, NS.CLIENT);
    assert.equal(header.attrs.from, 'localhost');
    assert.equal(header.attrs.version, '1.0');
    assert.equal(header.attrs.to, 'romeo@localhost');
    assert.ok(header.attrs.id && header.attrs.id.length >= 16, 'a stream id with enough entropy');
    const second = await connectPlain(t, server);
    assert.notEqual(second.header!.attrs.id, header.attrs.id, 'stream ids are unique');
  });

  test('every stream restart (after STARTTLS) gets a new header with a new id', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server);
    const before = client.header!.attrs.id;
    await client.startTls();
    assert.equal(client.header!.attrs.from, 'localhost');
    assert.notEqual(client.header!.attrs.id, before);
  });

  test('error before any header (not XML at all) → our header first, then not-well-formed (§4.9.1.1)', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw('<<this is not xml>>');
    await client.expectStreamError('not-well-formed');
    assert.equal(client.header?.attrs.from, 'localhost', 'the server header came before the error');
    assert.equal(client.header?.attrs.version, '1.0');
    assert.ok(client.header?.attrs.id);
  });

  test('stream error on a bad header → our header precedes it, with from=domain', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader({ to: 'elsewhere.example' }));
    await client.expectStreamError('host-unknown');
    assert.equal(client.header?.attrs.from, 'localhost');
    assert.equal(client.received[0]?.name, 'error', 'nothing but the error after the header');
  });
});

describe('c2s stream: features (RFC 6120 §4.3.2, §5.3.1)', () => {
  test('encryption required → starttls with <required/> and nothing else before TLS', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server);
    const features = client.features!;
    assert.equal(features.elements().length, 1, `only STARTTLS offered: ${features.toString()}`);
    const starttls = features.getChild('starttls', NS.TLS);
    assert.ok(starttls?.getChild('required'), 'STARTTLS is marked required');
  });

  test('encryption optional → starttls without <required/>, SCRAM offered, PLAIN and -PLUS not', async (t) => {
    const server = await startServer(t, { config: { c2s: { require_encryption: false } } });
    const client = await connectPlain(t, server);
    const features = client.features!;
    assert.equal(features.elements()[0]?.name, 'starttls', 'STARTTLS comes first');
    assert.equal(features.getChild('starttls', NS.TLS)?.getChild('required'), undefined);
    const mechanisms = mechanismsOf(features);
    assert.ok(mechanisms.includes('SCRAM-SHA-1') && mechanisms.includes('SCRAM-SHA-256'));
    assert.ok(!mechanisms.includes('PLAIN'), 'PLAIN is never offered in the clear');
    assert.ok(!mechanisms.some((m) => m.endsWith('-PLUS')), 'no channel binding without TLS');
    assert.equal(features.getChild('sasl-channel-binding', NS.SASL_CB), undefined);
  });

  test('after TLS → SASL mechanisms (with -PLUS and PLAIN), no STARTTLS', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    const features = client.features!;
    assert.equal(features.getChild('starttls', NS.TLS), undefined);
    const mechanisms = mechanismsOf(features);
    for (const m of ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']) assert.ok(mechanisms.includes(m), `${m} offered`);
  });

  test('after authentication → bind and session (optional)', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    await client.authenticate('romeo', 'password');
    const features = client.features!;
    assert.ok(features.getChild('bind', NS.BIND));
    assert.ok(features.getChild('session', NS.SESSION)?.getChild('optional'));
    assert.deepEqual(mechanismsOf(features), []);
  });
});

describe('c2s stream: keepalives and closing (RFC 6120 §4.4, §4.6)', () => {
  test('</stream:stream> from the client → the server answers </stream:stream> and closes', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw('</stream:stream>');
    await romeo.waitClosed();
    assert.ok(romeo.streamClosedByServer, 'server sent its closing tag');
    assert.equal(romeo.streamError, undefined);
    assert.equal(server.server.sessions.size, 0, 'the session ended');
  });

  test("after the client closed its stream, the server closes TCP without waiting for the client's FIN", async (t) => {
    const server = await startServer(t);
    // allowHalfOpen: this client never sends its FIN, so only the server can end the connection.
    const socket = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    t.after(() => socket.destroy());
    let received = '';
    let ended = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => (ended = true));
    socket.write(streamHeader());
    await eventually(() => received.includes('</stream:features>'), 'stream features');
    socket.write('</stream:stream>');
    await eventually(() => ended, "the server's FIN", 2000);
    assert.ok(received.endsWith('</stream:stream>'), 'the closing tag came before the FIN');
    // Before, the server waited for the client's FIN (or 5 s) before dropping the connection.
    await eventually(() => server.server.streams.size === 0, 'the connection gone on the server', 1000);
    assert.equal(socket.writableEnded, false, 'the client still had not sent its FIN');
  });

  test('stanzas sent right before </stream:stream> are all handled before the stream closes', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, slowStanzaIn] });
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const messages = [1, 2, 3].map((i) => `<message to='juliet@localhost/balcony' type='chat' id='last${i}'><body>${i}</body></message>`);
    romeo.sendRaw(messages.join('') + '</stream:stream>');
    for (const i of [1, 2, 3]) await juliet.expect(`<message id='last${i}'/>`);
    await romeo.waitClosed();
    assert.ok(romeo.streamClosedByServer);
  });

  test('whitespace keepalives between stanzas are accepted, even more of them than max_stanza_size', async (t) => {
    const server = await startServer(t, { config: { limits: { max_stanza_size: 2048 } } });
    const romeo = await server.login('romeo');
    for (let i = 0; i < 8; i++) romeo.sendRaw(' \n'.repeat(512));
    await sleep(50);
    const pong = await romeo.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(pong.attrs.type, 'result');
    assert.equal(romeo.streamError, undefined);
  });

  test('silence for keepalive_interval → the server sends a whitespace keepalive', async (t) => {
    const server = await startServer(t, { config: { c2s: { keepalive_interval: '300ms' } } });
    const romeo = await server.login('romeo');
    const whitespace = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no keepalive within 3 s')), 3000);
      romeo.rawSocket.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        if (text.trim() === '') {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    assert.match(whitespace, /^\s+$/);
  });

  test('server.stop() → connected clients get system-shutdown', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const unauthenticated = await connectPlain(t, server);
    const stopping = server.server.stop();
    await romeo.expectStreamError('system-shutdown');
    await unauthenticated.expectStreamError('system-shutdown');
    await stopping;
  });
});
