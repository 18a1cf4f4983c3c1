// Which messages a user archive keeps (XEP-0313 §5.1.1 with the XEP-0334 hints) and the XEP-0359
// stanza ids that tell clients where a message was archived. Prosody's mod_mam list of "archivable"
// content is the model: conversation messages and what supplements them (receipts, markers, calls,
// invitations), never state alone (chat states) or what is ephemeral by definition (headlines).
import { XmlElement, tryParseJid, x } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';

export const NS_MAM = 'urn:xmpp:mam:2';
/**
 * XEP-0313 0.5's namespace, still sent by some older clients. Its queries, results, <fin/> and
 * preferences are those of urn:xmpp:mam:2 in another namespace (0.6 bumped it only because archive
 * ids became XEP-0359 stanza ids), so the user archive answers both. Rooms answer urn:xmpp:mam:2 only.
 */
export const NS_MAM_1 = 'urn:xmpp:mam:1';
/** The namespaces a user archive answers queries and preferences in. */
export const USER_ARCHIVE_NAMESPACES = [NS_MAM, NS_MAM_1] as const;
export type MamNamespace = (typeof USER_ARCHIVE_NAMESPACES)[number];
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
export const NS_MAM_GROUPCHAT_FIELD = 'urn:xmpp:mam:2#groupchat-field';
export const NS_EME = 'urn:xmpp:eme:0';

/** Content that makes a message worth keeping although it has no body (Prosody's list). */
const SUPPLEMENTS: { name?: string; ns: string }[] = [
  { name: 'encryption', ns: NS_EME }, // an encrypted message may say anything
  { ns: NS.RECEIPTS }, // "if it's important enough to ask for a receipt then it's important enough to archive"
  { ns: NS.CHAT_MARKERS_0 }, // read state, synchronised between devices through the archive
  { name: 'x', ns: NS.CONFERENCE }, // XEP-0249 invitation
  { ns: 'urn:xmpp:jingle-message:0' }, // XEP-0353 call
  { ns: 'urn:xmpp:jingle-message:1' },
];

/** XEP-0313 §5.1.1 and XEP-0334 §4: does this message belong in a user's archive? */
export function archivable(stanza: XmlElement): boolean {
  if (stanza.name !== 'message') return false;
  const type = stanza.attrs.type ?? 'normal';
  // §5.1.1: "messages a user sends or receives of type 'normal' or 'chat'". Headlines are ephemeral
  // by definition; errors carry no conversation; groupchat is the room's archive's business
  // (§5.1.1 leaves it to the deployment; Herald keeps it out of user archives, as Prosody does).
  if (type !== 'normal' && type !== 'chat') return false;
  // XEP-0334 §4.1 <no-permanent-store/>: "should not be stored permanently ... e.g. in a message
  // archive"; §4.2 <no-store/> ('no-storage' is its old misspelling): not at all. They win over
  // <store/>, as in Prosody: a sender asking for privacy is not overridden.
  if (stanza.getChild('no-permanent-store', NS.HINTS) || stanza.getChild('no-store', NS.HINTS) || stanza.getChild('no-storage', NS.HINTS)) return false;
  // §4.4 <store/>: "should be stored", whatever it holds.
  if (stanza.getChild('store', NS.HINTS)) return true;
  // §5.1.1: "that contain a <body> element"; a subject change is conversation too.
  if (stanza.getChild('body') || stanza.getChild('subject')) return true;
  // "A server MAY include additional non-conversation messages": what supplements a conversation.
  if (SUPPLEMENTS.some(({ name, ns }) => (name ? stanza.getChild(name, ns) : stanza.getChildByNs(ns)) !== undefined)) return true;
  // XEP-0045 mediated invitation.
  return stanza.getChild('x', NS.MUC_USER)?.getChild('invite') !== undefined;
}

/**
 * XEP-0313 §5.1.2: "All messages sent to the room that contain a <body> element SHOULD be stored, as
 * should subject change stanzas"; the XEP-0334 hints apply as in user archives.
 */
export function roomArchivable(stanza: XmlElement): boolean {
  if (stanza.getChild('no-permanent-store', NS.HINTS) || stanza.getChild('no-store', NS.HINTS) || stanza.getChild('no-storage', NS.HINTS)) return false;
  if (stanza.getChild('store', NS.HINTS)) return true;
  return stanza.getChild('body') !== undefined || stanza.getChild('subject') !== undefined || stanza.getChild('encryption', NS_EME) !== undefined;
}

/**
 * A copy of `stanza` without <stanza-id/> elements that claim to come from `by`. XEP-0359 §4: an
 * entity that adds stanza ids "MUST remove any <stanza-id/> element ... with a 'by' attribute that
 * matches" its own address, so no sender can fake an archive id. Shallow: children are shared.
 */
export function withoutForgedIds(stanza: XmlElement, by: string): XmlElement {
  if (!stanza.children.some((child) => isStanzaId(child, by))) return stanza;
  return new XmlElement(stanza.name, stanza.attrs, stanza.children.filter((child) => !isStanzaId(child, by)));
}

/** A copy of `stanza` (shallow) carrying our <stanza-id by id/> (XEP-0359 §3, XEP-0313 §3.5). */
export function withStanzaId(stanza: XmlElement, by: string, id: string): XmlElement {
  return new XmlElement(stanza.name, stanza.attrs, [...stanza.children, x('stanza-id', { xmlns: NS.STANZA_ID, by, id })]);
}

function isStanzaId(child: XmlElement | string, by: string): boolean {
  if (typeof child === 'string' || child.name !== 'stanza-id' || child.attrs.xmlns !== NS.STANZA_ID) return false;
  const claimed = child.attrs.by ?? '';
  // Compared as JIDs: 'Juliet@Capulet.lit' is the same archive to a client that normalises.
  return claimed === by || tryParseJid(claimed)?.toString() === by;
}
