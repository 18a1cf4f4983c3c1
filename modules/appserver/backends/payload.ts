// What every vendor backend puts in a push: the XEP-0357 summary (urn:xmpp:push:summary) under its
// own field names, plus the node so a client with several accounts knows which one to wake. Fields
// the push module left out (privacy options: no sender, no body by default) stay out here too.

import { createHash } from 'node:crypto';
import type { DataForm } from '../../../server/protocol/xep0004.js';
import { formValue } from '../../../server/protocol/xep0004.js';
import { stanzaError } from '../../../server/errors.js';
import type { PushNotification } from '../backend.js';

export interface PushSummary {
  node: string;
  'message-count'?: number;
  'last-message-sender'?: string;
  'last-message-body'?: string;
  'pending-subscription-count'?: number;
  'last-subscription-sender'?: string;
}

/** Vendors cap payloads at 2–4 KiB; a long body is cut here rather than refused there. */
export const MAX_BODY_CHARS = 512;

export function summaryOf(notification: PushNotification): PushSummary {
  const summary: PushSummary = { node: notification.node };
  if (notification.messageCount !== undefined) summary['message-count'] = notification.messageCount;
  if (notification.lastMessageSender !== undefined) summary['last-message-sender'] = notification.lastMessageSender;
  if (notification.lastMessageBody !== undefined) summary['last-message-body'] = truncate(notification.lastMessageBody, MAX_BODY_CHARS);
  if (notification.pendingSubscriptionCount !== undefined) summary['pending-subscription-count'] = notification.pendingSubscriptionCount;
  if (notification.lastSubscriptionSender !== undefined) summary['last-subscription-sender'] = notification.lastSubscriptionSender;
  return summary;
}

/** The summary with every value a string (FCM data messages take only strings). */
export function summaryStrings(notification: PushNotification): Record<string, string> {
  return Object.fromEntries(Object.entries(summaryOf(notification)).map(([key, value]) => [key, String(value)]));
}

function truncate(text: string, max: number): string {
  const chars = Array.from(text);  // never split a surrogate pair
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * A per-node key for the vendors' "replace the pending one" features (apns-collapse-id ≤ 64 bytes,
 * FCM collapse_key, Web Push Topic ≤ 32 URL-safe chars, UBports replace_tag), so a device that
 * was offline gets one push per account rather than a pile.
 */
export function collapseKey(node: string, maxLength = 32): string {
  if (/^[A-Za-z0-9_-]+$/.test(node) && node.length <= maxLength) return node;
  return createHash('sha256').update(node).digest('base64url').slice(0, maxLength);
}

/** A required text field of the register form; missing or empty → bad-request naming it. */
export function requiredValue(form: DataForm, name: string): string {
  const value = formValue(form, name)?.trim();
  if (!value) throw stanzaError.badRequest(`${name} is required`);
  return value;
}

/** An optional text field (absent or empty → undefined). */
export function optionalValue(form: DataForm, name: string): string | undefined {
  const value = formValue(form, name)?.trim();
  return value ? value : undefined;
}
