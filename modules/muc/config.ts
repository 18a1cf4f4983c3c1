// The module's config keys (modules.muc in herald.yml) and the muc#roomconfig form (XEP-0045
// §10.1.3, §10.2, field registry §15.5.3): the form an owner gets, and what a submitted one changes.
// Fields Herald adds beyond the registry are ejabberd's (muc#roomconfig_allowvoicerequests) and
// Prosody's (muc#roomconfig_historylength, read as an alias of muc#maxhistoryfetch).
import { z } from 'zod';
import { tryParseJid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { buildForm, parseBoolean, type DataForm, type FormField } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';
import { PRESENT_ROLES, isRole, type AllowPm, type Role, type RoomConfig, type Whois } from './types.js';

const roleList = z.array(z.enum(['moderator', 'participant', 'visitor']));

export const mucConfigSchema = z
  .object({
    service: z.string().min(1).default('conference').describe('Domain of the group chat service: a label (conference → conference.<domain>) or a full domain'),
    name: z.string().min(1).default('Chatrooms').describe('Name of the service in disco (identity conference/text) and in the server\'s disco#items'),
    restrict_room_creation: z
      .enum(['anyone', 'local', 'admins'])
      .default('local')
      .describe("Who may create rooms: 'local' users of this server, only server 'admins', or 'anyone' (remote users too)"),
    max_rooms_per_user: z.number().int().min(1).max(100_000).default(100).describe('Rooms one user may own; creating one more is refused (server admins are exempt)'),
    max_occupants: z.number().int().min(1).max(100_000).default(1000).describe('Upper bound for a room\'s muc#roomconfig_maxusers'),
    max_nick_length: z.number().int().min(1).max(1023).default(64).describe('Longest room nickname, in characters'),
    max_subject_length: z.number().int().min(1).max(100_000).default(1024).describe('Longest room subject, in characters'),
    max_history: z.number().int().min(0).max(1000).default(100).describe('Upper bound for a room\'s history length (messages sent to joining occupants)'),
    server_admins_are_owners: z
      .boolean()
      .default(true)
      .describe('Server administrators (config admins) are owners of every room: they may configure, moderate and destroy any room (Prosody\'s component_admins_as_room_owners)'),
    push_all_messages: z
      .boolean()
      .default(false)
      .describe('Push every group chat message to members who are not in the room (default: only messages that mention their nick or username)'),
    room_defaults: z
      .object({
        persistent: z.boolean().default(false).describe('New rooms survive their last occupant leaving (muc#roomconfig_persistentroom)'),
        public: z.boolean().default(true).describe('New rooms are listed in the service\'s disco#items (muc#roomconfig_publicroom)'),
        members_only: z.boolean().default(false).describe('New rooms admit members only (muc#roomconfig_membersonly)'),
        moderated: z.boolean().default(false).describe('New rooms give unaffiliated occupants no voice (muc#roomconfig_moderatedroom)'),
        whois: z.enum(['moderators', 'anyone']).default('moderators').describe("Who sees occupants' real JIDs in new rooms: 'moderators' (semi-anonymous) or 'anyone'"),
        max_users: z.number().int().min(1).default(200).describe('Occupants allowed in new rooms (muc#roomconfig_maxusers); at most max_occupants'),
        change_subject: z.boolean().default(false).describe('Participants (not only moderators) may change the subject'),
        allow_invites: z.boolean().default(false).describe('Members may invite others into members-only rooms (and make them members)'),
        allow_pm: z.enum(['anyone', 'participants', 'moderators', 'none']).default('anyone').describe('Who may send private messages in new rooms'),
        presence_broadcast: roleList.default(['moderator', 'participant', 'visitor']).describe('Roles whose presence new rooms broadcast'),
        get_member_list: roleList.default(['moderator', 'participant', 'visitor']).describe('Roles that may retrieve the member list of a non-anonymous room'),
        history_length: z.number().int().min(0).default(20).describe('Messages of discussion history kept and sent on join; at most max_history'),
        enable_logging: z.boolean().default(true).describe('New rooms are archived (MAM) and say so with status 170'),
        allow_voice_requests: z.boolean().default(true).describe('Visitors may ask moderators for voice (muc#request)'),
      })
      .strict()
      .prefault({})
      .describe('Configuration of newly created rooms (owners change it with the room configuration form)'),
  })
  .strict()
  .refine((c) => c.room_defaults.max_users <= c.max_occupants, { message: 'room_defaults.max_users exceeds max_occupants', path: ['room_defaults', 'max_users'] })
  .refine((c) => c.room_defaults.history_length <= c.max_history, { message: 'room_defaults.history_length exceeds max_history', path: ['room_defaults', 'history_length'] });

export type MucConfig = z.output<typeof mucConfigSchema>;

export function defaultRoomConfig(config: MucConfig): RoomConfig {
  const d = config.room_defaults;
  return {
    name: '',
    description: '',
    language: '',
    persistent: d.persistent,
    public: d.public,
    membersOnly: d.members_only,
    moderated: d.moderated,
    password: '',
    whois: d.whois,
    maxUsers: d.max_users,
    changeSubject: d.change_subject,
    allowInvites: d.allow_invites,
    allowPm: d.allow_pm,
    presenceBroadcast: [...d.presence_broadcast],
    getMemberList: [...d.get_member_list],
    historyLength: d.history_length,
    logging: d.enable_logging,
    allowVoiceRequests: d.allow_voice_requests,
  };
}

const F = 'muc#roomconfig_';
const ALLOW_PM: AllowPm[] = ['anyone', 'participants', 'moderators', 'none'];
const WHOIS: Whois[] = ['moderators', 'anyone'];
const roleOptions = PRESENT_ROLES.map((value) => ({ value }));

/** §10.1.3: the configuration form with the room's current values. */
export function configForm(room: { address: string; config: RoomConfig }, owners: string[], admins: string[], limits: { maxOccupants: number }): XmlElement {
  const c = room.config;
  const bool = (name: string, label: string, value: boolean): FormField => ({ var: name, type: 'boolean', label, values: [value ? '1' : '0'] });
  const text = (name: string, label: string, value: string): FormField => ({ var: name, type: 'text-single', label, values: [value] });
  const form: DataForm = {
    type: 'form',
    title: `Configuration for ${room.address}`,
    instructions: ['Complete and submit this form to configure the room.'],
    fields: [
      { var: 'FORM_TYPE', type: 'hidden', values: [NS.MUC_ROOMCONFIG] },
      text(`${F}roomname`, 'Natural-Language Room Name', c.name),
      text(`${F}roomdesc`, 'Short Description of Room', c.description),
      text(`${F}lang`, 'Natural Language for Room Discussions', c.language),
      bool(`${F}persistentroom`, 'Make Room Persistent?', c.persistent),
      bool(`${F}publicroom`, 'Make Room Publicly Searchable?', c.public),
      bool(`${F}membersonly`, 'Make Room Members-Only?', c.membersOnly),
      bool(`${F}moderatedroom`, 'Make Room Moderated?', c.moderated),
      bool(`${F}passwordprotectedroom`, 'Password Required to Enter?', c.password !== ''),
      { var: `${F}roomsecret`, type: 'text-private', label: 'Password', values: [c.password] },
      { var: `${F}whois`, type: 'list-single', label: 'Who May Discover Real JIDs?', values: [c.whois], options: WHOIS.map((value) => ({ value })) },
      {
        var: `${F}maxusers`,
        type: 'list-single',
        label: 'Maximum Number of Occupants',
        values: [String(c.maxUsers)],
        options: [...new Set([10, 20, 30, 50, 100, 200, 500, limits.maxOccupants, c.maxUsers])].filter((n) => n <= limits.maxOccupants).sort((a, b) => a - b).map((n) => ({ value: String(n) })),
      },
      bool(`${F}changesubject`, 'Allow Occupants to Change Subject?', c.changeSubject),
      bool(`${F}allowinvites`, 'Allow Members to Invite Others?', c.allowInvites),
      { var: `${F}allowpm`, type: 'list-single', label: 'Who Can Send Private Messages?', values: [c.allowPm], options: ALLOW_PM.map((value) => ({ value })) },
      { var: `${F}presencebroadcast`, type: 'list-multi', label: 'Roles for which Presence is Broadcasted', values: c.presenceBroadcast, options: roleOptions },
      { var: `${F}getmemberlist`, type: 'list-multi', label: 'Roles that May Retrieve Member List', values: c.getMemberList, options: roleOptions },
      text('muc#maxhistoryfetch', 'Maximum Number of History Messages Returned by Room', String(c.historyLength)),
      bool(`${F}enablelogging`, 'Enable Public Logging?', c.logging),
      bool(`${F}allowvoicerequests`, 'Allow Visitors to Request Voice?', c.allowVoiceRequests),
      { var: `${F}roomadmins`, type: 'jid-multi', label: 'Room Admins', values: admins },
      { var: `${F}roomowners`, type: 'jid-multi', label: 'Room Owners', values: owners },
    ],
  };
  return buildForm(form);
}

/** A submitted configuration: the new config, and the owner and admin lists when the form set them. */
export interface ConfigChange {
  config: RoomConfig;
  owners?: string[];
  admins?: string[];
}

/**
 * Reads a submitted form over the current configuration (fields left out keep their value).
 * §10.1.3: "If the room creation fails because the specified room configuration options violate
 * one or more service policies (e.g., because the password for a password-protected room is
 * blank), the service MUST return a <not-acceptable/> error"; a malformed value is a bad-request.
 */
export function applyConfigForm(form: DataForm, current: RoomConfig, limits: { maxOccupants: number; maxHistory: number }): ConfigChange {
  const formType = form.fields.find((f) => f.var === 'FORM_TYPE')?.values[0];
  if (formType !== undefined && formType !== NS.MUC_ROOMCONFIG) throw stanzaError.badRequest('Form is not of type room configuration');
  const values = new Map(form.fields.filter((f) => f.var !== undefined).map((f) => [f.var!, f.values]));
  const one = (name: string) => values.get(name)?.[0];
  const bool = (name: string, old: boolean) => {
    if (!values.has(name)) return old;
    const value = parseBoolean(one(name) ?? '');
    if (value === undefined) throw stanzaError.badRequest(`${name} must be a boolean`);
    return value;
  };
  const choice = <T extends string>(name: string, allowed: readonly T[], old: T): T => {
    if (!values.has(name)) return old;
    const value = one(name) as T;
    if (!allowed.includes(value)) throw stanzaError.notAcceptable(`${name} must be one of ${allowed.join(', ')}`);
    return value;
  };
  const roles = (name: string, old: Role[]) => {
    const list = values.get(name);
    if (!list) return old;
    if (!list.every((r) => isRole(r) && r !== 'none')) throw stanzaError.notAcceptable(`${name} lists an unknown role`);
    return [...new Set(list as Role[])];
  };
  const int = (names: string[], old: number, max: number, none: number) => {
    const name = names.find((n) => values.has(n));
    if (name === undefined) return old;
    const value = one(name) ?? '';
    if (value === 'none' || value === '0') return none;
    if (!/^\d+$/.test(value)) throw stanzaError.badRequest(`${name} must be a number`);
    if (Number(value) > max) throw stanzaError.notAcceptable(`${name} is at most ${max}`);
    return Number(value);
  };
  // Clients that only send the secret (as Prosody's form has no passwordprotectedroom) protect the room with it.
  const secretGiven = one(`${F}roomsecret`);
  const config: RoomConfig = {
    name: one(`${F}roomname`) ?? current.name,
    description: one(`${F}roomdesc`) ?? current.description,
    language: one(`${F}lang`) ?? current.language,
    persistent: bool(`${F}persistentroom`, current.persistent),
    public: bool(`${F}publicroom`, current.public),
    membersOnly: bool(`${F}membersonly`, current.membersOnly),
    moderated: bool(`${F}moderatedroom`, current.moderated),
    password: password(values, current.password, bool(`${F}passwordprotectedroom`, secretGiven !== undefined ? secretGiven !== '' : current.password !== '')),
    whois: choice(`${F}whois`, WHOIS, current.whois),
    maxUsers: int([`${F}maxusers`], current.maxUsers, limits.maxOccupants, limits.maxOccupants),
    changeSubject: bool(`${F}changesubject`, current.changeSubject),
    allowInvites: bool(`${F}allowinvites`, current.allowInvites),
    allowPm: choice(`${F}allowpm`, ALLOW_PM, current.allowPm),
    presenceBroadcast: roles(`${F}presencebroadcast`, current.presenceBroadcast),
    getMemberList: roles(`${F}getmemberlist`, current.getMemberList),
    historyLength: int(['muc#maxhistoryfetch', `${F}historylength`], current.historyLength, limits.maxHistory, 0),
    logging: bool(`${F}enablelogging`, current.logging),
    allowVoiceRequests: bool(`${F}allowvoicerequests`, current.allowVoiceRequests),
  };
  const change: ConfigChange = { config };
  const owners = jidList(values.get(`${F}roomowners`), `${F}roomowners`);
  const admins = jidList(values.get(`${F}roomadmins`), `${F}roomadmins`);
  if (owners) {
    // §10.5: every room keeps at least one owner.
    if (owners.length === 0) throw stanzaError.notAcceptable('A room needs at least one owner');
    change.owners = owners;
  }
  if (admins) change.admins = admins;
  return change;
}

function password(values: Map<string, string[]>, current: string, protectedRoom: boolean): string {
  if (!protectedRoom) return '';
  const secret = values.get(`${F}roomsecret`)?.[0] ?? current;
  if (secret === '') throw stanzaError.notAcceptable('A password-protected room needs a password');
  return secret;
}

function jidList(values: string[] | undefined, name: string): string[] | undefined {
  if (!values) return undefined;
  const out: string[] = [];
  for (const value of values.flatMap((v) => v.split(/\s+/)).filter((v) => v !== '')) {
    const jid = tryParseJid(value);
    if (!jid || jid.resource !== '') throw stanzaError.jidMalformed(`${name}: '${value}' is not a bare JID`);
    out.push(jid.toString());
  }
  return [...new Set(out)];
}

/**
 * §10.2.1: what occupants are told when the configuration changed: 170/171 when logging was turned
 * on/off, 172/173 when the room became non-anonymous/semi-anonymous, else 104.
 */
export function configStatusCodes(before: RoomConfig, after: RoomConfig): string[] {
  const codes: string[] = [];
  if (before.logging !== after.logging) codes.push(after.logging ? '170' : '171');
  if (before.whois !== after.whois) codes.push(after.whois === 'anyone' ? '172' : '173');
  const others = (Object.keys(after) as (keyof RoomConfig)[]).some(
    (key) => key !== 'logging' && key !== 'whois' && JSON.stringify(before[key]) !== JSON.stringify(after[key]),
  );
  if (codes.length === 0 && others) codes.push('104');
  return codes;
}
