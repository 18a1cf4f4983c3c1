// RFC 6121 §4 exchanging presence and §3 managing subscriptions (the state machine itself is in
// subscriptions.ts): initial, updated and unavailable presence broadcast to subscribers and to the
// user's own resources, probes and their answers, directed presence, delivery of presence to local
// accounts, and pre-approval (§3.4, announced as a stream feature).
//
// Presence from a client is taken on 'stanza:in' (it is outbound: broadcasts, subscription
// requests to stamp, directed presence to remember); presence for a local account on 'presence/bare'
// and 'presence/full' (inbound). Both run on a queue per account, so what one account receives comes
// in the order it was sent, e.g. an approval, its roster push, then the contact's presence.
// Left out: presence errors do not stop the broadcast to the contact that sent them (RFC 6121 §4.4.2
// SHOULD); outbound subscription requests are not re-sent on login (§3.1.2 leaves when to the server;
// local contacts keep the request anyway); probes for the server's own domain are not answered.

import {
  defineModule,
  keyedSerial,
  makeJid,
  STOP,
  tryParseJid,
  x,
  type HookResult,
  type ModuleContext,
  type MapStore,
  type RouteEvent,
  type Session,
  type XmlElement,
} from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { NS } from '../../server/protocol/ns.js';
import type { RosterService } from '../../server/protocol/rfc6121.js';
import { SUBSCRIPTION_TYPES, hasFrom, hasTo, subscriptionHandlers, type SubscriptionType } from './subscriptions.js';

/** What subscriptions.ts needs from this module. */
export interface PresenceContext {
  m: ModuleContext<unknown>;
  roster: RosterService;
  /** Pending inbound subscription requests: (account, contact bare JID) → the serialized stanza. */
  pendingIn: MapStore<string>;
  /** Sends the last presence of each available resource of the account to `to`; with `orUnavailable`, an unavailable from the bare JID when none is. */
  sendCurrentPresence(username: string, to: string, orUnavailable: boolean): void;
  /** Sends unavailable presence from each available resource of the account to `to`. */
  sendUnavailableFromResources(username: string, to: string): void;
  /** Delivers to the account's interested resources (those that asked for the roster). */
  deliverToInterested(username: string, stanza: XmlElement): void;
}

/** Directed presence targets remembered per session; more are still routed, just not remembered. */
const MAX_DIRECTED = 1000;

export default defineModule({
  name: 'presence',
  depends: ['roster'],
  setup(m) {
    const roster = m.service('roster');
    const pendingIn = m.store.map<string>('pending_in');
    // RFC 6121 §4.6: entities this session sent directed presence to, owed an unavailable at the end.
    const directed = m.sessionSlot<Set<string>>('directed', () => new Set());
    const serial = keyedSerial();
    const bareOf = (username: string) => `${username}@${m.host}`;
    const availableResources = (username: string) => m.sessions.resourcesOf(bareOf(username)).filter((s) => s.available && s.presence !== undefined);

    const ctx: PresenceContext = {
      m,
      roster,
      pendingIn,
      sendCurrentPresence(username, to, orUnavailable) {
        const resources = availableResources(username);
        for (const session of resources) m.routeFrom(session.jid, session.presence!.withAttrs({ to }));
        if (resources.length === 0 && orUnavailable) m.routeFrom(makeJid(username, m.host), x('presence', { type: 'unavailable', to }));
      },
      sendUnavailableFromResources(username, to) {
        for (const session of availableResources(username)) m.routeFrom(session.jid, x('presence', { type: 'unavailable', to }));
      },
      deliverToInterested(username, stanza) {
        for (const session of m.sessions.resourcesOf(bareOf(username))) if (session.interested) session.send(stanza);
      },
    };
    const subscriptions = subscriptionHandlers(ctx);

    // RFC 6121 §3.4: pre-approvals are supported, which the server says with this stream feature.
    m.streamFeature('post-auth', (stream) => (stream.username !== undefined ? x('sub', { xmlns: NS.PRE_APPROVAL_FEATURE }) : undefined));

    // ---- outbound: presence a client sends ----

    m.on('stanza:in', ({ stanza, session }) => {
      if (stanza.name !== 'presence') return undefined;
      const type = stanza.attrs.type;
      if (stanza.attrs.to === undefined) {
        // §4.2, §4.4, §4.5: presence without 'to' is for the server to broadcast. Anything else
        // without 'to' would be addressed to the account itself, which has nothing to do with it.
        if (type !== undefined && type !== 'unavailable') return STOP;
        const priority = type === undefined ? parsePriority(stanza) : 0;
        return serial(session.username, () => broadcast(session, stanza, priority)).then(async (outcome): Promise<HookResult> => {
          // Fired after the account's queue moved on: a slow listener (offline delivery) holds no one up.
          if (outcome === 'available') await m.fire('session:available', { session, initial: false });
          else if (outcome === 'initial') await m.fire('session:available', { session, initial: true });
          else if (outcome === 'unavailable') await m.fire('session:unavailable', { session });
          return STOP;
        });
      }
      const to = tryParseJid(stanza.attrs.to); // c2s has checked it
      if (!to) return undefined;
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
        return serial(session.username, () => subscriptions.outbound(session.username, type as SubscriptionType, to.bare, stanza)).then((): HookResult => STOP);
      }
      if (type === undefined || type === 'unavailable') return rememberDirected(session, to.toString(), to.bareString, type).then(() => undefined);
      return undefined; // probes and errors are routed as they are
    });

    /** What the session became, for the hooks; undefined when an unavailable changed nothing. */
    type Outcome = 'initial' | 'available' | 'unavailable' | undefined;

    async function broadcast(session: Session, stanza: XmlElement, priority: number): Promise<Outcome> {
      const presence = stanza.clone();
      delete presence.attrs.to;
      presence.attrs.from = session.fullJid;
      if (presence.attrs.type === 'unavailable') {
        const wasAvailable = session.available;
        if (wasAvailable) {
          // §4.5.2: to the user's available resources (this one included) and subscribers.
          toOwnResources(session, presence);
          markUnavailable(session);
          await toSubscribers(session, presence);
        }
        // §4.6.3: and to everyone it sent directed presence to.
        toDirected(session, presence);
        return wasAvailable ? 'unavailable' : undefined;
      }
      const initial = !session.available;
      session.available = true;
      session.priority = priority;
      session.presence = presence;
      // §4.2.2 / §4.4.2: to all the user's available resources, this one included (an account is
      // implicitly subscribed to itself), then to every contact with a 'from' subscription.
      toOwnResources(session, presence);
      const items = await toSubscribers(session, presence);
      if (initial) {
        // §4.2.2: probe the contacts the user is subscribed to, from the bare JID (§4.3.1) ...
        for (const item of items) if (hasTo(item.subscription)) m.routeFrom(session.jid.bare, x('presence', { type: 'probe', to: item.jid }));
        // ... give the new resource the presence of the user's other resources ...
        for (const other of availableResources(session.username)) {
          if (other !== session) session.send(other.presence!.withAttrs({ to: session.fullJid }));
        }
        // ... and the subscription requests still waiting for an answer (§3.1.3).
        await subscriptions.redeliverPending(session.username, (request) => session.send(request));
      }
      return initial ? 'initial' : 'available';
    }

    function toOwnResources(session: Session, presence: XmlElement): void {
      for (const own of m.sessions.resourcesOf(session.bareJid)) {
        if (own.available) own.send(presence.withAttrs({ to: own.fullJid }));
      }
    }

    async function toSubscribers(session: Session, presence: XmlElement) {
      const items = await roster.getItems(session.username);
      for (const item of items) if (hasFrom(item.subscription)) m.routeFrom(session.jid, presence.withAttrs({ to: item.jid }));
      return items;
    }

    function toDirected(session: Session, presence: XmlElement): void {
      const targets = directed.get(session);
      for (const to of targets) m.routeFrom(session.jid, presence.withAttrs({ to }));
      targets.clear();
    }

    function markUnavailable(session: Session): void {
      session.available = false;
      session.presence = undefined;
      session.priority = 0;
    }

    async function rememberDirected(session: Session, to: string, toBare: string, type: string | undefined): Promise<void> {
      const targets = directed.get(session);
      // §4.6.3: directed unavailable presence ends what the directed available presence started.
      if (type === 'unavailable') return void targets.delete(to);
      // Own resources and subscribers hear of the end anyway, from the broadcast.
      if (toBare === session.bareJid || targets.has(to) || targets.size >= MAX_DIRECTED) return;
      if (hasFrom(await roster.subscription(session.username, toBare))) return;
      targets.add(to);
    }

    // §4.5.2, §4.6.3: a session that ends (cleanly or not) while available says goodbye for it.
    m.on('session:closed', ({ session }) => {
      if (!session.available && directed.get(session).size === 0) return undefined;
      return serial(session.username, async () => {
        const unavailable = x('presence', { type: 'unavailable', from: session.fullJid });
        if (session.available) {
          markUnavailable(session);
          toOwnResources(session, unavailable);
          await toSubscribers(session, unavailable);
        }
        toDirected(session, unavailable);
      });
    });

    // ---- inbound: presence for a local account ----

    const inbound = (e: RouteEvent) => {
      const username = e.to.local;
      return serial(username, () => deliverInbound(e, username)).then((): HookResult => STOP);
    };
    m.on('presence/bare', inbound);
    m.on('presence/full', inbound);

    async function deliverInbound({ stanza, from, to }: RouteEvent, username: string): Promise<void> {
      const type = stanza.attrs.type;
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
        // RFC 6121 §8.5.1: subscription stanzas for an account that does not exist are ignored.
        // §3.1.3: one sent to a full JID is treated as sent to the bare JID.
        if (await m.accounts.exists(username)) await subscriptions.inbound(username, type as SubscriptionType, from.bare, stanza);
        return;
      }
      if (type === 'probe') return answerProbe(username, stanza, from.toString(), from.bareString);
      if (to.resource !== '') {
        // §8.5.3.1: a connected resource gets it; §8.5.3.2.2: otherwise it is dropped.
        m.sessions.get(to.bareString, to.resource)?.send(stanza);
        return;
      }
      // §8.5.2.1.2 (presence to the bare JID): every available resource; none: dropped (§8.5.2.2.2).
      for (const session of m.sessions.resourcesOf(to.bareString)) if (session.available) session.send(stanza);
    }

    /** §4.3.2: answer a probe for `username` from `prober`. */
    async function answerProbe(username: string, stanza: XmlElement, prober: string, proberBare: string): Promise<void> {
      const exists = await m.accounts.exists(username);
      if (exists && hasFrom(await roster.subscription(username, proberBare))) {
        // (3, 4): the last presence of each available resource, or unavailable from the bare JID.
        ctx.sendCurrentPresence(username, prober, true);
        return;
      }
      // (1): no such account, or not subscribed: unsubscribed from the bare JID, which also tells a
      // server with a stale 'to' subscription to drop it. (The same answer for both hides which.)
      m.routeFrom(makeJid(username, m.host), x('presence', { type: 'unsubscribed', to: proberBare, id: stanza.attrs.id }));
    }

    // ---- roster and account changes ----

    m.on('roster:item-removed', ({ username, item }) => serial(username, () => subscriptions.itemRemoved(username, item)));

    m.on('user:deleted', async ({ username }) => {
      await pendingIn.deleteAll(username);
      // A request the deleted account left pending at a local user is withdrawn (the roster module
      // does the same for contacts that list the account).
      const deleted = makeJid(username, m.host);
      for (const owner of await pendingIn.owners()) {
        if ((await pendingIn.get(owner, deleted.toString())) !== undefined) m.routeFrom(deleted, x('presence', { type: 'unsubscribe', to: bareOf(owner) }));
      }
    });

    m.onStop(() => serial.idle());
  },
});

/** RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent; anything else → bad-request. */
function parsePriority(stanza: XmlElement): number {
  const elements = stanza.getChildren('priority').filter((el) => el.attrs.xmlns === undefined || el.attrs.xmlns === NS.CLIENT);
  if (elements.length === 0) return 0;
  if (elements.length > 1) throw stanzaError.badRequest('Presence carries at most one priority');
  const text = elements[0]!.text().trim();
  const value = /^[+-]?\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < -128 || value > 127) throw stanzaError.badRequest('Priority is an integer from -128 to 127');
  return value;
}
