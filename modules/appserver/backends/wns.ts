// Windows Push Notification Services: an OAuth 2.0 client-credentials token (RFC 6749 §4.4) for the
// app's Package SID and secret, then a raw notification POSTed to the device's channel URI
// ("Push notification service request and response headers", learn.microsoft.com). Raw
// notifications reach the app's background task without showing anything, like a data push.
//
// Channel URIs come from clients, so they must be https on a notify.windows.com host. Left out:
// toast/tile/badge notifications, Entra ID (Azure AD) app identities beyond a configurable token
// endpoint and scope.

import { z } from 'zod';
import { field, type DataForm } from '../../../server/protocol/xep0004.js';
import { defineBackend, PushDeliveryError, type BackendContext, type PushBackend, type PushNotification, type PushRegistration } from '../backend.js';
import { CredentialCache } from './jwt.js';
import {
  checkEndpointUrl, genericFailure, httpRequest, jsonField, jsonString, parseJson, retryAfterMs, timeoutSetting, ttlSetting,
  type BackendOptions, type HttpResponse,
} from './http.js';
import { requiredValue, summaryOf } from './payload.js';

export const wnsConfig = z.object({
  enabled: z.boolean().default(true).describe('Offer register-push-wns (false keeps the section but turns the backend off)'),
  client_id: z.string().optional()
    .meta({ description: "The app's Package SID from Partner Center (ms-app://...)", example: 'ms-app://s-1-15-2-1234567890-...' }),
  client_secret: z.string().optional().meta({ description: "The app's client secret from Partner Center", example: 'Vex8L9WOFZuj95euaLrvSH7XyoDhLJc7' }),
  token_endpoint: z.string().url().default('https://login.live.com/accesstoken.srf').describe('OAuth 2.0 token endpoint'),
  scope: z.string().default('notify.windows.com').describe('OAuth 2.0 scope of the access token'),
  channel_hosts: z.array(z.string()).default(['notify.windows.com'])
    .describe('Hosts (and their subdomains) a channel URI may point at'),
  allow_insecure_endpoints: z.boolean().default(false).describe('Accept http:// channel URIs and private addresses (tests)'),
  ttl: ttlSetting('WNS'),
  timeout: timeoutSetting(),
}).strict();

export type WnsConfig = z.infer<typeof wnsConfig>;

/** Renew the access token this long before WNS's expiry. */
const TOKEN_MARGIN_MS = 5 * 60_000;

export function createWnsBackend(config: WnsConfig, ctx: BackendContext, options: BackendOptions = {}): PushBackend {
  const now = options.now ?? Date.now;
  const { client_id: clientId, client_secret: clientSecret } = config;
  if (!clientId || !clientSecret) throw new Error('wns: set client_id and client_secret');
  const tokens = new CredentialCache(async () => {
    const token = await fetchAccessToken(config, clientId, clientSecret, now);
    ctx.log.debug('wns access token fetched');
    return token;
  }, now);

  async function deliver(registration: PushRegistration, notification: PushNotification): Promise<void> {
    const channel = new URL(registration.data['channel-uri'] ?? '');
    const body = JSON.stringify(summaryOf(notification));
    for (let attempt = 0; ; attempt++) {
      const accessToken = await tokens.get();
      const answer = await httpRequest(channel, {
        headers: {
          authorization: `Bearer ${accessToken}`,
          'content-type': 'application/octet-stream',  // WNS: required for wns/raw
          'x-wns-type': 'wns/raw',
          'x-wns-requestforstatus': 'true',
          'x-wns-ttl': Math.floor(config.ttl / 1000),
        },
        body,
        timeoutMs: config.timeout,
        publicOnly: !config.allow_insecure_endpoints,
      });
      if (answer.status === 200) return;  // also when X-WNS-Status is 'dropped' or 'channelthrottled': delivered as far as WNS goes
      // 401: "The cloud service did not present a valid authentication ticket" — e.g. it expired.
      if (answer.status === 401 && attempt === 0) {
        tokens.invalidate(accessToken);
        continue;
      }
      throw wnsFailure(answer, now());
    }
  }

  return {
    name: 'wns',
    fields: [field('channel-uri', 'text-single', { label: 'WNS channel URI', required: true })],
    parseRegistration: (form: DataForm) => {
      const uri = checkEndpointUrl(requiredValue(form, 'channel-uri'), {
        allowInsecure: config.allow_insecure_endpoints,
        hostSuffixes: config.channel_hosts,
        field: 'channel-uri',
      });
      return { 'channel-uri': uri.toString() };
    },
    send: deliver,
  };
}

/** WNS response codes. */
function wnsFailure(answer: HttpResponse, now: number): PushDeliveryError {
  const details = { status: answer.status, reason: headerText(answer.headers['x-wns-error-description']), retryAfterMs: retryAfterMs(answer.headers['retry-after'], now) };
  // 404 "The channel URI is not valid or is not recognized by WNS"; 410 "The channel expired".
  if (answer.status === 404 || answer.status === 410) return new PushDeliveryError('gone', 'WNS says the channel is gone', details);
  if (answer.status === 401) return new PushDeliveryError('auth', 'WNS refused our access token', details);
  // 403 "not authorized to send a notification to this URI even though they are authenticated":
  // the channel belongs to another app — this registration's fault, not our credentials'.
  if (answer.status === 403) return new PushDeliveryError('rejected', 'the channel belongs to another app', details);
  // 406 "The cloud service exceeded its throttle limit".
  if (answer.status === 406) return new PushDeliveryError('retry', 'WNS throttled us', details);
  return genericFailure(answer.status, details.reason, answer.headers, now);
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function fetchAccessToken(config: WnsConfig, clientId: string, clientSecret: string, now: () => number): Promise<{ value: string; refreshAt: number }> {
  const answer = await httpRequest(new URL(config.token_endpoint), {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: config.scope }).toString(),
    timeoutMs: config.timeout,
  });
  const json = parseJson(answer.body);
  const accessToken = jsonString(json, 'access_token');
  if (answer.status === 200 && accessToken) {
    const expiresIn = Number(jsonField(json, 'expires_in') ?? 86400) * 1000;
    return { value: accessToken, refreshAt: now() + expiresIn - Math.min(TOKEN_MARGIN_MS, expiresIn / 2) };
  }
  // RFC 6749 §5.2: 400 invalid_client — wrong Package SID or secret.
  if (answer.status === 400 || answer.status === 401) {
    throw new PushDeliveryError('auth', 'WNS refused our client credentials', { status: answer.status, reason: jsonString(json, 'error') });
  }
  throw genericFailure(answer.status, jsonString(json, 'error'), answer.headers, now());
}

/** The row of the backend table (backends/index.ts): `modules.appserver.wns`. */
export const wns = defineBackend({
  name: 'wns',
  schema: wnsConfig.optional().describe('Windows Push Notification Services: absent = not offered'),
  create: (config, ctx) => createWnsBackend(config, ctx),
});
