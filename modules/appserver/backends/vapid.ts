// Voluntary Application Server Identification (RFC 8292) for Web Push and UnifiedPush: one P-256
// key pair per server, generated on first start and kept in the data directory, whose public key
// clients pass to PushManager.subscribe() (applicationServerKey) so the push service accepts only
// our signed requests for their subscription.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { base64url, signJwt } from './jwt.js';

export interface VapidKeys {
  /** Uncompressed P-256 point, base64url (RFC 8292 §3.2 'k' parameter; applicationServerKey). */
  publicKey: string;
  privateKey: KeyObject;
}

interface StoredVapidKeys {
  /** EC private key as a JWK (crv P-256, x, y, d). */
  jwk: { kty: string; crv: string; x: string; y: string; d: string };
  created: string;
}

/** Reads the key pair from `file`, creating it (mode 0600) when absent. */
export function loadVapidKeys(file: string): VapidKeys {
  let stored: StoredVapidKeys;
  try {
    stored = JSON.parse(readFileSync(file, 'utf8')) as StoredVapidKeys;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read VAPID keys from ${file}: ${(err as Error).message}`);
    stored = createVapidFile(file);
  }
  const privateKey = createPrivateKey({ key: stored.jwk, format: 'jwk' });
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}

function createVapidFile(file: string): StoredVapidKeys {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const stored: StoredVapidKeys = { jwk: privateKey.export({ format: 'jwk' }) as StoredVapidKeys['jwk'], created: new Date().toISOString() };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    // 'wx': two hosts starting at once must not overwrite each other's fresh key.
    writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return JSON.parse(readFileSync(file, 'utf8')) as StoredVapidKeys;
    throw err;
  }
}

function rawPublicKey(privateKey: KeyObject): string {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return base64url(point);
}

/** Signs VAPID tokens, one per push service origin, reused for half their lifetime. */
export class VapidSigner {
  private readonly tokens = new Map<string, { jwt: string; refreshAt: number }>();

  constructor(
    private readonly keys: VapidKeys,
    private readonly subject: string | undefined,
    private readonly lifetimeMs: number,
    private readonly now: () => number,
  ) {}

  /** The Authorization header value for a request to `endpoint` (RFC 8292 §3). */
  authorization(endpoint: URL): string {
    // RFC 8292 §2: "the 'aud' claim ... MUST include the origin of the push resource URL".
    const audience = endpoint.origin;
    let token = this.tokens.get(audience);
    if (!token || this.now() >= token.refreshAt) {
      token = this.sign(audience);
      this.tokens.set(audience, token);
    }
    return `vapid t=${token.jwt}, k=${this.keys.publicKey}`;
  }

  private sign(audience: string): { jwt: string; refreshAt: number } {
    const issued = this.now();
    // RFC 8292 §2: "exp ... MUST NOT be more than 24 hours from the time of the request".
    const claims: Record<string, unknown> = { aud: audience, exp: Math.floor((issued + this.lifetimeMs) / 1000) };
    if (this.subject) claims.sub = this.subject;
    if (this.tokens.size > 1000) this.tokens.clear();  // endpoints come from clients: bound the cache
    return { jwt: signJwt('ES256', { typ: 'JWT' }, claims, this.keys.privateKey), refreshAt: issued + this.lifetimeMs / 2 };
  }
}
