// Message Encryption for Web Push (RFC 8291) with the aes128gcm content coding (RFC 8188): what a
// push service relays is readable only by the user agent that subscribed. Used by Web Push and by
// UnifiedPush when the client gave keys.
//
// One record only (RFC 8291 §4: "push message payloads MUST be ... a single record"), record size
// 4096, no padding beyond the delimiter. Left out: the obsolete 'aesgcm' coding (draft-ietf-webpush-
// encryption-04), which browsers and distributors no longer need.

import { createCipheriv, createECDH, createHmac, randomBytes, type ECDH } from 'node:crypto';

export const RECORD_SIZE = 4096;
/** RFC 8188 §2: 16-byte tag; RFC 8291 §4: 1-byte delimiter. What fits in one 4096-byte record. */
export const MAX_PLAINTEXT = RECORD_SIZE - 16 - 1;

export interface EncryptOptions {
  /** The subscription's p256dh: uncompressed P-256 point, 65 bytes. */
  uaPublic: Buffer;
  /** The subscription's auth secret, 16 bytes. */
  authSecret: Buffer;
  /** Tests only: a fixed sender key pair and salt (RFC 8291 §5 example). */
  senderKeys?: ECDH;
  salt?: Buffer;
}

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** HKDF-Expand for one block (RFC 5869 §2.3), enough for the ≤ 32-byte outputs used here. */
function expand(prk: Buffer, info: Buffer, length: number): Buffer {
  return hmac(prk, Buffer.concat([info, Buffer.from([1])])).subarray(0, length);
}

/** The aes128gcm body: header (salt, rs, idlen, keyid = sender public key) then the one record. */
export function encryptPushPayload(plaintext: Buffer, options: EncryptOptions): Buffer {
  if (plaintext.length > MAX_PLAINTEXT) throw new Error('push payload too large for one record');
  const sender = options.senderKeys ?? createECDH('prime256v1');
  if (!options.senderKeys) sender.generateKeys();
  const asPublic = sender.getPublicKey();
  const salt = options.salt ?? randomBytes(16);
  // RFC 8291 §3.3-3.4:
  //   ecdh_secret = ECDH(as_private, ua_public)
  //   PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret)
  //   key_info = "WebPush: info" || 0x00 || ua_public || as_public
  //   IKM = HMAC-SHA-256(PRK_key, key_info || 0x01)
  const ecdhSecret = sender.computeSecret(options.uaPublic);
  const prkKey = hmac(options.authSecret, ecdhSecret);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), options.uaPublic, asPublic]);
  const ikm = expand(prkKey, keyInfo, 32);
  // RFC 8188 §2.2-2.3: PRK = HMAC-SHA-256(salt, IKM); CEK and NONCE expanded with their info strings.
  const prk = hmac(salt, ikm);
  const cek = expand(prk, Buffer.from('Content-Encoding: aes128gcm\0'), 16);
  const nonce = expand(prk, Buffer.from('Content-Encoding: nonce\0'), 12);  // record 0: XOR with 0 is a no-op
  const cipher = createCipheriv('aes-128-gcm', cek, nonce);
  // RFC 8188 §2: the last record's padding delimiter is 0x02.
  const record = Buffer.concat([cipher.update(plaintext), cipher.update(Buffer.from([2])), cipher.final(), cipher.getAuthTag()]);
  const header = Buffer.alloc(21);
  salt.copy(header, 0);
  header.writeUInt32BE(RECORD_SIZE, 16);
  header.writeUInt8(asPublic.length, 20);
  return Buffer.concat([header, asPublic, record]);
}

/** Decodes base64url (or standard base64, which some clients send) to bytes. */
export function decodeBase64Key(value: string): Buffer {
  return Buffer.from(value.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), 'base64url');
}
