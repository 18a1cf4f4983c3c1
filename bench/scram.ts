// SCRAM-SHA-1 client side for the load generator (RFC 5802), cut down to what one login costs a
// real client that has logged in before: the keys derived from the password (SaltedPassword,
// ClientKey, StoredKey, ServerKey) are cached per (password, salt, iterations), so each login
// costs two HMACs and one nonce here. server/sasl/scram-client.ts is the general client (it
// re-derives the keys from the cached salted password on every login); the server side is
// unaffected either way.

import { createHash, createHmac, pbkdf2Sync, randomFillSync, timingSafeEqual } from 'node:crypto';

interface Keys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const keyCache = new Map<string, Keys>();

function keysFor(password: string, salt: string, iterations: number): Keys {
  const cacheKey = `${password}\0${salt}\0${iterations}`;
  let keys = keyCache.get(cacheKey);
  if (!keys) {
    const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, 20, 'sha1');
    const clientKey = createHmac('sha1', salted).update('Client Key').digest();
    keys = { clientKey, storedKey: createHash('sha1').update(clientKey).digest(), serverKey: createHmac('sha1', salted).update('Server Key').digest() };
    keyCache.set(cacheKey, keys);
  }
  return keys;
}

// Nonces from a pooled buffer: one randomFillSync per 170 logins instead of one each.
const pool = Buffer.alloc(18 * 170);
let poolOffset = pool.length;

function nonce(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += 18;
  return pool.toString('base64', poolOffset - 18, poolOffset);
}

const GS2_HEADER = 'n,,';
const CHANNEL_BINDING = Buffer.from(GS2_HEADER).toString('base64');

export class BenchScram {
  private readonly clientFirstBare: string;
  private readonly clientNonce = nonce();
  private serverSignature: Buffer | undefined;

  constructor(username: string, private readonly password: string) {
    // Bench user names need no saslname escaping ('=' and ',' never occur in them).
    this.clientFirstBare = `n=${username},r=${this.clientNonce}`;
  }

  /** client-first-message, base64. */
  first(): string {
    return Buffer.from(GS2_HEADER + this.clientFirstBare).toString('base64');
  }

  /** client-final-message (base64) for the base64 server-first-message; throws when it is not acceptable. */
  final(serverFirstBase64: string): string {
    const serverFirst = Buffer.from(serverFirstBase64, 'base64').toString();
    let nonceValue = '';
    let salt = '';
    let iterations = 0;
    for (const part of serverFirst.split(',')) {
      if (part.startsWith('r=')) nonceValue = part.slice(2);
      else if (part.startsWith('s=')) salt = part.slice(2);
      else if (part.startsWith('i=')) iterations = Number(part.slice(2));
    }
    if (!nonceValue.startsWith(this.clientNonce) || salt === '' || !(iterations > 0)) throw new Error(`bad server-first message: ${serverFirst}`);
    const keys = keysFor(this.password, salt, iterations);
    const withoutProof = `c=${CHANNEL_BINDING},r=${nonceValue}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha1', keys.storedKey).update(authMessage).digest();
    for (let i = 0; i < signature.length; i++) signature[i] = signature[i]! ^ keys.clientKey[i]!; // eslint-disable-line no-bitwise
    this.serverSignature = createHmac('sha1', keys.serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${signature.toString('base64')}`).toString('base64');
  }

  /** Checks the server signature in the base64 server-final-message. */
  verify(serverFinalBase64: string): boolean {
    const serverFinal = Buffer.from(serverFinalBase64, 'base64').toString();
    if (!serverFinal.startsWith('v=') || !this.serverSignature) return false;
    const got = Buffer.from(serverFinal.slice(2), 'base64');
    return got.length === this.serverSignature.length && timingSafeEqual(got, this.serverSignature);
  }
}
