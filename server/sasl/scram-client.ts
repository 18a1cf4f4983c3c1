// The client side of SCRAM (RFC 5802 / RFC 7677), for Herald's own test client and load
// generator. Keeps the salted password per (password, salt, iterations) so a load generator
// logging the same account in repeatedly does not spend its CPU on PBKDF2.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramHash } from './mechanism.js';

const saltedCache = new Map<string, Buffer>();

function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer {
  const key = `${hash}\0${password}\0${salt.toString('base64')}\0${iterations}`;
  let value = saltedCache.get(key);
  if (!value) {
    value = pbkdf2Sync(password, salt, iterations, hash === 'sha1' ? 20 : 32, hash);
    if (saltedCache.size > 100_000) saltedCache.clear();
    saltedCache.set(key, value);
  }
  return value;
}

function escapeUsername(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export interface ScramClientOptions {
  /** GS2 channel-binding flag and data: 'n' (none), 'y' (client could, thinks server can't), or a type with its data. */
  channelBinding?: { type: string; data: Buffer } | 'y' | 'n';
}

export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private readonly gs2Header: string;
  private readonly cbData: Buffer;
  private clientFirstBare = '';
  private serverSignature: Buffer | undefined;

  constructor(private readonly hash: ScramHash, private readonly username: string, private readonly password: string, options: ScramClientOptions = {}) {
    const cb = options.channelBinding ?? 'n';
    if (cb === 'n' || cb === 'y') {
      this.gs2Header = `${cb},,`;
      this.cbData = Buffer.alloc(0);
    } else {
      this.gs2Header = `p=${cb.type},,`;
      this.cbData = cb.data;
    }
  }

  first(): Buffer {
    this.clientFirstBare = `n=${escapeUsername(this.username)},r=${this.clientNonce}`;
    return Buffer.from(this.gs2Header + this.clientFirstBare);
  }

  /** Answers the server-first message; throws when it is not acceptable. */
  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString();
    const attrs = new Map(text.split(',').map((part) => [part[0], part.slice(2)] as const));
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || !salt || !Number.isInteger(iterations)) throw new Error(`bad server-first message: ${text}`);
    const channelBinding = Buffer.concat([Buffer.from(this.gs2Header), this.cbData]).toString('base64');
    const withoutProof = `c=${channelBinding},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const salted = saltedPassword(this.hash, this.password, Buffer.from(salt, 'base64'), iterations);
    const clientKey = createHmac(this.hash, salted).update('Client Key').digest();
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const clientSignature = createHmac(this.hash, storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!; // eslint-disable-line no-bitwise
    const serverKey = createHmac(this.hash, salted).update('Server Key').digest();
    this.serverSignature = createHmac(this.hash, serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Checks the server's signature from the success data. */
  verify(serverFinal: Buffer): boolean {
    const text = serverFinal.toString();
    if (!text.startsWith('v=') || !this.serverSignature) return false;
    const got = Buffer.from(text.slice(2), 'base64');
    return got.length === this.serverSignature.length && timingSafeEqual(got, this.serverSignature);
  }
}
