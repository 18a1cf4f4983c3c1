// Message archives (XEP-0313) in XEP-0227, as Prosody's mod_storage_xep0227 (0.12 and trunk,
// `handlers.archive`) writes and reads them, under <user/>:
//   <archive xmlns='urn:xmpp:pie:0#mam'>
//     <result xmlns='urn:xmpp:mam:2' id='ARCHIVE-ID'><forwarded xmlns='urn:xmpp:forward:0'>
//       <delay xmlns='urn:xmpp:delay' stamp='…'/><message xmlns='jabber:client' …/></forwarded></result>
//   … one <result/> per message, oldest first (Prosody appends them as its archive lists them).
// Prosody reads 'id' as the archive id, the delay's stamp as the time, and works out the other
// party ('with') from the message: "to_bare == user_jid and from_bare or to_bare".
// ↔ the mam module's user archive (modules/mam/store.ts): archive 'messages', key = the archive id
// clients page with, value = { stanza } (the message without xmlns and without our stanza-ids),
// `with` = the peer as modules/mam/index.ts archives live messages (the sender's full JID for what
// comes in, the 'to' as addressed for what goes out), stamp in ms. Kept ids and stamps let clients
// that synced before the move page on with the ids they know.
// Room archives are not part of the format (Prosody keeps them in its muc_log store, which
// mod_storage_xep0227 does not handle), so they stay behind.

import { x, type XmlElement } from '../../server/xml/element.js';
import { tryParseJid } from '../../server/jid.js';
import { parseXml } from '../../server/xml/parser.js';
import { parseDateTime } from '../../modules/mam/query.js';
import { newArchiveId, type StoredMessage } from '../../modules/mam/store.js';
import { NS } from '../../server/protocol/ns.js';
import { NS_PIE_MAM } from './format.js';
import type { Notice } from './user.js';

export const NS_MAM_2 = 'urn:xmpp:mam:2';
const { FORWARD_0: NS_FORWARD, DELAY: NS_DELAY, CLIENT: NS_CLIENT, SERVER: NS_SERVER, STANZA_ID: NS_STANZA_ID } = NS;

/** conf/schema.ts limits.max_stanza_size's default: a message the server would not take from a client. */
export const DEFAULT_MAX_STANZA_BYTES = 256 * 1024;

export interface ArchivedMessage {
  /** The archive id (MAM result id, XEP-0359 stanza id): the item key. */
  id: string;
  value: StoredMessage;
  with: string;
  /** ms since the epoch. */
  stamp: number;
}

export interface ArchiveReadContext {
  /** The account's bare JID. */
  bare: string;
  notice: Notice;
  maxStanzaBytes: number;
}

/**
 * The messages of one <archive/> element, in file order (oldest first), one at a time: the importer
 * writes each before the next is built. Items Herald cannot keep are reported and skipped.
 */
export function* readArchive(archive: XmlElement, ctx: ArchiveReadContext): Generator<ArchivedMessage> {
  let groupchat = 0;
  for (const result of archive.elements()) {
    const message = readResult(result, ctx);
    if (message === 'groupchat') groupchat++;
    else if (message) yield message;
  }
  // modules/mam keeps no groupchat messages in user archives (the rooms keep theirs).
  if (groupchat > 0) ctx.notice('mam', `${groupchat} groupchat message${groupchat === 1 ? '' : 's'} in the archive of ${ctx.bare} not imported: user archives hold no groupchat messages (the rooms' archives do)`);
}

function readResult(result: XmlElement, ctx: ArchiveReadContext): ArchivedMessage | 'groupchat' | undefined {
  const skip = (why: string) => void ctx.notice('mam', `archive item ${result.attrs.id === undefined ? '(no id)' : `'${result.attrs.id}'`} of ${ctx.bare}: ${why}, not imported`);
  if (result.name !== 'result' || result.attrs.xmlns !== NS_MAM_2) return skip(`<${result.name}/> is not a urn:xmpp:mam:2 <result/>`);
  const forwarded = result.getChild('forwarded', NS_FORWARD);
  const original = forwarded?.elements().find((el) => el.name === 'message' && (el.attrs.xmlns === undefined || el.attrs.xmlns === NS_CLIENT || el.attrs.xmlns === NS_SERVER));
  if (!forwarded || !original) return skip('no <forwarded><message/></forwarded>');
  const stampText = forwarded.getChild('delay', NS_DELAY)?.attrs.stamp;
  const stamp = stampText === undefined ? undefined : parseDateTime(stampText);
  if (stamp === undefined) return skip(stampText === undefined ? 'no <delay/> stamp' : `stamp '${stampText}' is not a XEP-0082 DateTime`);
  if (original.attrs.type === 'groupchat') return 'groupchat';
  const peer = peerOf(original, ctx.bare);
  if (!peer) return skip("no valid 'to' and 'from' to tell the other party");
  const message = original.clone();
  delete message.attrs.xmlns; // stanzas inside Herald carry no xmlns (the stream supplies it)
  // XEP-0359 §4: stanza ids "by" this archive are the server's own; the result id stands for them.
  message.children = message.children.filter((child) => typeof child === 'string' || !(child.name === 'stanza-id' && child.attrs.xmlns === NS_STANZA_ID && child.attrs.by === ctx.bare));
  const stanza = message.toString();
  const bytes = Buffer.byteLength(stanza);
  if (bytes > ctx.maxStanzaBytes) return skip(`${bytes} bytes, larger than the stanza limit (${ctx.maxStanzaBytes} bytes)`);
  let id = result.attrs.id;
  if (id === undefined || id === '') {
    id = newArchiveId();
    ctx.notice('mam', `archive item of ${ctx.bare} without an 'id': imported as ${id}`);
  }
  return { id, value: { stanza }, with: peer, stamp };
}

/**
 * The other party, as modules/mam archives live messages: the sender ('from') of what was
 * addressed to the account, the recipient ('to') of what it sent; which is which by bare JIDs, as
 * Prosody tells them. The JID is kept as written (full), as live archiving keeps it.
 */
function peerOf(message: XmlElement, bare: string): string | undefined {
  const to = tryParseJid(message.attrs.to ?? '');
  const from = tryParseJid(message.attrs.from ?? '');
  const peer = to && to.bareString !== bare ? to : from;
  return peer?.toString();
}

// ---- export ----

/** One archived message as Prosody writes it (and reads it back: the message in jabber:client). */
export function resultElement(id: string, stored: StoredMessage, stamp: number, skip: (what: string) => void): XmlElement | undefined {
  let message: XmlElement;
  try {
    message = parseXml(stored.stanza);
  } catch (err) {
    skip(`archived message ${id} is not readable XML (${(err as Error).message})`);
    return undefined;
  }
  return x('result', { xmlns: NS_MAM_2, id },
    x('forwarded', { xmlns: NS_FORWARD }, x('delay', { xmlns: NS_DELAY, stamp: exportStamp(stamp) }), message.withAttrs({ xmlns: NS_CLIENT })));
}

/** Milliseconds kept when there are any (a lossless round trip); Prosody's parser reads fractions. */
function exportStamp(stamp: number): string {
  const iso = new Date(stamp).toISOString();
  return iso.endsWith('.000Z') ? iso.replace('.000Z', 'Z') : iso;
}

export const ARCHIVE_OPEN = `<archive xmlns='${NS_PIE_MAM}'>`;
export const ARCHIVE_CLOSE = '</archive>';
