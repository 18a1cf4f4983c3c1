// muc#admin IQs (XEP-0045 §8-§10): lists by affiliation or role, and changes of either for one or
// more items. A request with several items is checked as a whole before anything changes (§9.2:
// "the service SHOULD NOT apply any of the requested changes" when one is not allowed).
import { tryParseJid, x, type Jid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { stanzaError } from '../../server/errors.js';
import type { MucContext } from './context.js';
import type { Room } from './room.js';
import { applyAffiliation, applyRole, checkAffiliationChange, checkOwnersRemain, checkRoleChange } from './affiliations.js';
import { AFFILIATION_RANK, isAffiliation, isRole, primarySession, type Affiliation, type Role } from './types.js';

/** §8.5, §9.2, §9.5, §9.8, §10.5, §10.8: the list of an affiliation or of a role. */
export function adminGet(room: Room, from: Jid, payload: XmlElement): XmlElement {
  const item = payload.getChild('item');
  const affiliation = item?.attrs.affiliation;
  const role = item?.attrs.role;
  const out = x('query', { xmlns: NS.MUC_ADMIN });
  if (affiliation !== undefined && role === undefined) {
    if (!isAffiliation(affiliation) || affiliation === 'none') throw stanzaError.badRequest('No such affiliation list');
    if (!mayListAffiliation(room, from, affiliation)) throw stanzaError.forbidden('You may not see this list', { by: room.address });
    for (const [jid, data] of room.withAffiliation(affiliation)) {
      out.append(x('item', { affiliation, jid, nick: data.nick }, data.reason !== undefined && x('reason', null, data.reason)));
    }
    return out;
  }
  if (role !== undefined && affiliation === undefined) {
    if (!isRole(role) || role === 'none') throw stanzaError.badRequest('No such role list');
    // Prosody: moderators (or whoever would be one, by affiliation) see the role lists.
    const actor = room.occupantByReal(from.toString());
    if ((actor?.role ?? room.defaultRole(room.affiliationOf(from.bareString))) !== 'moderator') {
      throw stanzaError.forbidden('Only moderators may see this list', { by: room.address });
    }
    for (const occupant of room.sortedOccupants()) {
      if (occupant.role !== role) continue;
      out.append(x('item', { affiliation: room.affiliationOf(occupant.bareJid), role, nick: occupant.nick, jid: primarySession(occupant)[0] }));
    }
    return out;
  }
  throw stanzaError.badRequest('Ask for one affiliation or one role');
}

/**
 * Admins see the lists up to their own level (Prosody); the member list is also open to the roles
 * in muc#roomconfig_getmemberlist, in non-anonymous rooms only (§5.2.1 note ***: in semi-anonymous
 * rooms "members SHOULD NOT be allowed to retrieve the member list").
 */
function mayListAffiliation(room: Room, from: Jid, affiliation: Affiliation): boolean {
  const mine = room.affiliationOf(from.bareString);
  if (AFFILIATION_RANK[mine] >= AFFILIATION_RANK.admin && AFFILIATION_RANK[mine] >= AFFILIATION_RANK[affiliation]) return true;
  if (affiliation !== 'member' || room.config.whois !== 'anyone') return false;
  const role = room.occupantByReal(from.toString())?.role;
  if (role !== undefined && room.config.getMemberList.includes(role)) return true;
  // §9.5: "a service SHOULD also allow any member to retrieve the member list even if not yet an occupant".
  return room.config.membersOnly && AFFILIATION_RANK[mine] >= AFFILIATION_RANK.member;
}

/** §8.2-§10.7: role changes by nick, affiliation changes by bare JID. */
export async function adminSet(ctx: MucContext, room: Room, from: Jid, payload: XmlElement): Promise<void> {
  const items = payload.getChildren('item');
  if (items.length === 0) throw stanzaError.badRequest('No item');
  const real = from.toString();
  const actor = room.occupantByReal(real)?.nick;
  const steps: (() => void)[] = [];
  const affiliationChanges: { jid: string; affiliation: Affiliation }[] = [];
  for (const item of items) {
    const { affiliation, role, nick } = item.attrs;
    const reason = item.getChildText('reason');
    if (affiliation !== undefined && role === undefined) {
      if (!isAffiliation(affiliation)) throw stanzaError.badRequest(`No such affiliation '${affiliation}'`);
      const jid = targetJid(room, item.attrs.jid, nick);
      checkAffiliationChange(room, from.bareString, jid, affiliation);
      affiliationChanges.push({ jid, affiliation });
      // §9.3: "if a nick is provided, that nick becomes the user's default nick" (a 'jid' item only; Miranda sends 'nick' alone).
      const reserved = item.attrs.jid !== undefined ? nick : undefined;
      steps.push(() => applyAffiliation(room, jid, affiliation, { actor, reason, nick: reserved }));
    } else if (role !== undefined && affiliation === undefined) {
      if (!isRole(role)) throw stanzaError.badRequest(`No such role '${role}'`);
      const target = nick !== undefined ? room.occupants.get(nick) : targetByJid(room, item.attrs.jid);
      if (!target) throw stanzaError.itemNotFound('No such occupant', { by: room.address });
      checkRoleChange(room, real, target, role as Role);
      steps.push(() => applyRole(room, target, role as Role, { actor, reason }));
    } else {
      throw stanzaError.badRequest('An item changes either an affiliation or a role');
    }
  }
  if (affiliationChanges.length > 0) checkOwnersRemain(room, affiliationChanges);
  for (const step of steps) step();
  if (affiliationChanges.length > 0) await ctx.save(room);
}

/** The bare JID an affiliation item is about: its 'jid', or (COMPAT Miranda) the occupant with its 'nick'. */
function targetJid(room: Room, jid: string | undefined, nick: string | undefined): string {
  if (jid !== undefined) {
    const parsed = tryParseJid(jid);
    if (!parsed) throw stanzaError.jidMalformed(`'${jid}' is not a JID`);
    // §9.1 (1.35): affiliations are kept by bare JID.
    return parsed.bareString;
  }
  const occupant = nick !== undefined ? room.occupants.get(nick) : undefined;
  if (!occupant) throw stanzaError.badRequest('An affiliation item needs a jid');
  return occupant.bareJid;
}

/** A role item with a 'jid' instead of a 'nick' (Prosody takes those too). */
function targetByJid(room: Room, jid: string | undefined) {
  const parsed = jid !== undefined ? tryParseJid(jid) : null;
  if (!parsed) return undefined;
  return room.occupantByReal(parsed.toString()) ?? room.occupantsOf(parsed.bareString)[0];
}
