// RFC 6120 §5 STARTTLS and XEP-0368 direct TLS, over real sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startServer } from '../../bin/testing.js';
import { XmppClient } from '../../server/client.js';
import { NS } from '../../server/protocol/ns.js';
import { connectPlain, connectTls, mechanismsOf, openRaw, sleep, streamHeader, TLS_NS, SASL_NS } from './c2s-helpers.js';

const PLAIN_ROMEO = Buffer.from('\0romeo\0password').toString('base64');

/** Upgrades a raw client socket to TLS by hand (after the test already saw <proceed/>). */
function upgrade(client: XmppClient): Promise<TLSSocket> {
  const raw = client.rawSocket;
  raw.removeAllListeners('data');
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => resolve(secure));
    secure.once('error', reject);
  });
}

/** Reads from a TLS socket until `pattern` shows up in the accumulated text. */
function readUntil(socket: TLSSocket, pattern: RegExp, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out; got: ${text}`)), ms);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

describe('c2s TLS: STARTTLS (RFC 6120 §5.4)', () => {
  test('<starttls/> → <proceed/>, TLS handshake, restarted stream over TLS', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server);
    assert.ok(!client.secure);
    client.sendRaw(`<starttls xmlns='${TLS_NS}'/>`);
    await client.expect(`<proceed xmlns='${TLS_NS}'/>`);
    const secure = await upgrade(client);
    assert.ok(secure.encrypted);
    secure.write(streamHeader());
    const text = await readUntil(secure, /<\/stream:features>/);
    assert.match(text, /<stream:stream [^>]*from='localhost'/);
    assert.match(text, /<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>/);
    assert.doesNotMatch(text, /starttls/);
    secure.destroy();
  });

  test('plaintext sent right after <starttls/> in the same packet is discarded (no injection)', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectPlain(t, server);
    // A man in the middle appends a stream header and commands to the client's STARTTLS request.
    client.sendRaw(`<starttls xmlns='${TLS_NS}'/>${streamHeader({ to: 'evil.example' })}<auth xmlns='${SASL_NS}' mechanism='PLAIN'>${PLAIN_ROMEO}</auth>`);
    await client.expect(`<proceed xmlns='${TLS_NS}'/>`);
    const secure = await upgrade(client);
    // Had the injected header been kept, this stream would be "to evil.example" → host-unknown; had
    // the <auth/> been kept, a <success/> would arrive unasked.
    secure.write(streamHeader());
    const text = await readUntil(secure, /<\/stream:features>/);
    assert.doesNotMatch(text, /stream:error|success|failure/);
    assert.match(text, /<mechanisms /);
    await sleep(100);
    secure.destroy();
  });

  test('elements queued behind a slow step before STARTTLS do not run after it (no injection)', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server);
    // <auth/> in the clear is answered asynchronously; <starttls/> and <presence/> wait behind it.
    // Once TLS is up, the plaintext <presence/> must not be acted on as if it came over TLS.
    client.sendRaw(`<auth xmlns='${SASL_NS}' mechanism='SCRAM-SHA-1'>biwsbj1yb21lbyxyPWFiY2RlZg==</auth><starttls xmlns='${TLS_NS}'/><presence/>`);
    await client.expect(`<failure xmlns='${SASL_NS}'><encryption-required/></failure>`);
    await client.expect(`<proceed xmlns='${TLS_NS}'/>`);
    const secure = await upgrade(client);
    secure.write(streamHeader());
    const text = await readUntil(secure, /<\/stream:features>/);
    assert.doesNotMatch(text, /stream:error/);
    assert.match(text, /<mechanisms /);
    secure.destroy();
  });

  test('<starttls/> on a stream that is already encrypted → <failure/> and the stream closes', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    client.sendRaw(`<starttls xmlns='${TLS_NS}'/>`);
    await client.expect(`<failure xmlns='${TLS_NS}'/>`);
    await client.waitClosed();
    assert.ok(client.streamClosedByServer);
  });

  test('<auth/> before STARTTLS when encryption is required → failure encryption-required, stream stays open', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectPlain(t, server);
    client.sendRaw(`<auth xmlns='${SASL_NS}' mechanism='SCRAM-SHA-1'>biwsbj1yb21lbyxyPWFiY2RlZg==</auth>`);
    await client.expect(`<failure xmlns='${SASL_NS}'><encryption-required/></failure>`);
    await client.startTls();
    await client.authenticate('romeo', 'password');
    assert.ok(client.features?.getChild('bind', NS.BIND));
  });

  test('a stanza before STARTTLS when encryption is required → policy-violation (as ejabberd)', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server);
    client.sendRaw(`<message to='juliet@localhost'><body>in the clear</body></message>`);
    await client.expectStreamError('policy-violation');
  });

  test('an unknown element before STARTTLS when encryption is required → policy-violation', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server);
    client.sendRaw(`<enable xmlns='urn:xmpp:sm:3'/>`);
    await client.expectStreamError('policy-violation');
  });

  test('SCRAM without TLS when encryption is optional → works (no STARTTLS needed)', async (t) => {
    const server = await startServer(t, { config: { c2s: { require_encryption: false } } });
    const romeo = await server.login('romeo', { noTls: true });
    assert.ok(!romeo.secure);
    assert.equal(romeo.jid.split('/')[0], 'romeo@localhost');
  });
});

describe('c2s TLS: direct TLS (XEP-0368)', () => {
  test("direct TLS with ALPN 'xmpp-client' → negotiated, no STARTTLS offered, login works", async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server, { directTls: true });
    assert.equal((client.rawSocket as TLSSocket).alpnProtocol, 'xmpp-client');
    assert.equal(client.features?.getChild('starttls', NS.TLS), undefined);
    assert.ok(mechanismsOf(client.features!).includes('SCRAM-SHA-256-PLUS'));
    const romeo = await server.login('romeo', { directTls: true, resource: 'direct' });
    assert.equal(romeo.jid, 'romeo@localhost/direct');
    const pong = await romeo.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(pong.attrs.type, 'result');
  });

  test('direct TLS without ALPN → still accepted', async (t) => {
    const server = await startServer(t);
    const client = await connectPlain(t, server, { directTls: true, alpnProtocols: [] });
    assert.ok(client.secure);
  });

  test('direct TLS with only a foreign ALPN protocol → the handshake is refused', async (t) => {
    const server = await startServer(t);
    await assert.rejects(XmppClient.open({ port: server.directTlsPort, domain: 'localhost', directTls: true, alpnProtocols: ['h2'] }));
  });

  test('<starttls/> on a direct TLS stream → <failure/>', async (t) => {
    const server = await startServer(t);
    const client = await openRaw(t, server, { directTls: true });
    await client.openStream();
    client.sendRaw(`<starttls xmlns='${TLS_NS}'/>`);
    await client.expect(`<failure xmlns='${TLS_NS}'/>`);
  });
});
