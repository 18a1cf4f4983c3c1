// Shared parts of the mock push vendors (test/mocks/*.ts): a recorder of what arrived, scripted
// failures, small HTTP helpers and JWT verification written independently of the backends' code
// (modules/appserver/backends/jwt.ts), so a mistake there cannot be mirrored here.

import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedFailure {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** What every mock offers tests: `received`, `next()`, `failNext()`. */
export class Recorder<T> {
  readonly received: T[] = [];
  private consumed = 0;
  private readonly waiters: ((item: T) => void)[] = [];
  private readonly failures: ScriptedFailure[] = [];

  record(item: T): void {
    this.received.push(item);
    const waiter = this.waiters.shift();
    if (waiter) {
      this.consumed++;
      waiter(item);
    }
  }

  /** The next request not yet taken by next(), waiting for it if needed. */
  next(timeoutMs = 5000): Promise<T> {
    if (this.consumed < this.received.length) return Promise.resolve(this.received[this.consumed++]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`mock: nothing arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (item: T) => {
        clearTimeout(timer);
        resolve(item);
      };
      this.waiters.push(waiter);
    });
  }

  /** Requests that arrived but were not taken by next() yet. */
  get pending(): number {
    return this.received.length - this.consumed;
  }

  /** The next request (after any earlier scripted ones) gets this answer instead of the normal one. */
  failNext(status: number, body?: unknown, headers?: Record<string, string>): void {
    this.failures.push({ status, body, headers });
  }

  takeFailure(): ScriptedFailure | undefined {
    return this.failures.shift();
  }
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

// ---- JWT (RFC 7519) verification ----

export interface VerifiedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/** Checks the signature of a compact JWT; returns its parts, or a reason it is refused. */
export function verifyJwt(token: string, alg: 'ES256' | 'RS256', key: KeyObject): VerifiedJwt | string {
  const parts = token.split('.');
  if (parts.length !== 3) return 'not a compact JWT';
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    claims = JSON.parse(Buffer.from(claimsPart, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return 'undecodable JWT';
  }
  if (header.alg !== alg) return `alg is ${String(header.alg)}, expected ${alg}`;
  const signature = Buffer.from(signaturePart, 'base64url');
  const input = Buffer.from(`${headerPart}.${claimsPart}`);
  if (alg === 'ES256' && signature.length !== 64) return 'ES256 signature is not 64 bytes (R || S)';
  const ok = alg === 'ES256'
    ? verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature)
    : verify('sha256', input, key, signature);
  return ok ? { header, claims } : 'bad signature';
}

/** An uncompressed P-256 point (65 bytes, base64url) as a KeyObject. */
export function p256PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
