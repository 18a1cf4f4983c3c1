import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createFcmBackend, fcmConfig } from '../../modules/appserver/backends/fcm.js';
import type { PushBackend } from '../../modules/appserver/backend.js';
import { FCM_SCOPE, createServiceAccount, fcmError, startFcmMock, type FcmMock, type ServiceAccountFixture } from '../mocks/fcm.js';
import {
  assertDeliveryError, assertRefused, backendContext, fakeClock, notification, registration, submitForm, tempDir,
} from './push-backends-helpers.js';

const TOKEN = 'fcm-token:APA91bH_example-registration.token';

interface Setup {
  mock: FcmMock;
  account: ServiceAccountFixture;
  backend: PushBackend;
}

async function setup(t: TestContext, options: { now?: () => number; trustOtherKey?: boolean; config?: Record<string, unknown> } = {}): Promise<Setup> {
  const dir = tempDir(t);
  const mock = await startFcmMock();
  t.after(() => mock.close());
  const account = createServiceAccount(dir, mock.tokenUrl);
  const trustedKey = options.trustOtherKey ? generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey : account.publicKey;
  mock.trust({ publicKey: trustedKey, clientEmail: account.json.client_email!, projectId: account.json.project_id! });
  const config = fcmConfig.parse({ service_account_file: account.file, endpoint: mock.url, ...options.config });
  return { mock, account, backend: createFcmBackend(config, backendContext(dir), { now: options.now }) };
}

const fcmRegistration = () => registration('fcm', { token: TOKEN });

describe('push backend fcm: delivery', () => {
  test('push → OAuth token from a valid RS256 assertion, then a data message with string summary fields', async (t) => {
    const { mock, account, backend } = await setup(t);
    await backend.send(fcmRegistration(), notification({ messageCount: 3, lastMessageSender: 'juliet@localhost', priority: 'high' }));
    const request = await mock.next();
    assert.equal(request.status, 200);
    assert.equal(request.project, 'herald-test');
    assert.match(String(request.headers.authorization), /^Bearer ya29\.mock-/);
    assert.deepEqual(request.message, {
      token: TOKEN,
      data: { node: 'node-1', 'message-count': '3', 'last-message-sender': 'juliet@localhost' },
      android: { priority: 'high', ttl: '86400s', collapse_key: 'node-1' },
    });
    const [tokenRequest] = mock.tokenRequests;
    assert.equal(tokenRequest?.status, 200);
    assert.equal(tokenRequest?.assertion?.header.kid, account.json.private_key_id);
    assert.equal(tokenRequest?.assertion?.claims.iss, account.json.client_email);
    assert.equal(tokenRequest?.assertion?.claims.scope, FCM_SCOPE);
    assert.equal(tokenRequest?.assertion?.claims.aud, mock.tokenUrl);
  });

  test('normal priority → android priority normal', async (t) => {
    const { mock, backend } = await setup(t);
    await backend.send(fcmRegistration(), notification({ priority: 'normal' }));
    assert.equal((await mock.next()).message.android?.priority, 'normal');
  });

  test('access token is reused until shortly before it expires, then fetched again', async (t) => {
    const clock = fakeClock(Date.now() - 20 * 60_000);  // the mock checks iat/exp against the real clock
    const { mock, backend } = await setup(t, { now: clock.now });
    mock.tokenLifetimeS = 600;
    await backend.send(fcmRegistration(), notification());
    clock.advance(4 * 60_000);
    await backend.send(fcmRegistration(), notification());
    assert.equal(mock.tokenRequests.length, 1);
    clock.advance(2 * 60_000);  // 6 minutes: within the 5-minute margin of a 10-minute token
    await backend.send(fcmRegistration(), notification());
    assert.equal(mock.tokenRequests.length, 2);
    assert.equal(mock.received.filter((r) => r.status === 200).length, 3);
  });

  test('access token revoked early → 401, one new token, resend succeeds', async (t) => {
    const { mock, backend } = await setup(t);
    await backend.send(fcmRegistration(), notification());
    mock.revokeAccessTokens();
    await backend.send(fcmRegistration(), notification());
    assert.deepEqual(mock.received.map((r) => r.status), [200, 401, 200]);
    assert.equal(mock.tokenRequests.length, 2);
  });

  test('401 even with a fresh token → auth', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(401, fcmError(401, 'UNAUTHENTICATED', 'bad').body);
    mock.failNext(401, fcmError(401, 'UNAUTHENTICATED', 'bad').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'auth', { status: 401 });
  });

  test('assertion signed with a key Google does not know → invalid_grant → auth', async (t) => {
    const { mock, backend } = await setup(t, { trustOtherKey: true });
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'auth', { status: 400, reason: 'invalid_grant' });
    assert.equal(mock.received.length, 0);
  });

  test('inline service_account JSON and a token_uri override work like the file', async (t) => {
    const dir = tempDir(t);
    const mock = await startFcmMock();
    t.after(() => mock.close());
    const account = createServiceAccount(dir, 'https://oauth2.invalid/token');
    mock.trust({ publicKey: createPublicKey(account.json.private_key!), clientEmail: account.json.client_email!, projectId: 'herald-test' });
    const config = fcmConfig.parse({ service_account: readFileSync(account.file, 'utf8'), token_uri: mock.tokenUrl, endpoint: mock.url });
    await createFcmBackend(config, backendContext(dir)).send(fcmRegistration(), notification());
    assert.equal((await mock.next()).status, 200);
  });
});

describe('push backend fcm: vendor errors', () => {
  test('404 UNREGISTERED → gone', async (t) => {
    const { mock, backend } = await setup(t);
    mock.unregistered.add(TOKEN);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'gone', { status: 404, reason: 'UNREGISTERED' });
  });

  test('400 INVALID_ARGUMENT about the registration token → gone', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(400, fcmError(400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token', 'INVALID_ARGUMENT').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'gone', { status: 400 });
  });

  test('400 INVALID_ARGUMENT about the message → rejected', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid value at message.android.ttl', 'INVALID_ARGUMENT').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'rejected', { status: 400, reason: 'INVALID_ARGUMENT' });
  });

  test('403 SENDER_ID_MISMATCH → rejected; 403 PERMISSION_DENIED → auth', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(403, fcmError(403, 'PERMISSION_DENIED', 'SenderId mismatch', 'SENDER_ID_MISMATCH').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'rejected', { reason: 'SENDER_ID_MISMATCH' });
    mock.failNext(403, fcmError(403, 'PERMISSION_DENIED', 'Permission denied').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'auth', { reason: 'PERMISSION_DENIED' });
  });

  test('429 QUOTA_EXCEEDED with Retry-After → retry with retryAfterMs', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(429, fcmError(429, 'RESOURCE_EXHAUSTED', 'quota', 'QUOTA_EXCEEDED').body, { 'retry-after': '30' });
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'retry', { status: 429, reason: 'QUOTA_EXCEEDED', retryAfterMs: 30_000 });
  });

  test('503 UNAVAILABLE and 500 INTERNAL → retry', async (t) => {
    const { mock, backend } = await setup(t);
    mock.failNext(503, fcmError(503, 'UNAVAILABLE', 'later', 'UNAVAILABLE').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'retry', { status: 503 });
    mock.failNext(500, fcmError(500, 'INTERNAL', 'oops', 'INTERNAL').body);
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'retry', { status: 500 });
  });

  test('token endpoint unreachable → retry', async (t) => {
    const dir = tempDir(t);
    const account = createServiceAccount(dir, 'http://127.0.0.1:9/token');
    const backend = createFcmBackend(fcmConfig.parse({ service_account_file: account.file, endpoint: 'http://127.0.0.1:9', timeout: '500ms' }), backendContext(dir));
    await assertDeliveryError(backend.send(fcmRegistration(), notification()), 'retry');
  });
});

describe('push backend fcm: config and registration', () => {
  test('no service account configured → startup error naming service_account_file', (t) => {
    assert.throws(() => createFcmBackend(fcmConfig.parse({}), backendContext(tempDir(t))), /service_account_file/);
  });

  test('token → stored; missing token → bad-request; token with spaces → bad-request', async (t) => {
    const { backend } = await setup(t);
    assert.deepEqual(backend.parseRegistration(submitForm({ token: TOKEN })), { token: TOKEN });
    assertRefused(() => backend.parseRegistration(submitForm({})), 'bad-request', /token is required/);
    assertRefused(() => backend.parseRegistration(submitForm({ token: 'not a token' })), 'bad-request', /FCM/);
    assert.deepEqual(backend.fields.map((f) => f.var), ['token']);
  });
});
