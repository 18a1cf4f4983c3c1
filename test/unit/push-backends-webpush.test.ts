import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encryptPushPayload } from '../../modules/appserver/backends/ece.js';
import { isPublicAddress } from '../../modules/appserver/backends/http.js';
import { createUnifiedpushBackend, unifiedpushConfig } from '../../modules/appserver/backends/unifiedpush.js';
import { createWebpushBackend, webpushConfig } from '../../modules/appserver/backends/webpush.js';
import type { PushBackend } from '../../modules/appserver/backend.js';
import { decryptAes128gcm, startWebPushMock, type PushServiceMock, type Subscription } from '../mocks/webpush.js';
import { startUnifiedPushMock } from '../mocks/unifiedpush.js';
import {
  assertDeliveryError, assertRefused, backendContext, fakeClock, notification, registration, submitForm, tempDir,
} from './push-backends-helpers.js';

// RFC 8291 §5 / Appendix A: the example's keys, salt and resulting message.
const RFC8291 = {
  plaintext: 'When I grow up, I want to be a watermelon',
  asPrivate: 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  auth: 'BTBZMqHH6r4Tts7J_aSIgg',
  salt: 'DGv6ra1nlYgDCS1FRnbzlw',
  body: 'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};

describe('push backend webpush: RFC 8291 encryption', () => {
  test('the RFC 8291 §5 example keys and salt → exactly the RFC\'s message', () => {
    const sender = createECDH('prime256v1');
    sender.setPrivateKey(Buffer.from(RFC8291.asPrivate, 'base64url'));
    const body = encryptPushPayload(Buffer.from(RFC8291.plaintext), {
      uaPublic: Buffer.from(RFC8291.uaPublic, 'base64url'),
      authSecret: Buffer.from(RFC8291.auth, 'base64url'),
      senderKeys: sender,
      salt: Buffer.from(RFC8291.salt, 'base64url'),
    });
    assert.equal(body.toString('base64url'), RFC8291.body);
  });

  test('the mock user agent decrypts the RFC\'s message (the mock is right too)', () => {
    const ua = createECDH('prime256v1');
    ua.setPrivateKey(Buffer.from(RFC8291.uaPrivate, 'base64url'));
    const plaintext = decryptAes128gcm(Buffer.from(RFC8291.body, 'base64url'), ua, Buffer.from(RFC8291.auth, 'base64url'));
    assert.equal(plaintext.toString('utf8'), RFC8291.plaintext);
  });

  test('a tampered message does not decrypt', () => {
    const ua = createECDH('prime256v1');
    ua.setPrivateKey(Buffer.from(RFC8291.uaPrivate, 'base64url'));
    const body = Buffer.from(RFC8291.body, 'base64url');
    body[body.length - 20]! ^= 1;
    assert.throws(() => decryptAes128gcm(body, ua, Buffer.from(RFC8291.auth, 'base64url')));
  });
});

interface Setup {
  mock: PushServiceMock;
  backend: PushBackend;
  dir: string;
  logs: string[];
}

async function setup(t: TestContext, options: { config?: Record<string, unknown>; now?: () => number } = {}): Promise<Setup> {
  const dir = tempDir(t);
  const mock = await startWebPushMock();
  t.after(() => mock.close());
  const ctx = backendContext(dir);
  const config = webpushConfig.parse({ subject: 'mailto:admin@example.org', allow_insecure_endpoints: true, ...options.config });
  return { mock, dir, backend: createWebpushBackend(config, ctx, { now: options.now }), logs: ctx.logs };
}

function vapidKey(backend: PushBackend): string {
  const key = backend.fields.find((f) => f.var === 'vapid-public-key')?.values[0];
  assert.ok(key);
  return key;
}

const subscriptionRegistration = (s: Subscription) => registration('webpush', { endpoint: s.endpoint, p256dh: s.p256dh!, auth: s.auth! });

describe('push backend webpush: delivery', () => {
  test('push → encrypted payload the subscriber decrypts, VAPID token for the endpoint origin, TTL, Urgency, Topic', async (t) => {
    const { mock, backend } = await setup(t);
    const subscription = mock.subscribe({ applicationServerKey: vapidKey(backend) });
    await backend.send(subscriptionRegistration(subscription), notification({ messageCount: 3, priority: 'high' }));
    const request = await mock.next();
    assert.equal(request.status, 201, request.error);
    assert.deepEqual(request.payload, { node: 'node-1', 'message-count': 3 });
    assert.equal(request.headers['content-encoding'], 'aes128gcm');
    assert.equal(request.ttl, 86400);
    assert.equal(request.urgency, 'high');
    assert.equal(request.topic, 'node-1');
    assert.equal(request.vapid?.claims.aud, new URL(mock.url).origin);
    assert.equal(request.vapid?.claims.sub, 'mailto:admin@example.org');
    assert.equal(request.vapid?.k, vapidKey(backend));
    assert.ok(Number(request.vapid?.claims.exp) <= Date.now() / 1000 + 12 * 3600 + 1);
  });

  test('normal priority → Urgency normal', async (t) => {
    const { mock, backend } = await setup(t);
    await backend.send(subscriptionRegistration(mock.subscribe()), notification({ priority: 'normal' }));
    assert.equal((await mock.next()).urgency, 'normal');
  });

  test('VAPID keys are made on first start in data_dir/push/vapid.json (0600) and kept across restarts', async (t) => {
    const { backend, dir } = await setup(t);
    const file = join(dir, 'push', 'vapid.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = createWebpushBackend(webpushConfig.parse({ subject: 'mailto:a@example.org' }), backendContext(dir));
    assert.equal(vapidKey(again), vapidKey(backend));
    assert.equal(Buffer.from(vapidKey(backend), 'base64url').length, 65);
    assert.deepEqual(backend.resultFields?.().map((f) => [f.var, f.values[0]]), [['vapid-public-key', vapidKey(backend)]]);
    assert.ok(!readFileSync(file, 'utf8').includes(vapidKey(backend)), 'stored as a JWK, not as the raw key');
  });

  test('VAPID token is reused for an origin, and replaced after half its lifetime', async (t) => {
    const clock = fakeClock(Date.now() - 3600_000);
    const { mock, backend } = await setup(t, { now: clock.now });
    const reg = subscriptionRegistration(mock.subscribe());
    await backend.send(reg, notification());
    clock.advance(3600_000);
    await backend.send(reg, notification());
    clock.advance(5.5 * 3600_000);
    await backend.send(reg, notification());
    const [a, b, c] = [await mock.next(), await mock.next(), await mock.next()];
    assert.equal(a.headers.authorization, b.headers.authorization);
    assert.notEqual(b.headers.authorization, c.headers.authorization);
    assert.equal(c.status, 201);
  });

  test('no subject configured → a warning at start, and a push service that requires one → 401 → auth', async (t) => {
    const { mock, backend, logs } = await setup(t, { config: { subject: undefined } });
    assert.match(logs.join(''), /webpush has no subject/);
    await assertDeliveryError(backend.send(subscriptionRegistration(mock.subscribe()), notification()), 'auth', { status: 401 });
  });
});

describe('push backend webpush: vendor errors', () => {
  test('410 Gone (subscription expired) → gone; unknown subscription 404 → gone', async (t) => {
    const { mock, backend } = await setup(t);
    const subscription = mock.subscribe();
    mock.unsubscribe(subscription.id);
    await assertDeliveryError(backend.send(subscriptionRegistration(subscription), notification()), 'gone', { status: 410 });
    const unknown = { ...subscription, endpoint: `${mock.url}/wpush/nope` };
    await assertDeliveryError(backend.send(subscriptionRegistration(unknown), notification()), 'gone', { status: 404 });
  });

  test('subscription made with another applicationServerKey → 403 → auth', async (t) => {
    const { mock, backend } = await setup(t);
    const other = createECDH('prime256v1');
    other.generateKeys();
    const subscription = mock.subscribe({ applicationServerKey: other.getPublicKey().toString('base64url') });
    await assertDeliveryError(backend.send(subscriptionRegistration(subscription), notification()), 'auth', { status: 403 });
  });

  test('429 with Retry-After → retry; 502 → retry', async (t) => {
    const { mock, backend } = await setup(t);
    const reg = subscriptionRegistration(mock.subscribe());
    mock.failNext(429, { error: 'slow down' }, { 'retry-after': '120' });
    await assertDeliveryError(backend.send(reg, notification()), 'retry', { status: 429, retryAfterMs: 120_000 });
    mock.failNext(502);
    await assertDeliveryError(backend.send(reg, notification()), 'retry', { status: 502 });
  });

  test('413 and 400 → rejected', async (t) => {
    const { mock, backend } = await setup(t);
    const reg = subscriptionRegistration(mock.subscribe());
    mock.failNext(413);
    await assertDeliveryError(backend.send(reg, notification()), 'rejected', { status: 413 });
    mock.failNext(400);
    await assertDeliveryError(backend.send(reg, notification()), 'rejected', { status: 400 });
  });

  test('endpoint whose name resolves to loopback, insecure endpoints not allowed → rejected, nothing sent', async (t) => {
    const { mock, backend } = await setup(t, { config: { allow_insecure_endpoints: false } });
    const subscription = mock.subscribe();
    const endpoint = subscription.endpoint.replace('127.0.0.1', 'localhost');
    await assertDeliveryError(backend.send(subscriptionRegistration({ ...subscription, endpoint }), notification()), 'rejected', { reason: 'private-address' });
    assert.equal(mock.received.length, 0);
  });
});

describe('push backend webpush: registration', () => {
  const keys = () => {
    const ua = createECDH('prime256v1');
    ua.generateKeys();
    return { p256dh: ua.getPublicKey().toString('base64url'), auth: Buffer.alloc(16, 7).toString('base64url') };
  };

  test('https endpoint with keys (standard base64 accepted) → stored as base64url', async (t) => {
    const { backend } = await setup(t, { config: { allow_insecure_endpoints: false } });
    const { p256dh, auth } = keys();
    const standard = Buffer.from(p256dh, 'base64url').toString('base64');
    const data = backend.parseRegistration(submitForm({ endpoint: 'https://push.example.net/wpush/abc', p256dh: standard, auth }));
    assert.deepEqual(data, { endpoint: 'https://push.example.net/wpush/abc', p256dh, auth });
  });

  test('http endpoint or one at a private address → not-acceptable', async (t) => {
    const { backend } = await setup(t, { config: { allow_insecure_endpoints: false } });
    for (const endpoint of ['http://push.example.net/x', 'https://127.0.0.1/x', 'https://10.1.2.3/x', 'https://[::1]/x', 'https://localhost/x']) {
      assertRefused(() => backend.parseRegistration(submitForm({ endpoint, ...keys() })), 'not-acceptable', /endpoint/);
    }
  });

  test('missing endpoint, bad p256dh, short auth → bad-request', async (t) => {
    const { backend } = await setup(t);
    assertRefused(() => backend.parseRegistration(submitForm(keys())), 'bad-request', /endpoint is required/);
    const endpoint = 'https://push.example.net/x';
    assertRefused(() => backend.parseRegistration(submitForm({ endpoint, auth: keys().auth })), 'bad-request', /p256dh/);
    const offCurve = Buffer.alloc(65, 1);
    offCurve[0] = 4;
    assertRefused(() => backend.parseRegistration(submitForm({ endpoint, p256dh: offCurve.toString('base64url'), auth: keys().auth })), 'bad-request', /P-256/);
    assertRefused(() => backend.parseRegistration(submitForm({ endpoint, p256dh: keys().p256dh, auth: 'c2hvcnQ' })), 'bad-request', /16-byte/);
  });

  test('form offers the VAPID key first, then endpoint, p256dh, auth', async (t) => {
    const { backend } = await setup(t);
    assert.deepEqual(backend.fields.map((f) => f.var), ['vapid-public-key', 'endpoint', 'p256dh', 'auth']);
  });

  test('public and non-public addresses are told apart', () => {
    for (const address of ['8.8.8.8', '2001:4860:4860::8888', '93.184.216.34']) assert.ok(isPublicAddress(address), address);
    for (const address of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '0.0.0.0']) {
      assert.ok(!isPublicAddress(address), address);
    }
  });
});

describe('push backend unifiedpush', () => {
  async function upSetup(t: TestContext) {
    const dir = tempDir(t);
    const mock = await startUnifiedPushMock();
    t.after(() => mock.close());
    const backend = createUnifiedpushBackend(unifiedpushConfig.parse({ allow_insecure_endpoints: true }), backendContext(dir));
    return { mock, backend };
  }

  test('endpoint without keys → plain JSON summary with TTL, no Authorization', async (t) => {
    const { mock, backend } = await upSetup(t);
    const subscription = mock.subscribe({ keys: false });
    await backend.send(registration('unifiedpush', { endpoint: subscription.endpoint }), notification({ messageCount: 1 }));
    const request = await mock.next();
    assert.equal(request.status, 201, request.error);
    assert.deepEqual(request.payload, { node: 'node-1', 'message-count': 1 });
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers.authorization, undefined);
    assert.equal(request.ttl, 86400);
  });

  test('endpoint with Web Push keys → encrypted payload and a VAPID token', async (t) => {
    const { mock, backend } = await upSetup(t);
    const subscription = mock.subscribe();
    await backend.send(registration('unifiedpush', { endpoint: subscription.endpoint, p256dh: subscription.p256dh!, auth: subscription.auth! }), notification());
    const request = await mock.next();
    assert.equal(request.status, 201, request.error);
    assert.deepEqual(request.payload, { node: 'node-1', 'message-count': 3 });
    assert.equal(request.vapid?.k, backend.fields.find((f) => f.var === 'vapid-public-key')?.values[0]);
  });

  test('404 and 410 → gone; 429 → retry; 413 → rejected', async (t) => {
    const { mock, backend } = await upSetup(t);
    const subscription = mock.subscribe({ keys: false });
    const reg = registration('unifiedpush', { endpoint: subscription.endpoint });
    mock.failNext(404);
    await assertDeliveryError(backend.send(reg, notification()), 'gone', { status: 404 });
    mock.failNext(429, undefined, { 'retry-after': '5' });
    await assertDeliveryError(backend.send(reg, notification()), 'retry', { retryAfterMs: 5000 });
    mock.failNext(413);
    await assertDeliveryError(backend.send(reg, notification()), 'rejected', { status: 413 });
    mock.unsubscribe(subscription.id);
    await assertDeliveryError(backend.send(reg, notification()), 'gone', { status: 410 });
  });

  test('registration: endpoint alone is enough; p256dh without auth → bad-request; ftp endpoint → not-acceptable', async (t) => {
    const { backend } = await upSetup(t);
    assert.deepEqual(backend.parseRegistration(submitForm({ endpoint: 'https://ntfy.example.org/upABC?up=1' })), { endpoint: 'https://ntfy.example.org/upABC?up=1' });
    assertRefused(() => backend.parseRegistration(submitForm({ endpoint: 'https://ntfy.example.org/x', p256dh: RFC8291.uaPublic })), 'bad-request', /together/);
    assertRefused(() => backend.parseRegistration(submitForm({ endpoint: 'ftp://ntfy.example.org/x' })), 'not-acceptable');
  });
});
