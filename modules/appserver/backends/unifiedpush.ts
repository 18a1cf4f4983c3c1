// UnifiedPush: the app's distributor (ntfy, NextPush, Sunup, a self-hosted server, ...) gave the
// client an endpoint URL, and a push is a POST of the payload to it (UnifiedPush server spec, which
// is RFC 8030 without the need for keys). A client that also gives Web Push keys (p256dh, auth) gets
// the payload encrypted as in RFC 8291 and signed with our VAPID key, as recent UnifiedPush
// libraries expect; otherwise the distributor relays our JSON summary as it is.

import { z } from 'zod';
import { field } from '../../../server/protocol/xep0004.js';
import { defineBackend, type BackendContext, type PushBackend } from '../backend.js';
import { checkEndpointUrl, timeoutSetting, ttlSetting, type BackendOptions } from './http.js';
import { requiredValue } from './payload.js';
import { loadVapidKeys, VapidSigner } from './vapid.js';
import { parseSubscriptionKeys, sendWebPush, throwOnFailure, VAPID_KEY_FIELD, vapidKeyFile } from './webpush.js';

export const unifiedpushConfig = z.object({
  enabled: z.boolean().default(true).describe('Offer register-push-unifiedpush (false keeps the section but turns the backend off)'),
  vapid: z.boolean().default(true).describe('Sign encrypted pushes (registrations with p256dh and auth) with the VAPID key'),
  vapid_key_file: z.string().optional()
    .meta({ description: 'VAPID key pair (created on first start, shared with webpush by default); absent: data_dir/push/vapid.json', example: '/var/lib/herald/push/vapid.json' }),
  allow_insecure_endpoints: z.boolean().default(false)
    .describe('Accept http:// endpoints and endpoints on loopback or private addresses (tests; a distributor on the LAN)'),
  ttl: ttlSetting('the distributor'),
  timeout: timeoutSetting(),
}).strict();

export type UnifiedpushConfig = z.infer<typeof unifiedpushConfig>;

/** VAPID tokens for distributors: the same 12 hours as webpush's default. */
const VAPID_LIFETIME_MS = 12 * 3600_000;

export function createUnifiedpushBackend(config: UnifiedpushConfig, ctx: BackendContext, options: BackendOptions = {}): PushBackend {
  const now = options.now ?? Date.now;
  const keys = config.vapid ? loadVapidKeys(vapidKeyFile(config.vapid_key_file, ctx)) : undefined;
  const signer = keys ? new VapidSigner(keys, undefined, VAPID_LIFETIME_MS, now) : undefined;
  const keyFields = keys ? [field(VAPID_KEY_FIELD, 'fixed', { label: 'VAPID public key', values: [keys.publicKey] })] : [];

  return {
    name: 'unifiedpush',
    fields: [
      ...keyFields,
      field('endpoint', 'text-single', { label: 'UnifiedPush endpoint', required: true }),
      field('p256dh', 'text-single', { label: 'Web Push public key (p256dh), for encrypted pushes' }),
      field('auth', 'text-single', { label: 'Web Push auth secret, for encrypted pushes' }),
    ],
    resultFields: () => keyFields,
    parseRegistration: (form) => {
      const endpoint = checkEndpointUrl(requiredValue(form, 'endpoint'), { allowInsecure: config.allow_insecure_endpoints, field: 'endpoint' });
      return { endpoint: endpoint.toString(), ...parseSubscriptionKeys(form, false) };
    },
    send: async (registration, notification) => {
      const encrypted = registration.data.p256dh !== undefined;
      const answer = await sendWebPush(registration, notification, { signer: encrypted ? signer : undefined, config, now });
      throwOnFailure(answer, now(), encrypted && signer !== undefined);
    },
  };
}

/** The row of the backend table (backends/index.ts): `modules.appserver.unifiedpush`. */
export const unifiedpush = defineBackend({
  name: 'unifiedpush',
  schema: unifiedpushConfig.optional().describe('UnifiedPush distributors: absent = not offered'),
  create: (config, ctx) => createUnifiedpushBackend(config, ctx),
});
