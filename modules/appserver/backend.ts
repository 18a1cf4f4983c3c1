// The contract between the app server (modules/appserver) and the vendor backends
// (modules/appserver/backends/*.ts): APNs, FCM, Web Push, UBports, WNS, UnifiedPush, sandbox.
// A backend knows the fields its register-push-<name> command asks for, turns them into stored
// registration data, and delivers a notification to the vendor, reporting failures as
// PushDeliveryError so the app server can answer the XEP-0357 publish with the right error.

import type { z } from 'zod';
import type { Logger } from '../../server/log.js';
import type { DataForm, FormField } from '../../server/protocol/xep0004.js';

export type BackendName = 'apns' | 'fcm' | 'webpush' | 'ubuntu' | 'wns' | 'unifiedpush' | 'sandbox';

/** One device's registration with the app server (stored; survives restarts). */
export interface PushRegistration {
  /** The pubsub node on the push service; the device's address for XEP-0357 publishes. */
  node: string;
  /** Shared with the client, required in publish-options. */
  secret: string;
  backend: BackendName;
  /** Bare JID of the account that registered the device. */
  owner: string;
  deviceId: string;
  deviceName?: string;
  createdAt: number;
  /** Backend-specific data from the register command: token, endpoint, keys, ... */
  data: Record<string, string>;
}

/** What a XEP-0357 publish carried (urn:xmpp:push:summary), plus how urgent it is. */
export interface PushNotification {
  node: string;
  messageCount?: number;
  lastMessageSender?: string;
  lastMessageBody?: string;
  pendingSubscriptionCount?: number;
  lastSubscriptionSender?: string;
  /** 'high' for a message with a body or a subscription request (Prosody's last-message-priority). */
  priority: 'high' | 'normal';
}

export type DeliveryFailure =
  /** The vendor says the token/endpoint is gone for good: the registration is removed (→ cancel/item-not-found). */
  | 'gone'
  /** Try again later (429, 5xx, network): retried with backoff, then wait/... */
  | 'retry'
  /** Our credentials are wrong (bad key, expired certificate): logged loudly, registration kept. */
  | 'auth'
  /** The vendor refused this notification for another reason (bad request, too large). */
  | 'rejected';

export class PushDeliveryError extends Error {
  constructor(
    readonly kind: DeliveryFailure,
    message: string,
    readonly details: { status?: number; reason?: string; retryAfterMs?: number } = {},
  ) {
    super(message);
  }
}

export interface BackendContext {
  log: Logger;
  /** Where a backend may keep files of its own (VAPID keys). */
  dataDir: string;
}

export interface PushBackend {
  readonly name: BackendName;
  /** Fields of register-push-<name> beyond device-id and device-name. */
  readonly fields: FormField[];
  /** Extra result fields shown to the client after registering (e.g. the VAPID public key). */
  resultFields?(): FormField[];
  /** Validates the submitted form into registration data; throws a StanzaError (bad-request, not-acceptable). */
  parseRegistration(form: DataForm): Record<string, string>;
  /** Delivers one notification; throws PushDeliveryError. */
  send(registration: PushRegistration, notification: PushNotification): Promise<void>;
  close?(): Promise<void>;
}

/**
 * Makes a configured backend from its parsed config section (`modules.appserver.<name>`).
 * Called once at startup; throwing stops the server with the message (bad key file, ...).
 */
export type BackendFactory<C = unknown> = (config: C, ctx: BackendContext) => PushBackend;

/** One row of the backend table (modules/appserver/backends/index.ts). */
export interface BackendDefinition<C = unknown> {
  /** Also the config key: `modules.appserver.<name>`. */
  name: BackendName;
  /**
   * The config section's zod schema. Vendor backends use `.optional()`: an absent section means
   * "not configured". A section with `enabled: false` is not configured either.
   */
  schema: z.ZodType<C>;
  create: BackendFactory<NonNullable<C>>;
}

/** Types a table row from its schema: `defineBackend({ name: 'apns', schema, create })`. */
export function defineBackend<S extends z.ZodType>(definition: { name: BackendName; schema: S; create: BackendFactory<NonNullable<z.output<S>>> }): BackendDefinition<unknown> {
  return definition as unknown as BackendDefinition<unknown>;
}
