import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUbportsBackend, ubportsConfig } from '../../modules/appserver/backends/ubports.js';
import { createWnsBackend, wnsConfig } from '../../modules/appserver/backends/wns.js';
import { httpRequest, retryAfterMs } from '../../modules/appserver/backends/http.js';
import { startUbportsMock, type UbportsMock } from '../mocks/ubports.js';
import { startWnsMock, type WnsMock } from '../mocks/wns.js';
import type { PushBackend } from '../../modules/appserver/backend.js';
import {
  assertDeliveryError, assertRefused, backendContext, fakeClock, notification, registration, submitForm, tempDir,
} from './push-backends-helpers.js';

const APP_ID = 'chat.example_chat';
const UT_TOKEN = Buffer.from(`${APP_ID}:device-42`).toString('base64');

async function ubportsSetup(t: TestContext): Promise<{ mock: UbportsMock; backend: PushBackend }> {
  const mock = await startUbportsMock();
  t.after(() => mock.close());
  mock.tokens.set(UT_TOKEN, APP_ID);
  return { mock, backend: createUbportsBackend(ubportsConfig.parse({ endpoint: mock.url }), backendContext(tempDir(t))) };
}

const ubuntuRegistration = (token = UT_TOKEN) => registration('ubuntu', { token, 'application-id': APP_ID });

describe('push backend ubports', () => {
  test('push → POST /notify with appid, token, future expire_on, summary data and a per-node replace_tag', async (t) => {
    const { mock, backend } = await ubportsSetup(t);
    await backend.send(ubuntuRegistration(), notification({ messageCount: 2 }));
    const request = await mock.next();
    assert.equal(request.status, 200, request.error);
    assert.equal(request.body.appid, APP_ID);
    assert.equal(request.body.token, UT_TOKEN);
    assert.deepEqual(request.body.data, { node: 'node-1', 'message-count': 2 });
    assert.equal(request.body.replace_tag, 'node-1');
    const expires = Date.parse(request.body.expire_on ?? '');
    assert.ok(expires > Date.now() + 23 * 3600_000 && expires <= Date.now() + 24 * 3600_000);
  });

  test('unknown token → 400 unknown-token → gone', async (t) => {
    const { backend } = await ubportsSetup(t);
    await assertDeliveryError(backend.send(ubuntuRegistration('dW5rbm93bg=='), notification()), 'gone', { status: 400, reason: 'unknown-token' });
  });

  test('token of another app → 401 unauthorized → rejected (kept: not proof the token is dead)', async (t) => {
    const { mock, backend } = await ubportsSetup(t);
    mock.tokens.set('b3RoZXI=', 'other.app_other');
    await assertDeliveryError(backend.send(ubuntuRegistration('b3RoZXI='), notification()), 'rejected', { status: 401, reason: 'unauthorized' });
  });

  test('503 unavailable → retry; 413 too-many-pending → retry', async (t) => {
    const { mock, backend } = await ubportsSetup(t);
    mock.failNext(503, { error: 'unavailable', message: 'Could not store notification' });
    await assertDeliveryError(backend.send(ubuntuRegistration(), notification()), 'retry', { status: 503 });
    mock.failNext(413, { error: 'too-many-pending', message: 'Too many pending notifications for this application' });
    await assertDeliveryError(backend.send(ubuntuRegistration(), notification()), 'retry', { status: 413 });
  });

  test('400 invalid-request → rejected', async (t) => {
    const { mock, backend } = await ubportsSetup(t);
    mock.failNext(400, { error: 'invalid-request', message: 'Data too large' });
    await assertDeliveryError(backend.send(ubuntuRegistration(), notification()), 'rejected', { reason: 'invalid-request' });
  });

  test('registration: token and application-id stored; missing application-id → bad-request; malformed one → bad-request', async (t) => {
    const { backend } = await ubportsSetup(t);
    assert.deepEqual(backend.parseRegistration(submitForm({ token: UT_TOKEN, 'application-id': APP_ID })), { token: UT_TOKEN, 'application-id': APP_ID });
    assertRefused(() => backend.parseRegistration(submitForm({ token: UT_TOKEN })), 'bad-request', /application-id is required/);
    assertRefused(() => backend.parseRegistration(submitForm({ token: UT_TOKEN, 'application-id': 'no underscore' })), 'bad-request', /package_app/);
    assert.equal(backend.name, 'ubuntu');
    assert.deepEqual(backend.fields.map((f) => f.var), ['token', 'application-id']);
  });
});

const WNS_CREDENTIALS = { clientId: 'ms-app://s-1-15-2-2972962901-2322836549', clientSecret: 'Vex8L9WOFZuj95euaLrvSH7XyoDhLJc7' };

async function wnsSetup(t: TestContext, options: { now?: () => number; secret?: string } = {}): Promise<{ mock: WnsMock; backend: PushBackend }> {
  const mock = await startWnsMock(WNS_CREDENTIALS);
  t.after(() => mock.close());
  const config = wnsConfig.parse({
    client_id: WNS_CREDENTIALS.clientId, client_secret: options.secret ?? WNS_CREDENTIALS.clientSecret,
    token_endpoint: mock.tokenUrl, channel_hosts: ['127.0.0.1'], allow_insecure_endpoints: true,
  });
  return { mock, backend: createWnsBackend(config, backendContext(tempDir(t)), { now: options.now }) };
}

describe('push backend wns', () => {
  test('push → client-credentials token, then a raw notification with the summary', async (t) => {
    const { mock, backend } = await wnsSetup(t);
    const channel = mock.channel();
    await backend.send(registration('wns', { 'channel-uri': channel }), notification({ messageCount: 4 }));
    const request = await mock.next();
    assert.equal(request.status, 200);
    assert.equal(request.headers['x-wns-type'], 'wns/raw');
    assert.equal(request.headers['content-type'], 'application/octet-stream');
    assert.equal(request.headers['x-wns-requestforstatus'], 'true');
    assert.equal(request.headers['x-wns-ttl'], '86400');
    assert.match(String(request.headers.authorization), /^Bearer /);
    assert.deepEqual(request.payload, { node: 'node-1', 'message-count': 4 });
    assert.deepEqual(mock.tokenRequests, [{ status: 200, scope: 'notify.windows.com' }]);
  });

  test('access token reused until near expiry, then fetched again', async (t) => {
    const clock = fakeClock();
    const { mock, backend } = await wnsSetup(t, { now: clock.now });
    const reg = registration('wns', { 'channel-uri': mock.channel() });
    await backend.send(reg, notification());
    clock.advance(20 * 3600_000);
    await backend.send(reg, notification());
    assert.equal(mock.tokenRequests.length, 1);
    clock.advance(4 * 3600_000);
    await backend.send(reg, notification());
    assert.equal(mock.tokenRequests.length, 2);
  });

  test('token expired early → 401, one new token, resend succeeds; 401 again → auth', async (t) => {
    const { mock, backend } = await wnsSetup(t);
    const reg = registration('wns', { 'channel-uri': mock.channel() });
    await backend.send(reg, notification());
    mock.revokeAccessTokens();
    await backend.send(reg, notification());
    assert.deepEqual(mock.received.map((r) => r.status), [200, 401, 200]);
    mock.failNext(401);
    mock.failNext(401);
    await assertDeliveryError(backend.send(reg, notification()), 'auth', { status: 401 });
  });

  test('wrong client secret → invalid_client → auth', async (t) => {
    const { mock, backend } = await wnsSetup(t, { secret: 'wrong' });
    await assertDeliveryError(backend.send(registration('wns', { 'channel-uri': mock.channel() }), notification()), 'auth', { reason: 'invalid_client' });
    assert.equal(mock.received.length, 0);
  });

  test('410 expired channel and 404 unknown channel → gone', async (t) => {
    const { mock, backend } = await wnsSetup(t);
    const channel = mock.channel();
    mock.expire(channel);
    await assertDeliveryError(backend.send(registration('wns', { 'channel-uri': channel }), notification()), 'gone', { status: 410 });
    await assertDeliveryError(backend.send(registration('wns', { 'channel-uri': `${mock.url}/w/?token=nope` }), notification()), 'gone', { status: 404 });
  });

  test('406 throttled and 503 → retry; 403 → rejected; 413 → rejected', async (t) => {
    const { mock, backend } = await wnsSetup(t);
    const reg = registration('wns', { 'channel-uri': mock.channel() });
    mock.failNext(406);
    await assertDeliveryError(backend.send(reg, notification()), 'retry', { status: 406 });
    mock.failNext(503, undefined, { 'retry-after': '60' });
    await assertDeliveryError(backend.send(reg, notification()), 'retry', { status: 503, retryAfterMs: 60_000 });
    mock.failNext(403);
    await assertDeliveryError(backend.send(reg, notification()), 'rejected', { status: 403 });
    mock.failNext(413);
    await assertDeliveryError(backend.send(reg, notification()), 'rejected', { status: 413 });
  });

  test('registration: https channel on notify.windows.com accepted; other hosts and http → not-acceptable', () => {
    const backend = createWnsBackend(wnsConfig.parse({ client_id: 'id', client_secret: 's' }), backendContext('/tmp'));
    const uri = 'https://db5.notify.windows.com/?token=AwYAAAB%2fQ';
    assert.deepEqual(backend.parseRegistration(submitForm({ 'channel-uri': uri })), { 'channel-uri': uri });
    assertRefused(() => backend.parseRegistration(submitForm({ 'channel-uri': 'https://evil.example/?token=x' })), 'not-acceptable', /allowed host/);
    assertRefused(() => backend.parseRegistration(submitForm({ 'channel-uri': 'https://notify.windows.com.evil.example/' })), 'not-acceptable');
    assertRefused(() => backend.parseRegistration(submitForm({ 'channel-uri': 'http://db5.notify.windows.com/?token=x' })), 'not-acceptable', /https/);
    assertRefused(() => backend.parseRegistration(submitForm({})), 'bad-request', /channel-uri is required/);
  });

  test('no client credentials configured → startup error', () => {
    assert.throws(() => createWnsBackend(wnsConfig.parse({}), backendContext('/tmp')), /client_id and client_secret/);
  });
});

describe('push backends: HTTP helper', () => {
  test('vendor that does not answer → retry with reason timeout', async (t) => {
    const silent = createServer(() => { /* never answers */ });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      silent.closeAllConnections();
      silent.close();
    });
    const url = new URL(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/`);
    await assertDeliveryError(httpRequest(url, { body: '{}', timeoutMs: 150 }), 'retry', { reason: 'timeout' });
  });

  test('requests to one vendor share kept-alive connections, at most 64 at once', async (t) => {
    let connections = 0;
    // Answers after 5 ms, so a burst of 200 would open ~200 connections without the pool's limit.
    const vendor = createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.end('ok'), 5));
    });
    vendor.on('connection', () => connections++);
    await new Promise<void>((resolve) => vendor.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      vendor.closeAllConnections();
      vendor.close();
    });
    const url = new URL(`http://127.0.0.1:${(vendor.address() as AddressInfo).port}/`);
    for (let i = 0; i < 3; i++) assert.equal((await httpRequest(url, { body: '{}', timeoutMs: 2000 })).status, 200);
    assert.equal(connections, 1, 'one connection for requests one after another');
    const burst = await Promise.all(Array.from({ length: 200 }, () => httpRequest(url, { body: '{}', timeoutMs: 10_000 })));
    assert.ok(burst.every((r) => r.status === 200 && r.body === 'ok'));
    assert.ok(connections <= 64, `a burst queues for the pool: ${connections} connections`);
  });

  test('connection refused → retry with the error code', async () => {
    await assertDeliveryError(httpRequest(new URL('http://127.0.0.1:9/'), { body: '{}', timeoutMs: 1000 }), 'retry', { reason: 'ECONNREFUSED' });
  });

  test('Retry-After: seconds and HTTP-date', () => {
    assert.equal(retryAfterMs('120'), 120_000);
    assert.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:00 GMT')), 60_000);
    assert.equal(retryAfterMs(undefined), undefined);
    assert.equal(retryAfterMs('soon'), undefined);
  });
});
