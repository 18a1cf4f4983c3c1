// One XEP-0227 <user/> element → what Herald stores for the account. Pure (no storage): the
// importer (import.ts) writes the result. Malformed data that would make the account wrong (no
// name, a broken SCRAM key) throws, so the whole import stops with the line; data Herald cannot
// keep (privacy rules, unknown extensions) is reported and skipped, as XEP-0227 §2
// asks: "An importing server that encounters a namespace that it doesn't understand, or otherwise
// is unable to import all given data, SHOULD ignore the unknown data, SHOULD notify the operator".

import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { XmlElement } from '../../server/xml/element.js';
import { x } from '../../server/xml/element.js';
import { normalizeLocalpart, tryParseJid } from '../../server/jid.js';
import type { RosterItem, Subscription } from '../../server/protocol/rfc6121.js';
import type { ScramCredentials, ScramHash } from '../../server/sasl/mechanism.js';
import { saslprep } from '../../server/sasl/saslprep.js';
import { dateTime } from '../../server/protocol/xep0082.js';
import { NS_PIE_MAM, NS_PIE_SCRAM, decodeScramCredentials, isPieNamespace } from './format.js';
import { readPep, type ImportedPepNode } from './pep.js';

export type AccountCredentials = Partial<Record<ScramHash, ScramCredentials>>;

export interface OfflineMessage {
  /** The <message/> as the offline module stores it: no xmlns, with its delay stamp. */
  stanza: string;
  with: string | undefined;
  /** When it was stored (from its delay stamp), ms since the epoch. */
  stamp: number;
}

export interface ImportedUser {
  username: string;
  credentials: AccountCredentials;
  /** How the credentials came: as SCRAM keys (kept as they are), from a plain password, or none. */
  credentialSource: 'scram' | 'password' | 'none';
  /** SCRAM values that were base64-encoded twice (ejabberd). */
  doubleEncoded: boolean;
  roster: RosterItem[];
  /** Pending inbound subscription requests: contact bare JID → the stored <presence/>. */
  pendingIn: [string, string][];
  vcard: string | undefined;
  /** namespace → elements (serialized) */
  privateXml: [string, string[]][];
  offline: OfflineMessage[];
  blocklist: string[];
  pep: ImportedPepNode[];
  /**
   * Message archives (<archive xmlns='urn:xmpp:pie:0#mam'/>) as they are in the file: read item by
   * item while they are written (mam.ts readArchive), so no second copy of a long history is built.
   */
  archives: XmlElement[];
}

/** Something in the user that was not imported, for the operator. */
export type Notice = (kind: string, detail: string) => void;

const NS = {
  CLIENT: 'jabber:client',
  SERVER: 'jabber:server',
  ROSTER: 'jabber:iq:roster',
  PRIVATE: 'jabber:iq:private',
  PRIVACY: 'jabber:iq:privacy',
  VCARD: 'vcard-temp',
  BLOCKING: 'urn:xmpp:blocking',
  DELAY: 'urn:xmpp:delay',
  LEGACY_DELAY: 'jabber:x:delay',
  PUBSUB: 'http://jabber.org/protocol/pubsub',
  PUBSUB_OWNER: 'http://jabber.org/protocol/pubsub#owner',
};
const SUBSCRIPTIONS = new Set<Subscription>(['none', 'to', 'from', 'both']);
/** What modules/private.ts refuses to store. */
const REFUSED_PRIVATE = new Set([NS.CLIENT, NS.SERVER, NS.PRIVATE]);

export interface UserContext {
  /** The normalised domain of the host the user belongs to. */
  host: string;
  /** PBKDF2 iterations for accounts that come with a plain password. */
  iterations: number;
  notice: Notice;
  /** "Now", for messages without a stamp (tests pin it). */
  now?: () => Date;
}

/**
 * Reads a <user/> element. Throws an Error (its message says what is wrong) for data that cannot be
 * imported faithfully. Deriving keys from a plain password is the only slow part, hence async.
 */
export async function readUser(el: XmlElement, ctx: UserContext): Promise<ImportedUser> {
  const name = el.attrs.name;
  if (name === undefined || name === '') throw new Error("<user/> without a 'name'");
  let username: string;
  try {
    username = normalizeLocalpart(name);
  } catch (err) {
    throw new Error(`user name '${name}' is not a valid JID localpart: ${(err as Error).message}`);
  }
  const user: ImportedUser = {
    username, credentials: {}, credentialSource: 'none', doubleEncoded: false, roster: [], pendingIn: [],
    vcard: undefined, privateXml: [], offline: [], blocklist: [], pep: [], archives: [],
  };
  const bare = `${username}@${ctx.host}`;
  const pubsub: PubsubParts = {};
  for (const child of el.elements()) readChild(child, user, bare, ctx, pubsub);
  if (pubsub.owner || pubsub.items) user.pep = readPep(pubsub.owner, pubsub.items, bare, ctx.notice, (ctx.now ?? (() => new Date()))().getTime());
  readProsodyAccountAttributes(el, user);
  await readPassword(el.attrs.password, user, ctx);
  return user;
}

/** PEP comes in two elements (node configuration and items), read together once both are seen. */
interface PubsubParts {
  owner?: XmlElement;
  items?: XmlElement;
}

function readChild(child: XmlElement, user: ImportedUser, bare: string, ctx: UserContext, pubsub: PubsubParts): void {
  // A child without xmlns is in the user's namespace (urn:xmpp:pie:0).
  const ns = child.attrs.xmlns;
  const pie = ns === undefined || isPieNamespace(ns);
  const key = `${pie ? 'pie' : ns} ${child.name}`;
  switch (key) {
    case `${NS_PIE_SCRAM} scram-credentials`:
      return addScram(child, user, ctx);
    case `${NS.ROSTER} query`:
      return void user.roster.push(...readRoster(child, bare, ctx.notice));
    case `${NS.VCARD} vCard`:
      if (child.elements().length > 0) user.vcard = child.toString();
      return;
    case `${NS.PRIVATE} query`:
      return void user.privateXml.push(...readPrivate(child, ctx.notice));
    case 'pie offline-messages':
      return void user.offline.push(...readOffline(child, bare, ctx));
    case `${NS.CLIENT} presence`:
    case 'pie presence': {
      const pending = readPending(child, bare, ctx.notice);
      if (pending && !user.pendingIn.some(([jid]) => jid === pending[0])) user.pendingIn.push(pending);
      return;
    }
    case `${NS.BLOCKING} blocklist`:
      return addBlocked(user, readBlocklist(child, ctx.notice));
    case `${NS.PRIVACY} query`:
      return addBlocked(user, readPrivacyBlocklist(child, ctx.notice));
    case `${NS.PUBSUB} pubsub`:
      pubsub.items = child;
      return;
    case `${NS.PUBSUB_OWNER} pubsub`:
      pubsub.owner = child;
      return;
    case `${NS_PIE_MAM} archive`:
      return void user.archives.push(child);
    default:
      return ctx.notice('unknown', `<${child.name}${ns === undefined ? '' : ` xmlns='${ns}'`}/> is not part of XEP-0227 or not supported`);
  }
}

// ---- credentials ----

function addScram(el: XmlElement, user: ImportedUser, ctx: UserContext): void {
  const decoded = decodeScramCredentials(el);
  if (decoded.kind === 'unsupported') return ctx.notice('mechanism', `${decoded.mechanism || 'no'} mechanism: only SCRAM-SHA-1 and SCRAM-SHA-256 keys can be used`);
  if (user.credentials[decoded.hash]) throw new Error(`two ${el.attrs.mechanism} credentials`);
  user.credentials[decoded.hash] = decoded.credentials;
  user.credentialSource = 'scram';
  user.doubleEncoded ||= decoded.doubleEncoded;
}

/** Prosody's namespace for account fields that XEP-0227 has no element for (mod_storage_xep0227). */
export const NS_PROSODY_EXTENDED = 'http://prosody.im/protocol/extended-xep0227';
const HEX_SHA1 = /^[0-9a-fA-F]{40}$/;

/**
 * Prosody before 0.12 wrote no <scram-credentials/>: mod_storage_xep0227 put the fields of its
 * hashed account record on <user/> as attributes in its own namespace (`xmlns:ns1='…extended-xep0227'
 * ns1:stored_key='…'`), as mod_auth_internal_hashed keeps them: stored_key and server_key in hex,
 * the salt as the raw string, iteration_count; always SCRAM-SHA-1. Prosody 0.12 reads them back the
 * same way, so they are the account's password. A <scram-credentials/> element wins.
 */
function readProsodyAccountAttributes(el: XmlElement, user: ImportedUser): void {
  if (user.credentialSource === 'scram') return;
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(el.attrs)) {
    const colon = name.indexOf(':');
    if (colon <= 0 || name.startsWith('xmlns:') || value === undefined) continue;
    if (el.attrs[`xmlns:${name.slice(0, colon)}`] === NS_PROSODY_EXTENDED) fields[name.slice(colon + 1)] = value;
  }
  const { stored_key: storedKey, server_key: serverKey, salt, iteration_count: iterations } = fields;
  if (storedKey === undefined && serverKey === undefined) return; // other fields only (Prosody 0.12: 'updated', …)
  if (storedKey === undefined || serverKey === undefined || salt === undefined || iterations === undefined) {
    throw new Error("Prosody account attributes: stored_key, server_key, salt and iteration_count go together");
  }
  if (!HEX_SHA1.test(storedKey) || !HEX_SHA1.test(serverKey)) throw new Error('Prosody account attributes: stored_key and server_key must be 40 hex digits (SHA-1)');
  if (!/^[0-9]{1,9}$/.test(iterations) || Number(iterations) < 1) throw new Error(`Prosody account attributes: iteration_count '${iterations}' is not a positive number`);
  if (salt === '') throw new Error('Prosody account attributes: empty salt');
  user.credentials = {
    sha1: { salt: Buffer.from(salt, 'utf8'), iterations: Number(iterations), storedKey: Buffer.from(storedKey, 'hex'), serverKey: Buffer.from(serverKey, 'hex') },
  };
  user.credentialSource = 'scram';
}

/**
 * A 'password' attribute: ejabberd's pre-21.12 "scram:" form holds keys; otherwise it is the
 * plain password, of which only SCRAM keys are kept (never the password itself). SCRAM keys in the
 * file win: they are what the old server verified logins with.
 */
async function readPassword(password: string | undefined, user: ImportedUser, ctx: UserContext): Promise<void> {
  if (password === undefined || password === '') return;
  if (password.startsWith('scram:')) {
    if (user.credentialSource === 'scram') return;
    return addScram(legacyEjabberdScram(password.slice(6)), user, ctx);
  }
  if (user.credentialSource === 'scram') return;
  let prepared: string;
  try {
    prepared = saslprep(password, { allowUnassigned: false });
  } catch {
    return ctx.notice('password', `the password of ${user.username} has characters SASLprep prohibits: the account has no password (set one with herald passwd)`);
  }
  user.credentials = await deriveCredentials(prepared, ctx.iterations);
  user.credentialSource = 'password';
}

/** ejabberd before 21.12: password='scram:[sha256,]StoredKey,ServerKey,Salt,IterationCount'. */
function legacyEjabberdScram(data: string): XmlElement {
  const parts = data.split(',');
  const hash = parts.length === 5 ? parts.shift()! : 'sha1';
  if (parts.length !== 4) throw new Error("password='scram:…' is not StoredKey,ServerKey,Salt,IterationCount");
  const [storedKey, serverKey, salt, iterations] = parts as [string, string, string, string];
  const mechanism = hash === 'sha1' ? 'SCRAM-SHA-1' : hash === 'sha256' ? 'SCRAM-SHA-256' : `SCRAM-${hash.toUpperCase()}`;
  return x('scram-credentials', { xmlns: NS_PIE_SCRAM, mechanism },
    x('iter-count', null, iterations), x('salt', null, salt), x('server-key', null, serverKey), x('stored-key', null, storedKey));
}

const pbkdf2Async = promisify(pbkdf2);

/**
 * SCRAM-SHA-1 and -256 keys for a (SASLprepped) password, as server/accounts.ts
 * deriveAccountCredentials makes them (RFC 5802 §3), but with PBKDF2 on libuv's thread pool: an
 * ejabberd export with plain passwords (its default storage) has one per account.
 */
export async function deriveCredentials(prepared: string, iterations: number): Promise<AccountCredentials> {
  const derive = async (hash: ScramHash, size: number): Promise<ScramCredentials> => {
    const salt = randomBytes(16);
    const salted = await pbkdf2Async(prepared, salt, iterations, size, hash);
    const clientKey = createHmac(hash, salted).update('Client Key').digest();
    return { salt, iterations, storedKey: createHash(hash).update(clientKey).digest(), serverKey: createHmac(hash, salted).update('Server Key').digest() };
  };
  const [sha1, sha256] = await Promise.all([derive('sha1', 20), derive('sha256', 32)]);
  return { sha1, sha256 };
}

// ---- roster and subscriptions ----

/** RFC 6121 §2.1.2 items, as the roster module keeps them. */
function readRoster(query: XmlElement, bare: string, notice: Notice): RosterItem[] {
  const items = new Map<string, RosterItem>();
  for (const item of query.getChildren('item')) {
    const jid = tryParseJid(item.attrs.jid ?? '');
    if (!jid) {
      notice('roster', `roster item jid '${item.attrs.jid ?? ''}' is not a valid JID`);
      continue;
    }
    const contact = jid.bareString;
    if (contact === bare) continue; // like Prosody: one's own presence is implicit, never an item
    const subscription = (item.attrs.subscription ?? 'none') as Subscription;
    if (!SUBSCRIPTIONS.has(subscription)) {
      notice('roster', `roster item ${contact}: subscription '${subscription}' is not none, to, from or both`);
      continue;
    }
    const groups = [...new Set(item.getChildren('group').map((group) => group.text()).filter((group) => group !== ''))];
    items.set(contact, {
      jid: contact,
      ...(item.attrs.name ? { name: item.attrs.name } : {}),
      subscription,
      ...(item.attrs.ask === 'subscribe' && { ask: 'subscribe' as const }),
      ...((item.attrs.approved === 'true' || item.attrs.approved === '1') && { approved: true }),
      groups,
    });
  }
  return [...items.values()];
}

/**
 * A pending inbound request (Prosody and ejabberd: <presence type='subscribe' from='contact'/>
 * under <user/>), stored as the presence module keeps it: from the contact's bare JID to the account.
 */
function readPending(el: XmlElement, bare: string, notice: Notice): [string, string] | undefined {
  if (el.attrs.type !== 'subscribe') {
    notice('presence', `<presence type='${el.attrs.type ?? 'available'}'/>: only pending subscription requests are imported`);
    return undefined;
  }
  const from = tryParseJid(el.attrs.from ?? '');
  if (!from) {
    notice('presence', `subscription request from '${el.attrs.from ?? ''}': not a valid JID`);
    return undefined;
  }
  const stanza = el.clone();
  delete stanza.attrs.xmlns; // stanzas inside Herald carry no xmlns (the stream supplies it)
  stanza.attrs.from = from.bareString;
  stanza.attrs.to = bare;
  return [from.bareString, stanza.toString()];
}

// ---- private XML, offline messages ----

function readPrivate(query: XmlElement, notice: Notice): [string, string[]][] {
  const byNamespace = new Map<string, string[]>();
  for (const el of query.elements()) {
    const ns = el.attrs.xmlns;
    if (ns === undefined || ns === '' || REFUSED_PRIVATE.has(ns)) {
      notice('private', `private XML <${el.name}/> without a namespace of its own`);
      continue;
    }
    byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), el.toString()]);
  }
  return [...byNamespace];
}

/** XEP-0227 §3.4: <message/>s "qualified by the 'jabber:client' namespace, starting with the oldest". */
function readOffline(list: XmlElement, bare: string, ctx: UserContext): OfflineMessage[] {
  const out: OfflineMessage[] = [];
  for (const el of list.elements()) {
    const ns = el.attrs.xmlns;
    if (el.name !== 'message' || (ns !== undefined && ns !== NS.CLIENT && ns !== NS.SERVER)) {
      ctx.notice('offline', `<${el.name}/> in <offline-messages/> is not a jabber:client message`);
      continue;
    }
    const from = el.attrs.from;
    if (!from) {
      ctx.notice('offline', "offline message without 'from'");
      continue;
    }
    const message = el.clone();
    delete message.attrs.xmlns;
    message.attrs.to ??= bare;
    const stamp = stampOf(message, ctx); // may add a delay element
    out.push({ stanza: message.toString(), with: from, stamp });
  }
  return out;
}

/**
 * When the message was stored: its XEP-0203 delay (or legacy XEP-0091) stamp. Without one, a delay
 * is added now, so the recipient's client still shows it as a message from the past.
 */
function stampOf(message: XmlElement, ctx: UserContext): number {
  const delay = Date.parse(message.getChild('delay', NS.DELAY)?.attrs.stamp ?? '');
  if (!Number.isNaN(delay)) return delay;
  const legacy = /^(\d{4})(\d{2})(\d{2})T(\d{2}:\d{2}:\d{2})$/.exec(message.getChild('x', NS.LEGACY_DELAY)?.attrs.stamp ?? '');
  if (legacy) return Date.parse(`${legacy[1]}-${legacy[2]}-${legacy[3]}T${legacy[4]}Z`);
  const now = (ctx.now ?? (() => new Date()))();
  message.append(x('delay', { xmlns: NS.DELAY, from: ctx.host, stamp: dateTime(now) }, 'Offline Storage'));
  return now.getTime();
}

// ---- blocking ----

function addBlocked(user: ImportedUser, jids: string[]): void {
  for (const jid of jids) if (!user.blocklist.includes(jid)) user.blocklist.push(jid);
}

/** XEP-0191 items (an extension Herald writes; not part of XEP-0227). */
function readBlocklist(el: XmlElement, notice: Notice): string[] {
  const out: string[] = [];
  for (const item of el.getChildren('item')) {
    const jid = tryParseJid(item.attrs.jid ?? '');
    if (jid) out.push(jid.toString());
    else notice('blocklist', `blocked JID '${item.attrs.jid ?? ''}' is not a valid JID`);
  }
  return out;
}

/**
 * ejabberd exports privacy lists (XEP-0016), on which its XEP-0191 blocking is built: the default
 * list's "deny this JID everything" items are the blocklist. Other rules have no place in Herald.
 */
function readPrivacyBlocklist(query: XmlElement, notice: Notice): string[] {
  const defaultName = query.getChild('default')?.attrs.name;
  let skipped = 0;
  const out: string[] = [];
  for (const list of query.getChildren('list')) {
    for (const item of list.getChildren('item')) {
      const blocksAll = item.attrs.type === 'jid' && item.attrs.action === 'deny' && item.elements().length === 0;
      const jid = blocksAll && list.attrs.name === defaultName ? tryParseJid(item.attrs.value ?? '') : null;
      if (jid) out.push(jid.toString());
      else skipped++;
    }
  }
  if (skipped > 0) notice('privacy', `${skipped} privacy list rule${skipped === 1 ? '' : 's'} (XEP-0016) not imported: only the default list's blocked JIDs become the blocklist`);
  return out;
}
