// What a stanza is worth to a sleeping device, and the XEP-0357 §7 publish that tells it.
//
// Where XEP-0357 is silent about which stanzas deserve a push, Herald does what Prosody's
// mod_cloud_notify does: a message with a body, an encrypted message (its body may be a fallback
// or absent), a Jingle Message Initiation call and a subscription request are "important" (pushed
// with last-message-priority 'high'); other messages that carry something (receipts, markers,
// reactions) are pushed with priority 'normal' unless `important_only`; chat states, carbons of the
// user's own messages, headlines, errors, other presence and IQs never wake a device.
import { tryParseJid, x, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { buildForm, type FormField } from '../../server/protocol/xep0004.js';
import { publishOptionsForm, type PushOptions } from './options.js';

export const NS_PUSH = 'urn:xmpp:push:0';
export const PUSH_SUMMARY = 'urn:xmpp:push:summary';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';

/** Encrypted payloads (OMEMO old and new, XEP-0027, XEP-0373) and a call proposal (XEP-0353). */
const IMPORTANT_PAYLOADS: [string, string][] = [
  ['encrypted', 'eu.siacs.conversations.axolotl'],
  ['encrypted', 'urn:xmpp:omemo:2'],
  ['x', 'jabber:x:encrypted'],
  ['openpgp', 'urn:xmpp:openpgp:0'],
  ['propose', 'urn:xmpp:jingle-message:0'],
];

/** Children that say nothing a sleeping device needs (chat states, hints, delay stamps). */
const TRANSIENT_NAMESPACES = new Set<string>([NS.CHATSTATES, NS.DELAY, NS.X_EVENT, NS.HINTS]);

/** Bodies are cut here: push payloads are small (APNs takes 4 KiB for everything). */
const BODY_LIMIT = 512;

export type PushPriority = 'high' | 'normal';

export interface PushEvent {
  kind: 'message' | 'subscription';
  priority: PushPriority;
  /** Who sent it (bare JID; the occupant's full JID for groupchat). */
  sender?: string;
  body?: string;
}

/** The push a stanza deserves, or undefined for none. */
export function classify(stanza: XmlElement): PushEvent | undefined {
  if (stanza.name === 'presence') {
    // A subscription request waits for the user's decision (RFC 6121 §3.1.3).
    if (stanza.attrs.type !== 'subscribe') return undefined;
    return { kind: 'subscription', priority: 'high', ...senderOf(stanza, false) };
  }
  if (stanza.name !== 'message') return undefined;
  let message = stanza;
  const carbon = stanza.getChild('received', NS.CARBONS_2) ?? stanza.getChild('sent', NS.CARBONS_2);
  if (carbon) {
    // XEP-0280: what the user sent from another device does not need to wake this one.
    if (carbon.name === 'sent') return undefined;
    const inner = carbon.getChild('forwarded', NS.FORWARD_0)?.getChild('message');
    if (!inner) return undefined;
    message = inner;
  }
  const type = message.attrs.type ?? 'normal';
  if (type === 'error' || type === 'headline') return undefined;
  const body = message.getChildText('body');
  const important = (body !== undefined && body !== '') || IMPORTANT_PAYLOADS.some(([name, ns]) => message.getChild(name, ns) !== undefined);
  // A room's subject change is not news worth a push.
  if (type === 'groupchat' && message.getChild('subject') && !body) return undefined;
  if (important) {
    const event: PushEvent = { kind: 'message', priority: 'high', ...senderOf(message, type === 'groupchat') };
    if (body) event.body = body.length > BODY_LIMIT ? `${body.slice(0, BODY_LIMIT - 1)}…` : body;
    return event;
  }
  const meaningful = message.elements().some((child) => child.name !== 'thread' && child.name !== 'body' && !TRANSIENT_NAMESPACES.has(child.attrs.xmlns ?? ''));
  return meaningful ? { kind: 'message', priority: 'normal', ...senderOf(message, type === 'groupchat') } : undefined;
}

function senderOf(stanza: XmlElement, fullJid: boolean): { sender?: string } {
  const from = tryParseJid(stanza.attrs.from ?? '');
  if (!from) return {};
  return { sender: fullJid ? from.toString() : from.bareString };
}

/** What one push tells: counts since the device was last online, and the latest details. */
export interface Summary {
  messages: number;
  subscriptions: number;
  priority: PushPriority;
  lastMessageSender?: string;
  lastMessageBody?: string;
  lastSubscriptionSender?: string;
}

/**
 * The urn:xmpp:push:summary form (XEP-0357 §7 and its registry entry), each field only where the
 * account's options allow it. last-message-priority is Prosody's addition, read by app servers to
 * pick the vendor's priority.
 */
export function summaryForm(summary: Summary, options: PushOptions): XmlElement {
  const fields: FormField[] = [{ var: 'FORM_TYPE', values: [PUSH_SUMMARY] }];
  const add = (name: string, value: string | number | undefined, allowed: boolean) => {
    if (allowed && value !== undefined) fields.push({ var: name, values: [String(value)] });
  };
  add('message-count', summary.messages, options.messageCount);
  add('last-message-priority', summary.priority, true);
  add('last-message-sender', summary.lastMessageSender, options.senders);
  add('last-message-body', summary.lastMessageBody, options.bodies);
  add('pending-subscription-count', summary.subscriptions > 0 ? summary.subscriptions : undefined, options.subscriptionCount);
  add('last-subscription-sender', summary.lastSubscriptionSender, options.senders);
  return buildForm({ type: 'submit', fields });
}

/** XEP-0357 §7: the publish of a notification to the device's node, from the account's bare JID. */
export function publishIq(from: string, to: string, node: string, summary: XmlElement, publishOptions: FormField[]): XmlElement {
  return x(
    'iq',
    { type: 'set', from, to },
    x(
      'pubsub',
      { xmlns: NS_PUBSUB },
      x('publish', { node }, x('item', null, x('notification', { xmlns: NS_PUSH }, summary))),
      // §7: "If additional data was provided when enabling the service, the publish request SHOULD
      // include the data as publish options."
      publishOptions.length > 0 ? x('publish-options', null, publishOptionsForm(publishOptions)) : undefined,
    ),
  );
}

/** XEP-0357 §8 remote disabling: `<pubsub node><affiliation jid affiliation='none'/></pubsub>`. */
export function remoteDisable(stanza: XmlElement): { node: string; jid: string } | undefined {
  const pubsub = stanza.getChild('pubsub', NS_PUBSUB);
  const affiliation = pubsub?.getChild('affiliation');
  const node = pubsub?.attrs.node;
  if (!affiliation || node === undefined || affiliation.attrs.affiliation !== 'none') return undefined;
  return { node, jid: affiliation.attrs.jid ?? '' };
}

/** Normalised JID string, or undefined when it is not one. */
export function normalJid(value: string): string | undefined {
  return tryParseJid(value)?.toString();
}
