// Web Push: the push message protocol (RFC 8030) to the subscription's endpoint, the payload
// encrypted for the subscribing user agent (RFC 8291, aes128gcm of RFC 8188) and signed with our
// VAPID key (RFC 8292). Works with browsers' push services (Mozilla autopush, FCM's Web Push
// endpoint, Apple's web.push.apple.com) and with anything that speaks the same protocol.
//
// The VAPID key pair is made on first start (data_dir/push/vapid.json); clients need its public key
// before they subscribe, so it is a field of the register-push-webpush form and of its result.
// Left out: the obsolete 'aesgcm' coding and RFC 8030 receipts (push message acknowledgements).

import { createECDH } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { field, type DataForm, type FormField } from '../../../server/protocol/xep0004.js';
import { stanzaError } from '../../../server/errors.js';
import { duration } from '../../../server/module-api.js';
import { defineBackend, PushDeliveryError, type BackendContext, type PushBackend, type PushNotification, type PushRegistration } from '../backend.js';
import { decodeBase64Key, encryptPushPayload } from './ece.js';
import { checkEndpointUrl, genericFailure, httpRequest, retryAfterMs, timeoutSetting, ttlSetting, type BackendOptions, type HttpResponse } from './http.js';
import { base64url } from './jwt.js';
import { collapseKey, optionalValue, requiredValue, summaryOf } from './payload.js';
import { loadVapidKeys, VapidSigner } from './vapid.js';

export const webpushConfig = z.object({
  enabled: z.boolean().default(true).describe('Offer register-push-webpush (false keeps the section but turns the backend off)'),
  subject: z.string().regex(/^(mailto|https):/, 'a mailto: or https: URL').optional()
    .meta({ description: 'VAPID contact (RFC 8292 §2.1 "sub"): a mailto: or https: URL where push services can reach the operator; some (Apple) require it', example: 'mailto:admin@example.org' }),
  vapid_key_file: z.string().optional()
    .meta({ description: 'Where the VAPID key pair is kept (created on first start); absent: data_dir/push/vapid.json', example: '/var/lib/herald/push/vapid.json' }),
  vapid_token_lifetime: duration().prefault('12 hours').describe('Lifetime of each VAPID token (RFC 8292: at most 24 hours)'),
  allow_insecure_endpoints: z.boolean().default(false)
    .describe('Accept http:// endpoints and endpoints on loopback or private addresses (tests; a push service on the LAN)'),
  ttl: ttlSetting('the push service'),
  timeout: timeoutSetting(),
}).strict();

export type WebpushConfig = z.infer<typeof webpushConfig>;

/** The register form field (and result field) that hands clients our applicationServerKey. */
export const VAPID_KEY_FIELD = 'vapid-public-key';

export function vapidKeyFile(configured: string | undefined, ctx: BackendContext): string {
  return configured ?? join(ctx.dataDir, 'push', 'vapid.json');
}

export function createWebpushBackend(config: WebpushConfig, ctx: BackendContext, options: BackendOptions = {}): PushBackend {
  const now = options.now ?? Date.now;
  const keys = loadVapidKeys(vapidKeyFile(config.vapid_key_file, ctx));
  if (!config.subject) ctx.log.warn('webpush has no subject: push services that require a VAPID contact (Apple) will refuse pushes');
  const signer = new VapidSigner(keys, config.subject, Math.min(config.vapid_token_lifetime, 24 * 3600_000), now);
  const keyField = (): FormField => field(VAPID_KEY_FIELD, 'fixed', { label: 'VAPID public key (applicationServerKey)', values: [keys.publicKey] });

  return {
    name: 'webpush',
    fields: [
      keyField(),
      field('endpoint', 'text-single', { label: 'Push subscription endpoint', required: true }),
      field('p256dh', 'text-single', { label: 'Subscription public key (p256dh, base64url)', required: true }),
      field('auth', 'text-single', { label: 'Subscription auth secret (base64url)', required: true }),
    ],
    resultFields: () => [keyField()],
    parseRegistration: (form) => {
      const endpoint = checkEndpointUrl(requiredValue(form, 'endpoint'), { allowInsecure: config.allow_insecure_endpoints, field: 'endpoint' });
      return { endpoint: endpoint.toString(), ...parseSubscriptionKeys(form, true) };
    },
    send: async (registration, notification) => {
      const answer = await sendWebPush(registration, notification, { signer, config, now });
      throwOnFailure(answer, now(), true);
    },
  };
}

/** p256dh and auth of a subscription (RFC 8291 §2-3): a P-256 point and a 16-byte secret. */
export function parseSubscriptionKeys(form: DataForm, required: boolean): Record<string, string> {
  const read = required ? requiredValue : optionalValue;
  const p256dhText = read(form, 'p256dh');
  const authText = read(form, 'auth');
  if (!p256dhText && !authText) return {};
  if (!p256dhText || !authText) throw stanzaError.badRequest('p256dh and auth come together');
  const p256dh = decodeBase64Key(p256dhText);
  const auth = decodeBase64Key(authText);
  // RFC 8291 §3.1: "P-256 ... in uncompressed form"; an off-curve point would make ECDH fail later.
  if (p256dh.length !== 65 || p256dh[0] !== 4 || !isOnCurve(p256dh)) throw stanzaError.badRequest('p256dh is not an uncompressed P-256 public key');
  // RFC 8291 §3.2: "An authentication secret ... MUST be 16 octets".
  if (auth.length !== 16) throw stanzaError.badRequest('auth must be a 16-byte secret');
  return { p256dh: base64url(p256dh), auth: base64url(auth) };
}

function isOnCurve(point: Buffer): boolean {
  try {
    const probe = createECDH('prime256v1');
    probe.generateKeys();
    probe.computeSecret(point);
    return true;
  } catch {
    return false;
  }
}

export interface WebPushSendOptions {
  /** Absent: no Authorization header (UnifiedPush distributors that do not want VAPID). */
  signer?: VapidSigner;
  config: { ttl: number; timeout: number; allow_insecure_endpoints: boolean };
  now: () => number;
}

/** RFC 8030 §5 push message request; encrypted when the registration has keys, else plain JSON. */
export function sendWebPush(registration: PushRegistration, notification: PushNotification, options: WebPushSendOptions): Promise<HttpResponse> {
  const endpoint = new URL(registration.data.endpoint ?? '');
  const plaintext = Buffer.from(JSON.stringify(summaryOf(notification)));
  const { p256dh, auth } = registration.data;
  const headers: Record<string, string | number> = {
    // RFC 8030 §5.2: "A push service MAY retain a push message for a shorter duration than requested".
    ttl: Math.floor(options.config.ttl / 1000),
    // RFC 8030 §5.3: Urgency "very-low" | "low" | "normal" | "high".
    urgency: notification.priority,
    // RFC 8030 §5.4: a newer message with the same Topic replaces an undelivered one.
    topic: collapseKey(notification.node, 32),
  };
  if (options.signer) headers.authorization = options.signer.authorization(endpoint);
  let body: Buffer;
  if (p256dh && auth) {
    body = encryptPushPayload(plaintext, { uaPublic: decodeBase64Key(p256dh), authSecret: decodeBase64Key(auth) });
    headers['content-encoding'] = 'aes128gcm';  // RFC 8291 §4
    headers['content-type'] = 'application/octet-stream';
  } else {
    body = plaintext;
    headers['content-type'] = 'application/json';
  }
  return httpRequest(endpoint, { headers, body, timeoutMs: options.config.timeout, publicOnly: !options.config.allow_insecure_endpoints });
}

/** RFC 8030 answers: 201 Created; 404/410 the subscription is gone; 413 too large; 429/5xx later. */
export function throwOnFailure(answer: HttpResponse, now: number, signed: boolean): void {
  if (answer.status >= 200 && answer.status < 300) return;
  const details = { status: answer.status, retryAfterMs: retryAfterMs(answer.headers['retry-after'], now) };
  // RFC 8030 §7.3: "A push service MAY return a 410 (Gone) status code ... the subscription has expired".
  if (answer.status === 404 || answer.status === 410) throw new PushDeliveryError('gone', 'the push subscription is gone', details);
  // RFC 8292 §4: 401 for a missing/invalid token, 403 for a key that does not match the subscription's.
  if (signed && (answer.status === 401 || answer.status === 403)) throw new PushDeliveryError('auth', 'the push service refused our VAPID token', details);
  throw genericFailure(answer.status, undefined, answer.headers, now);
}

/** The row of the backend table (backends/index.ts): `modules.appserver.webpush`. */
export const webpush = defineBackend({
  name: 'webpush',
  schema: webpushConfig.optional().describe('Web Push (browsers, RFC 8030/8291/8292): absent = not offered'),
  create: (config, ctx) => createWebpushBackend(config, ctx),
});
