// Shapes shared by the MUC files: roles and affiliations with their ranks (XEP-0045 §5), a room's
// configuration, what is stored for a persistent room, and an occupant in memory.
import type { XmlElement } from '../../server/module-api.js';

export type Role = 'moderator' | 'participant' | 'visitor' | 'none';
export type Affiliation = 'owner' | 'admin' | 'member' | 'outcast' | 'none';
export type Whois = 'moderators' | 'anyone';
/** muc#roomconfig_allowpm: who may send private messages. */
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

/** §5.1: "roles exist in a hierarchy". */
export const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };
/** §5.2: "affiliations exist in a hierarchy" (an outcast below everyone). */
export const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };

/** Roles an occupant can have while in the room (presence broadcast, member list access). */
export const PRESENT_ROLES: Role[] = ['moderator', 'participant', 'visitor'];

export function isRole(value: string | undefined): value is Role {
  return value !== undefined && value in ROLE_RANK;
}

export function isAffiliation(value: string | undefined): value is Affiliation {
  return value !== undefined && value in AFFILIATION_RANK;
}

/** What the muc#roomconfig form sets (names follow the form's fields). */
export interface RoomConfig {
  name: string;
  description: string;
  language: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** '' = no password (muc_unsecured). */
  password: string;
  whois: Whois;
  /** Occupants allowed in (admins and owners may still enter a full room). */
  maxUsers: number;
  changeSubject: boolean;
  allowInvites: boolean;
  allowPm: AllowPm;
  /** Roles whose presence is broadcast to the room. */
  presenceBroadcast: Role[];
  /** Roles that may retrieve the member list (admins and owners always may). */
  getMemberList: Role[];
  /** Messages kept for the discussion history sent on join. */
  historyLength: number;
  /** muc#roomconfig_enablelogging: the room is archived (MAM); status 170 on join. */
  logging: boolean;
  allowVoiceRequests: boolean;
}

export interface AffiliationData {
  affiliation: Exclude<Affiliation, 'none'>;
  reason?: string;
  /** Reserved nickname (§7.10 / member list 'nick'): nobody else may take it. */
  nick?: string;
  /** The nick this member last used here (group chat pushes look for it in messages). */
  lastNick?: string;
}

export interface Subject {
  text: string;
  /** Nick of whoever set it; '' for the room itself. */
  nick: string;
  at: number;
}

/** A persistent room in storage. Occupants are never stored: they rejoin after a restart. */
export interface RoomRecord {
  config: RoomConfig;
  affiliations: Record<string, AffiliationData>;
  subject?: Subject;
  createdAt: number;
}

/** Discussion history as stored: serialized messages (with their delay stamp) and when they were sent. */
export interface StoredHistory {
  entries: { xml: string; stamp: number }[];
}

/** Someone in the room under one nick, possibly from several sessions of the same account (§7.2.9). */
export interface Occupant {
  nick: string;
  bareJid: string;
  role: Role;
  /** Real full JID → the last presence that session sent (no to/from, no MUC payloads). */
  sessions: Map<string, XmlElement>;
}

/** The first session joined speaks for the occupant (its JID is the one shown, its presence is broadcast). */
export function primarySession(occupant: Occupant): [string, XmlElement] {
  const first = occupant.sessions.entries().next().value;
  if (!first) throw new Error(`occupant ${occupant.nick} has no session`);
  return first;
}
