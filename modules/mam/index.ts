// XEP-0313 Message Archive Management (1.1.3) with XEP-0359 Unique and Stable Stanza IDs (0.7.0)
// and XEP-0441 MAM Preferences (0.2.0). Every account keeps the messages it sends and receives
// (rules.ts says which), once per message however many resources or carbons see it: a message is
// archived where it is routed — for its recipient in the routing interceptors, before delivery, so
// the delivered stanza carries its <stanza-id/>; for its sender as it leaves the client ('stanza:in').
// Queries page with XEP-0059 (store.ts, query.ts), in urn:xmpp:mam:2 and, for older clients, the
// otherwise identical urn:xmpp:mam:1 (rules.ts); preferences decide what is kept (prefs.ts);
// retention deletes the oldest messages. Rooms of the MUC module keep their archive here too
// (rooms.ts). Devices with push enabled and no session learn of archived messages delivered to the
// account's other sessions through the push module. docs/mam.md explains it for admins and clients.
// Left out: groupchat messages in user archives (§5.1.1 leaves it to the deployment), the ad-hoc
// configuration of XEP-0441 §2.2, <index/> paging, and not delivering offline messages to clients
// that already read them from the archive (§5.1.1 MAY).
import { z } from 'zod';
import { Priority, defineModule, duration, tryParseJid, x } from '../../server/module-api.js';
import type { HookResult, IqRequest, Jid, KeyValueStore, MaybePromise, RouteEvent, Session, XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { dateTime } from '../../server/protocol/xep0082.js';
import { NS_MAM, NS_MAM_1, NS_MAM_EXTENDED, NS_MAM_GROUPCHAT_FIELD, USER_ARCHIVE_NAMESPACES, archivable, withStanzaId, withoutForgedIds, type MamNamespace } from './rules.js';
import { DEFAULT_POLICIES, buildPrefs, decide, parsePrefs, type Prefs } from './prefs.js';
import { finElement, parseQuery, queryForm, readStored, resultMessage } from './query.js';
import { MessageArchive, newArchiveId, type ArchivePage, type StoredMessage } from './store.js';
import { roomArchiving, type RoomIqRequest } from './rooms.js';

/** What other modules (MUC, admin tools) get: the room side of the archive. See rooms.ts. */
export interface MamService {
  /**
   * Answers a urn:xmpp:mam:2 IQ addressed to a room (query get/set, metadata get), once the MUC
   * module has checked the requester may read the room's archive. Result messages go from the room
   * to the requester; the returned payload is the IQ result's. Throws StanzaErrors.
   */
  roomIq(request: RoomIqRequest): Promise<XmlElement | undefined>;
  /** Features the disco#info of a room with logging enabled lists. */
  readonly roomFeatures: readonly string[];
  /** A destroyed room's archive goes with it. */
  deleteRoomArchive(room: Jid): Promise<number>;
  /** Deletes messages older than `retention` from every archive now (it also runs every `retention_check`). */
  expire(): Promise<number>;
}

declare module '../../server/module-api.js' {
  interface Services {
    mam: MamService;
  }
}

export default defineModule({
  name: 'mam',
  xeps: [
    { xep: 313, version: '1.1.3', status: 'complete', note: 'user and MUC archives, #extended, metadata; user archives also answer urn:xmpp:mam:1; groupchat messages are not kept in user archives' },
    { xep: 359, version: '0.7.0', status: 'partial', note: 'stanza-id on archived messages (forged ones removed); origin-id passes untouched' },
    { xep: 441, version: '0.2.0', status: 'complete', note: 'without the ad-hoc configuration command' },
    { xep: 59, version: '1.0', status: 'partial', note: 'MAM paging; <index/> is ignored' },
  ],
  depends: ['disco', 'roster'],
  config: z
    .object({
      default_policy: z.enum(DEFAULT_POLICIES).default('always').describe("Which messages are archived for accounts that set no preferences (XEP-0441): always, roster (only with contacts) or never"),
      max_page: z.number().int().min(1).max(1000).default(50).describe('Most messages in one page of query results; also the page size when the client asks for none'),
      retention: duration().prefault('365d').describe('Messages older than this are deleted from user and room archives; 0 keeps them forever'),
      retention_check: duration().prefault('1h').describe('How often messages past the retention are looked for; 0 turns the deletion off'),
      rooms: z.boolean().default(true).describe('Archive the messages of group chat rooms that have logging enabled, and answer queries to them'),
    })
    .strict(),
  setup(m) {
    const archive = new MessageArchive(m.store.archive<StoredMessage>('messages'));
    // Read for every archived message (wanted()), written only by the prefs IQ and account deletion.
    const prefsStore = cachedPrefs(m.store.keyval<Prefs>('prefs'));
    const roster = m.service('roster');
    const defaultPrefs: Prefs = { default: m.config.default_policy, always: [], never: [] };
    /** Messages archived for their recipient on their way to it: once delivered, push hears of them. */
    const archivedForRecipient = new WeakSet<XmlElement>();
    /** The stanza-id put into an outgoing message for the carbons of it only (taken out before routing). */
    const sentCopyIds = new WeakMap<XmlElement, XmlElement>();

    // §7 "Determining support": the archive's JID, the account's bare JID, announces it. XEP-0359 §6.
    m.accountFeature(NS_MAM);
    m.accountFeature(NS_MAM_1); // older clients (rules.ts)
    m.accountFeature(NS_MAM_EXTENDED);
    m.accountFeature(NS_MAM_GROUPCHAT_FIELD);
    m.accountFeature(NS.STANZA_ID);
    m.feature(NS.STANZA_ID);

    // ---- archiving what an account receives ----

    // Late (AFTER), so a guard that refuses the message (blocking) decides first: §5.1 "that message
    // should not appear in the archive for the entity that rejected it". Before the router delivers
    // it (FALLBACK): §3.5 "When a message is archived, the server MUST add an <stanza-id/> element
    // ... to the message", so the stanza every resource, carbon and offline copy gets carries it.
    const incoming = (e: RouteEvent): MaybePromise<HookResult> => {
      const own = e.to.bareString;
      // XEP-0359 §4: "the server MUST remove any <stanza-id/> ... with a 'by' attribute that matches" the archive.
      e.stanza = withoutForgedIds(e.stanza, own);
      // One archive per account of this host (the router may serve several hosts once `hosts:` arrives).
      if (e.to.domain !== m.host || !archivable(e.stanza) || !goesToAccount(e)) return undefined;
      return archiveReceived(e).then(() => undefined);
    };
    m.on('message/bare', incoming, Priority.AFTER);
    m.on('message/full', incoming, Priority.AFTER);

    /** A message to a full JID that is not there is bounced (RFC 6121 §8.5.3.2.1), unless it is a chat. */
    function goesToAccount(e: RouteEvent): boolean {
      if (e.to.resource === '' || (e.stanza.attrs.type ?? 'normal') === 'chat') return true;
      return m.sessions.get(e.to.bareString, e.to.resource) !== undefined;
    }

    async function archiveReceived(e: RouteEvent): Promise<void> {
      const username = e.to.local;
      const exists = m.sessions.resourcesOf(e.to.bareString).length > 0 || (await m.accounts.exists(username));
      if (!exists || !(await wanted(username, e.from))) return;
      const id = newArchiveId();
      // Not awaited, like archiveSent: the row is inserted now (queries see it at once) and committed
      // within the store's lazy window with the other messages of those milliseconds; waiting for
      // the commit would add that window to every delivery. A failed commit is logged by store().
      void store(username, id, e.stanza, e.from);
      e.stanza = withStanzaId(e.stanza, e.to.bareString, id);
      archivedForRecipient.add(e.stanza);
    }

    // ---- archiving what an account sends ----

    // As the client's message leaves it, before routing: its carbons (made at AFTER) carry our
    // stanza-id (§3.5: "servers SHOULD include the element as a child of the forwarded message when
    // using XEP-0280"), the message itself does not ("MUST NOT include the <stanza-id/> element in
    // messages addressed to JIDs that do not have permissions to access the archive").
    m.on(
      'stanza:in',
      ({ stanza, session }) => {
        if (stanza.name !== 'message' || stanza.attrs.to === undefined) return undefined; // to the account itself: archived as received
        const to = tryParseJid(stanza.attrs.to);
        if (!to || (to.local === session.username && to.domain === session.host)) return undefined;
        // XEP-0359 §4 again: the client's own copies must not carry an id it made up.
        const cleaned = withoutForgedIds(stanza, session.bareJid);
        if (cleaned !== stanza) stanza.children = cleaned.children; // the router routes this very element
        if (!archivable(stanza)) return undefined;
        return archiveSent(stanza, session, to).then(() => undefined);
      },
      Priority.AFTER + 1,
    );
    m.on(
      'stanza:in',
      ({ stanza }) => {
        const id = sentCopyIds.get(stanza);
        if (id) stanza.children = stanza.children.filter((child) => child !== id);
        return undefined;
      },
      Priority.AFTER - 1,
    );

    async function archiveSent(stanza: XmlElement, session: Session, to: Jid): Promise<void> {
      if (!(await wanted(session.username, to))) return;
      const id = newArchiveId();
      // Not awaited: the row is written at once and committed within the store's lazy window (the
      // storage layer's group commit); waiting for that would hold the client's stream per message.
      void store(session.username, id, stanza, to);
      const marker = x('stanza-id', { xmlns: NS.STANZA_ID, by: session.bareJid, id });
      stanza.children.push(marker);
      sentCopyIds.set(stanza, marker);
    }

    /** XEP-0441 §2.3 for the other party (`peer`): the 'from' of what comes in, the 'to' of what goes out. */
    async function wanted(username: string, peer: Jid): Promise<boolean> {
      const verdict = decide((await prefsStore.get(username)) ?? defaultPrefs, peer);
      if (verdict !== 'roster') return verdict;
      // "archived only if the contact's bare JID is in the user's roster"; the account itself counts as known.
      if (peer.local === username && peer.domain === m.host) return true;
      return (await roster.getItem(username, peer.bareString)) !== undefined;
    }

    /** Appends (written at once, resolved once committed); false when storage failed (logged). */
    function store(username: string, id: string, stanza: XmlElement, peer: Jid): Promise<boolean> {
      return archive.append(username, id, { stanza: stanza.toString() }, peer.toString(), Date.now(), true).then(
        () => true,
        (err: unknown) => {
          m.log.error({ err, user: username }, 'archiving failed');
          return false;
        },
      );
    }

    // ---- push for devices that have no session ----

    // Once a message archived for its recipient reached some of the account's sessions: a device
    // with push enabled and no session at all (a client that catches up from the archive) would
    // otherwise not learn of it — offline storage, which pushes for accounts with nothing online,
    // is not involved, and a hibernated session pushes from its own queue (modules/push).
    m.on('message:delivered', ({ stanza, to }) => {
      if (!archivedForRecipient.delete(stanza)) return;
      pushService()?.archived(to.local, stanza);
    });

    function pushService() {
      try {
        return m.service('push');
      } catch {
        return undefined; // push is not loaded
      }
    }

    // ---- queries (§4) ----

    // §4.1.5: an IQ get returns the supported fields. Only the account may read its archive
    // (§8.1 "authorized parties for a user's archive would likely include just the user"): 'self'
    // scope, so others get forbidden.
    // Both namespaces (rules.ts: urn:xmpp:mam:1 differs in name only); each answers in its own.
    for (const ns of USER_ARCHIVE_NAMESPACES) {
      m.iq.get(ns, 'query', () => queryForm(ns), { scope: 'self' });
      m.iq.set(ns, 'query', runQuery, { scope: 'self' });
    }

    async function runQuery({ stanza, payload, from, session, username }: IqRequest): Promise<XmlElement> {
      const query = parseQuery(payload);
      const page = await archive.page(username, query, pageSize(query.rsm.max));
      const resultFrom = stanza.attrs.to; // as the IQ was addressed (absent: the account itself)
      const deliver = (message: XmlElement) => (session ? session.sendRaw(message) : m.route(message.withAttrs({ from: resultFrom ?? from.bareString })));
      return answer(page, query, (item, message) =>
        deliver(resultMessage({ ns: query.ns, to: from.toString(), from: resultFrom, queryId: query.queryId, id: item.key ?? '', stamp: item.stamp, message })),
      );
    }

    // XEP-0313 1.x §5 (with #extended): the first and last messages of the archive.
    m.iq.get(NS_MAM, 'metadata', async ({ username }) => metadata(archive, username), { scope: 'self' });

    /** The page size: the client's <max/>, at most max_page (XEP-0059 §2.1: the responder may return fewer). */
    function pageSize(max: number | undefined): number {
      return Math.min(max ?? m.config.max_page, m.config.max_page);
    }

    /**
     * Sends the page's messages in chronological order (§4.2), or newest first with <flip-page/>
     * (§4.3.4, which "only affects the order in which they are transmitted"), and returns the <fin/>.
     */
    function answer(page: ArchivePage, query: { flip: boolean; ns: MamNamespace }, send: (item: ArchivePage['items'][number], message: XmlElement) => void): XmlElement {
      const order = query.flip ? [...page.items].reverse() : page.items;
      for (const item of order) {
        const message = readStored(item.value.stanza);
        if (message) send(item, message);
        else m.log.error({ id: item.key }, 'archived message unreadable');
      }
      const first = page.items[0];
      const last = page.items[page.items.length - 1];
      return finElement({ complete: page.complete, first: first?.key, firstIndex: page.firstIndex, last: last?.key, count: page.count }, query.ns);
    }

    // ---- preferences (XEP-0441) ----

    for (const ns of USER_ARCHIVE_NAMESPACES) {
      m.iq.get(ns, 'prefs', async ({ username }) => buildPrefs((await prefsStore.get(username)) ?? defaultPrefs, ns), { scope: 'self' });
      m.iq.set(
        ns,
        'prefs',
        async ({ payload, username }) => {
          const prefs = parsePrefs(payload);
          await prefsStore.set(username, prefs);
          m.log.info({ user: username, default: prefs.default }, 'archive preferences changed');
          // §2.1: "The server then replies with the applied preferences".
          return buildPrefs(prefs, ns);
        },
        { scope: 'self' },
      );
    }

    // ---- deleted accounts ----

    // The account store deleted every row of the account already (AccountStore.delete); again here
    // for a message whose archiving was under way meanwhile (archiveReceived checks that the account
    // exists before it stores), so nothing of a deleted account outlives it.
    m.on('user:deleted', async ({ username }) => {
      await Promise.all([archive.deleteAll(username), prefsStore.delete(username)]);
    });

    // ---- rooms, retention ----

    const rooms = roomArchiving(m, { pageSize, answer, metadata });

    // §3.2: deleted messages "MUST be the oldest in the archive": age-based deletion keeps that.
    async function expire(): Promise<number> {
      if (m.config.retention === 0) return 0;
      const before = Date.now() - m.config.retention;
      const deleted = (await archive.deleteOlderThan(before)) + (await rooms.deleteOlderThan(before));
      if (deleted > 0) m.log.info({ deleted }, 'archived messages past retention deleted');
      return deleted;
    }
    if (m.config.retention > 0 && m.config.retention_check > 0) {
      m.on('server:started', () => void expire().catch((err: unknown) => m.log.error({ err }, 'archive expiry failed')));
      m.every(m.config.retention_check, async () => void (await expire()));
    }

    m.provide('mam', {
      roomIq: (request) => rooms.iq(request),
      roomFeatures: rooms.features,
      deleteRoomArchive: (room) => rooms.deleteArchive(room),
      expire,
    });
  },
});

/** XEP-0313 §5 archive metadata: <start/> and <end/> with id and timestamp, empty for an empty archive. */
async function metadata(archive: MessageArchive, owner: string): Promise<XmlElement> {
  const bounds = await archive.bounds(owner);
  const el = x('metadata', { xmlns: NS_MAM });
  if (bounds) {
    el.append(x('start', { id: bounds.start.key, timestamp: dateTime(new Date(bounds.start.stamp)) }));
    el.append(x('end', { id: bounds.end.key, timestamp: dateTime(new Date(bounds.end.stamp)) }));
  }
  return el;
}

/** Accounts whose archive preferences stay in memory, least recently used dropped first. */
const CACHED_PREFS = 10_000;

/**
 * The preferences store with a write-through cache in front: wanted() reads them for every message
 * archived, and they change only through this module (the prefs IQ, account deletion; an XEP-0227
 * import runs with the server stopped). Accounts without preferences are cached too (null): most
 * have none. Storage stays the source of truth; what is cached is never handed out for changing
 * (decide and buildPrefs only read).
 */
function cachedPrefs(store: KeyValueStore<Prefs>): KeyValueStore<Prefs> {
  const cached = new Map<string, Prefs | null>();
  /** Counts writes: a read that a write overtook may hold the old preferences, so it is not kept. */
  let writes = 0;
  const remember = (username: string, prefs: Prefs | null) => {
    cached.delete(username);
    cached.set(username, prefs);
    if (cached.size > CACHED_PREFS) cached.delete(cached.keys().next().value!);
  };
  /** Called with the write under way: the cache says what it wrote, or forgets it if the write fails. */
  const write = <T>(username: string, prefs: Prefs | null, written: Promise<T>): Promise<T> => {
    writes++;
    remember(username, prefs);
    return written.catch((err: unknown) => {
      writes++;
      cached.delete(username);
      throw err;
    });
  };
  return {
    async get(username) {
      let prefs = cached.get(username);
      if (prefs === undefined) {
        const before = writes;
        prefs = (await store.get(username)) ?? null;
        if (before === writes) remember(username, prefs);
      } else {
        remember(username, prefs);
      }
      return prefs ?? undefined;
    },
    set: (username, prefs) => write(username, prefs, store.set(username, prefs)),
    delete: (username) => write(username, null, store.delete(username)),
  };
}
