// RFC 6120 §6 SASL with SCRAM (RFC 5802/7677), channel binding (RFC 9266, RFC 5929), XEP-0440 and
// PLAIN, plus the abuse limits around authentication, over real sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServer } from '../../bin/testing.js';
import { NS } from '../../server/protocol/ns.js';
import { builtinModules } from '../../modules/index.js';
import { ScramClient } from '../../server/sasl/scram-client.js';
import { connectPlain, connectTls, mechanismsOf, sleep, slowStanzaIn, SASL_NS } from './c2s-helpers.js';

const PING = `<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;
/** client-first-message 'n,,n=romeo,r=abcdef' */
const SCRAM_FIRST = Buffer.from('n,,n=romeo,r=abcdef').toString('base64');

function channelBindingTypes(features: { getChild(name: string, ns?: string): { getChildren(name: string): { attrs: Record<string, string> }[] } | undefined }): string[] {
  return features.getChild('sasl-channel-binding', NS.SASL_CB)?.getChildren('channel-binding').map((c) => c.attrs.type ?? '') ?? [];
}

describe('c2s SASL: mechanisms that log in', () => {
  for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
    test(`${mechanism} over STARTTLS → success, server signature verified, bind works`, async (t) => {
      const server = await startServer(t);
      const romeo = await server.login('romeo', { mechanism, resource: 'r1' });
      assert.equal(romeo.jid, 'romeo@localhost/r1');
      assert.equal((await romeo.iq(PING)).attrs.type, 'result');
    });
  }

  for (const mechanism of ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS'] as const) {
    test(`${mechanism} with tls-exporter on TLS 1.3 → success`, async (t) => {
      const server = await startServer(t);
      const romeo = await server.login('romeo', { mechanism, channelBinding: 'tls-exporter' });
      assert.equal(romeo.tlsProtocol, 'TLSv1.3');
      assert.equal((await romeo.iq(PING)).attrs.type, 'result');
    });

    test(`${mechanism} with tls-server-end-point on TLS 1.2 → success`, async (t) => {
      const server = await startServer(t);
      const romeo = await server.login('romeo', { mechanism, channelBinding: 'tls-server-end-point', tlsMaxVersion: 'TLSv1.2' });
      assert.equal(romeo.tlsProtocol, 'TLSv1.2');
      assert.equal((await romeo.iq(PING)).attrs.type, 'result');
    });
  }

  test('SCRAM-SHA-256-PLUS with tls-server-end-point on TLS 1.3 → success', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: 'tls-server-end-point' });
    assert.equal(romeo.tlsProtocol, 'TLSv1.3');
  });

  test('SCRAM-SHA-256-PLUS over direct TLS → success', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { mechanism: 'SCRAM-SHA-256-PLUS', directTls: true });
    assert.ok(romeo.jid.startsWith('romeo@localhost/'));
  });

  test('PLAIN over TLS → success', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { mechanism: 'PLAIN' });
    assert.equal((await romeo.iq(PING)).attrs.type, 'result');
  });

  test('PLAIN with a wrong password → not-authorized', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    const result = await client.tryAuthenticate('romeo', 'wrong', 'PLAIN');
    assert.equal(result.name, 'failure');
    assert.ok(result.getChild('not-authorized'));
  });
});

describe('c2s SASL: channel binding (XEP-0440, RFC 5802 §6)', () => {
  test('TLS 1.3 → sasl-channel-binding advertises tls-exporter and tls-server-end-point', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    assert.deepEqual(channelBindingTypes(client.features!).sort(), ['tls-exporter', 'tls-server-end-point']);
  });

  test('TLS 1.2 → only tls-server-end-point is advertised (tls-exporter needs TLS 1.3), -PLUS still offered', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server, { tlsMaxVersion: 'TLSv1.2' });
    assert.deepEqual(channelBindingTypes(client.features!), ['tls-server-end-point']);
    assert.ok(mechanismsOf(client.features!).includes('SCRAM-SHA-256-PLUS'));
  });

  test('-PLUS with channel-binding data that is not this connection\'s → not-authorized', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    const result = await client.tryAuthenticate('romeo', 'password', 'SCRAM-SHA-256-PLUS', {
      channelBinding: 'tls-exporter',
      channelBindingData: randomBytes(32),
    });
    assert.equal(result.name, 'failure');
    assert.ok(result.getChild('not-authorized'), result.toString());
  });

  test('-PLUS with tls-server-end-point of another certificate → not-authorized', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server, { tlsMaxVersion: 'TLSv1.2' });
    const result = await client.tryAuthenticate('romeo', 'password', 'SCRAM-SHA-1-PLUS', {
      channelBinding: 'tls-server-end-point',
      channelBindingData: randomBytes(32),
    });
    assert.ok(result.getChild('not-authorized'), result.toString());
  });

  test('-PLUS claiming tls-exporter on TLS 1.2 → not-authorized', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server, { tlsMaxVersion: 'TLSv1.2' });
    const result = await client.tryAuthenticate('romeo', 'password', 'SCRAM-SHA-256-PLUS', {
      channelBinding: 'tls-exporter',
      channelBindingData: randomBytes(32),
    });
    assert.ok(result.getChild('not-authorized'), result.toString());
  });

  test("gs2 flag 'y' while -PLUS is offered (a downgrade) → not-authorized", async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    const result = await client.tryAuthenticate('romeo', 'password', 'SCRAM-SHA-1', { gs2Flag: 'y' });
    assert.ok(result.getChild('not-authorized'), result.toString());
  });

  test("gs2 flag 'y' where no -PLUS is offered (plaintext) → success", async (t) => {
    const server = await startServer(t, { config: { c2s: { require_encryption: false } } });
    await server.createUser('romeo');
    const client = await connectPlain(t, server);
    const result = await client.tryAuthenticate('romeo', 'password', 'SCRAM-SHA-1', { gs2Flag: 'y' });
    assert.equal(result.name, 'success', result.toString());
  });
});

describe('c2s SASL: plaintext streams (encryption optional)', () => {
  test('PLAIN is not offered, and <auth mechanism=PLAIN/> in the clear → invalid-mechanism', async (t) => {
    const server = await startServer(t, { config: { c2s: { require_encryption: false } } });
    await server.createUser('romeo');
    const client = await connectPlain(t, server);
    assert.ok(!mechanismsOf(client.features!).includes('PLAIN'));
    const result = await client.tryAuthenticate('romeo', 'password', 'PLAIN');
    assert.ok(result.getChild('invalid-mechanism'), result.toString());
  });

  test('SCRAM-SHA-256 in the clear → success', async (t) => {
    const server = await startServer(t, { config: { c2s: { require_encryption: false } } });
    const romeo = await server.login('romeo', { noTls: true, mechanism: 'SCRAM-SHA-256' });
    assert.ok(!romeo.secure);
  });
});

describe('c2s SASL: failures (RFC 6120 §6.4.5, §6.5)', () => {
  test('wrong password → not-authorized, the stream stays open and a retry succeeds', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    const failure = await client.tryAuthenticate('romeo', 'wrong-password');
    assert.equal(failure.name, 'failure');
    assert.ok(failure.getChild('not-authorized'));
    await client.authenticate('romeo', 'password');
    await client.bind('again');
    assert.equal((await client.iq(PING)).attrs.type, 'result');
  });

  test('unknown user → not-authorized, like a wrong password', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    const failure = await client.tryAuthenticate('nobody', 'password', 'SCRAM-SHA-256');
    assert.ok(failure.getChild('not-authorized'), failure.toString());
  });

  test('max_auth_failures (3) failed attempts → failure, then stream error policy-violation', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    for (let i = 1; i <= 2; i++) {
      const failure = await client.tryAuthenticate('romeo', `wrong-${i}`);
      assert.ok(failure.getChild('not-authorized'));
      assert.equal(client.streamError, undefined, `still open after ${i} failure(s)`);
    }
    const third = await client.tryAuthenticate('romeo', 'wrong-3');
    assert.ok(third.getChild('not-authorized'));
    await client.expectStreamError('policy-violation');
  });

  test('unknown mechanism → invalid-mechanism', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    client.sendRaw(`<auth xmlns='${SASL_NS}' mechanism='DIGEST-MD5'/>`);
    await client.expect(`<failure xmlns='${SASL_NS}'><invalid-mechanism/></failure>`);
  });

  test('initial response that is not base64 → incorrect-encoding', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    client.sendRaw(`<auth xmlns='${SASL_NS}' mechanism='SCRAM-SHA-1'>not*base64!</auth>`);
    await client.expect(`<failure xmlns='${SASL_NS}'><incorrect-encoding/></failure>`);
  });

  test('<abort/> mid-exchange → aborted, and a fresh attempt then succeeds', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    client.sendRaw(`<auth xmlns='${SASL_NS}' mechanism='SCRAM-SHA-1'>${SCRAM_FIRST}</auth>`);
    await client.expect(`<challenge xmlns='${SASL_NS}'/>`);
    client.sendRaw(`<abort xmlns='${SASL_NS}'/>`);
    await client.expect(`<failure xmlns='${SASL_NS}'><aborted/></failure>`);
    await client.authenticate('romeo', 'password');
    assert.ok(client.features?.getChild('bind', NS.BIND));
  });

  test('<response/> with no exchange in progress → malformed-request', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    client.sendRaw(`<response xmlns='${SASL_NS}'>Zm9v</response>`);
    await client.expect(`<failure xmlns='${SASL_NS}'><malformed-request/></failure>`);
  });

  test('a stanza before authentication → stream error not-authorized', async (t) => {
    const server = await startServer(t);
    const client = await connectTls(t, server);
    client.sendRaw(`<message to='juliet@localhost'><body>who am I?</body></message>`);
    await client.expectStreamError('not-authorized');
  });

  test('not authenticated within c2s.auth_timeout → connection-timeout', async (t) => {
    const server = await startServer(t, { config: { c2s: { auth_timeout: '400ms' } } });
    const client = await connectTls(t, server);
    await client.expectStreamError('connection-timeout', 3000);
  });

  test('authenticated before c2s.auth_timeout → the stream is not timed out', async (t) => {
    const server = await startServer(t, { config: { c2s: { auth_timeout: '300ms' } } });
    const romeo = await server.login('romeo');
    await sleep(500);
    assert.equal((await romeo.iq(PING)).attrs.type, 'result');
  });
});

describe('c2s SASL: stream restart after success (RFC 6120 §6.4.6)', () => {
  // With an asynchronous 'stanza:in' hook the stream waits on each stanza, so leftovers from before
  // the restart would run at the first one of the new stream.
  test('data pipelined after the final SASL response is discarded, never run in the new stream', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, slowStanzaIn] });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    const scram = new ScramClient('sha1', 'romeo', 'password');
    client.sendRaw(`<auth xmlns='${SASL_NS}' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
    const challenge = await client.expect(`<challenge xmlns='${SASL_NS}'/>`);
    const final = scram.final(Buffer.from(challenge.text(), 'base64')).toString('base64');
    client.sendRaw(
      `<response xmlns='${SASL_NS}'>${final}</response>` +
        `<message to='juliet@localhost/balcony' type='chat'><body>smuggled before the restart</body></message>`,
    );
    await client.expect(`<success xmlns='${SASL_NS}'/>`);
    await client.restartStream();
    await client.bind('r1');
    client.send(`<presence/>`);
    client.send(`<message to='juliet@localhost/balcony' type='chat' id='real'><body>after the restart</body></message>`);
    const got = await juliet.expect(`<message from='romeo@localhost/r1' type='chat'/>`);
    assert.equal(got.attrs.id, 'real', `the smuggled message was delivered: ${got.toString()}`);
  });
});

describe('c2s SASL: per-IP failure limit', () => {
  test('auth_failures_per_ip failures from one address → temporary-auth-failure, also on new connections', async (t) => {
    const server = await startServer(t, { config: { limits: { exempt: [], auth_failures_per_ip: 2 } } });
    await server.createUser('romeo');
    const client = await connectTls(t, server);
    assert.ok((await client.tryAuthenticate('romeo', 'wrong-1')).getChild('not-authorized'));
    assert.ok((await client.tryAuthenticate('romeo', 'wrong-2')).getChild('not-authorized'));
    const blocked = await client.tryAuthenticate('romeo', 'password');
    assert.ok(blocked.getChild('temporary-auth-failure'), `even the right password is refused now: ${blocked.toString()}`);
    const other = await connectTls(t, server);
    const alsoBlocked = await other.tryAuthenticate('romeo', 'password');
    assert.ok(alsoBlocked.getChild('temporary-auth-failure'), alsoBlocked.toString());
  });

  test('loopback is exempt by default → failures on several streams never block', async (t) => {
    const server = await startServer(t, { config: { limits: { auth_failures_per_ip: 1 } } });
    await server.createUser('romeo');
    for (let i = 0; i < 2; i++) {
      const client = await connectTls(t, server);
      assert.ok((await client.tryAuthenticate('romeo', 'wrong')).getChild('not-authorized'));
    }
    const client = await connectTls(t, server);
    await client.authenticate('romeo', 'password');
  });
});

describe('c2s SASL: credential storage (RFC 5802 §2.2)', () => {
  test('the accounts table holds SCRAM keys only, never the password', async (t) => {
    const server = await startServer(t);
    const password = 'Correct-Horse-Battery-Staple-42';
    await server.createUser('romeo', password);
    const romeo = await server.login('romeo', { password, mechanism: 'SCRAM-SHA-256' });
    assert.ok(romeo.jid);
    const db = new Database(join(server.dataDir, 'herald.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT * FROM accounts').all() as Record<string, unknown>[];
      assert.equal(rows.length, 1);
      const dump = JSON.stringify(rows);
      for (const form of [password, Buffer.from(password).toString('base64'), Buffer.from(password).toString('hex'), password.toLowerCase()]) {
        assert.ok(!dump.includes(form), `password (as ${form}) must not be stored`);
      }
      const credentials = JSON.parse(String(rows[0]!.credentials)) as Record<string, Record<string, unknown>>;
      assert.deepEqual(Object.keys(credentials).sort(), ['sha1', 'sha256']);
      for (const creds of Object.values(credentials)) {
        assert.deepEqual(Object.keys(creds).sort(), ['iterations', 'salt', 'serverKey', 'storedKey']);
      }
    } finally {
      db.close();
    }
  });
});
