// Apple Push Notification service: the HTTP/2 provider API ("Sending notification requests to
// APNs", developer.apple.com) with token auth (ES256 JWT from a .p8 key) or certificate auth.
// Production or sandbox (development builds) per registration, chosen by the client's `sandbox`.
//
// Push type: a summary marked 'high' (a message with a body, a subscription request) goes as an
// 'alert' push with apns-priority 10 and mutable-content, so the app's notification service
// extension can fetch and show the real message; anything else goes as a 'background' push with
// content-available and apns-priority 5, as Apple requires for background pushes (which iOS may
// throttle — fine for pushes that only keep the session warm). Left out: VoIP/PushKit pushes,
// Live Activities, the legacy binary protocol.

import { connect, constants as h2, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { z } from 'zod';
import { field, parseBoolean, formValue, type DataForm } from '../../../server/protocol/xep0004.js';
import { stanzaError } from '../../../server/errors.js';
import { duration } from '../../../server/module-api.js';
import { defineBackend, PushDeliveryError, type BackendContext, type PushBackend, type PushNotification, type PushRegistration } from '../backend.js';
import { CredentialCache, signJwt } from './jwt.js';
import { parseJson, jsonString, retryAfterMs, timeoutSetting, ttlSetting, type BackendOptions } from './http.js';
import { collapseKey, optionalValue, requiredValue, summaryOf } from './payload.js';

export const apnsConfig = z.object({
  enabled: z.boolean().default(true).describe('Offer register-push-apns (false keeps the section but turns the backend off)'),
  endpoint: z.string().url().default('https://api.push.apple.com').describe('APNs production server (HTTP/2)'),
  sandbox_endpoint: z.string().url().default('https://api.sandbox.push.apple.com')
    .describe('APNs development server, used for registrations with sandbox = true'),
  topic: z.string().optional()
    .meta({ description: "apns-topic (the app's bundle ID) for registrations that name none", example: 'org.example.chat' }),
  team_id: z.string().optional().meta({ description: 'Token auth: the Team ID of the Apple developer account', example: 'ABCDE12345' }),
  key_id: z.string().optional().meta({ description: 'Token auth: the Key ID of the APNs auth key', example: 'KEY1234567' }),
  key_file: z.string().optional().meta({ description: 'Token auth: the APNs auth key (.p8 file) downloaded from the developer account', example: '/etc/herald/AuthKey_KEY1234567.p8' }),
  cert_file: z.string().optional().meta({ description: 'Certificate auth (instead of token auth): the APNs client certificate (PEM)', example: '/etc/herald/apns-cert.pem' }),
  cert_key_file: z.string().optional().meta({ description: 'Certificate auth: the private key of cert_file (PEM)', example: '/etc/herald/apns-key.pem' }),
  cert_passphrase: z.string().optional().meta({ description: 'Certificate auth: passphrase of cert_key_file, if it is encrypted', example: 'secret' }),
  ca_file: z.string().optional().meta({ description: 'Extra CA certificates (PEM) trusted for the APNs servers (a test mock, a TLS-inspecting proxy)', example: '/etc/herald/extra-ca.pem' }),
  token_refresh: duration().prefault('50 minutes')
    .describe('Token auth: sign a new provider token after this long (Apple refuses tokens older than an hour, and new ones more often than every 20 minutes)'),
  alert_text: z.string().default('New message').describe('Alert text of visible pushes whose summary carries no message body'),
  ttl: ttlSetting('APNs'),
  timeout: timeoutSetting(),
}).strict();

export type ApnsConfig = z.infer<typeof apnsConfig>;

type Auth = { kind: 'token'; tokens: CredentialCache<string> } | { kind: 'certificate' };

interface Http2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function createApnsBackend(config: ApnsConfig, ctx: BackendContext, options: BackendOptions = {}): PushBackend {
  const now = options.now ?? Date.now;
  const tls = tlsOptions(config);
  const auth = authFromConfig(config, now);
  const sessions = new Http2Sessions(tls, config.timeout, ctx);

  async function deliver(registration: PushRegistration, notification: PushNotification): Promise<void> {
    const origin = registration.data.sandbox === 'true' ? config.sandbox_endpoint : config.endpoint;
    const headers = requestHeaders(registration, notification);
    for (let attempt = 0; ; attempt++) {
      const jwt = auth.kind === 'token' ? await auth.tokens.get() : undefined;
      const answer = await sessions.post(origin, { ...headers, ...(jwt ? { authorization: `bearer ${jwt}` } : {}) }, JSON.stringify(apnsPayload(notification)));
      if (answer.status === 200) return;
      const reason = jsonString(parseJson(answer.body), 'reason');
      // Apple: ExpiredProviderToken — "the provider token is stale and a new token should be generated".
      if (answer.status === 403 && reason === 'ExpiredProviderToken' && jwt && auth.kind === 'token' && attempt === 0) {
        auth.tokens.invalidate(jwt);
        continue;
      }
      throw apnsFailure(answer, reason, now());
    }
  }

  function requestHeaders(registration: PushRegistration, notification: PushNotification): OutgoingHttpHeaders {
    const visible = notification.priority === 'high';
    const topic = registration.data.topic ?? config.topic;
    const headers: OutgoingHttpHeaders = {
      [h2.HTTP2_HEADER_METHOD]: 'POST',
      [h2.HTTP2_HEADER_PATH]: `/3/device/${registration.data.token}`,
      'content-type': 'application/json',
      'apns-push-type': visible ? 'alert' : 'background',
      // Apple: background notifications "must" use priority 5; 10 delivers immediately.
      'apns-priority': visible ? '10' : '5',
      'apns-expiration': String(Math.floor((now() + config.ttl) / 1000)),
      // "Multiple notifications with the same collapse identifier are displayed to the user as a single notification" (≤ 64 bytes).
      'apns-collapse-id': collapseKey(notification.node, 64),
    };
    if (topic) headers['apns-topic'] = topic;
    return headers;
  }

  function apnsPayload(notification: PushNotification): Record<string, unknown> {
    const summary = summaryOf(notification);
    const aps = notification.priority === 'high'
      ? {
          alert: { ...(summary['last-message-sender'] ? { title: summary['last-message-sender'] } : {}), body: summary['last-message-body'] ?? config.alert_text },
          sound: 'default',
          'mutable-content': 1,
        }
      : { 'content-available': 1 };
    return { aps, ...summary };
  }

  return {
    name: 'apns',
    fields: [
      field('token', 'text-single', { label: 'APNs device token (hex)', required: true }),
      field('sandbox', 'boolean', { label: 'Development build (APNs sandbox)', values: ['0'] }),
      field('topic', 'text-single', { label: 'App bundle ID (apns-topic)' }),
    ],
    parseRegistration: (form) => parseApnsRegistration(form, config),
    send: deliver,
    close: async () => sessions.close(),
  };
}

function parseApnsRegistration(form: DataForm, config: ApnsConfig): Record<string, string> {
  const token = requiredValue(form, 'token').toLowerCase();
  // Apple: "device tokens can change size"; they are hex, 32 bytes today. Bound, don't pin.
  if (!/^(?:[0-9a-f]{2}){16,200}$/.test(token)) throw stanzaError.badRequest('token must be a hex APNs device token');
  const sandboxText = formValue(form, 'sandbox');
  const sandbox = sandboxText === undefined || sandboxText === '' ? false : parseBoolean(sandboxText);
  if (sandbox === undefined) throw stanzaError.badRequest('sandbox must be a boolean');
  const topic = optionalValue(form, 'topic');
  if (topic !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.\-_]{0,200}$/.test(topic)) throw stanzaError.badRequest('topic must be a bundle ID');
  if (topic === undefined && !config.topic) throw stanzaError.notAcceptable('this server has no default APNs topic: send topic (the bundle ID)');
  const data: Record<string, string> = { token, sandbox: String(sandbox) };
  if (topic !== undefined) data.topic = topic;
  return data;
}

/** Apple's documented answers ("Handling notification responses from APNs"). */
function apnsFailure(answer: Http2Answer, reason: string | undefined, now: number): PushDeliveryError {
  const details = { status: answer.status, reason, retryAfterMs: retryAfterMs(answer.headers['retry-after'], now) };
  // 410 Unregistered/ExpiredToken: "the device token is no longer active"; 400 BadDeviceToken: never valid here.
  if (answer.status === 410 || (answer.status === 400 && reason === 'BadDeviceToken')) {
    return new PushDeliveryError('gone', 'APNs says the device token is gone', details);
  }
  if (answer.status === 403) return new PushDeliveryError('auth', 'APNs refused our credentials', details);
  if (answer.status === 429 || answer.status >= 500) return new PushDeliveryError('retry', `APNs busy (HTTP ${answer.status})`, details);
  return new PushDeliveryError('rejected', `APNs refused the notification (HTTP ${answer.status})`, details);
}

// ---- credentials ----

function readConfigFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`apns: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function authFromConfig(config: ApnsConfig, now: () => number): Auth {
  if (config.key_file || config.team_id || config.key_id) {
    if (!config.key_file || !config.team_id || !config.key_id) throw new Error('apns: token auth needs team_id, key_id and key_file');
    const key: KeyObject = createPrivateKey(readConfigFile(config.key_file, 'key_file'));
    if (key.asymmetricKeyType !== 'ec') throw new Error('apns: key_file is not an EC (.p8) key');
    const { team_id: teamId, key_id: keyId, token_refresh: refresh } = config;
    return {
      kind: 'token',
      tokens: new CredentialCache(() => {
        const issued = now();
        // Apple: header { alg: ES256, kid }, claims { iss: team ID, iat: seconds since the epoch }.
        return { value: signJwt('ES256', { kid: keyId }, { iss: teamId, iat: Math.floor(issued / 1000) }, key), refreshAt: issued + refresh };
      }, now),
    };
  }
  if (config.cert_file && config.cert_key_file) return { kind: 'certificate' };
  throw new Error('apns: configure token auth (team_id, key_id, key_file) or certificate auth (cert_file, cert_key_file)');
}

interface TlsOptions {
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
}

function tlsOptions(config: ApnsConfig): TlsOptions {
  const tls: TlsOptions = {};
  if (config.ca_file) tls.ca = [readConfigFile(config.ca_file, 'ca_file')];
  if (config.cert_file && config.cert_key_file && !config.key_file) {
    tls.cert = readConfigFile(config.cert_file, 'cert_file');
    tls.key = readConfigFile(config.cert_key_file, 'cert_key_file');
    if (config.cert_passphrase) tls.passphrase = config.cert_passphrase;
  }
  return tls;
}

// ---- HTTP/2 connections ----

/**
 * One HTTP/2 connection per APNs origin, as Apple asks ("keep your connections with APNs open
 * across multiple notifications"), replaced after GOAWAY or an error.
 */
class Http2Sessions {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  constructor(private readonly tls: TlsOptions, private readonly timeoutMs: number, private readonly ctx: BackendContext) {}

  private session(origin: string): ClientHttp2Session {
    const existing = this.sessions.get(origin);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    // An extra ca_file is trusted alongside Node's bundled CAs (a bare `ca` option would replace them).
    const session = connect(origin, { ...this.tls, ca: this.tls.ca ? [...rootCertificates, ...this.tls.ca] : undefined });
    const forget = () => {
      if (this.sessions.get(origin) === session) this.sessions.delete(origin);
    };
    session.on('goaway', forget);
    session.on('close', forget);
    session.on('error', (err: NodeJS.ErrnoException) => {
      this.ctx.log.warn({ origin, code: err.code }, 'apns connection failed');
      forget();
    });
    session.unref();  // an idle connection must not keep the process alive
    this.sessions.set(origin, session);
    return session;
  }

  post(origin: string, headers: OutgoingHttpHeaders, body: string): Promise<Http2Answer> {
    return new Promise((resolve, reject) => {
      let stream;
      try {
        stream = this.session(origin).request(headers);
      } catch (err) {
        reject(new PushDeliveryError('retry', 'cannot reach APNs', { reason: (err as NodeJS.ErrnoException).code ?? 'network' }));
        return;
      }
      const chunks: Buffer[] = [];
      let answer: Http2Answer | undefined;
      stream.setTimeout(this.timeoutMs, () => {
        stream.close(h2.NGHTTP2_CANCEL);
        reject(new PushDeliveryError('retry', 'APNs did not answer in time', { reason: 'timeout' }));
      });
      stream.on('response', (headers) => {
        answer = { status: Number(headers[h2.HTTP2_HEADER_STATUS]), headers: headers as Http2Answer['headers'], body: '' };
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (!answer) return reject(new PushDeliveryError('retry', 'APNs closed the stream without an answer', { reason: 'no-response' }));
        resolve({ ...answer, body: Buffer.concat(chunks).toString('utf8') });
      });
      stream.on('error', (err: NodeJS.ErrnoException) => {
        reject(new PushDeliveryError('retry', 'APNs connection failed', { reason: err.code ?? 'network' }));
      });
      stream.end(body);
    });
  }

  close(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}

/** The row of the backend table (backends/index.ts): `modules.appserver.apns`. */
export const apns = defineBackend({
  name: 'apns',
  schema: apnsConfig.optional().describe('Apple Push Notification service (iOS, macOS): absent = not offered'),
  create: (config, ctx) => createApnsBackend(config, ctx),
});
