// Presence to a room: entering (XEP-0045 §7.2, creating the room when it does not exist, §10.1),
// presence updates (§7.7), nick changes (§7.6), exiting (§7.14, also for a session that ended for
// good), removal of occupants whose session is gone (§12.1, status 333), and the occupants and
// affiliation of a deleted account. Several sessions of one account may share a nick (§7.2.9);
// such a shared nick cannot be changed (not-acceptable), which keeps the bookkeeping simple.
import { x, type Jid, type RouteEvent, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { StanzaError, stanzaError } from '../../server/errors.js';
import { roomError, type MucContext } from './context.js';
import { parseHistoryRequest } from './history.js';
import { stripMucPayloads, type Room } from './room.js';
import { AFFILIATION_RANK, type Occupant } from './types.js';

export async function handlePresence(ctx: MucContext, { stanza, from, to }: RouteEvent): Promise<void> {
  const type = stanza.attrs.type;
  const room = ctx.rooms.get(to.local);
  const real = from.toString();
  // Prosody: a presence error from an occupant means its client is not there any more.
  if (type === 'error') return void (room && removeForError(room, real));
  if (type !== undefined && type !== 'unavailable') return; // probes, subscriptions: nothing for a room
  const occupant = room?.occupantByReal(real);
  if (type === 'unavailable') return void (room && occupant && leave(room, occupant, real, stanza));
  if (room && occupant) {
    // A presence to the bare room from an occupant is an update (Prosody, for clients that do this).
    if (to.resource === '' || occupant.nick === to.resource) return refresh(room, occupant, real, stanza);
    return changeNick(ctx, room, occupant, real, stanza, to);
  }
  // §7.2.1: "If the user does not specify a room nickname ... the service MUST return a <jid-malformed/> error".
  try {
    if (to.resource === '') throw stanzaError.jidMalformed('A nickname is required to enter the room', { by: to.bareString });
    await join(ctx, room, from, to, stanza);
  } catch (err) {
    if (!(err instanceof StanzaError) || !stanza.getChild('x', NS.MUC)) throw err;
    // §7.2 (every "Service Denies Access" example): the error presence carries the join's
    // <x xmlns='http://jabber.org/protocol/muc'/> back (without the password), so the client can
    // tell a refused join from other presence errors — slixmpp, for one, only does so by it.
    ctx.route(x('presence', { type: 'error', id: stanza.attrs.id, from: to.toString(), to: real }, x('x', { xmlns: NS.MUC }), err.toElement()));
  }
}

async function join(ctx: MucContext, existing: Room | undefined, from: Jid, to: Jid, stanza: XmlElement): Promise<void> {
  const real = from.toString();
  const bare = from.bareString;
  const nick = to.resource;
  const mucX = stanza.getChild('x', NS.MUC);
  if (!mucX) return removeLegacyJoin(ctx, to, real);
  checkNick(ctx, to.bareString, nick);
  let room = existing;
  const created = !room;
  if (!room) {
    ctx.mayCreate(from);
    room = ctx.createRoom(to.local, bare);
  } else {
    admit(room, bare, nick, mucX);
  }
  const presence = clean(stanza);
  const selfCodes = entryCodes(room, stanza, nick, created);
  const shared = room.occupants.get(nick); // admit() allowed it: the same account's nick (§7.2.9)
  if (shared) {
    room.addSession(shared, real, presence);
    room.sendOccupantList(real, shared);
    room.selfPresence(shared, real, presence, { selfCodes });
  } else {
    const occupant: Occupant = { nick, bareJid: bare, role: room.defaultRole(room.affiliationOf(bare)), sessions: new Map() };
    room.addSession(occupant, real, presence);
    // §7.2.3: everyone else's presence first, then the broadcast of the newcomer ending with its own.
    room.sendOccupantList(real, occupant);
    room.publicise(occupant, { selfCodes });
  }
  sendHistoryAndSubject(room, real, mucX);
  await rememberNick(ctx, room, bare, nick);
}

/** §7.2.6-§7.2.11: who may enter, checked in the order Prosody checks. */
function admit(room: Room, bare: string, nick: string, mucX: XmlElement): void {
  const affiliation = room.affiliationOf(bare);
  // §7.2.11: "If a user attempts to enter a room while it is "locked" ... <item-not-found/>".
  if (room.locked && affiliation !== 'owner') throw roomError(room, stanzaError.itemNotFound, 'This room is locked');
  // §7.2.8: banned users get <forbidden/>.
  if (affiliation === 'outcast') throw roomError(room, stanzaError.forbidden, 'You are banned from this room');
  // §7.2.7: "If the room is members-only but the user is not on the member list ... <registration-required/>".
  if (room.config.membersOnly && AFFILIATION_RANK[affiliation] < AFFILIATION_RANK.member) {
    throw roomError(room, stanzaError.registrationRequired, 'This room is for members only');
  }
  // §7.2.6: a missing or wrong password is <not-authorized/>.
  if (room.config.password !== '' && mucX.getChildText('password') !== room.config.password) {
    throw roomError(room, stanzaError.notAuthorized, 'A password is required to enter this room');
  }
  // §7.2.9: a nick in use (or reserved) by someone else is a <conflict/>; one's own is shared.
  const holder = room.occupants.get(nick);
  const reserver = room.reservedBy(nick);
  if ((holder && holder.bareJid !== bare) || (reserver !== undefined && reserver !== bare)) {
    throw roomError(room, stanzaError.conflict, 'That nickname is already in use');
  }
  // §7.2.10: a full room is <service-unavailable/> (type wait); "If the room has reached its
  // maximum number of occupants and a room admin or owner attempts to join, the room MUST allow" it.
  if (!holder && room.occupants.size >= room.config.maxUsers && AFFILIATION_RANK[affiliation] < AFFILIATION_RANK.admin) {
    throw roomError(room, stanzaError.serviceUnavailable, 'The room is full', { type: 'wait' });
  }
}

/** §7.2.1 nick policy: a blank nick is malformed, an overlong one not acceptable. */
function checkNick(ctx: MucContext, roomJid: string, nick: string): void {
  if (nick.trim() === '') throw stanzaError.jidMalformed('The nickname is empty', { by: roomJid });
  if ([...nick].length > ctx.m.config.max_nick_length) throw stanzaError.notAcceptable(`Nicknames are at most ${ctx.m.config.max_nick_length} characters`, { by: roomJid });
}

/**
 * Status codes of a self-presence on entry: 100 in a non-anonymous room (§7.2.4), 170 when logged
 * (§7.2.13), 201 when just created (§10.1.1), 210 when the nick is not the one asked for (§7.2.3:
 * here when normalisation changed it).
 */
function entryCodes(room: Room, stanza: XmlElement, nick: string, created: boolean): string[] {
  const codes: string[] = [];
  if (room.config.whois === 'anyone') codes.push('100');
  if (room.config.logging) codes.push('170');
  if (created) codes.push('201');
  if (nickRewritten(stanza, nick)) codes.push('210');
  return codes;
}

/** The nick as the client wrote it differs from the normalised one the room uses. */
function nickRewritten(stanza: XmlElement, nick: string): boolean {
  const raw = stanza.attrs.to ?? '';
  const slash = raw.indexOf('/');
  return slash >= 0 && raw.slice(slash + 1) !== nick;
}

/** §7.2.14-16: history, then the subject, to the session that just entered. */
function sendHistoryAndSubject(room: Room, real: string, mucX: XmlElement | undefined): void {
  for (const message of room.history.select(parseHistoryRequest(mucX), room.config.historyLength, real)) room.send(real, message);
  room.sendSubject(real);
}

/**
 * §7.2.1 (since 1.32): presence without <x/> from a non-occupant is a desynchronised client, not a
 * groupchat 1.0 join: "responds with an explicit kick ... status codes 110 ..., 307 ... and 333".
 */
function removeLegacyJoin(ctx: MucContext, to: Jid, real: string): void {
  const item = x('item', { affiliation: 'none', role: 'none' }, x('reason', null, 'You are not in the room.'));
  const codes = ['110', '307', '333'].map((code) => x('status', { code }));
  ctx.m.route(x('presence', { from: to.toString(), to: real, type: 'unavailable' }, x('x', { xmlns: NS.MUC_USER }, item, ...codes)));
}

/** §7.7 presence update; a join presence from a session already in (§7.2.1: desynchronised) gets the entry sequence again. */
function refresh(room: Room, occupant: Occupant, real: string, stanza: XmlElement): void {
  const mucX = stanza.getChild('x', NS.MUC);
  occupant.sessions.set(real, clean(stanza));
  if (!mucX) return room.publicise(occupant);
  room.sendOccupantList(real, occupant);
  room.selfPresence(occupant, real, occupant.sessions.get(real)!, { selfCodes: entryCodes(room, stanza, occupant.nick, false) });
  sendHistoryAndSubject(room, real, mucX);
}

/** §7.6: unavailable (303, with the new nick) from the old nick, then available from the new one. */
async function changeNick(ctx: MucContext, room: Room, occupant: Occupant, real: string, stanza: XmlElement, to: Jid): Promise<void> {
  const nick = to.resource;
  checkNick(ctx, room.address, nick);
  if (occupant.sessions.size > 1) throw roomError(room, stanzaError.notAcceptable, 'This nickname is shared by several sessions and cannot change');
  const reserver = room.reservedBy(nick);
  if (room.occupants.has(nick) || (reserver !== undefined && reserver !== occupant.bareJid)) {
    throw roomError(room, stanzaError.conflict, 'That nickname is already in use');
  }
  room.publicise(occupant, { codes: ['303'], newNick: nick, unavailable: x('presence', { type: 'unavailable' }) });
  room.rename(occupant, nick);
  occupant.sessions.set(real, clean(stanza));
  room.publicise(occupant, { selfCodes: nickRewritten(stanza, nick) ? ['210'] : [] });
  await rememberNick(ctx, room, occupant.bareJid, nick);
}

/** §7.14: one session leaving; the occupant leaves with its last one. */
function leave(room: Room, occupant: Occupant, real: string, stanza: XmlElement): void {
  const prevRole = occupant.role;
  const unavailable = clean(stanza);
  if (!room.removeSession(occupant, real)) {
    // Others still share the nick: only this session hears that it left.
    room.selfPresence({ ...occupant, role: 'none' }, real, unavailable);
    return;
  }
  room.publicise(occupant, { unavailable, prevRole }, [real]);
}

/**
 * §7.14 for a session that ended for good (closed, or hibernated past its resume window): it leaves
 * as if it had sent unavailable presence, like Prosody's mod_muc on a session closing. The presence
 * module sends that presence too (RFC 6121 §4.6.3, directed presence), but this does not depend on
 * its bookkeeping; whichever comes second finds the occupant gone. A hibernated session stays in
 * (XEP-0198: resumption is meant to keep it there).
 */
export function sessionEnded(room: Room, real: string): void {
  const occupant = room.occupantByReal(real);
  if (occupant) leave(room, occupant, real, x('presence', { type: 'unavailable' }));
}

/**
 * An account of this server was deleted: its affiliation (and with it a reserved nick) is
 * forgotten, so whoever registers the name later inherits no ownership, membership or ban, and
 * anything of it still in the room leaves (others see affiliation and role none). True when the
 * stored record changed.
 */
export function forgetAccount(room: Room, bare: string): boolean {
  const changed = room.affiliations.delete(bare);
  for (const occupant of [...room.occupants.values()]) {
    if (occupant.bareJid !== bare) continue;
    const prevRole = occupant.role;
    const sessions = room.removeOccupant(occupant);
    room.publicise(occupant, { unavailable: x('presence', { type: 'unavailable' }), prevRole }, sessions);
  }
  return changed;
}

/**
 * §12.1: a session that answers with an error (or is found gone) is taken out, with status 333 for
 * everyone. Prosody does the same on any presence error and on the "kickable" message errors.
 */
export function removeForError(room: Room, real: string): void {
  const occupant = room.occupantByReal(real);
  if (!occupant) return;
  const prevRole = occupant.role;
  if (!room.removeSession(occupant, real)) return;
  room.publicise(occupant, { codes: ['333'], unavailable: x('presence', { type: 'unavailable' }), prevRole }, [real]);
}

/** Members' last nick, so group chat pushes can tell when a message mentions them. */
async function rememberNick(ctx: MucContext, room: Room, bare: string, nick: string): Promise<void> {
  const data = room.affiliations.get(bare);
  if (!data || data.affiliation === 'outcast' || data.lastNick === nick) return;
  data.lastNick = nick;
  if (room.config.persistent) await ctx.save(room);
}

/** The presence as the room keeps it: no addressing, no MUC payloads. */
function clean(stanza: XmlElement): XmlElement {
  const copy = stripMucPayloads(stanza);
  delete copy.attrs.to;
  delete copy.attrs.from;
  return copy;
}
