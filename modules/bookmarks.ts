// XEP-0402 PEP Native Bookmarks (1.2.0) and its compatibility with the older bookmarks (XEP-0048):
// the urn:xmpp:bookmarks:1 PEP node (one item per room, id = room JID) is the one truth.
//  - '#compat': private XML (XEP-0049 storage:bookmarks) reads are answered from the PEP node, and a
//    private XML write is turned into publishes and retracts of the items that changed (XEP-0402
//    §5.3: "SHOULD NOT send notifications for unchanged items"). Bookmarks stored only in private
//    XML (imported accounts) move to PEP when the account next logs in.
//  - '#compat-pep': the XEP-0048 PEP node storage:bookmarks (one item 'current') is kept as a copy,
//    and a client publishing to it updates the PEP bookmarks the same way.
// The PEP node itself is plain PEP (modules/pubsub/pep.ts): this module only converts.
import { z } from 'zod';
import { defineModule, keyedSerial, tryParseJid, x, type XmlElement } from '../server/module-api.js';
import type { NodeConfig, PepItem } from './pubsub/pep.js';

const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
const NS_LEGACY = 'storage:bookmarks';
/** XEP-0402 §3: the node's configuration (private, as many items as bookmarks, no last item). */
const BOOKMARKS_NODE: Partial<NodeConfig> = { access_model: 'whitelist', max_items: 'max', persist_items: true, send_last_published_item: 'never' };
/** XEP-0048 §3 (PEP storage, via XEP-0223): one private item. */
const LEGACY_NODE: Partial<NodeConfig> = { access_model: 'whitelist', persist_items: true, send_last_published_item: 'never' };
const LEGACY_ITEM = 'current';

export default defineModule({
  name: 'bookmarks',
  xeps: [
    { xep: 402, version: '1.2.0', status: 'complete', note: "with #compat (private XML) and #compat-pep (XEP-0048's PEP node)" },
    { xep: 48, version: '1.2', status: 'complete', note: 'converted to and from XEP-0402' },
  ],
  depends: ['pep', 'private'],
  config: z
    .object({
      compat: z.boolean().default(true).describe('Keep private XML bookmarks (XEP-0049 storage:bookmarks) in step with PEP bookmarks (XEP-0402 #compat)'),
      compat_pep: z.boolean().default(true).describe("Keep XEP-0048's PEP node storage:bookmarks in step with PEP bookmarks (XEP-0402 #compat-pep)"),
    })
    .strict(),
  setup(m) {
    const pep = m.service('pep');
    const privateXml = m.service('private');
    const serial = keyedSerial();
    // A client that creates the nodes without publish-options still gets private nodes that keep
    // every bookmark (the PEP defaults, presence access and one item, would leak and lose them).
    pep.setNodeDefaults(NS_BOOKMARKS, BOOKMARKS_NODE);
    pep.setNodeDefaults(NS_LEGACY, LEGACY_NODE);

    if (m.config.compat) {
      m.accountFeature(`${NS_BOOKMARKS}#compat`);
      privateXml.handle(NS_LEGACY, {
        // A get reads the PEP bookmarks; what private XML holds besides rooms (URLs) stays.
        get: (username, stored) =>
          serial(username, async () => {
            const items = await pep.items(username, NS_BOOKMARKS);
            if (!items) return undefined;
            return [toLegacy(items, otherThanRooms(stored?.[0]))];
          }),
        stored: (username, elements) =>
          serial(username, async () => {
            const storage = elements.find((el) => el.name === 'storage');
            if (!storage) return;
            await applyToPep(username, fromLegacy(storage));
            await refreshLegacyPep(username);
          }),
      });
      // Accounts that kept bookmarks in private XML only (imported, or from before PEP): to PEP.
      m.on('session:bound', ({ session }) => {
        if (migrated.has(session.username)) return; // checked once per account per run: no queue, no promise
        void serial(session.username, () => migrate(session.username)).catch((err: unknown) => m.log.error({ err }, 'bookmarks migration failed'));
      });
    }
    if (m.config.compat_pep) m.accountFeature(`${NS_BOOKMARKS}#compat-pep`);

    // Changes made by clients (the server's own conversions have no publisher and are not echoed).
    m.on('pep:item-published', ({ username, node, payload, publisher }) => {
      if (!publisher) return undefined;
      if (node === NS_BOOKMARKS) return serial(username, () => refreshLegacyPep(username));
      if (node === NS_LEGACY && m.config.compat_pep && payload?.name === 'storage') {
        return serial(username, () => applyToPep(username, fromLegacy(payload)));
      }
      return undefined;
    });
    m.on('pep:item-retracted', ({ username, node, by }) => (node === NS_BOOKMARKS && by ? serial(username, () => refreshLegacyPep(username)) : undefined));
    for (const hook of ['pep:node-purged', 'pep:node-deleted'] as const) {
      m.on(hook, ({ username, node }) => (node === NS_BOOKMARKS ? serial(username, () => refreshLegacyPep(username)) : undefined));
    }

    /** Publishes the rooms that are new or changed, retracts the ones that are gone. */
    async function applyToPep(username: string, wanted: Map<string, XmlElement>): Promise<void> {
      const current = new Map((await pep.items(username, NS_BOOKMARKS))?.map((item) => [item.id, item.payload]) ?? []);
      for (const [jid, conference] of wanted) {
        const old = current.get(jid);
        if (old && canonical(old) === canonical(conference)) continue;
        await pep.publish(username, NS_BOOKMARKS, jid, conference, BOOKMARKS_NODE);
      }
      for (const jid of current.keys()) if (!wanted.has(jid)) await pep.retract(username, NS_BOOKMARKS, jid);
      m.log.debug({ user: username, rooms: wanted.size }, 'bookmarks converted to pep');
    }

    async function refreshLegacyPep(username: string): Promise<void> {
      if (!m.config.compat_pep) return;
      const storage = toLegacy((await pep.items(username, NS_BOOKMARKS)) ?? [], []);
      const last = await pep.lastItem(username, NS_LEGACY);
      if (last?.payload && last.payload.toString() === storage.toString()) return;
      await pep.publish(username, NS_LEGACY, LEGACY_ITEM, storage, LEGACY_NODE);
    }

    /**
     * Accounts looked at since the start: private XML can only gain bookmarks through this server
     * afterwards (converted as they are stored), so one look per account and run is enough — not
     * two storage reads at every login. Bounded: forgetting only means looking again.
     */
    const migrated = new Set<string>();
    m.on('user:deleted', ({ username }) => void migrated.delete(username));

    async function migrate(username: string): Promise<void> {
      if (migrated.has(username)) return;
      if (migrated.size >= 100_000) migrated.clear();
      migrated.add(username);
      if (await pep.items(username, NS_BOOKMARKS)) return;
      const storage = (await privateXml.get(username, NS_LEGACY))?.find((el) => el.name === 'storage');
      if (!storage || storage.getChildren('conference').length === 0) return;
      await applyToPep(username, fromLegacy(storage));
      await refreshLegacyPep(username);
      m.log.info({ user: username }, 'private xml bookmarks moved to pep');
    }

    m.onStop(() => serial.idle());
  },
});

/** XEP-0048 rooms as XEP-0402 items: room JID → <conference xmlns='urn:xmpp:bookmarks:1'/>. */
function fromLegacy(storage: XmlElement): Map<string, XmlElement> {
  const out = new Map<string, XmlElement>();
  for (const room of storage.getChildren('conference')) {
    const jid = tryParseJid(room.attrs.jid ?? '');
    if (!jid || jid.local === '') continue; // XEP-0402 §3: the item id is a room JID
    const extensions = room.elements().filter((el) => el.name !== 'nick' && el.name !== 'password');
    out.set(jid.bareString, conference(room.attrs.name, room.attrs.autojoin, room.getChildText('nick'), room.getChildText('password'), extensions));
  }
  return out;
}

/** XEP-0402 items as one XEP-0048 <storage/> (XEP-0402 §5.3.1: the jid attribute from the item id). */
function toLegacy(items: PepItem[], others: XmlElement[]): XmlElement {
  const storage = x('storage', { xmlns: NS_LEGACY });
  for (const { id, payload } of items) {
    if (payload?.name !== 'conference') continue;
    const extensions = payload.getChild('extensions')?.elements() ?? [];
    storage.append(
      x(
        'conference',
        { jid: id, name: payload.attrs.name, autojoin: isTrue(payload.attrs.autojoin) ? 'true' : undefined },
        optionalText('nick', payload.getChildText('nick')),
        optionalText('password', payload.getChildText('password')),
        ...extensions.map((el) => el.clone()),
      ),
    );
  }
  storage.append(...others.map((el) => el.clone()));
  return storage;
}

function conference(name: string | undefined, autojoin: string | undefined, nick: string | undefined, password: string | undefined, extensions: XmlElement[]): XmlElement {
  return x(
    'conference',
    { xmlns: NS_BOOKMARKS, name, autojoin: isTrue(autojoin) ? 'true' : undefined },
    optionalText('nick', nick),
    optionalText('password', password),
    extensions.length > 0 ? x('extensions', null, ...extensions.map((el) => el.clone())) : undefined,
  );
}

/** One form of a conference, so an unchanged room is recognised whatever its attribute order. */
function canonical(payload: XmlElement | undefined): string {
  if (payload?.name !== 'conference') return '';
  const extensions = payload.getChild('extensions')?.elements() ?? [];
  return conference(payload.attrs.name, payload.attrs.autojoin, payload.getChildText('nick'), payload.getChildText('password'), extensions).toString();
}

/** What a private XML <storage/> holds besides rooms (XEP-0048 <url/> bookmarks). */
function otherThanRooms(storage: XmlElement | undefined): XmlElement[] {
  return storage?.elements().filter((el) => el.name !== 'conference') ?? [];
}

function optionalText(name: string, text: string | undefined): XmlElement | undefined {
  return text === undefined || text === '' ? undefined : x(name, null, text);
}

/** XML Schema booleans (XEP-0048 and XEP-0402 both use them for autojoin). */
function isTrue(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}
