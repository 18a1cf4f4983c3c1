// Who may change whose role or affiliation (XEP-0045 §5.1.3, §5.2.3 and the use cases of §8-§10),
// and what a change does to the occupants concerned. Where the XEP leaves room, Prosody's rules
// (may_set_role, set_affiliation) decide. Errors: an actor without the privilege gets <forbidden/>
// (§8: "any of the following administrative requests MUST be denied ... <forbidden/>"); a target
// protected by a higher affiliation gets <not-allowed/> (§8.2, §9.1); banning oneself or leaving a
// room without owner gets <conflict/> (§9.1, §10.6).
import { x } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import type { Room } from './room.js';
import { AFFILIATION_RANK, ROLE_RANK, type Affiliation, type Occupant, type Role } from './types.js';

const ADMIN = AFFILIATION_RANK.admin;

/** Throws unless the occupant at `actorReal` may give `target` the role `role`. */
export function checkRoleChange(room: Room, actorReal: string, target: Occupant, role: Role): void {
  const actor = room.occupantByReal(actorReal);
  if (!actor || actor.role !== 'moderator') throw stanzaError.forbidden('Only moderators may change roles', { by: room.address });
  const actorRank = AFFILIATION_RANK[room.affiliationOf(actor.bareJid)];
  const targetRank = AFFILIATION_RANK[room.affiliationOf(target.bareJid)];
  // §8.2: "A user cannot be kicked by a moderator with a lower affiliation."
  if (actorRank < targetRank) throw stanzaError.notAllowed('The occupant has a higher affiliation', { by: room.address });
  // §5.1.3, §9.7: admins and owners keep their moderator status against their equals.
  if (actor !== target && targetRank >= ADMIN && ROLE_RANK[role] < ROLE_RANK.moderator && actorRank <= targetRank) {
    throw stanzaError.notAllowed('Admins and owners cannot lose moderator status to their equals', { by: room.address });
  }
  // §5.2.1: assigning and removing the moderator role is for admins and owners.
  if ((target.role === 'moderator' || role === 'moderator') && actorRank < ADMIN) {
    throw stanzaError.notAllowed('Only admins and owners may grant or revoke moderator status', { by: room.address });
  }
}

export interface ChangeOptions {
  /** Nick of the occupant who made the change (<actor nick/>). */
  actor?: string;
  reason?: string;
}

/** §8.2-§8.5, §9.6-§9.7: the new role, told to the room; role 'none' is a kick (307). */
export function applyRole(room: Room, target: Occupant, role: Role, options: ChangeOptions = {}): void {
  if (room.occupants.get(target.nick) !== target) return; // gone meanwhile (an earlier item of the same request)
  const prevRole = target.role;
  if (role === 'none') {
    const sessions = room.removeOccupant(target);
    room.publicise(target, { ...options, codes: ['307'], unavailable: x('presence', { type: 'unavailable' }), prevRole }, sessions);
    return;
  }
  target.role = role;
  room.publicise(target, { ...options, prevRole });
  refreshView(room, target, prevRole);
}

/** Throws unless `actorBare` may give `targetBare` the affiliation `affiliation` (Prosody's set_affiliation rules). */
export function checkAffiliationChange(room: Room, actorBare: string, targetBare: string, affiliation: Affiliation): void {
  const actor = room.affiliationOf(actorBare);
  const current = room.affiliations.get(targetBare)?.affiliation ?? 'none';
  // §9.1: "If an admin or owner attempts to ban himself, the service MUST deny the request and return a <conflict/>".
  if (targetBare === actorBare && affiliation === 'outcast' && AFFILIATION_RANK[actor] >= ADMIN) {
    throw stanzaError.conflict('You cannot ban yourself', { by: room.address });
  }
  // Prosody: a server administrator stays an owner (server_admins_are_owners); other affiliations cannot stick.
  if (affiliation !== 'owner' && room.isServerAdmin(targetBare)) throw stanzaError.notAcceptable('Server administrators are owners of every room', { by: room.address });
  if (actor === 'owner') return; // §5.2.1: owners may edit every list
  if (actor !== 'admin') throw stanzaError.forbidden('Only admins and owners may change affiliations', { by: room.address });
  // §5.2.1: admins edit the member and ban lists, and only for users below them.
  if (affiliation === 'owner' || affiliation === 'admin' || current === 'owner' || current === 'admin') {
    throw stanzaError.notAllowed('Admins may not change the affiliation of admins and owners', { by: room.address });
  }
}

/** §10.6: "A service MUST NOT allow an owner to revoke his or her own owner status if there are no other owners". */
export function checkOwnersRemain(room: Room, changes: { jid: string; affiliation: Affiliation }[]): void {
  const owners = new Set(room.withAffiliation('owner').map(([jid]) => jid));
  for (const { jid, affiliation } of changes) {
    if (affiliation === 'owner') owners.add(jid);
    else owners.delete(jid);
  }
  if (owners.size === 0) throw stanzaError.conflict('A room needs at least one owner', { by: room.address });
}

/**
 * §9.1-§10.7: sets the affiliation and tells the room about every occupant it concerns. A user
 * who may no longer be in the room leaves it: 301 when banned, 321 when the membership a
 * members-only room requires was taken away.
 */
export function applyAffiliation(room: Room, targetBare: string, affiliation: Affiliation, options: ChangeOptions & { nick?: string } = {}): void {
  const before = room.affiliationOf(targetBare);
  const data = room.affiliations.get(targetBare);
  if (affiliation === 'none') room.affiliations.delete(targetBare);
  else {
    const next = { ...data, affiliation };
    if (options.reason !== undefined) next.reason = options.reason;
    else delete next.reason;
    // §9.1: "MUST remove the outcast's nickname from the list of registered nicknames"; '' unsets one (§9.5).
    if (affiliation === 'outcast' || options.nick === '') delete next.nick;
    else if (options.nick !== undefined) next.nick = options.nick;
    room.affiliations.set(targetBare, next);
  }
  const role = room.defaultRole(affiliation);
  for (const occupant of room.occupantsOf(targetBare)) {
    const prevRole = occupant.role;
    if (role === 'none') {
      const sessions = room.removeOccupant(occupant);
      const code = affiliation === 'outcast' ? '301' : '321';
      room.publicise(occupant, { actor: options.actor, reason: options.reason, codes: [code], unavailable: x('presence', { type: 'unavailable' }), prevRole }, sessions);
      continue;
    }
    // §5.1.4 note: the role gained with an affiliation is stable; on a downgrade it follows the new one.
    const downgrade = AFFILIATION_RANK[affiliation] < AFFILIATION_RANK[before];
    if (occupant.role !== role && (downgrade || ROLE_RANK[occupant.role] < ROLE_RANK[role])) occupant.role = role;
    room.publicise(occupant, { actor: options.actor, reason: options.reason, prevRole });
    refreshView(room, occupant, prevRole);
  }
}

/**
 * In a semi-anonymous room, gaining or losing the moderator role changes whose real JIDs one sees:
 * the occupant gets everyone's presence again, as Prosody sends it.
 */
function refreshView(room: Room, occupant: Occupant, prevRole: Role): void {
  if (room.config.whois !== 'moderators' || (prevRole === 'moderator') === (occupant.role === 'moderator')) return;
  for (const real of occupant.sessions.keys()) room.sendOccupantList(real, occupant);
}
