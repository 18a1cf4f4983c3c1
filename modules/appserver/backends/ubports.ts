// UBports push (Ubuntu Touch), the heir of Ubuntu Push: POST {endpoint}/notify with
// { appid, token, expire_on, data } as JSON (ubports/ubuntu-push server/api/handlers.go). The
// device's push client hands `data` to the app's push helper. Registered as register-push-ubuntu.
//
// Answers: 200 {"ok":true}; 400 {"error":"unknown-token"} when the token is not (or no longer)
// known; 413 too-many-pending when the device has not collected its pushes; 503 unavailable.

import { z } from 'zod';
import { field, type DataForm } from '../../../server/protocol/xep0004.js';
import { stanzaError } from '../../../server/errors.js';
import { defineBackend, PushDeliveryError, type BackendContext, type PushBackend, type PushNotification, type PushRegistration } from '../backend.js';
import { genericFailure, httpRequest, jsonString, parseJson, retryAfterMs, timeoutSetting, ttlSetting, type BackendOptions, type HttpResponse } from './http.js';
import { collapseKey, requiredValue, summaryOf } from './payload.js';

export const ubportsConfig = z.object({
  enabled: z.boolean().default(true).describe('Offer register-push-ubuntu (false keeps the section but turns the backend off)'),
  endpoint: z.string().url().default('https://push.ubports.com').describe('UBports push server (POST /notify)'),
  ttl: ttlSetting('the push server'),
  timeout: timeoutSetting(),
}).strict();

export type UbportsConfig = z.infer<typeof ubportsConfig>;

export function createUbportsBackend(config: UbportsConfig, _ctx: BackendContext, options: BackendOptions = {}): PushBackend {
  const now = options.now ?? Date.now;
  const notifyUrl = new URL(`${config.endpoint.replace(/\/+$/, '')}/notify`);

  async function deliver(registration: PushRegistration, notification: PushNotification): Promise<void> {
    const body = JSON.stringify({
      appid: registration.data['application-id'],
      token: registration.data.token,
      // The server refuses "Past expiration date"; RFC 3339 as Go's time.RFC3339 parses it.
      expire_on: new Date(now() + config.ttl).toISOString(),
      data: summaryOf(notification),
      // Replaces this account's undelivered push on the server instead of piling them up.
      replace_tag: collapseKey(notification.node),
    });
    const answer = await httpRequest(notifyUrl, { headers: { 'content-type': 'application/json' }, body, timeoutMs: config.timeout });
    if (answer.status === 200) return;
    throw ubportsFailure(answer, now());
  }

  return {
    name: 'ubuntu',
    fields: [
      field('token', 'text-single', { label: 'UBports push token', required: true }),
      field('application-id', 'text-single', { label: 'Application ID (package_app)', required: true }),
    ],
    parseRegistration: parseUbportsRegistration,
    send: deliver,
  };
}

function parseUbportsRegistration(form: DataForm): Record<string, string> {
  const token = requiredValue(form, 'token');
  if (token.length > 1024 || /\s/.test(token)) throw stanzaError.badRequest('token is not a UBports push token');
  const applicationId = requiredValue(form, 'application-id');
  // Click application IDs: package_app or package_app_version.
  if (applicationId.length > 256 || !/^[^\s_]+_[^\s_]+(?:_[^\s_]+)?$/.test(applicationId)) {
    throw stanzaError.badRequest('application-id must be package_app');
  }
  return { token, 'application-id': applicationId };
}

function ubportsFailure(answer: HttpResponse, now: number): PushDeliveryError {
  const label = jsonString(parseJson(answer.body), 'error');
  const details = { status: answer.status, reason: label, retryAfterMs: retryAfterMs(answer.headers['retry-after'], now) };
  if (answer.status === 400 && (label === 'unknown-token' || label === 'invalid token')) {
    return new PushDeliveryError('gone', 'UBports does not know the token', details);
  }
  // The device holds too many undelivered pushes: it is offline, not broken. Later.
  if (answer.status === 413 && label === 'too-many-pending') return new PushDeliveryError('retry', 'the device has too many pending pushes', details);
  return genericFailure(answer.status, label, answer.headers, now);
}

/** The row of the backend table (backends/index.ts): `modules.appserver.ubuntu`. */
export const ubuntu = defineBackend({
  name: 'ubuntu',
  schema: ubportsConfig.optional().describe('UBports push (Ubuntu Touch): absent = not offered'),
  create: (config, ctx) => createUbportsBackend(config, ctx),
});
