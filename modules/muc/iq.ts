// IQs to a room and to its occupants: disco, muc#admin and muc#owner (admin.ts, owner.ts), ping,
// XEP-0313 archive queries (answered by modules/mam once the room allowed them), and IQs to an
// occupant JID (XEP-0410 self-ping, or forwarded to the occupant's client).
import { tryParseJid, x, type IqRequest, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { StanzaError, stanzaError, type StanzaErrorCondition, type StanzaErrorType } from '../../server/errors.js';
import { errors, type MucContext } from './context.js';
import type { Room } from './room.js';
import { adminGet, adminSet } from './admin.js';
import { ownerGet, ownerSet } from './owner.js';
import { roomInfo } from './disco.js';
import { AFFILIATION_RANK, primarySession, type Occupant } from './types.js';

const NS_MAM = 'urn:xmpp:mam:2';
const NS_VCARD4 = 'urn:ietf:params:xml:ns:vcard-4.0';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';

/** An answer, or a deferred one: IQs forwarded to an occupant wait outside the room's queue. */
export type IqStep = XmlElement | undefined | (() => Promise<XmlElement | undefined>);

export async function roomIq(ctx: MucContext, request: IqRequest): Promise<IqStep> {
  const { stanza, payload, from, to } = request;
  const type = stanza.attrs.type as 'get' | 'set';
  const room = ctx.rooms.get(to.local);
  const ns = payload.attrs.xmlns;
  const visible = room && (!room.locked || room.affiliationOf(from.bareString) === 'owner');
  if (!room || !visible) throw stanzaError.itemNotFound('No such room', { by: to.bareString });
  if (to.resource !== '') return occupantIq(ctx, room, request);
  const key = `${type} ${ns}`;
  if (key === `get ${NS.DISCO_INFO}`) return roomInfo(room, room.config.logging ? [...(ctx.mam()?.roomFeatures ?? [])] : [], payload.attrs.node, from);
  if (key === `get ${NS.DISCO_ITEMS}`) return x('query', { xmlns: NS.DISCO_ITEMS, node: payload.attrs.node });
  if (key === `get ${NS.MUC_ADMIN}`) return adminGet(room, from, payload);
  if (key === `set ${NS.MUC_ADMIN}`) return void (await adminSet(ctx, room, from, payload));
  if (key === `get ${NS.MUC_OWNER}`) return ownerGet(ctx, room, from);
  if (key === `set ${NS.MUC_OWNER}`) return void (await ownerSet(ctx, room, from, payload));
  if (key === `get ${NS.PING}`) return undefined;
  if (ns === NS_MAM) return archiveIq(ctx, room, request);
  throw stanzaError.serviceUnavailable();
}

/**
 * XEP-0313 §5.1.2 for rooms: "In a members-only chat room, only owners, admins or members can
 * query a room archive"; others are open to anyone not banned. Real JIDs go to whoever may see
 * them in the room.
 */
function archiveIq(ctx: MucContext, room: Room, { stanza, payload, from }: IqRequest): Promise<XmlElement | undefined> {
  const mam = ctx.mam();
  if (!mam) throw stanzaError.serviceUnavailable();
  const affiliation = room.affiliationOf(from.bareString);
  const occupant = room.occupantByReal(from.toString());
  if (affiliation === 'outcast' || (room.config.membersOnly && AFFILIATION_RANK[affiliation] < AFFILIATION_RANK.member)) {
    throw stanzaError.forbidden('You may not read the archive of this room', { by: room.address });
  }
  const revealRealJids = room.seesRealJids(occupant) || AFFILIATION_RANK[affiliation] >= AFFILIATION_RANK.admin;
  return mam.roomIq({ room: room.jid, requester: from, stanza, payload, revealRealJids });
}

/**
 * IQs to an occupant JID: XEP-0410 §3.3, a self-ping is answered by the service ("Successful IQ
 * response: the client is joined"); others go to the occupant (vCards and PEP to its bare JID,
 * as Prosody does), from the asker's occupant JID. XEP-0410: "If the client is not joined, the
 * MUC service will respond with a <not-acceptable> error"; §6.6: disco from a non-occupant is a
 * <bad-request/>.
 */
function occupantIq(ctx: MucContext, room: Room, { stanza, payload, from, to }: IqRequest): IqStep {
  const sender = room.occupantByReal(from.toString());
  const by = { by: room.address };
  if (!sender) {
    const disco = payload.attrs.xmlns === NS.DISCO_INFO || payload.attrs.xmlns === NS.DISCO_ITEMS;
    throw disco ? stanzaError.badRequest('Only occupants may query occupants', by) : errors.notOccupant(by);
  }
  const target = room.occupants.get(to.resource);
  if (!target) throw stanzaError.itemNotFound('Recipient not in room', by);
  if (target === sender && stanza.attrs.type === 'get' && payload.name === 'ping' && payload.attrs.xmlns === NS.PING) return undefined;
  return () => forward(ctx, room, sender, target, stanza, payload);
}

async function forward(ctx: MucContext, room: Room, sender: Occupant, target: Occupant, stanza: XmlElement, payload: XmlElement): Promise<XmlElement | undefined> {
  const real = primarySession(target)[0];
  const ns = payload.attrs.xmlns;
  const to = ns === NS.VCARD || ns === NS_VCARD4 || ns === NS_PUBSUB ? (tryParseJid(real)?.bareString ?? real) : real;
  const answer = await ctx.m.sendIq(x('iq', { type: stanza.attrs.type, from: room.occupantJid(sender.nick), to }, payload.clone()));
  if (answer.attrs.type === 'result') return answer.firstElement()?.clone();
  throw errorOf(answer);
}

/** The error an occupant answered with, passed on to whoever asked. */
function errorOf(answer: XmlElement): StanzaError {
  const error = answer.getChild('error');
  const condition = error?.elements().find((el) => el.attrs.xmlns === NS.STANZA_ERRORS && el.name !== 'text')?.name ?? 'undefined-condition';
  const text = error?.getChildText('text', NS.STANZA_ERRORS);
  const factory = condition.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const known = factory in stanzaError ? (condition as StanzaErrorCondition) : 'undefined-condition';
  const type = error?.attrs.type as StanzaErrorType | undefined;
  return new StanzaError(known, text, type ? { type } : {});
}
