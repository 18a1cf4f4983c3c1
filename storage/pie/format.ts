// XEP-0227 Portable Import/Export Format (1.1): the names and the one codec both directions share,
// SCRAM credentials. Facts checked against the servers that write these files (DESIGN.md §5):
// - Prosody (mod_storage_xep0227, 0.12 and trunk): one file per user, `<server-data
//   xmlns='urn:xmpp:pie:0'><host jid><user name>`; SCRAM keys as base64 of the raw bytes; pending
//   subscription requests as `<presence type='subscribe' from='…'/>` children of <user>.
// - ejabberd (ejabberd_piefxis, 21.12 up to today): a main file that XIncludes one file per host;
//   its #scram record holds base64 text, which the export base64-encodes once more, so salt,
//   server-key and stored-key arrive base64-encoded twice (and its import expects that).

import type { ScramCredentials, ScramHash } from '../../server/sasl/mechanism.js';
import { x, type XmlElement } from '../../server/xml/element.js';

export const NS_PIE = 'urn:xmpp:pie:0';
/** The namespace before XEP-0227 1.0 (what ejabberd still accepts and old exports carry). */
export const NS_PIE_OLD = 'http://www.xmpp.org/extensions/xep-0227.html#ns';
export const NS_PIE_SCRAM = 'urn:xmpp:pie:0#scram';
/** Prosody's message archive element (<archive/> under <user/>, see mam.ts). */
export const NS_PIE_MAM = 'urn:xmpp:pie:0#mam';
export const NS_XINCLUDE = 'http://www.w3.org/2001/XInclude';
export const NS_XINCLUDE_OLD = 'http://www.w3.org/2003/XInclude';

export const isPieNamespace = (ns: string | undefined): boolean => ns === NS_PIE || ns === NS_PIE_OLD;

/** A file that cannot be imported, with where: the line of the element that failed (1-based). */
export class PieFormatError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`);
  }
}

const MECHANISM_HASH: Record<string, ScramHash> = { 'SCRAM-SHA-1': 'sha1', 'SCRAM-SHA-256': 'sha256' };
const HASH_MECHANISM: Record<ScramHash, string> = { sha1: 'SCRAM-SHA-1', sha256: 'SCRAM-SHA-256' };
const HASH_BYTES: Record<ScramHash, number> = { sha1: 20, sha256: 32 };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

export type DecodedScram =
  | { kind: 'ok'; hash: ScramHash; credentials: ScramCredentials; doubleEncoded: boolean }
  | { kind: 'unsupported'; mechanism: string };

/**
 * A `<scram-credentials/>` element → Herald's credentials, salt and iteration count as they were
 * (so logins need no re-hashing). Throws an Error with the reason when it is malformed.
 */
export function decodeScramCredentials(el: XmlElement): DecodedScram {
  const mechanism = el.attrs.mechanism ?? '';
  const hash = MECHANISM_HASH[mechanism];
  // ejabberd also writes SCRAM-SHA-512, which Herald's SASL does not offer.
  if (!hash) return { kind: 'unsupported', mechanism };
  const text = (name: string): string => {
    const value = el.getChild(name)?.text().replace(/\s+/g, '');
    if (value === undefined || value === '') throw new Error(`${mechanism} credentials without <${name}/>`);
    return value;
  };
  const iterText = text('iter-count');
  if (!/^[0-9]{1,9}$/.test(iterText)) throw new Error(`${mechanism} credentials: iter-count '${iterText}' is not a number`);
  const iterations = Number(iterText);
  // RFC 5802 §5.1: "i" is a positive number; anything below 4096 is weak but still what the user has.
  if (iterations < 1) throw new Error(`${mechanism} credentials: iter-count must be positive`);
  const salt = base64(text('salt'), 'salt');
  const serverKey = base64(text('server-key'), 'server-key');
  const storedKey = base64(text('stored-key'), 'stored-key');
  const size = HASH_BYTES[hash];
  if (serverKey.length === size && storedKey.length === size) {
    return { kind: 'ok', hash, credentials: { salt, iterations, serverKey, storedKey }, doubleEncoded: false };
  }
  // ejabberd: each value is base64 of base64. Decoding once more must give keys of the hash's size.
  const wrongSize = `${mechanism} credentials: server-key and stored-key must be ${size} bytes (base64 of the raw bytes)`;
  const twice = (bytes: Buffer) => {
    const text = bytes.toString('latin1');
    if (!BASE64.test(text)) throw new Error(wrongSize);
    return Buffer.from(text, 'base64');
  };
  const serverKey2 = twice(serverKey);
  const storedKey2 = twice(storedKey);
  if (serverKey2.length !== size || storedKey2.length !== size) throw new Error(wrongSize);
  return { kind: 'ok', hash, credentials: { salt: twice(salt), iterations, serverKey: serverKey2, storedKey: storedKey2 }, doubleEncoded: true };
}

function base64(value: string, what: string): Buffer {
  if (!BASE64.test(value)) throw new Error(`${what} is not base64`);
  return Buffer.from(value, 'base64');
}

/**
 * Herald's credentials → `<scram-credentials/>`, SCRAM-SHA-1 first: Prosody and ejabberd read the
 * first (or the one of their configured hash). `doubleEncode` writes what ejabberd expects.
 */
export function encodeScramCredentials(hash: ScramHash, credentials: ScramCredentials, doubleEncode = false): XmlElement {
  const b64 = (bytes: Buffer) => (doubleEncode ? Buffer.from(bytes.toString('base64'), 'latin1').toString('base64') : bytes.toString('base64'));
  return x(
    'scram-credentials',
    { xmlns: NS_PIE_SCRAM, mechanism: HASH_MECHANISM[hash] },
    x('iter-count', null, String(credentials.iterations)),
    x('salt', null, b64(credentials.salt)),
    x('server-key', null, b64(credentials.serverKey)),
    x('stored-key', null, b64(credentials.storedKey)),
  );
}

export const SCRAM_HASH_ORDER: ScramHash[] = ['sha1', 'sha256'];
