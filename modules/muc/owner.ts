// muc#owner IQs (XEP-0045 §10): the configuration form, instant rooms (§10.1.2), reserved rooms
// (§10.1.3), later configuration changes with their notifications (§10.2), and destroying a room
// (§10.9). Only owners: everyone else gets <forbidden/>.
import { x, type Jid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { parseForm } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';
import type { MucContext } from './context.js';
import type { Room } from './room.js';
import { applyAffiliation, checkOwnersRemain } from './affiliations.js';
import { applyConfigForm, configForm, configStatusCodes, type ConfigChange } from './config.js';
import { AFFILIATION_RANK, type Affiliation } from './types.js';

function requireOwner(room: Room, from: Jid): void {
  // §10.2: "If the <user@host> of the 'from' address does not match the bare JID of a room owner, the service MUST return a <forbidden/> error".
  if (room.affiliationOf(from.bareString) !== 'owner') throw stanzaError.forbidden('Only owners may configure the room', { by: room.address });
}

export function ownerGet(ctx: MucContext, room: Room, from: Jid): XmlElement {
  requireOwner(room, from);
  const list = (affiliation: Affiliation) => room.withAffiliation(affiliation).map(([jid]) => jid);
  const form = configForm(room, list('owner'), list('admin'), { maxOccupants: ctx.m.config.max_occupants });
  return x('query', { xmlns: NS.MUC_OWNER }, form);
}

export async function ownerSet(ctx: MucContext, room: Room, from: Jid, payload: XmlElement): Promise<void> {
  requireOwner(room, from);
  const child = payload.firstElement();
  if (child?.name === 'destroy') return destroy(ctx, room, child);
  if (child?.name !== 'x' || child.attrs.xmlns !== NS.DATA_FORMS) throw stanzaError.badRequest('Expected a data form or <destroy/>');
  const form = parseForm(child);
  if (form.type === 'cancel') {
    // §10.1.3: "If the room owner cancels the initial configuration, the service MUST destroy the
    // room"; §10.2: a later cancel leaves the configuration as it was.
    if (room.locked) await destroy(ctx, room, x('destroy'));
    return;
  }
  if (form.type !== 'submit') throw stanzaError.badRequest('Not a submitted form');
  // §10.1.2: an empty submit accepts the defaults (an instant room).
  const change: ConfigChange = form.fields.length === 0 ? { config: room.config } : applyConfigForm(form, room.config, { maxOccupants: ctx.m.config.max_occupants, maxHistory: ctx.m.config.max_history });
  const listChanges = ownerAndAdminChanges(room, change);
  if (listChanges.length > 0) checkOwnersRemain(room, listChanges);
  const before = room.config;
  const wasLocked = room.locked;
  room.config = change.config;
  room.history.setLimit(change.config.historyLength);
  room.locked = false; // §10.1.3: "the service MUST "unlock" the room"
  const actor = room.occupantByReal(from.toString())?.nick;
  for (const { jid, affiliation } of listChanges) applyAffiliation(room, jid, affiliation, { actor });
  if (!before.membersOnly && change.config.membersOnly) removeNonMembers(room);
  await ctx.save(room);
  // §10.2.1: occupants hear of changes to a configured room (a new room has only its owner in it).
  const codes = configStatusCodes(before, change.config);
  if (!wasLocked && codes.length > 0) {
    room.broadcast(x('message', { type: 'groupchat', from: room.address }, x('x', { xmlns: NS.MUC_USER }, ...codes.map((code) => x('status', { code })))));
  }
}

/** muc#roomconfig_roomowners / _roomadmins are the full lists (§15.5.3): the differences to apply, owners first. */
function ownerAndAdminChanges(room: Room, change: ConfigChange): { jid: string; affiliation: Affiliation }[] {
  const out: { jid: string; affiliation: Affiliation }[] = [];
  const current = (affiliation: Affiliation) => room.withAffiliation(affiliation).map(([jid]) => jid);
  const owners = change.owners ? new Set(change.owners) : new Set(current('owner'));
  if (change.owners) {
    for (const jid of change.owners) if (room.affiliationOf(jid) !== 'owner') out.push({ jid, affiliation: 'owner' });
    for (const jid of current('owner')) if (!owners.has(jid)) out.push({ jid, affiliation: change.admins?.includes(jid) ? 'admin' : 'none' });
  }
  if (change.admins) {
    const admins = new Set(change.admins.filter((jid) => !owners.has(jid)));
    for (const jid of admins) if (room.affiliationOf(jid) !== 'admin' && !out.some((c) => c.jid === jid)) out.push({ jid, affiliation: 'admin' });
    for (const jid of current('admin')) if (!admins.has(jid) && !out.some((c) => c.jid === jid)) out.push({ jid, affiliation: 'none' });
  }
  return out;
}

/**
 * §10.2: "If as a result of a change in the room configuration the room type is changed to
 * members-only but there are non-members in the room, the service MUST remove any non-members from
 * the room and include a status code of 322".
 */
function removeNonMembers(room: Room): void {
  for (const occupant of [...room.occupants.values()]) {
    if (AFFILIATION_RANK[room.affiliationOf(occupant.bareJid)] >= AFFILIATION_RANK.member) continue;
    const prevRole = occupant.role;
    const sessions = room.removeOccupant(occupant);
    room.publicise(occupant, { codes: ['322'], unavailable: x('presence', { type: 'unavailable' }), prevRole }, sessions);
  }
}

/**
 * §10.9: every occupant gets one unavailable presence carrying <destroy/> (with the alternate venue
 * and reason when given); then the room is gone, persistent or not.
 */
export async function destroy(ctx: MucContext, room: Room, request: XmlElement): Promise<void> {
  const reason = request.getChildText('reason');
  const password = request.getChildText('password');
  const destroyEl = x('destroy', { jid: request.attrs.jid }, reason !== undefined && x('reason', null, reason), password !== undefined && x('password', null, password));
  for (const occupant of [...room.occupants.values()]) {
    for (const real of room.removeOccupant(occupant)) {
      const item = x('item', { affiliation: 'none', role: 'none' });
      room.send(real, x('presence', { type: 'unavailable', from: room.occupantJid(occupant.nick) }, x('x', { xmlns: NS.MUC_USER }, item, destroyEl)));
    }
  }
  ctx.m.log.info({ room: room.address }, 'room destroyed');
  await ctx.remove(room);
}
