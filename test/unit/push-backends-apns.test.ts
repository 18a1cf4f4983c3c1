import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { apnsConfig, createApnsBackend } from '../../modules/appserver/backends/apns.js';
import type { PushBackend } from '../../modules/appserver/backend.js';
import { generateSelfSignedCertificate } from '../../server/tls/selfsigned.js';
import { createApnsKey, startApnsMock, type ApnsMock } from '../mocks/apns.js';
import {
  assertDeliveryError, assertRefused, backendContext, fakeClock, notification, registration, submitForm, tempDir,
} from './push-backends-helpers.js';

const TEAM = 'TEAM123456';
const TOPIC = 'org.example.chat';
const TOKEN = 'ab'.repeat(32);

interface Setup {
  mock: ApnsMock;
  sandbox?: ApnsMock;
  backend: PushBackend;
  logs: string[];
}

async function setup(
  t: TestContext,
  options: { now?: () => number; config?: Record<string, unknown>; mockKey?: 'same' | 'other'; sandbox?: boolean } = {},
): Promise<Setup> {
  const dir = tempDir(t);
  const key = createApnsKey(dir);
  const verifyingKey = options.mockKey === 'other' ? createApnsKey(tempDir(t), key.keyId).publicKey : key.publicKey;
  const start = async (certificateNames?: string[]) => {
    const mock = await startApnsMock({ teamId: TEAM, keyId: key.keyId, publicKey: verifyingKey, topics: [TOPIC], certificateNames });
    t.after(() => mock.close());
    return mock;
  };
  const mock = await start();
  const sandbox = options.sandbox ? await start(['localhost', '127.0.0.1']) : undefined;
  // Both mocks' certificates in one ca_file, as an operator would bundle extra CAs.
  const caFile = join(dir, 'extra-ca.pem');
  writeFileSync(caFile, [mock, sandbox].filter((m) => m !== undefined).map((m) => readFileSync(m.caFile, 'utf8')).join(''));
  const ctx = backendContext(dir);
  const config = apnsConfig.parse({
    endpoint: mock.url, sandbox_endpoint: sandbox?.url ?? mock.url, topic: TOPIC, team_id: TEAM, key_id: key.keyId,
    key_file: key.keyFile, ca_file: caFile, ...options.config,
  });
  const backend = createApnsBackend(config, ctx, { now: options.now });
  t.after(() => backend.close?.());
  return { mock, sandbox, backend, logs: ctx.logs };
}

describe('push backend apns: delivery', () => {
  test('message push → alert push with priority 10, topic, collapse id, valid provider token, summary without body', async (t) => {
    const { mock, backend } = await setup(t);
    await backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification({ priority: 'high', messageCount: 2 }));
    const request = await mock.next();
    assert.equal(request.status, 200);
    assert.equal(request.token, TOKEN);
    assert.equal(request.headers['apns-topic'], TOPIC);
    assert.equal(request.headers['apns-push-type'], 'alert');
    assert.equal(request.headers['apns-priority'], '10');
    assert.equal(request.headers['apns-collapse-id'], 'node-1');
    assert.ok(Number(request.headers['apns-expiration']) > Date.now() / 1000 + 3600, 'expiration a day ahead');
    assert.deepEqual(request.jwt?.header, { alg: 'ES256', kid: 'KEY1234567' });
    assert.equal(request.jwt?.claims.iss, TEAM);
    assert.deepEqual(request.payload, {
      aps: { alert: { body: 'New message' }, sound: 'default', 'mutable-content': 1 },
      node: 'node-1',
      'message-count': 2,
    });
  });

  test('summary with sender and body (client opted in) → alert titled with the sender, showing the body', async (t) => {
    const { mock, backend } = await setup(t);
    await backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }),
      notification({ lastMessageSender: 'juliet@localhost', lastMessageBody: 'Wherefore art thou?' }));
    const { payload } = await mock.next();
    assert.deepEqual(payload.aps?.alert, { title: 'juliet@localhost', body: 'Wherefore art thou?' });
    assert.equal(payload['last-message-body'], 'Wherefore art thou?');
  });

  test('normal priority → background push with content-available and priority 5', async (t) => {
    const { mock, backend } = await setup(t);
    await backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification({ priority: 'normal' }));
    const request = await mock.next();
    assert.equal(request.status, 200);
    assert.equal(request.headers['apns-push-type'], 'background');
    assert.equal(request.headers['apns-priority'], '5');
    assert.deepEqual(request.payload.aps, { 'content-available': 1 });
  });

  test('registration topic overrides the configured one', async (t) => {
    const { mock, backend } = await setup(t, { config: { topic: 'org.example.other' } });
    await backend.send(registration('apns', { token: TOKEN, sandbox: 'false', topic: TOPIC }), notification());
    assert.equal((await mock.next()).headers['apns-topic'], TOPIC);
  });

  test('sandbox registration → sandbox endpoint, production untouched', async (t) => {
    const { mock, sandbox, backend } = await setup(t, { sandbox: true });
    await backend.send(registration('apns', { token: TOKEN, sandbox: 'true' }), notification());
    assert.equal((await sandbox!.next()).status, 200);
    assert.equal(mock.received.length, 0);
  });

  test('provider token is reused, and replaced after token_refresh', async (t) => {
    const clock = fakeClock(Date.now() - 55 * 60_000);  // the mock checks iat against the real clock
    const { mock, backend } = await setup(t, { now: clock.now });
    const reg = registration('apns', { token: TOKEN, sandbox: 'false' });
    await backend.send(reg, notification());
    clock.advance(10 * 60_000);
    await backend.send(reg, notification());
    clock.advance(41 * 60_000);
    await backend.send(reg, notification());
    const [first, second, third] = [await mock.next(), await mock.next(), await mock.next()];
    assert.equal(first.headers.authorization, second.headers.authorization);
    assert.notEqual(second.headers.authorization, third.headers.authorization);
    assert.equal(third.jwt?.claims.iat, Math.floor(clock.now() / 1000));
  });

  test('403 ExpiredProviderToken → a new token and one resend that succeeds', async (t) => {
    const clock = fakeClock(Date.now() - 30 * 60_000);
    const { mock, backend } = await setup(t, { now: clock.now });
    const reg = registration('apns', { token: TOKEN, sandbox: 'false' });
    await backend.send(reg, notification());
    clock.advance(60_000);
    mock.failNext(403, { reason: 'ExpiredProviderToken' });
    await backend.send(reg, notification());
    const [, refused, resent] = [await mock.next(), await mock.next(), await mock.next()];
    assert.equal(refused.status, 403);
    assert.equal(resent.status, 200);
    assert.notEqual(refused.headers.authorization, resent.headers.authorization);
  });

  test('provider token older than an hour, twice → auth', async (t) => {
    const clock = fakeClock(Date.now() - 2 * 3600_000);
    const { mock, backend } = await setup(t, { now: clock.now });
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'auth', { status: 403, reason: 'ExpiredProviderToken' });
    assert.equal(mock.received.length, 2, 'one resend with a fresh token, then give up');
  });

  test('token signed by another key → 403 InvalidProviderToken → auth', async (t) => {
    const { backend } = await setup(t, { mockKey: 'other' });
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'auth', { status: 403, reason: 'InvalidProviderToken' });
  });
});

describe('push backend apns: vendor errors', () => {
  test('410 Unregistered → gone', async (t) => {
    const { mock, backend } = await setup(t);
    mock.goneTokens.add(TOKEN);
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'gone', { status: 410, reason: 'Unregistered' });
  });

  test('400 BadDeviceToken → gone', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(400, { reason: 'BadDeviceToken' });
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'gone', { status: 400 });
  });

  test('429 TooManyRequests with Retry-After → retry with retryAfterMs', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(429, { reason: 'TooManyRequests' }, { 'retry-after': '7' });
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'retry', { status: 429, retryAfterMs: 7000 });
  });

  test('503 ServiceUnavailable → retry', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(503, { reason: 'ServiceUnavailable' });
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'retry', { status: 503 });
  });

  test('400 BadCollapseId (another request error) → rejected', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(400, { reason: 'BadCollapseId' });
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'rejected', { reason: 'BadCollapseId' });
  });

  test('topic the team may not use → 400 TopicDisallowed → rejected', async (t) => {
    const { backend } = await setup(t);
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false', topic: 'org.evil.app' }), notification()), 'rejected', { reason: 'TopicDisallowed' });
  });

  test('server gone away → the next push reconnects', async (t) => {
    const { mock, backend } = await setup(t);
    const reg = registration('apns', { token: TOKEN, sandbox: 'false' });
    await backend.send(reg, notification());
    await mock.dropConnections();
    await backend.send(reg, notification());
    assert.equal(mock.received.filter((r) => r.status === 200).length, 2);
  });

  test('nothing listening → retry', async (t) => {
    const dir = tempDir(t);
    const key = createApnsKey(dir);
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const backend = createApnsBackend(apnsConfig.parse({
      endpoint: `https://127.0.0.1:${port}`, topic: TOPIC, team_id: TEAM, key_id: key.keyId, key_file: key.keyFile,
    }), backendContext(dir));
    t.after(() => backend.close?.());
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'retry');
  });

  test('server that never answers → retry after the timeout', async (t) => {
    const dir = tempDir(t);
    const key = createApnsKey(dir);
    const sockets: Socket[] = [];
    const silent = createNetServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      silent.close(() => resolve());
    }));
    const backend = createApnsBackend(apnsConfig.parse({
      endpoint: `https://127.0.0.1:${(silent.address() as { port: number }).port}`, topic: TOPIC, team_id: TEAM, key_id: key.keyId,
      key_file: key.keyFile, timeout: '200ms',
    }), backendContext(dir));
    t.after(() => backend.close?.());
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'retry', { reason: 'timeout' });
  });

  test('logs never carry the device token or the provider token', async (t) => {
    const { mock, backend, logs } = await setup(t);
    mock.goneTokens.add(TOKEN);
    await assertDeliveryError(backend.send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'gone');
    await mock.dropConnections();
    const text = logs.join('');
    assert.ok(!text.includes(TOKEN));
    assert.ok(!/bearer/i.test(text));
  });
});

describe('push backend apns: certificate auth', () => {
  test('trusted client certificate → delivered; another certificate → 403 BadCertificate → auth', async (t) => {
    const dir = tempDir(t);
    const good = generateSelfSignedCertificate({ domains: ['push.example.org'] });
    const bad = generateSelfSignedCertificate({ domains: ['push.example.org'] });
    const mock = await startApnsMock({ clientCertificate: good.certPem, topics: [TOPIC] });
    t.after(() => mock.close());
    const files = (name: string, cert: { certPem: string; keyPem: string }) => {
      writeFileSync(join(dir, `${name}.pem`), cert.certPem);
      writeFileSync(join(dir, `${name}.key`), cert.keyPem);
      return { cert_file: join(dir, `${name}.pem`), cert_key_file: join(dir, `${name}.key`) };
    };
    const make = (name: string, cert: { certPem: string; keyPem: string }) => {
      const backend = createApnsBackend(apnsConfig.parse({ endpoint: mock.url, topic: TOPIC, ca_file: mock.caFile, ...files(name, cert) }), backendContext(dir));
      t.after(() => backend.close?.());
      return backend;
    };
    await make('good', good).send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification());
    assert.equal((await mock.next()).status, 200);
    await assertDeliveryError(make('bad', bad).send(registration('apns', { token: TOKEN, sandbox: 'false' }), notification()), 'auth', { reason: 'BadCertificate' });
  });

  test('neither token nor certificate auth configured → startup error naming both', (t) => {
    assert.throws(() => createApnsBackend(apnsConfig.parse({ topic: TOPIC }), backendContext(tempDir(t))), /token auth.*certificate auth/);
  });

  test('token auth with a missing key file → startup error naming key_file', (t) => {
    assert.throws(() => createApnsBackend(apnsConfig.parse({ team_id: TEAM, key_id: 'K', key_file: '/nonexistent/AuthKey.p8' }), backendContext(tempDir(t))), /key_file/);
  });
});

describe('push backend apns: registration', () => {
  const backend = (topic?: string) => createApnsBackend(apnsConfig.parse({ topic, cert_file: '/dev/null', cert_key_file: '/dev/null' }), backendContext('/tmp'));

  test('hex token, sandbox and topic → stored lowercase with sandbox as true/false', () => {
    const data = backend(TOPIC).parseRegistration(submitForm({ token: 'AB'.repeat(32), sandbox: '1', topic: 'org.example.chat.beta' }));
    assert.deepEqual(data, { token: 'ab'.repeat(32), sandbox: 'true', topic: 'org.example.chat.beta' });
    assert.deepEqual(backend(TOPIC).parseRegistration(submitForm({ token: TOKEN })), { token: TOKEN, sandbox: 'false' });
  });

  test('missing token → bad-request', () => {
    assertRefused(() => backend(TOPIC).parseRegistration(submitForm({ sandbox: 'false' })), 'bad-request', /token/);
  });

  test('token that is not hex → bad-request', () => {
    assertRefused(() => backend(TOPIC).parseRegistration(submitForm({ token: 'not-a-token' })), 'bad-request', /hex/);
  });

  test('sandbox that is not a boolean → bad-request', () => {
    assertRefused(() => backend(TOPIC).parseRegistration(submitForm({ token: TOKEN, sandbox: 'maybe' })), 'bad-request', /sandbox/);
  });

  test('no topic in the registration nor the config → not-acceptable', () => {
    assertRefused(() => backend().parseRegistration(submitForm({ token: TOKEN })), 'not-acceptable', /topic/);
  });

  test('form fields: token, sandbox, topic', () => {
    assert.deepEqual(backend(TOPIC).fields.map((f) => f.var), ['token', 'sandbox', 'topic']);
  });
});
