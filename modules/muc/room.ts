// One room: its configuration, affiliations, occupants, subject and history, and the presence it
// sends about occupants (XEP-0045 §7.2.3-§7.2.5 broadcast rules, who sees real JIDs). What the
// room does on a stanza lives in presence.ts, messages.ts, admin.ts and owner.ts; this file keeps
// the state consistent and builds the muc#user payloads they all send.
import { x, type Jid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { dateTime } from '../../server/protocol/xep0082.js';
import { History } from './history.js';
import {
  AFFILIATION_RANK,
  ROLE_RANK,
  primarySession,
  type Affiliation,
  type AffiliationData,
  type Occupant,
  type Role,
  type RoomConfig,
  type RoomRecord,
  type Subject,
} from './types.js';

/** What a room needs from the service around it. */
export interface RoomHost {
  /** Sends to a real JID; false when it is a session of ours that is gone (the occupant is a ghost). */
  deliver(to: string, stanza: XmlElement): boolean;
  /** Server administrators who count as owners of every room (config server_admins_are_owners). */
  isServerAdmin?(bareJid: string): boolean;
}

/** How an occupant's presence goes out (the item's extras and the status codes). */
export interface PresenceOptions {
  /** Status codes for everyone. */
  codes?: string[];
  /** Status codes only the occupant's own sessions get (110 is added). */
  selfCodes?: string[];
  /** 303: the new nick, in the item. */
  newNick?: string;
  /** Nick of whoever caused the change (kick, ban, role change). */
  actor?: string;
  reason?: string;
  /** Send this unavailable presence (a leave with its status, a removal, the old nick of a nick change). */
  unavailable?: XmlElement;
  /** <destroy/> for the occupant (§10.9). */
  destroy?: XmlElement;
  /** The role the occupant had, for the presence-broadcast filter when it changed. */
  prevRole?: Role;
}

export class Room {
  readonly occupants = new Map<string, Occupant>();
  /** Real full JID → nick. */
  private readonly byReal = new Map<string, string>();
  readonly affiliations: Map<string, AffiliationData>;
  readonly history: History;
  subject: Subject | undefined;
  /** §10.1.1: created, waiting for its owner's configuration; nobody else may enter. */
  locked = false;
  /** Real JIDs of our sessions found gone while sending: removed with 333 after the current operation. */
  readonly gone = new Set<string>();
  readonly createdAt: number;

  constructor(
    readonly jid: Jid,
    public config: RoomConfig,
    private readonly host: RoomHost,
    record?: Partial<RoomRecord>,
  ) {
    this.affiliations = new Map(Object.entries(record?.affiliations ?? {}));
    this.subject = record?.subject;
    this.createdAt = record?.createdAt ?? Date.now();
    this.history = new History(config.historyLength);
  }

  get address(): string {
    return this.jid.toString();
  }

  occupantJid(nick: string): string {
    return `${this.address}/${nick}`;
  }

  toRecord(): RoomRecord {
    const record: RoomRecord = { config: this.config, affiliations: Object.fromEntries(this.affiliations), createdAt: this.createdAt };
    if (this.subject) record.subject = this.subject;
    return record;
  }

  // ---- affiliations and roles ----

  /**
   * §9.2: a ban of a whole domain applies to every user of it. Server administrators are owners of
   * every room (Prosody's component_admins_as_room_owners), so a room always has someone who may
   * configure or destroy it, also after its only owner's account was deleted.
   */
  affiliationOf(bareJid: string): Affiliation {
    if (this.isServerAdmin(bareJid)) return 'owner';
    const direct = this.affiliations.get(bareJid)?.affiliation;
    if (direct) return direct;
    const at = bareJid.indexOf('@');
    return at >= 0 && this.affiliations.get(bareJid.slice(at + 1))?.affiliation === 'outcast' ? 'outcast' : 'none';
  }

  isServerAdmin(bareJid: string): boolean {
    return this.host.isServerAdmin?.(bareJid) ?? false;
  }

  withAffiliation(affiliation: Affiliation): [string, AffiliationData][] {
    return [...this.affiliations].filter(([, data]) => data.affiliation === affiliation);
  }

  /** The bare JID that reserved a nick, if anyone did. */
  reservedBy(nick: string): string | undefined {
    for (const [jid, data] of this.affiliations) if (data.nick === nick && data.affiliation !== 'outcast') return jid;
    return undefined;
  }

  /** §5.1.2 "Default Roles": by affiliation and room type ('none': not allowed in). */
  defaultRole(affiliation: Affiliation): Role {
    if (AFFILIATION_RANK[affiliation] >= AFFILIATION_RANK.admin) return 'moderator';
    if (affiliation === 'member') return 'participant';
    if (affiliation === 'outcast' || this.config.membersOnly) return 'none';
    return this.config.moderated ? 'visitor' : 'participant';
  }

  /** §7.2.4/§7.2.5: everyone sees real JIDs in a non-anonymous room; moderators in a semi-anonymous one. */
  seesRealJids(viewer: { role: Role } | undefined): boolean {
    return this.config.whois === 'anyone' || viewer?.role === 'moderator';
  }

  // ---- occupants ----

  occupantByReal(realJid: string): Occupant | undefined {
    const nick = this.byReal.get(realJid);
    return nick === undefined ? undefined : this.occupants.get(nick);
  }

  addSession(occupant: Occupant, realJid: string, presence: XmlElement): void {
    occupant.sessions.set(realJid, presence);
    this.occupants.set(occupant.nick, occupant);
    this.byReal.set(realJid, occupant.nick);
  }

  /** Drops one session; true when it was the occupant's last (the occupant is gone from the room). */
  removeSession(occupant: Occupant, realJid: string): boolean {
    occupant.sessions.delete(realJid);
    this.byReal.delete(realJid);
    if (occupant.sessions.size > 0) return false;
    this.occupants.delete(occupant.nick);
    occupant.role = 'none';
    return true;
  }

  /** Takes the occupant out entirely (kick, ban, destroy); returns its sessions. */
  removeOccupant(occupant: Occupant): string[] {
    const sessions = [...occupant.sessions.keys()];
    for (const real of sessions) this.byReal.delete(real);
    this.occupants.delete(occupant.nick);
    occupant.role = 'none';
    return sessions;
  }

  rename(occupant: Occupant, nick: string): void {
    this.occupants.delete(occupant.nick);
    occupant.nick = nick;
    this.occupants.set(nick, occupant);
    for (const real of occupant.sessions.keys()) this.byReal.set(real, nick);
  }

  /** Occupants whose bare JID is `bareJid` (or, for a domain, any user of it). */
  occupantsOf(bareJid: string): Occupant[] {
    return [...this.occupants.values()].filter((o) => o.bareJid === bareJid || (!bareJid.includes('@') && o.bareJid.endsWith(`@${bareJid}`)));
  }

  // ---- sending ----

  send(to: string, stanza: XmlElement): void {
    if (!this.host.deliver(to, stanza.withAttrs({ to })) && this.byReal.has(to)) this.gone.add(to);
  }

  sendToOccupant(occupant: Occupant, stanza: XmlElement): void {
    for (const real of occupant.sessions.keys()) this.send(real, stanza);
  }

  broadcast(stanza: XmlElement, filter: (occupant: Occupant) => boolean = () => true): void {
    for (const occupant of [...this.occupants.values()]) if (filter(occupant)) this.sendToOccupant(occupant, stanza);
  }

  /** The muc#user payload for an occupant: one item (with the real JID when `jid` is given) and status codes. */
  userX(occupant: Occupant, jid: string | undefined, options: PresenceOptions, codes: string[]): XmlElement {
    const item = x('item', { affiliation: this.affiliationOf(occupant.bareJid), role: occupant.role, jid, nick: options.newNick });
    if (options.actor !== undefined) item.append(x('actor', { nick: options.actor }));
    if (options.reason !== undefined) item.append(x('reason', null, options.reason));
    const out = x('x', { xmlns: NS.MUC_USER }, item, options.destroy);
    // Status codes in ascending order, as the XEP's examples list them.
    for (const code of [...new Set(codes)].sort()) out.append(x('status', { code }));
    return out;
  }

  /**
   * Tells the room about an occupant (Prosody's publicise_occupant_status): every other occupant
   * whose view allows it, and each of the occupant's own sessions with status 110. Someone who left
   * hears it first (§7.14: "to the departing occupant's full JIDs ... then ... to the remaining").
   */
  publicise(occupant: Occupant, options: PresenceOptions = {}, selfSessions: string[] = [...occupant.sessions.keys()]): void {
    const unavailable = options.unavailable !== undefined;
    const base = options.unavailable ?? primarySession(occupant)[1];
    const shownJid = unavailable ? selfSessions[0] : primarySession(occupant)[0];
    const broadcastRoles = new Set(this.config.presenceBroadcast);
    const toOthers = () => {
      // Others hear of roles the room broadcasts; one that stops being broadcast looks like a leave.
      const visible = !unavailable && broadcastRoles.has(occupant.role);
      const wasVisible = options.prevRole === undefined ? unavailable : broadcastRoles.has(options.prevRole);
      if (!visible && !wasVisible) return;
      for (const viewer of [...this.occupants.values()]) {
        if (viewer === occupant) continue;
        const jid = this.seesRealJids(viewer) ? shownJid : undefined;
        const presence = withPayload(base, this.occupantJid(occupant.nick), this.userX(occupant, jid, options, options.codes ?? []));
        if (!visible) presence.attrs.type = 'unavailable';
        this.sendToOccupant(viewer, presence);
      }
    };
    const toSelf = () => {
      for (const real of selfSessions) this.selfPresence(occupant, real, unavailable ? base : (occupant.sessions.get(real) ?? base), options);
    };
    if (occupant.role === 'none') {
      toSelf();
      toOthers();
    } else {
      toOthers();
      toSelf();
    }
  }

  /** An occupant's presence to one of its own sessions: its real JID shown, status 110 (§7.2.3). */
  selfPresence(occupant: Occupant, real: string, presence: XmlElement, options: PresenceOptions = {}): void {
    const codes = [...(options.codes ?? []), ...(options.selfCodes ?? []), '110'];
    this.send(real, withPayload(presence, this.occupantJid(occupant.nick), this.userX(occupant, real, options, codes)));
  }

  /**
   * §7.2.3: the presence of everyone already in the room, to a joining session (the occupant's own
   * other sessions included: one always sees oneself). Roles the room does not broadcast are left
   * out, as the others never hear of them.
   */
  sendOccupantList(to: string, viewer: Occupant): void {
    const broadcastRoles = new Set(this.config.presenceBroadcast);
    for (const occupant of [...this.occupants.values()]) {
      if (occupant === viewer || !(broadcastRoles.has(occupant.role) || occupant.bareJid === viewer.bareJid)) continue;
      const [jid, presence] = primarySession(occupant);
      const seen = this.seesRealJids(viewer) || occupant.bareJid === viewer.bareJid;
      this.send(to, withPayload(presence, this.occupantJid(occupant.nick), this.userX(occupant, seen ? jid : undefined, {}, [])));
    }
  }

  /** §7.2.16: the subject after the history, with a delay stamp when it was ever set; `<subject/>` when none. */
  sendSubject(to: string): void {
    const subject = this.subject;
    const message = x('message', { type: 'groupchat', from: subject?.nick ? this.occupantJid(subject.nick) : this.address }, x('subject', null, subject?.text ?? ''));
    if (subject) message.append(x('delay', { xmlns: NS.DELAY, from: this.address, stamp: dateTime(new Date(subject.at)) }));
    this.send(to, message);
  }

  /** Occupants in a role order convenient for lists (moderators first). */
  sortedOccupants(): Occupant[] {
    return [...this.occupants.values()].sort((a, b) => ROLE_RANK[b.role] - ROLE_RANK[a.role] || a.nick.localeCompare(b.nick));
  }
}

/** A copy of a client's presence with the room's addressing and our muc#user payload instead of theirs. */
function withPayload(presence: XmlElement, from: string, payload: XmlElement): XmlElement {
  const copy = stripMucPayloads(presence);
  copy.attrs.from = from;
  delete copy.attrs.to;
  copy.append(payload);
  return copy;
}

/** A clone without the MUC namespaces a client may not set itself (Prosody's filter_muc_x). */
export function stripMucPayloads(stanza: XmlElement): XmlElement {
  const copy = stanza.clone();
  copy.children = copy.children.filter((c) => typeof c === 'string' || (c.attrs.xmlns !== NS.MUC && c.attrs.xmlns !== NS.MUC_USER));
  return copy;
}
