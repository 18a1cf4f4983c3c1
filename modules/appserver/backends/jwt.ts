// JSON Web Tokens as push vendors want them (RFC 7519 with the JWS compact form, RFC 7515), and a
// cache for short-lived credentials. APNs provider tokens and VAPID are ES256 (RFC 7518 §3.4: the
// signature is R || S, 64 bytes, which node:crypto calls 'ieee-p1363' — DER signatures are refused);
// Google's service-account assertions are RS256.
//
// Left out: verification (the vendors verify; test/mocks verify independently of this file).

import { sign, type KeyObject } from 'node:crypto';

export type JwtAlgorithm = 'ES256' | 'RS256';

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** A signed compact JWT: base64url(header).base64url(claims).base64url(signature). */
export function signJwt(alg: JwtAlgorithm, header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${base64url(JSON.stringify({ alg, ...header }))}.${base64url(JSON.stringify(claims))}`;
  // RFC 7518 §3.4: "the JWS Signature value [is] the concatenation R || S", not a DER sequence.
  const signature = alg === 'ES256'
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', Buffer.from(input), key);
  return `${input}.${base64url(signature)}`;
}

export interface Credential<T> {
  value: T;
  /** When to fetch a new one (ms since the epoch, on the cache's clock). */
  refreshAt: number;
}

/**
 * Holds one credential (an access token, a signed JWT) until its refresh time, fetching a new one on
 * demand. Concurrent callers share one fetch; a failed fetch is not cached.
 */
export class CredentialCache<T> {
  private current: Credential<T> | undefined;
  private pending: Promise<T> | undefined;

  constructor(private readonly fetch: () => Promise<Credential<T>> | Credential<T>, private readonly now: () => number) {}

  async get(): Promise<T> {
    if (this.current && this.now() < this.current.refreshAt) return this.current.value;
    this.pending ??= (async () => {
      try {
        const fresh = await this.fetch();
        this.current = fresh;
        return fresh.value;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  /** Drops `stale` (the vendor refused it), unless another caller already replaced it. */
  invalidate(stale: T): void {
    if (this.current?.value === stale) this.current = undefined;
  }
}
