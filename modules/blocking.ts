// XEP-0191 Blocking Command (1.3): an account's list of blocked JIDs, and its enforcement in both
// directions: stanzas from a blocked JID never reach the account, and the account cannot send to
// one. Blocklists are checked for every routed stanza, so the lists of connected accounts live in
// memory (a Set each; an empty one costs one lookup), and a few others in a small LRU.
// Left out: privacy lists (XEP-0016); refusing pending subscription requests on block, as Prosody does.
import { z } from 'zod';
import { Priority, STOP, defineModule, tryParseJid, x } from '../server/module-api.js';
import type { HookResult, Jid, MaybePromise, RouteEvent, Session, XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import type { RosterItem } from '../server/protocol/rfc6121.js';
import { stanzaError } from '../server/errors.js';

type Blocklist = Set<string>;

export default defineModule({
  name: 'blocking',
  xeps: [{ xep: 191, version: '1.3', status: 'complete' }],
  depends: ['roster'],
  config: z
    .object({
      max_items: z.number().int().min(1).max(100_000).default(1000).describe('JIDs one account may block'),
      idle_cache_size: z.number().int().min(0).max(1_000_000).default(1000).describe('Blocklists of accounts without sessions kept in memory'),
    })
    .strict(),
  setup(m) {
    const roster = m.service('roster');
    const storage = m.store.keyval<string[]>('blocklist');
    /** §3.3, §3.4: pushes go to "all of the user's resources that have requested the blocklist". */
    const interested = m.sessionSlot<boolean>('interested', () => false);
    const bareOf = (username: string) => `${username}@${m.host}`;
    const isOwnAccount = (username: string, jid: Jid) => jid.local === username && jid.domain === m.host;
    const hasSessions = (username: string) => m.sessions.resourcesOf(bareOf(username)).length > 0;
    const cache = new BlocklistCache(async (username) => new Set((await storage.get(username)) ?? []), hasSessions, m.config.idle_cache_size);
    /** Stanzas this module sends for a user to a JID it just blocked (the §3.3 unavailable presence). */
    const ownStanzas = new WeakSet<XmlElement>();
    let pushCount = 0;
    m.feature(NS.BLOCKING);

    m.on('session:bound', ({ session }) => void cache.pin(session.username)?.catch((err: unknown) => m.log.error({ err }, 'blocklist load failed')));
    m.on('session:closed', ({ session }) => {
      if (!hasSessions(session.username)) cache.unpin(session.username);
    });
    m.on('user:deleted', ({ username }) => cache.forget(username)); // the store dropped the data

    // ---- the protocol (§3.1–§3.5) ----

    m.iq.get(
      NS.BLOCKING,
      'blocklist',
      async ({ session, username }) => {
        if (session) interested.set(session, true);
        const list = await cache.get(username);
        return x('blocklist', { xmlns: NS.BLOCKING }, ...[...list].sort().map((jid) => x('item', { jid })));
      },
      { scope: 'self' },
    );

    m.iq.set(
      NS.BLOCKING,
      'block',
      async ({ payload, username }) => {
        const jids = itemJids(payload);
        // §3.3: "If the <block/> element does not contain at least one <item/> child element, the
        // server MUST return a <bad-request/> error."
        if (jids.length === 0) throw stanzaError.badRequest('Name at least one JID to block');
        const list = await cache.get(username);
        const added = jids.filter((jid) => !list.has(jid.toString()));
        if (list.size + added.length > m.config.max_items) throw stanzaError.resourceConstraint('Your blocklist is full');
        await update(username, list, added, []);
        push(username, x('block', { xmlns: NS.BLOCKING }, ...jids.map((jid) => x('item', { jid: jid.toString() }))));
        await presenceOnBlock(username, added).catch((err: unknown) => m.log.error({ err }, 'blocked presence update failed'));
      },
      { scope: 'self' },
    );

    m.iq.set(
      NS.BLOCKING,
      'unblock',
      async ({ payload, username }) => {
        const jids = itemJids(payload);
        const list = await cache.get(username);
        // §3.5: an empty <unblock/> unblocks every JID.
        const removed = jids.length === 0 ? [...list].map((jid) => tryParseJid(jid)!) : jids.filter((jid) => list.has(jid.toString()));
        await update(username, list, [], removed);
        push(username, x('unblock', { xmlns: NS.BLOCKING }, ...jids.map((jid) => x('item', { jid: jid.toString() }))));
        await presenceOnUnblock(username, removed).catch((err: unknown) => m.log.error({ err }, 'unblocked presence update failed'));
      },
      { scope: 'self' },
    );

    /** Changes the list in memory at once (so enforcement starts now), then stores it; undone on failure. */
    async function update(username: string, list: Blocklist, added: Jid[], removed: Jid[]): Promise<void> {
      for (const jid of added) list.add(jid.toString());
      for (const jid of removed) list.delete(jid.toString());
      try {
        await storage.set(username, [...list]);
      } catch (err) {
        for (const jid of added) list.delete(jid.toString());
        for (const jid of removed) list.add(jid.toString());
        throw err;
      }
      m.log.info({ user: username, blocked: added.length, unblocked: removed.length }, 'blocklist changed');
    }

    function push(username: string, action: XmlElement): void {
      for (const session of m.sessions.resourcesOf(bareOf(username))) {
        if (interested.get(session)) session.send(x('iq', { type: 'set', id: `blocklist-push-${++pushCount}`, to: session.fullJid }, action.clone()));
      }
    }

    /** §3.3: "the user's server MUST send unavailable presence information to the JID (but only if
     * the JID is allowed to receive presence notifications from the user)". */
    async function presenceOnBlock(username: string, blocked: Jid[]): Promise<void> {
      const available = m.sessions.resourcesOf(bareOf(username)).filter((s) => s.available);
      if (blocked.length === 0 || available.length === 0) return;
      for (const { to, item } of contactsMatching(blocked, await roster.getItems(username))) {
        if (!sendsPresenceTo(item)) continue;
        for (const session of available) {
          const unavailable = x('presence', { type: 'unavailable', from: session.fullJid, to });
          ownStanzas.add(unavailable); // past the outbound guard, which already knows the JID
          m.route(unavailable);
        }
      }
    }

    /** §3.4: "the user's server MUST send the user's current presence information to the JID (but
     * only if the JID is allowed to receive presence notifications)"; and, as presence from the JID
     * was dropped meanwhile, a probe where the user is subscribed to it. */
    async function presenceOnUnblock(username: string, unblocked: Jid[]): Promise<void> {
      if (unblocked.length === 0) return;
      const available = m.sessions.resourcesOf(bareOf(username)).filter((s) => s.available && s.presence);
      for (const { to, item } of contactsMatching(unblocked, await roster.getItems(username))) {
        if (sendsPresenceTo(item)) for (const session of available) m.route(currentPresence(session, to));
        if (item.subscription === 'to' || item.subscription === 'both') m.route(x('presence', { type: 'probe', from: bareOf(username), to }));
      }
    }

    // ---- enforcement ----

    // §3.3: inbound from a blocked JID: presence dropped silently, message and IQ get/set answered
    // with service-unavailable (the user appears offline), everything else dropped.
    const inbound = (e: RouteEvent): MaybePromise<HookResult> => {
      if (isOwnAccount(e.to.local, e.from)) return outboundOnBehalf(e); // "MUST NOT block ... one of a user's resources to another"
      return then(cache.get(e.to.local), (list) => (isBlocked(list, e.from) ? refuseInbound(e.stanza) : outboundOnBehalf(e)));
    };
    for (const hook of ['message/bare', 'message/full', 'presence/bare', 'presence/full', 'iq/bare', 'iq/full'] as const) m.on(hook, inbound, Priority.GUARD);
    m.on('route/remote', (e) => outboundOnBehalf(e), Priority.GUARD);

    /**
     * What the server sends for a user (presence broadcasts, probe answers) must not reach a JID the
     * user blocked either, or blocking would not make the user look offline. Errors still go out:
     * they are the answers §3.3 asks for.
     */
    function outboundOnBehalf(e: RouteEvent): MaybePromise<HookResult> {
      const { from, stanza } = e;
      if (e.origin.kind !== 'local' || from.local === '' || from.domain !== m.host || stanza.attrs.type === 'error') return undefined;
      if (isOwnAccount(from.local, e.to) || ownStanzas.has(stanza)) return undefined;
      return then(cache.get(from.local), (list) => (isBlocked(list, e.to) ? STOP : undefined));
    }

    // §3.3: outbound to a blocked JID: "the user's server MUST NOT route the stanza to the JID but
    // instead MUST return a <not-acceptable/> error containing ... <blocked/>". Errors and IQ
    // results have no one to be told: dropped, as Prosody does.
    m.on(
      'stanza:in',
      ({ stanza, session }) => {
        const to = stanza.attrs.to;
        if (to === undefined) return undefined; // to the account itself
        return then(cache.get(session.username), (list) => refuseOutbound(stanza, session, list, to));
      },
      Priority.GUARD,
    );

    function refuseOutbound(stanza: XmlElement, session: Session, list: Blocklist, toAttr: string): HookResult {
      if (list.size === 0) return undefined;
      const to = tryParseJid(toAttr);
      if (!to || isOwnAccount(session.username, to) || !isBlocked(list, to)) return undefined;
      const type = stanza.attrs.type;
      if (type === 'error' || (stanza.name === 'iq' && type === 'result')) return STOP;
      throw stanzaError.notAcceptable('You have blocked this JID', { app: x('blocked', { xmlns: NS.BLOCKING_ERRORS }) });
    }
  },
});

function refuseInbound(stanza: XmlElement): HookResult {
  const type = stanza.attrs.type;
  if (stanza.name === 'iq' && (type === 'get' || type === 'set')) throw stanzaError.serviceUnavailable();
  // Like Prosody, only normal and chat messages are answered: groupchat and headline errors have
  // side effects (MUC kicks) or no reader.
  if (stanza.name === 'message' && (type === undefined || type === 'normal' || type === 'chat')) throw stanzaError.serviceUnavailable();
  return STOP;
}

/** §6 JID matching, in XEP-0016's order: user@domain/resource, user@domain, domain/resource, domain. */
export function isBlocked(list: Blocklist, jid: Jid): boolean {
  if (list.size === 0) return false;
  if (list.has(jid.toString()) || list.has(jid.domain)) return true;
  if (jid.local === '') return false;
  return list.has(jid.bareString) || (jid.resource !== '' && list.has(`${jid.domain}/${jid.resource}`));
}

/** The items' JIDs, normalised (RFC 7622); jid-malformed names the first bad one. */
function itemJids(action: XmlElement): Jid[] {
  return action.getChildren('item').map((item) => {
    const jid = tryParseJid(item.attrs.jid ?? '');
    if (!jid) throw stanzaError.jidMalformed(`Not a JID: ${item.attrs.jid ?? '(none)'}`);
    return jid;
  });
}

/** Roster contacts a blocklist item concerns, and the address their presence goes to. */
function contactsMatching(jids: Jid[], items: RosterItem[]): { to: string; item: RosterItem }[] {
  const out: { to: string; item: RosterItem }[] = [];
  for (const jid of jids) {
    if (jid.local === '') {
      // A domain covers every contact there; a domain/resource item names no contact.
      if (jid.resource === '') for (const item of items) if (tryParseJid(item.jid)?.domain === jid.domain) out.push({ to: item.jid, item });
      continue;
    }
    const item = items.find((i) => i.jid === jid.bareString);
    if (item) out.push({ to: jid.toString(), item });
  }
  return out;
}

function sendsPresenceTo(item: RosterItem): boolean {
  return item.subscription === 'from' || item.subscription === 'both';
}

function currentPresence(session: Session, to: string): XmlElement {
  const presence = session.presence!.clone();
  presence.attrs.from = session.fullJid;
  presence.attrs.to = to;
  return presence;
}

/** Runs fn now for a value, or later for a Promise of one: the fast path stays synchronous. */
function then<T>(value: T | Promise<T>, fn: (value: T) => MaybePromise<HookResult>): MaybePromise<HookResult> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

/**
 * Blocklists in memory: every connected account's (pinned while it has sessions) and the most
 * recently used others' (an LRU), so routing to offline accounts does not read storage each time.
 */
class BlocklistCache {
  private readonly pinned = new Map<string, Blocklist>();
  private readonly idle = new Map<string, Blocklist>();
  private readonly loading = new Map<string, Promise<Blocklist>>();

  constructor(
    private readonly load: (username: string) => Promise<Blocklist>,
    private readonly hasSessions: (username: string) => boolean,
    private readonly idleLimit: number,
  ) {}

  get(username: string): Blocklist | Promise<Blocklist> {
    const pinned = this.pinned.get(username);
    if (pinned) return pinned;
    const idle = this.idle.get(username);
    if (!idle) return this.fetch(username);
    this.idle.delete(username); // most recently used goes last
    this.idle.set(username, idle);
    return idle;
  }

  /** Keeps the account's list in memory while it has sessions; a promise only when it must be read first. */
  pin(username: string): Promise<void> | undefined {
    const list = this.get(username);
    if (list instanceof Promise) return list.then((loaded) => this.pinLoaded(username, loaded));
    this.pinLoaded(username, list);
    return undefined;
  }

  private pinLoaded(username: string, list: Blocklist): void {
    if (!this.hasSessions(username)) return;
    this.idle.delete(username);
    this.pinned.set(username, list);
  }

  unpin(username: string): void {
    const list = this.pinned.get(username);
    if (!list) return;
    this.pinned.delete(username);
    this.remember(username, list);
  }

  forget(username: string): void {
    this.pinned.delete(username);
    this.idle.delete(username);
  }

  private fetch(username: string): Promise<Blocklist> {
    let pending = this.loading.get(username);
    if (!pending) {
      pending = this.load(username).finally(() => this.loading.delete(username));
      pending.then((list) => (this.hasSessions(username) ? this.pinned.set(username, list) : this.remember(username, list))).catch(() => undefined);
      this.loading.set(username, pending);
    }
    return pending;
  }

  private remember(username: string, list: Blocklist): void {
    this.idle.set(username, list);
    for (const oldest of this.idle.keys()) {
      if (this.idle.size <= this.idleLimit) break;
      this.idle.delete(oldest);
    }
  }
}
