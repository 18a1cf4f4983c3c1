// SCRAM-SHA-1 and SCRAM-SHA-256 with their -PLUS variants, server side (RFC 5802, RFC 7677; channel
// binding per RFC 5056 with tls-exporter, RFC 9266, or tls-server-end-point, RFC 5929). A login only
// uses the stored keys: PBKDF2 runs when a password is set or checked for PLAIN, never per SCRAM login.
// Unknown users get a server-first message like everybody else (a fake salt derived from the name),
// so the first round trip does not reveal whether an account exists.
// Failure conditions (RFC 6120 §6.5), as answered here:
//   malformed-request  bad syntax, bad inner base64, 'm=' extension, 'p=' on a non-PLUS mechanism,
//                      'n'/'y' on a -PLUS mechanism, message after the end
//   invalid-authzid    an authzid that is not the authenticating account
//   not-authorized     wrong proof, unknown user, nonce or channel-binding mismatch, 'y' while -PLUS
//                      is offered (downgrade, RFC 5802 §6), unsupported channel-binding type,
//                      user name refused by SASLprep or normalisation
//   temporary-auth-failure  the account store failed
// Not here: the SCRAM 'e=' server-error attribute (XMPP reports failures as <failure/> conditions).

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { randomId } from '../random.js';
import { authzidMatches, decodeUtf8, saslFailure } from './mechanism.js';
import type {
  ChannelBindingType, SaslContext, SaslMechanismFactory, SaslMechanismSession, SaslStep, ScramCredentials, ScramHash,
} from './mechanism.js';
import { saslprep } from './saslprep.js';

/** Options for {@link createScramMechanism}; the defaults are right for production. */
export interface ScramOptions {
  /** The server's part of the nonce (printable, no ','); default 24 random bytes in base64. Tests inject RFC vectors. */
  serverNonce?: () => string;
  /** Iteration count shown to unknown users; set it to what real accounts use. Default 4096. */
  unknownUserIterations?: number;
  /** Key for unknown users' fake salts; default a per-process random key. A persisted key hides non-existence across restarts too. */
  fakeSaltSecret?: Buffer;
}

const HASH_BYTES: Record<ScramHash, number> = { sha1: 20, sha256: 32 };
const MAX_MESSAGE_BYTES = 8192;               // far above any real SCRAM message; stops silly work early
const PROCESS_SECRET = randomBytes(32);
const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;                 // RFC 5802: printable, except ','
const SASLNAME = /^(?:[^=,\0]|=2C|=3D)+$/i;                      // RFC 5802 saslname (ABNF literals are case-insensitive)
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CB_NAME = /^[A-Za-z0-9.-]+$/;
const EXTENSION = /^[A-Za-z]=/;

/**
 * Derives what the server stores for a password (RFC 5802 §3): SaltedPassword = PBKDF2(SASLprep(password)),
 * StoredKey = H(HMAC(SaltedPassword, 'Client Key')), ServerKey = HMAC(SaltedPassword, 'Server Key').
 * Throws if SASLprep refuses the password.
 */
export function deriveScramCredentials(hash: ScramHash, password: string, salt: Buffer = randomBytes(16), iterations = 4096): ScramCredentials {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, HASH_BYTES[hash], hash);
  const clientKey = hmac(hash, salted, 'Client Key');
  return { salt, iterations, storedKey: digest(hash, clientKey), serverKey: hmac(hash, salted, 'Server Key') };
}

/** Checks a password against stored SCRAM credentials (for PLAIN), in constant time. False if SASLprep refuses it. */
export function verifyPasswordAgainst(creds: ScramCredentials, hash: ScramHash, password: string): boolean {
  let derived: ScramCredentials;
  try {
    derived = deriveScramCredentials(hash, password, creds.salt, creds.iterations);
  } catch {
    return false;
  }
  return safeEqual(derived.storedKey, creds.storedKey) && safeEqual(derived.serverKey, creds.serverKey);
}

/** A SCRAM mechanism factory; `plus` makes it the channel-binding (-PLUS) variant. */
export function createScramMechanism(hash: ScramHash, plus: boolean, opts: ScramOptions = {}): SaslMechanismFactory {
  const name = `SCRAM-${hash === 'sha1' ? 'SHA-1' : 'SHA-256'}${plus ? '-PLUS' : ''}`;
  return { name, start: (ctx) => new ScramSession(hash, plus, ctx, opts) };
}

export const scramSha1 = createScramMechanism('sha1', false);
export const scramSha256 = createScramMechanism('sha256', false);
export const scramSha1Plus = createScramMechanism('sha1', true);
export const scramSha256Plus = createScramMechanism('sha256', true);

/** The parts of client-first-message that later steps need. */
interface ClientFirst {
  gs2Header: string;                          // as sent, e.g. 'n,,' or 'p=tls-exporter,,': c= must repeat it
  cbType: ChannelBindingType | undefined;     // set when the flag is 'p'
  authzid: string;
  username: string;                           // saslname decoded, not yet prepared
  clientNonce: string;
  bare: string;                               // client-first-message-bare, part of AuthMessage
}

interface Pending {
  username: string;
  creds: ScramCredentials | null;             // null: unknown user, the exchange fails at the end
  nonce: string;
  cbindInput: Buffer;                          // what c= must decode to
  authPrefix: string;                          // client-first-message-bare ',' server-first-message ','
}

class ScramSession implements SaslMechanismSession {
  private state: 'start' | 'waiting-first' | 'waiting-final' | 'done' = 'start';
  private pending: Pending | undefined;

  constructor(private readonly hash: ScramHash, private readonly plus: boolean,
    private readonly ctx: SaslContext, private readonly opts: ScramOptions) {}

  async step(clientData: Buffer): Promise<SaslStep> {
    const state = this.state;
    this.state = 'done';                       // anything but a challenge ends the exchange
    try {
      if (clientData.length > MAX_MESSAGE_BYTES) return saslFailure('malformed-request', 'message too long');
      if (state === 'start' && clientData.length === 0) {
        // RFC 6120 §6.4.2: no initial response, so send an empty challenge and wait for client-first.
        this.state = 'waiting-first';
        return { kind: 'challenge', data: Buffer.alloc(0) };
      }
      if (state === 'start' || state === 'waiting-first') return await this.first(clientData);
      if (state === 'waiting-final') return this.final(clientData);
      return saslFailure('malformed-request', 'exchange already finished');
    } catch {
      return saslFailure('temporary-auth-failure');   // the account store failed; mechanisms never throw
    }
  }

  private async first(data: Buffer): Promise<SaslStep> {
    const parsed = parseClientFirst(data);
    if ('kind' in parsed) return parsed;
    const cbindInput = this.channelBindingInput(parsed);
    if (!Buffer.isBuffer(cbindInput)) return cbindInput;
    let username: string;
    try {
      username = this.ctx.normalizeUsername(saslprep(parsed.username));
    } catch {
      return saslFailure('not-authorized');
    }
    if (username === '') return saslFailure('not-authorized');
    // RFC 6120 §6.4.6: an authzid must name the account itself; Herald has no proxy authorisation.
    if (!authzidMatches(this.ctx, parsed.authzid, username)) return saslFailure('invalid-authzid');
    const creds = await this.ctx.getScramCredentials(username, this.hash);
    const salt = creds?.salt ?? fakeSalt(this.hash, username, this.opts.fakeSaltSecret ?? PROCESS_SECRET);
    const iterations = creds?.iterations ?? this.opts.unknownUserIterations ?? 4096;
    const nonce = parsed.clientNonce + (this.opts.serverNonce?.() ?? randomId(24));
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    this.pending = { username, creds, nonce, cbindInput, authPrefix: `${parsed.bare},${serverFirst},` };
    this.state = 'waiting-final';
    return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  /** RFC 5802 §6 gs2 flag rules: the bytes c= must carry, or a failure. */
  private channelBindingInput(first: ClientFirst): Buffer | SaslStep {
    const header = Buffer.from(first.gs2Header, 'utf8');
    const flag = first.gs2Header[0];
    if (!this.plus) {
      if (flag === 'p') return saslFailure('malformed-request', 'channel binding needs a -PLUS mechanism');
      // RFC 5802 §6: 'y' means the client thinks we do not support channel binding. We offered
      // -PLUS, so someone removed it from <mechanisms/> on the way: a downgrade attack.
      if (flag === 'y' && this.ctx.plusOffered && this.ctx.acceptYFlag !== true) return saslFailure('not-authorized', 'channel binding downgrade');
      return header;
    }
    if (flag !== 'p') return saslFailure('malformed-request', 'a -PLUS mechanism needs channel binding');
    const type = first.cbType;
    const cbData = type !== undefined && this.ctx.channelBindingTypes.includes(type) ? this.ctx.channelBinding(type) : null;
    if (cbData === null) {
      this.ctx.onUnsupportedChannelBinding?.(first.gs2Header.slice(2, first.gs2Header.indexOf(',')));
      return saslFailure('not-authorized', 'channel binding type not supported');
    }
    return Buffer.concat([header, cbData]);
  }

  private final(data: Buffer): SaslStep {
    const parsed = parseClientFinal(data);
    if ('kind' in parsed) return parsed;
    const p = this.pending;
    if (p === undefined) return saslFailure('malformed-request');
    if (!safeEqual(parsed.channelBinding, p.cbindInput)) return saslFailure('not-authorized', 'channel bindings do not match');
    if (parsed.nonce !== p.nonce) return saslFailure('not-authorized', 'nonce mismatch');
    // An unknown user gets the same computation against an all-zero key, so timing tells nothing either.
    const hashBytes = HASH_BYTES[this.hash];
    const storedKey = p.creds?.storedKey ?? Buffer.alloc(hashBytes);
    const authMessage = p.authPrefix + parsed.withoutProof;
    const clientSignature = hmac(this.hash, storedKey, authMessage);
    const clientKey = Buffer.alloc(hashBytes);
    // eslint-disable-next-line no-bitwise -- RFC 5802 §3: ClientKey = ClientProof XOR ClientSignature
    for (let i = 0; i < hashBytes; i++) clientKey[i] = (parsed.proof[i] ?? 0) ^ (clientSignature[i] ?? 0);
    const proofOk = safeEqual(digest(this.hash, clientKey), storedKey) && parsed.proof.length === hashBytes;
    if (p.creds === null || !proofOk) return saslFailure('not-authorized');
    const serverSignature = hmac(this.hash, p.creds.serverKey, authMessage);
    // XMPP carries the server-final-message in <success/> (RFC 6120 §6.3.10), so no further round trip.
    return { kind: 'success', username: p.username, data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8') };
  }
}

/** gs2-header, then client-first-message-bare (RFC 5802 §7); a SaslStep when malformed. */
function parseClientFirst(data: Buffer): ClientFirst | SaslStep {
  const text = decodeUtf8(data);
  if (text === null) return saslFailure('malformed-request', 'not UTF-8');
  const c1 = text.indexOf(',');
  const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1);
  if (c2 < 0) return saslFailure('malformed-request', 'no gs2 header');
  const flag = text.slice(0, c1);
  const authzidField = text.slice(c1 + 1, c2);
  let cbType: ChannelBindingType | undefined;
  if (flag.startsWith('p=')) {
    const cbName = flag.slice(2);
    if (!CB_NAME.test(cbName)) return saslFailure('malformed-request', 'bad channel binding name');
    if (cbName === 'tls-exporter' || cbName === 'tls-server-end-point') cbType = cbName;
  } else if (flag !== 'n' && flag !== 'y') {
    return saslFailure('malformed-request', 'bad gs2 flag');
  }
  let authzid = '';
  if (authzidField !== '') {
    const decoded = authzidField.startsWith('a=') ? decodeSaslname(authzidField.slice(2)) : null;
    if (decoded === null) return saslFailure('malformed-request', 'bad authzid');
    authzid = decoded;
  }
  const bare = text.slice(c2 + 1);
  const attrs = bare.split(',');
  // RFC 5802 §5.1: 'm' is reserved; its presence MUST cause authentication failure.
  if (attrs[0]?.startsWith('m=')) return saslFailure('malformed-request', 'extensions not supported');
  const [userAttr = '', nonceAttr = '', ...extensions] = attrs;
  const username = userAttr.startsWith('n=') ? decodeSaslname(userAttr.slice(2)) : null;
  if (username === null) return saslFailure('malformed-request', 'bad username');
  const clientNonce = nonceAttr.startsWith('r=') ? nonceAttr.slice(2) : '';
  if (!PRINTABLE_NONCE.test(clientNonce)) return saslFailure('malformed-request', 'bad nonce');
  if (!extensions.every((e) => EXTENSION.test(e))) return saslFailure('malformed-request', 'bad attribute');
  return { gs2Header: text.slice(0, c2 + 1), cbType, authzid, username, clientNonce, bare };
}

interface ClientFinal { channelBinding: Buffer; nonce: string; proof: Buffer; withoutProof: string }

/** client-final-message = c=..,r=..[,ext]*,p=.. (RFC 5802 §7); a SaslStep when malformed. */
function parseClientFinal(data: Buffer): ClientFinal | SaslStep {
  const text = decodeUtf8(data);
  if (text === null) return saslFailure('malformed-request', 'not UTF-8');
  const attrs = text.split(',');
  const cAttr = attrs[0] ?? '';
  const rAttr = attrs[1] ?? '';
  const pAttr = attrs[attrs.length - 1] ?? '';
  if (attrs.length < 3 || !cAttr.startsWith('c=') || !rAttr.startsWith('r=') || !pAttr.startsWith('p=')) {
    return saslFailure('malformed-request', 'bad client-final-message');
  }
  if (!attrs.slice(2, -1).every((e) => EXTENSION.test(e))) return saslFailure('malformed-request', 'bad attribute');
  const channelBinding = decodeBase64(cAttr.slice(2));
  const proof = decodeBase64(pAttr.slice(2));
  if (channelBinding === null || proof === null) return saslFailure('malformed-request', 'bad base64');
  return { channelBinding, nonce: rAttr.slice(2), proof, withoutProof: text.slice(0, text.length - pAttr.length - 1) };
}

/** saslname → string: '=2C' is ',', '=3D' is '='; any other '=' (and ',' or NUL) is invalid. Null on error. */
function decodeSaslname(s: string): string | null {
  if (!SASLNAME.test(s)) return null;
  return s.replace(/=2C|=3D/gi, (m) => (m[2] === 'C' || m[2] === 'c' ? ',' : '='));
}

/** Strict base64: Buffer.from() would silently skip junk. Null on error. */
function decodeBase64(s: string): Buffer | null {
  return BASE64.test(s) ? Buffer.from(s, 'base64') : null;
}

/** Same salt for the same unknown name on every attempt, so retries can't tell it from a real one. */
function fakeSalt(hash: ScramHash, username: string, secret: Buffer): Buffer {
  return createHmac('sha256', secret).update(`${hash}\0${username}`).digest().subarray(0, 16);
}

function hmac(hash: ScramHash, key: Buffer, data: string): Buffer {
  return createHmac(hash, key).update(data, 'utf8').digest();
}

function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
