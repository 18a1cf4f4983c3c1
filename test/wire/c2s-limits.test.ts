// Abuse limits on client streams: XML limits (RFC 6120 §11, §13.12), restricted XML, UTF-8,
// per-IP connections, slow readers and the read rate, over real sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { connectPlain, eventually, openRaw, sleep, streamHeader } from './c2s-helpers.js';

const PING = `<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;

describe('c2s limits: XML size and shape', () => {
  test('stanza larger than limits.max_stanza_size → policy-violation', async (t) => {
    const server = await startServer(t, { config: { limits: { max_stanza_size: 4096 } } });
    const romeo = await server.login('romeo');
    romeo.send(`<message to='juliet@localhost'><body>${'x'.repeat(5000)}</body></message>`);
    await romeo.expectStreamError('policy-violation');
  });

  test('stanza just under limits.max_stanza_size → delivered', async (t) => {
    const server = await startServer(t, { config: { limits: { max_stanza_size: 4096 } } });
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const body = 'x'.repeat(3800);
    romeo.send(`<message to='juliet@localhost/balcony' type='chat' id='big'><body>${body}</body></message>`);
    const got = await juliet.expect(`<message id='big'/>`);
    assert.equal(got.getChildText('body'), body);
  });

  test('a never-ending start tag is cut off at the limit → policy-violation', async (t) => {
    const server = await startServer(t, { config: { limits: { max_stanza_size: 4096 } } });
    const romeo = await server.login('romeo');
    romeo.sendRaw(`<message to='juliet@localhost' `);
    for (let i = 0; i < 8; i++) romeo.sendRaw(`a${i}='${'y'.repeat(1000)}' `);
    await romeo.expectStreamError('policy-violation');
  });

  test('nesting deeper than limits.max_xml_depth → policy-violation', async (t) => {
    const server = await startServer(t, { config: { limits: { max_xml_depth: 8 } } });
    const romeo = await server.login('romeo');
    romeo.send(`<message to='juliet@localhost'>${'<a>'.repeat(10)}${'</a>'.repeat(10)}</message>`);
    await romeo.expectStreamError('policy-violation');
  });

  test('nesting within limits.max_xml_depth → accepted', async (t) => {
    const server = await startServer(t, { config: { limits: { max_xml_depth: 8 } } });
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(`<message to='juliet@localhost/balcony' type='chat' id='deep'><x xmlns='urn:example'>${'<a>'.repeat(4)}${'</a>'.repeat(4)}</x></message>`);
    await juliet.expect(`<message id='deep'/>`);
  });

  test('more attributes than limits.max_attributes → policy-violation', async (t) => {
    const server = await startServer(t, { config: { limits: { max_attributes: 8 } } });
    const romeo = await server.login('romeo');
    const attrs = Array.from({ length: 10 }, (_, i) => `a${i}='v'`).join(' ');
    romeo.send(`<message to='juliet@localhost'><x xmlns='urn:example' ${attrs}/></message>`);
    await romeo.expectStreamError('policy-violation');
  });

  test('attribute longer than limits.max_attribute_length → policy-violation', async (t) => {
    const server = await startServer(t, { config: { limits: { max_attribute_length: 1024 } } });
    const romeo = await server.login('romeo');
    romeo.send(`<message to='juliet@localhost' id='${'i'.repeat(2000)}'/>`);
    await romeo.expectStreamError('policy-violation');
  });
});

describe('c2s limits: encoding (RFC 6120 §11.6)', () => {
  test('invalid UTF-8 bytes in a stanza → not-well-formed', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(Buffer.concat([Buffer.from(`<message to='juliet@localhost'><body>`), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`</body></message>`)]));
    await romeo.expectStreamError('not-well-formed');
  });

  test('an overlong UTF-8 encoding (0xC0 0xAF for "/") → not-well-formed', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(Buffer.concat([Buffer.from(`<message to='juliet@localhost'><body>`), Buffer.from([0xc0, 0xaf]), Buffer.from(`</body></message>`)]));
    await romeo.expectStreamError('not-well-formed');
  });

  test('invalid UTF-8 before the stream header → our header, then not-well-formed', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(Buffer.from([0x3c, 0xff, 0xff, 0x3e]));
    await client.expectStreamError('not-well-formed');
    assert.equal(client.header?.attrs.from, 'localhost');
  });

  test('a declared encoding other than UTF-8 → unsupported-encoding', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(streamHeader().replace(`<?xml version='1.0'?>`, `<?xml version='1.0' encoding='ISO-8859-1'?>`));
    await client.expectStreamError('unsupported-encoding');
  });

  test('a multi-byte character split across two TCP writes → delivered intact', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const text = 'rose \u{1F339} and \u00e9t\u00e9 \u4e2d';
    const bytes = Buffer.from(`<message to='juliet@localhost/balcony' type='chat' id='u8'><body>${text}</body></message>`);
    // Cut inside the 4-byte U+1F339, and again inside the 2-byte U+00E9.
    const rose = bytes.indexOf(Buffer.from('\u{1F339}'));
    const e = bytes.indexOf(Buffer.from('\u00e9'));
    romeo.sendRaw(bytes.subarray(0, rose + 2));
    await sleep(40);
    romeo.sendRaw(bytes.subarray(rose + 2, e + 1));
    await sleep(40);
    romeo.sendRaw(bytes.subarray(e + 1));
    const got = await juliet.expect(`<message id='u8'/>`);
    assert.equal(got.getChildText('body'), text);
  });
});

describe('c2s limits: restricted XML (RFC 6120 §11.1)', () => {
  test('DOCTYPE before the stream header → restricted-xml', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server);
    client.sendRaw(`<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'boom'>]>` + streamHeader().replace(`<?xml version='1.0'?>`, ''));
    await client.expectStreamError('restricted-xml');
  });

  test('comment inside a stanza → restricted-xml', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(`<message to='juliet@localhost'><!-- note --><body>x</body></message>`);
    await romeo.expectStreamError('restricted-xml');
  });

  test('comment between stanzas → restricted-xml', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(`<!-- between -->`);
    await romeo.expectStreamError('restricted-xml');
  });

  test('processing instruction → restricted-xml', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(`<?evil data?>`);
    await romeo.expectStreamError('restricted-xml');
  });

  test('reference to an undeclared entity → restricted-xml', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(`<message to='juliet@localhost'><body>&boom;</body></message>`);
    await romeo.expectStreamError('restricted-xml');
  });

  test('predefined and numeric character references → accepted and decoded', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.sendRaw(`<message to='juliet@localhost/balcony' type='chat' id='ent'><body>&lt;&amp;&gt;&apos;&quot;&#233;&#x1F339;</body></message>`);
    const got = await juliet.expect(`<message id='ent'/>`);
    assert.equal(got.getChildText('body'), `<&>'"\u00e9\u{1F339}`);
  });

  test('text between stanzas → bad-format', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.sendRaw(`stray text`);
    await romeo.expectStreamError('bad-format');
  });
});

describe('c2s limits: connections and throughput', () => {
  test('more than limits.max_connections_per_ip → the extra connection gets policy-violation; a slot frees on close', async (t) => {
    const server = await startServer(t, { config: { limits: { exempt: [], max_connections_per_ip: 2 } } });
    const first = await connectPlain(t, server);
    await connectPlain(t, server);
    const extra = await openRaw(t, server);
    await extra.expectStreamError('policy-violation');
    assert.equal(extra.header?.attrs.from, 'localhost', 'a stream header precedes the error');
    await first.close();
    await eventually(() => server.server.streams.size === 1, 'the first connection to be gone');
    const again = await connectPlain(t, server);
    assert.ok(again.features);
  });

  test('loopback is exempt from max_connections_per_ip by default', async (t) => {
    const server = await startServer(t, { config: { limits: { max_connections_per_ip: 1 } } });
    await connectPlain(t, server);
    const second = await connectPlain(t, server);
    assert.ok(second.features);
  });

  test('a client that never reads is disconnected once limits.max_write_queue is exceeded; others carry on', async (t) => {
    // Without the message archive: storing thousands of 16 KiB messages twice is not what this measures.
    const server = await startServer(t, { config: { limits: { max_write_queue: '64 KiB' }, modules_disabled: ['mam'] } });
    const romeo = await server.login('romeo', { resource: 'slow' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.rawSocket.pause();
    const body = 'z'.repeat(16 * 1024);
    const gone = () => server.server.sessions.get('romeo@localhost', 'slow') === undefined;
    // Kernel socket buffers absorb a few MB first; keep writing until the server gives up on romeo.
    for (let sent = 0; !gone() && sent < 4000; sent += 50) {
      for (let i = 0; i < 50; i++) juliet.send(`<message to='romeo@localhost/slow' type='chat'><body>${body}</body></message>`);
      await sleep(15);
    }
    await eventually(gone, 'the slow reader to be disconnected');
    assert.equal((await juliet.iq(PING)).attrs.type, 'result', 'the sender is unaffected');
    const nurse = await server.login('nurse');
    assert.equal((await nurse.iq(PING)).attrs.type, 'result', 'new logins work');
    romeo.rawSocket.resume();
    await romeo.waitClosed();
  });

  test('a client sending faster than limits.read_rate is slowed down, and everything arrives', async (t) => {
    const server = await startServer(t, { config: { limits: { exempt: [], read_rate: '64 KiB', read_burst: '8 KiB' } } });
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const body = 'r'.repeat(4000);
    const count = 16; // ~64 KiB: about one second at 64 KiB/s after the 8 KiB burst
    const started = Date.now();
    for (let i = 0; i < count; i++) romeo.send(`<message to='juliet@localhost/balcony' type='chat' id='m${i}'><body>${body}</body></message>`);
    for (let i = 0; i < count; i++) {
      const got = await juliet.expect(`<message id='m${i}'/>`, { timeoutMs: 10_000 });
      assert.equal(got.getChildText('body')?.length, body.length);
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 500, `read_rate did not slow the sender down (${elapsed} ms for ~64 KiB at 64 KiB/s)`);
    assert.equal(romeo.streamError, undefined);
    assert.equal((await romeo.iq(PING)).attrs.type, 'result');
  });
});
