// XEP-0313 for group chat rooms (§3.3.2, §5.1.2): the MUC module keeps no archive itself. Before it
// broadcasts a message a room accepted, it fires 'muc:message' (server/hooks.ts); rooms with logging
// enabled keep the message here, and the copy every occupant gets carries the room's <stanza-id/>.
// Queries are IQs to the room's JID, which the MUC component receives: it decides who may read the
// archive (§5.1.2: members-only rooms their members, others anyone not banned) and whether the
// requester may see real JIDs, then hands the IQ to the 'mam' service (roomIq). Contract for modules/muc:
//   - await m.fire('muc:message', { room, stanza, nick, senderJid, logging }) before the broadcast,
//     then broadcast `stanza` as the handlers left it (they append <stanza-id/> and strip forged ones);
//   - for urn:xmpp:mam:2 'query' (get, set) and 'metadata' (get) IQs to a room, check access
//     (forbidden otherwise), then return m.service('mam').roomIq({ room, requester, stanza, payload,
//     revealRealJids }) as the IQ result payload;
//   - list m.service('mam').roomFeatures in the disco#info of rooms with logging enabled;
//   - call deleteRoomArchive(room) when a room is destroyed.
import { x, type Jid, type ModuleContext, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { stanzaError } from '../../server/errors.js';
import { NS_MAM, NS_MAM_EXTENDED, roomArchivable, withoutForgedIds, type MamNamespace } from './rules.js';
import { parseQuery, queryForm, resultMessage } from './query.js';
import { MessageArchive, newArchiveId, type ArchivePage, type StoredMessage } from './store.js';

export interface RoomIqRequest {
  /** The room's bare JID. */
  room: Jid;
  /** Who asks. */
  requester: Jid;
  /** The IQ and its payload (<query/> or <metadata/>). */
  stanza: XmlElement;
  payload: XmlElement;
  /**
   * §5.1.2: "In the case of non-anonymous rooms or if the recipient of the MUC archive has the right
   * to access the sender real JID at the time of the query": results then name the real JIDs, and
   * 'with' (which matches them, §4.1.1) may be used.
   */
  revealRealJids: boolean;
}

/** What index.ts shares with the room side: paging rules, answering, metadata. */
export interface QueryHelpers {
  pageSize(max: number | undefined): number;
  answer(page: ArchivePage, query: { flip: boolean; ns: MamNamespace }, send: (item: ArchivePage['items'][number], message: XmlElement) => void): XmlElement;
  metadata(archive: MessageArchive, owner: string): Promise<XmlElement>;
}

export function roomArchiving(m: ModuleContext<{ rooms: boolean }>, helpers: QueryHelpers) {
  // Owners are the rooms' bare JIDs (never an account's localpart, so account deletion leaves them).
  const archive = new MessageArchive(m.store.archive<StoredMessage>('rooms'));
  const features = m.config.rooms ? [NS_MAM, NS_MAM_EXTENDED] : [];

  m.on('muc:message', async ({ room, stanza, senderJid, logging }) => {
    const by = room.bareString;
    // XEP-0359 §4: an occupant must not plant an id that looks like the room's.
    stanza.children = withoutForgedIds(stanza, by).children;
    if (!m.config.rooms || !logging || !roomArchivable(stanza)) return;
    const stored = stanza.clone();
    delete stored.attrs.to;
    // §8.4: "the archiving entity MUST strip any existing <x> element in the
    // 'http://jabber.org/protocol/muc#user' namespace from messages before archiving them".
    stored.removeChildren('x', NS.MUC_USER);
    const id = newArchiveId();
    try {
      // 'with' is the publisher (§4.1.1: "An item in a MUC archive matches if the publisher of the item matches the JID").
      await archive.append(by, id, { stanza: stored.toString(), jid: senderJid.toString() }, senderJid.toString());
    } catch (err) {
      m.log.error({ err, room: by }, 'archiving failed');
      return;
    }
    // §3.5: "For regular users that's the bare JID of the account and for MUC that's the bare JID of the room."
    stanza.append(x('stanza-id', { xmlns: NS.STANZA_ID, by, id }));
  });

  async function iq({ room, requester, stanza, payload, revealRealJids }: RoomIqRequest): Promise<XmlElement | undefined> {
    if (!m.config.rooms) throw stanzaError.serviceUnavailable('Room archives are turned off');
    const owner = room.bareString;
    const type = stanza.attrs.type;
    if (payload.attrs.xmlns !== NS_MAM) throw stanzaError.serviceUnavailable();
    if (payload.name === 'query' && type === 'get') return queryForm();
    if (payload.name === 'metadata' && type === 'get') return helpers.metadata(archive, owner);
    if (payload.name !== 'query' || type !== 'set') throw stanzaError.serviceUnavailable();
    const query = parseQuery(payload);
    // §4.1.1: matching by publisher "should only be available to entities that would already have
    // been allowed to know the publisher of the events (e.g. this could not be used by a visitor to a
    // semi-anonymous MUC)".
    if (query.with && !revealRealJids) throw stanzaError.forbidden("The occupants' real JIDs are hidden from you: 'with' is not available");
    const page = await archive.page(owner, query, helpers.pageSize(query.rsm.max));
    // Straight to a local requester's session, so every result is written before the IQ result.
    const session = requester.domain === m.host && requester.resource !== '' ? m.sessions.get(requester.bareString, requester.resource) : undefined;
    return helpers.answer(page, query, (item, message) => {
      // §5.1.2: "the forwarded stanza MUST NOT have a 'to' attribute, and the 'from' MUST be the occupant JID".
      delete message.attrs.to;
      if (revealRealJids && item.value.jid) message.append(x('x', { xmlns: NS.MUC_USER }, x('item', { jid: item.value.jid })));
      const result = resultMessage({ to: requester.toString(), from: owner, queryId: query.queryId, id: item.key ?? '', stamp: item.stamp, message });
      if (session) session.sendRaw(result);
      else m.route(result);
    });
  }

  return {
    iq,
    features,
    deleteArchive: (room: Jid) => archive.deleteAll(room.bareString),
    deleteOlderThan: (stamp: number) => archive.deleteOlderThan(stamp),
  };
}
