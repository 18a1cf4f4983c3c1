// Firebase Cloud Messaging, HTTP v1 API: a service account's RS256 JWT assertion is exchanged for an
// OAuth2 access token (RFC 7523 §2.1 jwt-bearer grant; Google's "Using OAuth 2.0 for server to
// server applications"), cached until shortly before it expires, and used as the Bearer for
// POST /v1/projects/{project_id}/messages:send. The push is a data message (no notification
// block): the app wakes, reconnects and shows what it fetched itself. register-push-gcm is an alias
// the app server maps here (the legacy GCM/FCM API is gone; the token is the same).
//
// Left out: the legacy HTTP and XMPP (CCS) APIs, topics, condition sends, batch sends.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { field, type DataForm } from '../../../server/protocol/xep0004.js';
import { stanzaError } from '../../../server/errors.js';
import { defineBackend, PushDeliveryError, type BackendContext, type PushBackend, type PushNotification, type PushRegistration } from '../backend.js';
import { CredentialCache, signJwt } from './jwt.js';
import {
  genericFailure, httpRequest, jsonField, jsonString, parseJson, retryAfterMs, timeoutSetting, ttlSetting,
  type BackendOptions, type HttpResponse,
} from './http.js';
import { collapseKey, requiredValue, summaryStrings } from './payload.js';

export const fcmConfig = z.object({
  enabled: z.boolean().default(true).describe('Offer register-push-fcm and register-push-gcm (false keeps the section but turns the backend off)'),
  service_account_file: z.string().optional()
    .meta({ description: 'Service-account key (JSON) from the Firebase console, Project settings → Service accounts', example: '/etc/herald/firebase-service-account.json' }),
  service_account: z.string().optional()
    .meta({ description: 'The same service-account JSON inline, instead of service_account_file', example: '{"type": "service_account", ...}' }),
  project_id: z.string().optional()
    .meta({ description: "Firebase project ID; absent: the service account's project_id", example: 'example-chat' }),
  endpoint: z.string().url().default('https://fcm.googleapis.com').describe('FCM HTTP v1 API base URL'),
  token_uri: z.string().url().optional()
    .meta({ description: "OAuth2 token endpoint; absent: the service account's token_uri", example: 'https://oauth2.googleapis.com/token' }),
  ttl: ttlSetting('FCM'),
  timeout: timeoutSetting(),
}).strict();

export type FcmConfig = z.infer<typeof fcmConfig>;

interface ServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: KeyObject;
  privateKeyId: string | undefined;
  tokenUri: string;
}

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** Renew this long before Google's expiry, so a token never dies in flight. */
const TOKEN_MARGIN_MS = 5 * 60_000;
const ASSERTION_LIFETIME_S = 3600;  // Google: "exp ... a maximum of 1 hour after the issued time"

export function createFcmBackend(config: FcmConfig, ctx: BackendContext, options: BackendOptions = {}): PushBackend {
  const now = options.now ?? Date.now;
  const account = loadServiceAccount(config);
  const sendUrl = new URL(`${config.endpoint.replace(/\/+$/, '')}/v1/projects/${encodeURIComponent(account.projectId)}/messages:send`);
  const tokens = new CredentialCache(async () => {
    const token = await fetchAccessToken(account, config.timeout, now);
    ctx.log.debug({ project: account.projectId }, 'fcm access token fetched');
    return token;
  }, now);

  async function deliver(registration: PushRegistration, notification: PushNotification): Promise<void> {
    const body = JSON.stringify({
      message: {
        token: registration.data.token,
        data: summaryStrings(notification),
        android: {
          priority: notification.priority,  // 'high' wakes the device from Doze; 'normal' may wait
          ttl: `${Math.floor(config.ttl / 1000)}s`,
          collapse_key: collapseKey(notification.node),
        },
      },
    });
    for (let attempt = 0; ; attempt++) {
      const accessToken = await tokens.get();
      const answer = await httpRequest(sendUrl, {
        headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json; charset=UTF-8' },
        body,
        timeoutMs: config.timeout,
      });
      if (answer.status >= 200 && answer.status < 300) return;
      // 401: the access token expired or was revoked early; one fresh token, then it is our credentials.
      if (answer.status === 401 && attempt === 0) {
        tokens.invalidate(accessToken);
        continue;
      }
      throw fcmFailure(answer, now());
    }
  }

  return {
    name: 'fcm',
    fields: [field('token', 'text-single', { label: 'FCM registration token', required: true })],
    parseRegistration: parseFcmRegistration,
    send: deliver,
  };
}

function parseFcmRegistration(form: DataForm): Record<string, string> {
  const token = requiredValue(form, 'token');
  if (token.length > 4096 || !/^[A-Za-z0-9_:.\-]+$/.test(token)) throw stanzaError.badRequest('token is not an FCM registration token');
  return { token };
}

/** FCM v1 errors: { error: { code, status, message, details: [{ errorCode }] } } ("FCM error codes"). */
function fcmFailure(answer: HttpResponse, now: number): PushDeliveryError {
  const error = jsonField(parseJson(answer.body), 'error');
  const details = jsonField(error, 'details');
  const fcmCode = Array.isArray(details) ? details.map((d) => jsonString(d, 'errorCode')).find(Boolean) : undefined;
  const reason = fcmCode ?? jsonString(error, 'status');
  const info = { status: answer.status, reason, retryAfterMs: retryAfterMs(answer.headers['retry-after'], now) };
  // UNREGISTERED (404): "the app instance was unregistered from FCM ... stop using this registration token".
  if (answer.status === 404 || fcmCode === 'UNREGISTERED') return new PushDeliveryError('gone', 'FCM says the registration token is gone', info);
  // INVALID_ARGUMENT about the token itself: it can never work. Other INVALID_ARGUMENTs are our payload.
  if (answer.status === 400 && /registration token/i.test(jsonString(error, 'message') ?? '')) {
    return new PushDeliveryError('gone', 'FCM says the registration token is invalid', info);
  }
  if (answer.status === 401 || (answer.status === 403 && fcmCode !== 'SENDER_ID_MISMATCH')) {
    return new PushDeliveryError('auth', 'FCM refused our credentials', info);
  }
  return genericFailure(answer.status, reason, answer.headers, now);
}

// ---- OAuth2 ----

async function fetchAccessToken(account: ServiceAccount, timeoutMs: number, now: () => number): Promise<{ value: string; refreshAt: number }> {
  const issued = Math.floor(now() / 1000);
  const assertion = signJwt(
    'RS256',
    { typ: 'JWT', ...(account.privateKeyId ? { kid: account.privateKeyId } : {}) },
    { iss: account.clientEmail, scope: SCOPE, aud: account.tokenUri, iat: issued, exp: issued + ASSERTION_LIFETIME_S },
    account.privateKey,
  );
  const answer = await httpRequest(new URL(account.tokenUri), {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
    timeoutMs,
  });
  const json = parseJson(answer.body);
  const accessToken = jsonString(json, 'access_token');
  if (answer.status === 200 && accessToken) {
    const expiresIn = Number(jsonField(json, 'expires_in') ?? 3600) * 1000;
    const margin = Math.min(TOKEN_MARGIN_MS, expiresIn / 2);
    return { value: accessToken, refreshAt: now() + expiresIn - margin };
  }
  // RFC 6749 §5.2: invalid_grant / invalid_client mean our key or clock is wrong.
  if (answer.status === 400 || answer.status === 401 || answer.status === 403) {
    throw new PushDeliveryError('auth', 'Google refused the service-account assertion', { status: answer.status, reason: jsonString(json, 'error') });
  }
  throw genericFailure(answer.status, jsonString(json, 'error'), answer.headers, now());
}

function loadServiceAccount(config: FcmConfig): ServiceAccount {
  let text = config.service_account;
  if (text === undefined) {
    if (!config.service_account_file) throw new Error('fcm: set service_account_file (or service_account)');
    try {
      text = readFileSync(config.service_account_file, 'utf8');
    } catch (err) {
      throw new Error(`fcm: cannot read service_account_file ${config.service_account_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const json = parseJson(text);
  const get = (key: string) => jsonString(json, key);
  const projectId = config.project_id ?? get('project_id');
  const clientEmail = get('client_email');
  const privateKeyPem = get('private_key');
  if (!projectId || !clientEmail || !privateKeyPem) throw new Error('fcm: the service account needs project_id, client_email and private_key');
  return {
    projectId,
    clientEmail,
    privateKey: createPrivateKey(privateKeyPem),
    privateKeyId: get('private_key_id'),
    tokenUri: config.token_uri ?? get('token_uri') ?? 'https://oauth2.googleapis.com/token',
  };
}

/** The row of the backend table (backends/index.ts): `modules.appserver.fcm`. */
export const fcm = defineBackend({
  name: 'fcm',
  schema: fcmConfig.optional().describe('Firebase Cloud Messaging (Android): absent = not offered'),
  create: (config, ctx) => createFcmBackend(config, ctx),
});
