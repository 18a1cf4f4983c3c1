// Service discovery of rooms (XEP-0045 §6.3-§6.5, §7.12): the public rooms in the service's items,
// a room's identity, features (the muc_* registry of §15.4) and muc#roominfo form, and the
// reserved-nick node x-roomuser-item. A room's items (its occupants) are kept private (§6.5:
// "Implementations and deployments are advised to turn off such information sharing by default").
import { x, type Jid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { buildForm, type FormField } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';
import type { Room } from './room.js';

const ROOMUSER_NODE = 'x-roomuser-item';

/** §6.3: "The service SHOULD return a full list of the public rooms it hosts". */
export function serviceItems(rooms: Iterable<Room>): XmlElement {
  const out = x('query', { xmlns: NS.DISCO_ITEMS });
  const listed = [...rooms].filter((room) => room.config.public && !room.locked).sort((a, b) => a.address.localeCompare(b.address));
  for (const room of listed) out.append(x('item', { jid: room.address, name: room.config.name || room.jid.local }));
  return out;
}

/** The features every room has, plus those that say what kind of room it is. */
export function roomFeatures(room: Room, extra: string[]): string[] {
  const c = room.config;
  return [
    NS.DISCO_INFO,
    NS.DISCO_ITEMS,
    NS.MUC,
    NS.MUC_STABLE_ID,
    NS.MUC_SELF_PING,
    ...(c.allowVoiceRequests ? [NS.MUC_REQUEST] : []),
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.public ? 'muc_public' : 'muc_hidden',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.password !== '' ? 'muc_passwordprotected' : 'muc_unsecured',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    ...extra,
  ];
}

/** §6.4: identity conference/text, the features, and the muc#roominfo form (XEP-0128). */
export function roomInfo(room: Room, extraFeatures: string[], node?: string, from?: Jid): XmlElement {
  if (node === ROOMUSER_NODE) return reservedNick(room, from);
  if (node !== undefined) throw stanzaError.itemNotFound('No such node');
  const out = x('query', { xmlns: NS.DISCO_INFO }, x('identity', { category: 'conference', type: 'text', name: room.config.name || room.jid.local }));
  for (const feature of [...new Set(roomFeatures(room, extraFeatures))].sort()) out.append(x('feature', { var: feature }));
  out.append(roomInfoForm(room));
  return out;
}

function roomInfoForm(room: Room): XmlElement {
  const c = room.config;
  const fields: FormField[] = [
    { var: 'FORM_TYPE', type: 'hidden', values: [NS.MUC_ROOMINFO] },
    { var: 'muc#roomconfig_roomname', label: 'Natural-Language Room Name', values: [c.name] },
    { var: 'muc#roominfo_description', label: 'Short Description of Room', values: [c.description] },
    { var: 'muc#roominfo_subject', label: 'Current Discussion Topic', values: [room.subject?.text ?? ''] },
    { var: 'muc#roominfo_occupants', label: 'Current Number of Occupants in Room', values: [String(room.occupants.size)] },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Occupants May Change the Subject', values: [c.changeSubject ? '1' : '0'] },
    { var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'The room subject can be modified by participants', values: [c.changeSubject ? '1' : '0'] },
    { var: 'muc#maxhistoryfetch', label: 'Maximum Number of History Messages Returned by Room', values: [String(c.historyLength)] },
  ];
  if (c.language !== '') fields.push({ var: 'muc#roominfo_lang', label: 'Natural Language for Room Discussions', values: [c.language] });
  // Owners as contacts, where real JIDs are no secret anyway.
  if (c.whois === 'anyone') fields.push({ var: 'muc#roominfo_contactjid', type: 'jid-multi', label: 'Contact Addresses', values: room.withAffiliation('owner').map(([jid]) => jid) });
  return buildForm({ type: 'result', fields });
}

/**
 * §7.12: the requester's reserved nick as the name of a conference/text identity; "If the user does
 * not have a registered nickname, the room MUST return a service discovery <query/> element that is empty".
 */
function reservedNick(room: Room, from: Jid | undefined): XmlElement {
  const out = x('query', { xmlns: NS.DISCO_INFO, node: ROOMUSER_NODE });
  const nick = from ? room.affiliations.get(from.bareString)?.nick : undefined;
  if (nick !== undefined) out.append(x('identity', { category: 'conference', type: 'text', name: nick }));
  return out;
}
