// A mock Web Push service (RFC 8030) that is also the subscribing user agent: it makes subscriptions
// (a P-256 key pair and auth secret per subscription, as a browser does), checks the VAPID token
// (RFC 8292: ES256 signature with the 'k' key, aud = the endpoint's origin, exp within 24 hours,
// 'k' equal to the subscription's applicationServerKey) and decrypts the aes128gcm payload
// (RFC 8291, RFC 8188) with the subscription's private key. The UnifiedPush mock is this service
// with VAPID and encryption optional (test/mocks/unifiedpush.ts).

import { createDecipheriv, createECDH, hkdfSync, randomBytes, type ECDH } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Recorder, closeServer, listen, nowSeconds, p256PublicKey, readBody, sendJson, verifyJwt, type VerifiedJwt } from './common.js';

export interface Subscription {
  id: string;
  endpoint: string;
  /** base64url, as PushSubscription.toJSON().keys gives them; absent for key-less UnifiedPush endpoints. */
  p256dh?: string;
  auth?: string;
  /** The applicationServerKey the subscription was made with (base64url), if any. */
  applicationServerKey?: string;
  ecdh?: ECDH;
  authSecret?: Buffer;
}

export interface PushServiceRequest {
  subscription: string;
  headers: IncomingHttpHeaders;
  ttl?: number;
  urgency?: string;
  topic?: string;
  vapid?: VerifiedJwt & { k: string };
  /** The decrypted (or plain) payload, parsed as JSON when it is JSON. */
  payload?: unknown;
  plaintext?: Buffer;
  status: number;
  error?: string;
}

export interface PushServiceOptions {
  /** Refuse requests without a valid VAPID token (Web Push); UnifiedPush distributors do not. */
  requireVapid: boolean;
  /** Require the VAPID 'sub' claim (Apple's push service does). */
  requireSubject?: boolean;
  /** Path prefix of endpoints ('/push' → http://127.0.0.1:port/push/<id>). */
  prefix?: string;
}

export interface PushServiceMock extends Pick<Recorder<PushServiceRequest>, 'received' | 'next' | 'failNext'> {
  url: string;
  /** A new subscription; `keys: false` gives a key-less endpoint (plain UnifiedPush). */
  subscribe(options?: { keys?: boolean; applicationServerKey?: string }): Subscription;
  /** The subscription expires: further pushes get 410 Gone. */
  unsubscribe(id: string): void;
  close(): Promise<void>;
}

export async function startPushServiceMock(options: PushServiceOptions): Promise<PushServiceMock> {
  const recorder = new Recorder<PushServiceRequest>();
  const subscriptions = new Map<string, Subscription>();
  const expired = new Set<string>();
  const prefix = options.prefix ?? '/push';
  const server = createServer((req, res) => void handle(req, res));
  const url = await listen(server);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const id = req.url?.startsWith(`${prefix}/`) ? decodeURIComponent(req.url.slice(prefix.length + 1)) : '';
    const request: PushServiceRequest = { subscription: id, headers: req.headers, status: 201 };
    const scripted = recorder.takeFailure();
    const verdict = scripted ?? judge(req, id, body, request);
    request.status = verdict.status;
    recorder.record(request);
    if (verdict.status === 201) {
      res.writeHead(201, { location: `${url}/message/${randomBytes(8).toString('hex')}` });
      return void res.end();
    }
    sendJson(res, verdict.status, verdict.body ?? { code: verdict.status, error: request.error }, verdict.headers);
  }

  function judge(req: IncomingMessage, id: string, body: Buffer, request: PushServiceRequest): { status: number; body?: unknown; headers?: Record<string, string> } {
    const refuse = (status: number, error: string) => {
      request.error = error;
      return { status };
    };
    if (req.method !== 'POST') return refuse(405, 'method');
    if (expired.has(id)) return refuse(410, 'subscription expired');
    const subscription = subscriptions.get(id);
    if (!subscription) return refuse(404, 'no such subscription');
    // RFC 8030 §5.2: "An application server MUST include the TTL (Time-To-Live) header field".
    const ttl = req.headers.ttl;
    if (typeof ttl !== 'string' || !/^\d+$/.test(ttl)) return refuse(400, 'TTL header missing');
    request.ttl = Number(ttl);
    const urgency = req.headers.urgency;
    if (urgency !== undefined && !['very-low', 'low', 'normal', 'high'].includes(String(urgency))) return refuse(400, 'bad Urgency');
    if (urgency !== undefined) request.urgency = String(urgency);
    const topic = req.headers.topic;
    // RFC 8030 §5.4: "no more than 32 characters from the URL and filename safe Base64 alphabet".
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(String(topic))) return refuse(400, 'bad Topic');
    if (topic !== undefined) request.topic = String(topic);
    const vapidError = checkVapid(req.headers.authorization, subscription, request);
    if (vapidError) return vapidError;
    if (body.length > 4096) return refuse(413, 'payload too large');
    return readPayload(req.headers, body, subscription, request) ?? { status: 201 };
  }

  function checkVapid(authorization: string | undefined, subscription: Subscription, request: PushServiceRequest): { status: number } | undefined {
    const refuse = (status: number, error: string) => {
      request.error = error;
      return { status };
    };
    if (authorization === undefined) return options.requireVapid ? refuse(401, 'VAPID token missing') : undefined;
    // RFC 8292 §3: Authorization: vapid t=<JWT>, k=<base64url P-256 public key>
    const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization);
    if (!match?.[1] || !match[2]) return refuse(401, 'not a vapid Authorization');
    const k = Buffer.from(match[2], 'base64url');
    if (k.length !== 65 || k[0] !== 4) return refuse(401, 'k is not an uncompressed P-256 key');
    const jwt = verifyJwt(match[1], 'ES256', p256PublicKey(k));
    if (typeof jwt === 'string') return refuse(401, `VAPID ${jwt}`);
    request.vapid = { ...jwt, k: match[2] };
    // RFC 8292 §2: aud = the origin of the push resource; exp no more than 24 hours ahead.
    if (jwt.claims.aud !== new URL(subscription.endpoint).origin) return refuse(401, 'aud is not the endpoint origin');
    const exp = jwt.claims.exp;
    if (typeof exp !== 'number' || exp <= nowSeconds() || exp > nowSeconds() + 24 * 3600) return refuse(401, 'exp out of range');
    if (options.requireSubject && !/^(mailto|https):/.test(String(jwt.claims.sub ?? ''))) return refuse(401, 'sub missing');
    // RFC 8292 §4.2: a subscription restricted to a key accepts only that key (403).
    if (subscription.applicationServerKey && subscription.applicationServerKey !== match[2]) return refuse(403, 'key does not match the subscription');
    return undefined;
  }

  const mock: PushServiceMock = {
    url,
    received: recorder.received,
    next: (timeoutMs?: number) => recorder.next(timeoutMs),
    failNext: (status, body, headers) => recorder.failNext(status, body, headers),
    subscribe: (subscribeOptions = {}) => {
      const id = randomBytes(12).toString('base64url');
      const subscription: Subscription = { id, endpoint: `${url}${prefix}/${id}` };
      if (subscribeOptions.keys ?? true) {
        subscription.ecdh = createECDH('prime256v1');
        subscription.ecdh.generateKeys();
        subscription.authSecret = randomBytes(16);
        subscription.p256dh = subscription.ecdh.getPublicKey().toString('base64url');
        subscription.auth = subscription.authSecret.toString('base64url');
      }
      if (subscribeOptions.applicationServerKey) subscription.applicationServerKey = subscribeOptions.applicationServerKey;
      subscriptions.set(id, subscription);
      return subscription;
    },
    unsubscribe: (id) => void expired.add(id),
    close: () => closeServer(server),
  };
  return mock;
}

function readPayload(headers: IncomingHttpHeaders, body: Buffer, subscription: Subscription, request: PushServiceRequest): { status: number } | undefined {
  const encoding = headers['content-encoding'];
  let plaintext = body;
  if (encoding === 'aes128gcm') {
    if (!subscription.ecdh || !subscription.authSecret) return { status: 400 };
    try {
      plaintext = decryptAes128gcm(body, subscription.ecdh, subscription.authSecret);
    } catch (err) {
      request.error = `cannot decrypt: ${(err as Error).message}`;
      return { status: 400 };
    }
  } else if (encoding !== undefined) {
    request.error = `unknown Content-Encoding ${encoding}`;
    return { status: 415 };
  } else if (subscription.ecdh && body.length > 0) {
    request.error = 'unencrypted payload for a subscription with keys';  // user agents drop these
    return { status: 400 };
  }
  request.plaintext = plaintext;
  try {
    request.payload = JSON.parse(plaintext.toString('utf8'));
  } catch {
    request.payload = plaintext.toString('utf8');
  }
  return undefined;
}

/** The user agent's side of RFC 8291 §3.4 and RFC 8188 §2, with node's HKDF. */
export function decryptAes128gcm(body: Buffer, ua: ECDH, authSecret: Buffer): Buffer {
  if (body.length < 21) throw new Error('header too short');
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (idlen !== 65) throw new Error('keyid is not a P-256 public key');
  if (record.length > recordSize) throw new Error('more than one record');
  const uaPublic = ua.getPublicKey();
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info', 'ascii'), Buffer.from([0]), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ua.computeSecret(asPublic), authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0', 'ascii'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0', 'ascii'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  // RFC 8188 §2: the last record ends with the delimiter 0x02 (then optional zero padding).
  if (padded[end] !== 2) throw new Error('last record lacks the 0x02 delimiter');
  return padded.subarray(0, end);
}

/** Web Push: VAPID and encryption required, a contact ('sub') required as Apple does. */
export function startWebPushMock(): Promise<PushServiceMock> {
  return startPushServiceMock({ requireVapid: true, requireSubject: true, prefix: '/wpush' });
}
