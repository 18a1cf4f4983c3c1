// Messages to a room (XEP-0045 §7.4 groupchat, §8.1 subject, §7.8.2 mediated invitations and
// declines, §7.13/§8.6 voice requests) and to an occupant (§7.5 private messages). Groupchat
// messages pass the 'muc:message' hook (archiving adds its stanza-id there) before they are
// reflected to every occupant with the sender's 'id' (muc#stable_id).
import { randomUUID } from 'node:crypto';
import { tryParseJid, x, type Jid, type RouteEvent, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { buildForm, formType, formValue, parseBoolean, parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';
import { errors, type MucContext } from './context.js';
import { isHistoric } from './history.js';
import { removeForError } from './presence.js';
import { stripMucPayloads, type Room } from './room.js';
import { applyAffiliation, applyRole, checkRoleChange } from './affiliations.js';
import { AFFILIATION_RANK, ROLE_RANK, type Occupant } from './types.js';

/** Error conditions that mean the recipient is not there (Prosody's kickable_error_conditions). */
const KICKABLE = new Set([
  'gone', 'internal-server-error', 'item-not-found', 'jid-malformed', 'recipient-unavailable', 'redirect',
  'remote-server-not-found', 'remote-server-timeout', 'service-unavailable',
]);

export function isKickable(stanza: XmlElement): boolean {
  const condition = stanza.getChild('error')?.elements().find((el) => el.attrs.xmlns === NS.STANZA_ERRORS)?.name;
  return condition === undefined || KICKABLE.has(condition);
}

export async function handleMessage(ctx: MucContext, { stanza, from, to }: RouteEvent): Promise<void> {
  const type = stanza.attrs.type ?? 'normal';
  const room = ctx.rooms.get(to.local);
  const by = { by: to.bareString };
  if (!room) {
    if (type !== 'error') throw errors.noSuchRoom(by);
    return;
  }
  const real = from.toString();
  if (to.resource !== '') return privateMessage(ctx, room, real, to.resource, stanza, type);
  if (type === 'error') return void (isKickable(stanza) && removeForError(room, real));
  if (type === 'groupchat') return groupchat(ctx, room, from, stanza);
  if (type === 'normal') {
    const userX = stanza.getChild('x', NS.MUC_USER);
    if (userX) return mediated(ctx, room, from, stanza, userX);
    const form = stanza.getChild('x', NS.DATA_FORMS);
    if (form && formType(parseForm(form)) === NS.MUC_REQUEST) return voiceRequest(room, real, parseForm(form), stanza, ctx);
  }
  // §7.4: "a service MAY ignore or reject messages that do not have a type of "groupchat"".
  throw stanzaError.badRequest('Send groupchat messages to the room, or private messages to an occupant', by);
}

async function groupchat(ctx: MucContext, room: Room, from: Jid, stanza: XmlElement): Promise<void> {
  const occupant = room.occupantByReal(from.toString());
  // §7.4: a non-occupant gets <not-acceptable/>, a visitor <forbidden/>; neither is reflected.
  if (!occupant) throw errors.notOccupant({ by: room.address });
  if (occupant.role === 'visitor') throw stanzaError.forbidden('You do not have voice in this room', { by: room.address });
  const subject = stanza.getChild('subject');
  // §8.1: only a <subject/> without <body/> or <thread/> is a subject change.
  if (subject && !stanza.getChild('body') && !stanza.getChild('thread')) return changeSubject(ctx, room, occupant, from, stanza, subject.text());
  const out = reflection(room, occupant, stanza);
  await ctx.m.fire('muc:message', { room: room.jid, stanza: out, nick: occupant.nick, senderJid: from, logging: room.config.logging });
  if (isHistoric(out) && room.config.historyLength > 0) {
    room.history.add(out, room.address);
    await ctx.saveHistory(room);
  }
  room.broadcast(out);
  ctx.pushFor(room, out, occupant);
}

/** §8.1: moderators, and participants where muc#roomconfig_changesubject allows it. */
async function changeSubject(ctx: MucContext, room: Room, occupant: Occupant, from: Jid, stanza: XmlElement, text: string): Promise<void> {
  const allowed = occupant.role === 'moderator' || (occupant.role === 'participant' && room.config.changeSubject);
  if (!allowed) throw stanzaError.forbidden('You are not allowed to change the subject', { by: room.address });
  const max = ctx.m.config.max_subject_length;
  if ([...text].length > max) throw stanzaError.notAcceptable(`Subjects are at most ${max} characters`, { by: room.address });
  room.subject = { text, nick: occupant.nick, at: Date.now() };
  const out = reflection(room, occupant, stanza);
  await ctx.m.fire('muc:message', { room: room.jid, stanza: out, nick: occupant.nick, senderJid: from, logging: room.config.logging });
  room.broadcast(out);
  await ctx.save(room);
}

/**
 * What the room reflects (§7.4): from the sender's occupant JID, the sender's 'id' kept (one made
 * up when missing), and no delay or stanza-id claiming to come from the room (they would be forged).
 */
function reflection(room: Room, occupant: Occupant, stanza: XmlElement): XmlElement {
  const out = stanza.clone();
  delete out.attrs.to;
  out.attrs.from = room.occupantJid(occupant.nick);
  out.attrs.id ??= randomUUID();
  out.children = out.children.filter((child) => {
    if (typeof child === 'string') return true;
    if (child.name === 'delay' && child.attrs.xmlns === NS.DELAY) return child.attrs.from !== room.address;
    if (child.name === 'stanza-id' && child.attrs.xmlns === NS.STANZA_ID) return child.attrs.by !== room.address;
    return true;
  });
  return out;
}

/** §7.5: from the sender's occupant JID to every session of the recipient, marked with <x xmlns='…muc#user'/>. */
function privateMessage(ctx: MucContext, room: Room, real: string, nick: string, stanza: XmlElement, type: string): void {
  const sender = room.occupantByReal(real);
  const by = { by: room.address };
  if (!sender) {
    if (type !== 'error') throw errors.notOccupant(by);
    return;
  }
  // §7.5: "If the sender attempts to send a private message of type "groupchat" ... <bad-request/>".
  if (type === 'groupchat') throw stanzaError.badRequest('Private messages cannot be of type groupchat', by);
  if (type === 'error' && isKickable(stanza)) return removeForError(room, real);
  const target = room.occupants.get(nick);
  if (!target) {
    if (type !== 'error') throw errors.noSuchOccupant(by);
    return;
  }
  if (type !== 'error' && !privateMessagesAllowed(room, sender, target)) throw stanzaError.forbidden('Private messages are not allowed in this room', by);
  const out = stripMucPayloads(stanza);
  delete out.attrs.to;
  out.attrs.from = room.occupantJid(sender.nick);
  out.append(x('x', { xmlns: NS.MUC_USER }));
  for (const session of target.sessions.keys()) ctx.route(out.withAttrs({ to: session }));
}

/** muc#roomconfig_allowpm; one may always write to oneself (Prosody). */
function privateMessagesAllowed(room: Room, sender: Occupant, target: Occupant): boolean {
  if (sender.bareJid === target.bareJid) return true;
  switch (room.config.allowPm) {
    case 'anyone':
      return true;
    case 'participants':
      return ROLE_RANK[sender.role] >= ROLE_RANK.participant;
    case 'moderators':
      return sender.role === 'moderator';
    case 'none':
      return false;
  }
}

/** §7.8.2: invitations and declines, relayed by the room. */
async function mediated(ctx: MucContext, room: Room, from: Jid, stanza: XmlElement, userX: XmlElement): Promise<void> {
  const invites = userX.getChildren('invite');
  const declines = userX.getChildren('decline');
  if (invites.length === 0 && declines.length === 0) throw stanzaError.badRequest('Expected <invite/> or <decline/>', { by: room.address });
  for (const invite of invites) await relayInvite(ctx, room, from, invite, stanza.attrs.id);
  for (const decline of declines) relayDecline(ctx, room, from, decline, stanza.attrs.id);
}

/**
 * Who may invite (Prosody): anyone with voice; in a members-only room an admin, or a member when
 * muc#roomconfig_allowinvites is on (§7.8.2: "Invitation privileges in members-only rooms SHOULD
 * be restricted to room admins"), and the invitee then becomes a member (§9.5).
 */
async function relayInvite(ctx: MucContext, room: Room, from: Jid, invite: XmlElement, id: string | undefined): Promise<void> {
  const invitee = tryParseJid(invite.attrs.to ?? '');
  if (!invitee) throw stanzaError.jidMalformed('The invitee is not a JID', { by: room.address });
  const affiliation = room.affiliationOf(from.bareString);
  const role = room.occupantByReal(from.toString())?.role ?? room.defaultRole(affiliation);
  if (ROLE_RANK[role] < ROLE_RANK.participant) throw stanzaError.forbidden('You may not invite others here', { by: room.address });
  const needed = room.config.allowInvites ? AFFILIATION_RANK.member : AFFILIATION_RANK.admin;
  if (room.config.membersOnly && AFFILIATION_RANK[affiliation] < needed) throw stanzaError.forbidden('Only admins may invite to this room', { by: room.address });
  // §7.8.2: "If the inviter supplies a non-existent JID, the room SHOULD return an <item-not-found/>".
  if (invitee.domain === ctx.m.host && (invitee.local === '' || !(await ctx.m.accounts.exists(invitee.local)))) {
    throw stanzaError.itemNotFound('No such user', { by: room.address });
  }
  if (room.config.membersOnly && room.affiliationOf(invitee.bareString) === 'none') {
    applyAffiliation(room, invitee.bareString, 'member', { reason: `Invited by ${from.bareString}` });
    await ctx.save(room);
  }
  const reason = invite.getChildText('reason');
  const text = `${from.bareString} invited you to the room ${room.address}${reason ? ` (${reason})` : ''}`;
  ctx.route(
    x(
      'message',
      { from: room.address, to: invitee.bareString, id },
      x('x', { xmlns: NS.MUC_USER }, x('invite', { from: from.bareString }, reason !== undefined && x('reason', null, reason)), room.config.password !== '' && x('password', null, room.config.password)),
      // COMPAT: the jabber:x:conference payload older clients read (§7.8.2 implementation note; Prosody sends it).
      x('x', { xmlns: NS.CONFERENCE, jid: room.address }, reason ?? ''),
      x('body', null, text),
    ),
  );
}

function relayDecline(ctx: MucContext, room: Room, from: Jid, decline: XmlElement, id: string | undefined): void {
  const to = tryParseJid(decline.attrs.to ?? '');
  if (!to) throw stanzaError.jidMalformed('The declinee is not a JID', { by: room.address });
  const reason = decline.getChildText('reason');
  const message = x(
    'message',
    { from: room.address, id },
    x('x', { xmlns: NS.MUC_USER }, x('decline', { from: from.bareString }, reason !== undefined && x('reason', null, reason))),
    x('body', null, `${from.bareString} declined your invitation to the room ${room.address}${reason ? ` (${reason})` : ''}`),
  );
  // The inviter may be named by occupant JID (§7.8.2: "invitations based on occupant JIDs").
  const occupant = to.bareString === room.address ? room.occupants.get(to.resource) : undefined;
  if (occupant) for (const session of occupant.sessions.keys()) ctx.route(message.withAttrs({ to: session }));
  else ctx.route(message.withAttrs({ to: to.toString() }));
}

/**
 * §7.13: a visitor asks for voice with a muc#request form; the room asks every moderator with the
 * §8.6 approval form; a moderator who submits it with muc#request_allow true grants voice.
 */
function voiceRequest(room: Room, real: string, form: DataForm, stanza: XmlElement, ctx: MucContext): void {
  const occupant = room.occupantByReal(real);
  const by = { by: room.address };
  if (!occupant) throw errors.notOccupant(by);
  if (occupant.role === 'moderator') return approveVoice(room, real, occupant, form);
  if (!room.config.allowVoiceRequests) throw stanzaError.forbidden('Voice requests are disabled in this room', by);
  if (occupant.role !== 'visitor') throw stanzaError.notAllowed('Only visitors may request voice', by);
  const requested = formValue(form, 'muc#role') ?? 'participant';
  if (requested !== 'participant') throw stanzaError.badRequest('Only voice (role participant) may be requested', by);
  const approval = buildForm({
    type: 'form',
    title: 'Voice request',
    instructions: ['To approve this request for voice, select the "Grant voice to this person?" checkbox and submit the form.'],
    fields: [
      { var: 'FORM_TYPE', type: 'hidden', values: [NS.MUC_REQUEST] },
      { var: 'muc#role', type: 'list-single', label: 'Requested role', values: ['participant'], options: [{ value: 'participant' }] },
      { var: 'muc#jid', type: 'jid-single', label: 'User ID', values: [real] },
      { var: 'muc#roomnick', type: 'text-single', label: 'Room Nickname', values: [occupant.nick] },
      { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', values: ['0'] },
    ],
  });
  const message = x('message', { from: room.address, id: stanza.attrs.id }, approval);
  for (const moderator of room.occupants.values()) {
    if (moderator.role === 'moderator') for (const session of moderator.sessions.keys()) ctx.route(message.withAttrs({ to: session }));
  }
}

/** §8.6: "If a moderator approves the voice request, the service shall grant voice to the occupant". */
function approveVoice(room: Room, real: string, moderator: Occupant, form: DataForm): void {
  if (form.type !== 'submit' || parseBoolean(formValue(form, 'muc#request_allow')) !== true) return; // not approved: nothing to do
  const jid = formValue(form, 'muc#jid');
  const nick = formValue(form, 'muc#roomnick');
  const target = (jid !== undefined ? room.occupantByReal(jid) : undefined) ?? (nick !== undefined ? room.occupants.get(nick) : undefined);
  if (!target) throw errors.noSuchOccupant({ by: room.address });
  if (target.role !== 'visitor') return; // has voice already
  checkRoleChange(room, real, target, 'participant');
  applyRole(room, target, 'participant', { actor: moderator.nick, reason: 'Voice granted' });
}
