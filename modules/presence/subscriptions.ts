// RFC 6121 §3 presence subscriptions: the states of Appendix A, kept in the user's roster
// ('subscription', 'ask', 'approved') plus the pending inbound requests, which RFC 6121 keeps out
// of the roster (Appendix A.1 "None + Pending In": no roster item is created for them). Each
// account's requests are handled one at a time on its queue (see index.ts), so a read, a state
// change and its roster push never interleave with another change to the same roster.

import { makeJid, parseXml, x, type Jid, type XmlElement } from '../../server/module-api.js';
import type { RosterItem, Subscription } from '../../server/protocol/rfc6121.js';
import type { PresenceContext } from './index.js';

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

/** The contact receives the user's presence ('from' side). */
export const hasFrom = (s: Subscription): boolean => s === 'from' || s === 'both';
/** The user receives the contact's presence ('to' side). */
export const hasTo = (s: Subscription): boolean => s === 'to' || s === 'both';
const addFrom = (s: Subscription): Subscription => (s === 'to' || s === 'both' ? 'both' : 'from');
const dropFrom = (s: Subscription): Subscription => (hasTo(s) ? 'to' : 'none');
const addTo = (s: Subscription): Subscription => (s === 'from' || s === 'both' ? 'both' : 'to');
const dropTo = (s: Subscription): Subscription => (hasFrom(s) ? 'from' : 'none');

const newItem = (jid: string): RosterItem => ({ jid, subscription: 'none', groups: [] });

export function subscriptionHandlers(ctx: PresenceContext) {
  const { m, roster, pendingIn } = ctx;

  /** A subscription stanza as it travels: from and to stamped with bare JIDs (RFC 6121 §3). */
  function stamped(stanza: XmlElement, from: string, to: string): XmlElement {
    const out = stanza.clone();
    out.attrs.from = from;
    out.attrs.to = to;
    return out;
  }

  /**
   * A local user's subscribe/subscribed/unsubscribe/unsubscribed to `contact` (a bare JID), from one of
   * its sessions. RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4 and Appendix A.2.
   */
  async function outbound(username: string, type: SubscriptionType, contact: Jid, stanza: XmlElement): Promise<void> {
    const user = makeJid(username, m.host);
    // Like Prosody: one's own presence is implicitly subscribed; there is nothing to manage.
    if (contact.equals(user)) return;
    const jid = contact.toString();
    // §3: the server stamps the bare JID; the contact's resources are irrelevant to a subscription.
    const out = stamped(stanza, user.toString(), jid);
    const item = await roster.getItem(username, jid);
    switch (type) {
      case 'subscribe':
        // §3.1.2: note the pending request (ask) and push it; a state that has it or a subscription
        // already stays as it is (A.2.1), but the request is routed anyway so a contact whose server
        // lost its state can answer again.
        if (!item || (!item.ask && !hasTo(item.subscription))) await roster.setItem(username, { ...(item ?? newItem(jid)), ask: 'subscribe' });
        m.routeFrom(user, out);
        return;
      case 'unsubscribe':
        // §3.3.2: cancel the user's subscription (or its pending request), push, route.
        if (item && (item.ask || hasTo(item.subscription))) {
          await roster.setItem(username, withoutAsk({ ...item, subscription: dropTo(item.subscription) }));
        }
        m.routeFrom(user, out);
        return;
      case 'subscribed':
        await approve(username, contact, item, { requested: false, stanza: out });
        return;
      case 'unsubscribed':
        await deny(username, contact, item, out);
        return;
    }
  }

  /**
   * The user approves the contact's subscription (§3.1.5), or pre-approves it (§3.4) when the contact
   * has not asked. `requested` is set when a subscribe has just arrived for a pre-approved contact.
   */
  async function approve(username: string, contact: Jid, item: RosterItem | undefined, options: { requested: boolean; stanza?: XmlElement }): Promise<void> {
    const user = makeJid(username, m.host);
    const jid = contact.toString();
    // §3.4 (1): the contact is subscribed already: nothing to do, nothing to route.
    if (item && hasFrom(item.subscription)) return;
    const pending = await pendingIn.get(username, jid);
    if (pending === undefined && !options.requested) {
      // §3.4 (3): no request to answer: remember the approval, push it, and do NOT route the stanza.
      if (!item?.approved) await roster.setItem(username, { ...(item ?? newItem(jid)), approved: true });
      return;
    }
    if (pending !== undefined) await pendingIn.delete(username, jid);
    // §3.1.5: the contact now has a 'from' subscription (the item is created when missing, as the
    // state must be kept somewhere); the pre-approval, if any, is used up.
    const base = item ?? newItem(jid);
    await roster.setItem(username, { ...withoutApproved(base), subscription: addFrom(base.subscription) });
    m.routeFrom(user, options.stanza ?? x('presence', { type: 'subscribed', to: jid }));
    // §3.1.5: then the user's current presence, from each available resource.
    ctx.sendCurrentPresence(username, jid, false);
  }

  /** The user refuses a request, cancels the contact's subscription, or withdraws a pre-approval. */
  async function deny(username: string, contact: Jid, item: RosterItem | undefined, out: XmlElement): Promise<void> {
    const user = makeJid(username, m.host);
    const jid = contact.toString();
    const pending = await pendingIn.get(username, jid);
    if (pending !== undefined) await pendingIn.delete(username, jid);
    if (item && hasFrom(item.subscription)) {
      // §3.2.2: push the cancelled subscription; while the contact still is subscribed, send it
      // unavailable presence from every available resource, then route the unsubscribed.
      await roster.setItem(username, withoutApproved({ ...item, subscription: dropFrom(item.subscription) }));
      ctx.sendUnavailableFromResources(username, jid);
      m.routeFrom(user, out);
      return;
    }
    // §3.4: unsubscribed cancels a pre-approval.
    if (item?.approved) await roster.setItem(username, withoutApproved(item));
    // A.2.4: only a pending request changes state (and is answered); otherwise nothing is routed.
    if (pending !== undefined) m.routeFrom(user, out);
  }

  /**
   * A subscription stanza arriving for local account `username` from `contact` (bare JID). RFC 6121
   * §3.1.3, §3.1.6, §3.2.3, §3.3.3 and Appendix A.3. The account exists (checked by the caller).
   */
  async function inbound(username: string, type: SubscriptionType, contact: Jid, stanza: XmlElement): Promise<void> {
    const user = makeJid(username, m.host);
    const jid = contact.toString();
    const delivered = stamped(stanza, jid, user.toString());
    const item = await roster.getItem(username, jid);
    switch (type) {
      case 'subscribe': {
        if (item && hasFrom(item.subscription)) {
          // §3.1.3 (1): already subscribed: answer on the user's behalf. Like Prosody, the current
          // presence follows, since the contact evidently lost it.
          m.routeFrom(user, x('presence', { type: 'subscribed', to: jid, id: stanza.attrs.id }));
          ctx.sendCurrentPresence(username, jid, true);
          return;
        }
        // §3.1.3 (1) and §3.4: a pre-approved contact is approved at once.
        if (item?.approved) return approve(username, contact, item, { requested: true });
        // A.3.1: a request that is pending already changes nothing and is not delivered again.
        if ((await pendingIn.get(username, jid)) !== undefined) return;
        // §3.1.3 (2, 3): keep the complete stanza (with any extensions, e.g. a nickname) and deliver it
        // now to the available resources, and again whenever a resource becomes available, until the
        // user answers.
        await pendingIn.set(username, jid, delivered.toString());
        for (const session of m.sessions.resourcesOf(user.toString())) if (session.available) session.send(delivered);
        return;
      }
      case 'subscribed':
        // A.3.3: only an outstanding request can be approved; anything else is ignored.
        if (!item?.ask) return;
        // §3.1.6: deliver the approval to the interested resources before the roster push.
        ctx.deliverToInterested(username, delivered);
        await roster.setItem(username, withoutAsk({ ...item, subscription: addTo(item.subscription) }));
        return;
      case 'unsubscribed':
        // §3.2.3: the contact cancelled (or refused) the user's subscription.
        if (!item || (!item.ask && !hasTo(item.subscription))) return;
        ctx.deliverToInterested(username, delivered);
        await roster.setItem(username, withoutAsk({ ...item, subscription: dropTo(item.subscription) }));
        return;
      case 'unsubscribe': {
        // §3.3.3: the contact unsubscribed from the user's presence, or withdrew its request.
        const pending = await pendingIn.get(username, jid);
        if (pending !== undefined) await pendingIn.delete(username, jid);
        if (item && hasFrom(item.subscription)) {
          ctx.deliverToInterested(username, delivered);
          await roster.setItem(username, { ...item, subscription: dropFrom(item.subscription) });
          // §3.3.3: and it sees the user go offline, from each available resource.
          ctx.sendUnavailableFromResources(username, jid);
        } else if (pending !== undefined) {
          ctx.deliverToInterested(username, delivered);
        }
        return;
      }
    }
  }

  /** §3.1.3: the pending requests, again, for a resource that has just become available. */
  async function redeliverPending(username: string, deliver: (stanza: XmlElement) => void): Promise<void> {
    for (const { value } of await pendingIn.list(username)) deliver(parseXml(value));
  }

  /**
   * RFC 6121 §2.5.2: the user removed `item` from the roster: cancel both directions (and a
   * pending request), as Prosody does.
   */
  async function itemRemoved(username: string, item: RosterItem): Promise<void> {
    const user = makeJid(username, m.host);
    const pending = await pendingIn.get(username, item.jid);
    if (pending !== undefined) await pendingIn.delete(username, item.jid);
    if (item.ask || hasTo(item.subscription)) m.routeFrom(user, x('presence', { type: 'unsubscribe', to: item.jid }));
    if (hasFrom(item.subscription)) ctx.sendUnavailableFromResources(username, item.jid);
    if (hasFrom(item.subscription) || pending !== undefined) m.routeFrom(user, x('presence', { type: 'unsubscribed', to: item.jid }));
  }

  return { outbound, inbound, redeliverPending, itemRemoved };
}

function withoutAsk(item: RosterItem): RosterItem {
  const { ask: _ask, ...rest } = item;
  return rest;
}

function withoutApproved(item: RosterItem): RosterItem {
  const { approved: _approved, ...rest } = item;
  return rest;
}
