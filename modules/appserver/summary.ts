// XEP-0357 §5 notification summaries (FORM_TYPE urn:xmpp:push:summary), read into what backends
// send. Publishers are other servers too, so the reading is lenient: a field that is absent or not
// a number is left out rather than refusing the push, which would cost the user a notification.
import type { XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { formType, formValue, parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import type { PushNotification } from './backend.js';

export const NS_PUSH_SUMMARY = 'urn:xmpp:push:summary';

export function parseSummary(notification: XmlElement, node: string): PushNotification {
  const form = summaryForm(notification);
  const out: PushNotification = { node, priority: 'high' };
  if (!form) return out;
  const messageCount = count(formValue(form, 'message-count'));
  if (messageCount !== undefined) out.messageCount = messageCount;
  const pending = count(formValue(form, 'pending-subscription-count'));
  if (pending !== undefined) out.pendingSubscriptionCount = pending;
  const sender = nonEmpty(formValue(form, 'last-message-sender'));
  if (sender !== undefined) out.lastMessageSender = sender;
  const body = nonEmpty(formValue(form, 'last-message-body'));
  if (body !== undefined) out.lastMessageBody = body;
  const subscriber = nonEmpty(formValue(form, 'last-subscription-sender'));
  if (subscriber !== undefined) out.lastSubscriptionSender = subscriber;
  // Prosody's last-message-priority: 'normal' lets backends send a quiet push. Without the field
  // nothing says the push is unimportant, and a push that wakes no one is a lost message.
  if (formValue(form, 'last-message-priority') === 'normal') out.priority = 'normal';
  return out;
}

function summaryForm(notification: XmlElement): DataForm | undefined {
  for (const el of notification.getChildren('x', NS.DATA_FORMS)) {
    try {
      const form = parseForm(el);
      if (formType(form) === NS_PUSH_SUMMARY) return form;
    } catch {
      // a malformed form is no summary; the push still goes out, without details
    }
  }
  return undefined;
}

function count(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,9}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
