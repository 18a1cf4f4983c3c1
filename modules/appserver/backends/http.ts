// HTTP/1.1 requests to push vendors (FCM, Web Push, UBports, WNS, UnifiedPush; APNs is HTTP/2 and
// has its own session in apns.ts), with what every backend needs: a deadline, a bounded response,
// network failures reported as 'retry', Retry-After (RFC 9110 §10.2.3) read, and a guard for URLs
// that clients hand us (Web Push and UnifiedPush endpoints, WNS channel URIs): an app server that
// POSTs wherever a client says must not become a way into the server's own network.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent as HttpAgent, request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequestRaw } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { stanzaError } from '../../../server/errors.js';
import { duration } from '../../../server/module-api.js';
import { PushDeliveryError } from '../backend.js';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpRequestOptions {
  method?: 'POST' | 'GET';
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  timeoutMs: number;
  /** Refuse to connect to loopback, private and link-local addresses (URLs from clients). */
  publicOnly?: boolean;
}

/**
 * Connections per vendor host, kept open between pushes. A burst of pushes (after a pause of the
 * event loop, or many devices at once) queues for these instead of opening a connection per push:
 * a new connection (and, for https, a TLS handshake) costs far more than the request, and vendors
 * frown on connection churn. 64 connections at a vendor latency of 50 ms still carry ~1,300
 * pushes/s per host.
 */
const CONNECTIONS_PER_HOST = 64;
const agentOptions = { keepAlive: true, maxSockets: CONNECTIONS_PER_HOST, maxFreeSockets: CONNECTIONS_PER_HOST, scheduling: 'lifo' as const };
// Separate pools for client-supplied URLs: a connection opened for a configured vendor URL (which
// may be a private address) must never be reused for a URL that has to resolve publicly.
const agents = {
  http: new HttpAgent(agentOptions),
  https: new HttpsAgent(agentOptions),
  publicHttp: new HttpAgent(agentOptions),
  publicHttps: new HttpsAgent(agentOptions),
};

/** Vendors answer in a few hundred bytes; more than this is cut off rather than buffered. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * One request. Resolves with any HTTP status; rejects only with PushDeliveryError: 'retry' for
 * network errors and timeouts (the vendor may be back soon), 'rejected' for a refused address.
 */
export function httpRequest(url: URL, options: HttpRequestOptions): Promise<HttpResponse> {
  const secure = url.protocol === 'https:';
  const send = secure ? httpsRequestRaw : httpRequestRaw;
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const headers: Record<string, string | number> = { ...options.headers };
  if (body) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: options.method ?? 'POST',
      headers,
      agent: options.publicOnly ? (secure ? agents.publicHttps : agents.publicHttp) : secure ? agents.https : agents.http,
      lookup: options.publicOnly ? publicOnlyLookup : undefined,
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_RESPONSE_BYTES) chunks.push(chunk);
        size += chunk.length;
      });
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8'),
        });
      });
      res.on('error', (err) => fail(err));
    });
    // A plain timer rather than AbortSignal.timeout(): the signal machinery (an EventTarget and
    // its listeners on the request stream) cost ~3 % of the server's CPU per push at 1,000/s.
    const deadline = setTimeout(() => req.destroy(Object.assign(new Error('vendor did not answer in time'), { name: 'TimeoutError' })), options.timeoutMs);
    deadline.unref();
    const fail = (err: Error): void => {
      clearTimeout(deadline);
      reject(networkFailure(err));
    };
    req.on('error', fail);
    req.end(body);
  });
}

function networkFailure(err: Error & { code?: string }): PushDeliveryError {
  if (err.code === 'HERALD_PRIVATE_ADDRESS') {
    return new PushDeliveryError('rejected', 'endpoint resolves to a private or loopback address', { reason: 'private-address' });
  }
  const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError' || err.code === 'ABORT_ERR';
  const reason = timedOut ? 'timeout' : (err.code ?? 'network');
  return new PushDeliveryError('retry', timedOut ? 'vendor did not answer in time' : 'network error', { reason });
}

// ---- addresses clients may make us connect to ----

/** Loopback, private (RFC 1918, RFC 4193), link-local, CGNAT, unspecified and similar ranges. */
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3],
] as const) NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !NON_PUBLIC.check(address, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);  // IPv4-mapped IPv6 (RFC 4291 §2.5.5.2)
  if (mapped?.[1]) return !NON_PUBLIC.check(mapped[1], 'ipv4');
  return !NON_PUBLIC.check(address, 'ipv6');
}

/** DNS lookup that fails for non-public addresses, so a name cannot point us at the inside either. */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '', 0);
    const usable = addresses.filter((a) => isPublicAddress(a.address));
    if (usable.length === 0) {
      const refused = Object.assign(new Error(`${hostname} has no public address`), { code: 'HERALD_PRIVATE_ADDRESS' });
      return callback(refused, '', 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
    callback(null, usable[0]!.address, usable[0]!.family);
  });
};

export interface EndpointPolicy {
  /** Accept http:// and non-public addresses (tests, a distributor on the LAN). */
  allowInsecure: boolean;
  /** If set, the host must be one of these or a subdomain of one (WNS: notify.windows.com). */
  hostSuffixes?: readonly string[];
  /** Field name for error texts. */
  field: string;
}

/** Checks a client-supplied push URL at registration; throws StanzaError so the client learns why. */
export function checkEndpointUrl(value: string | undefined, policy: EndpointPolicy): URL {
  if (!value) throw stanzaError.badRequest(`${policy.field} is required`);
  if (value.length > 4096) throw stanzaError.notAcceptable(`${policy.field} is too long`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw stanzaError.badRequest(`${policy.field} is not a URL`);
  }
  if (url.protocol !== 'https:' && !(policy.allowInsecure && url.protocol === 'http:')) {
    throw stanzaError.notAcceptable(`${policy.field} must be an https URL`);
  }
  if (url.username || url.password) throw stanzaError.notAcceptable(`${policy.field} must not carry credentials`);
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (policy.hostSuffixes && !policy.hostSuffixes.some((suffix) => host === suffix || host.endsWith(`.${suffix}`))) {
    throw stanzaError.notAcceptable(`${policy.field} is not on an allowed host`);
  }
  if (!policy.allowInsecure && (host === 'localhost' || (isIP(host) !== 0 && !isPublicAddress(host)))) {
    throw stanzaError.notAcceptable(`${policy.field} points at a private address`);
  }
  return url;
}

// ---- answers ----

/** Retry-After as milliseconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function retryAfterMs(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A JSON body, or undefined when the vendor sent something else. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `{ key: value }` lookups on untyped JSON. */
export function jsonField(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

export function jsonString(value: unknown, key: string): string | undefined {
  const field = jsonField(value, key);
  return typeof field === 'string' ? field : undefined;
}

/** The failure for a status the backend has no special rule for: 429/5xx retry, other 4xx rejected. */
export function genericFailure(status: number, reason: string | undefined, headers: IncomingHttpHeaders, now?: number): PushDeliveryError {
  const details = { status, reason, retryAfterMs: retryAfterMs(headers['retry-after'], now) };
  if (status === 429 || status >= 500) return new PushDeliveryError('retry', `vendor busy (HTTP ${status})`, details);
  return new PushDeliveryError('rejected', `vendor refused the notification (HTTP ${status})`, details);
}

// ---- shared by the backends ----

/** Tests pass a clock to exercise token lifetimes without waiting an hour. */
export interface BackendOptions {
  now?: () => number;
}

export const timeoutSetting = () =>
  duration().prefault('10s').describe('Give up on a vendor request after this long; the push is then retried');

export const ttlSetting = (what: string) =>
  duration().prefault('1 day').describe(`How long ${what} keeps a push for an unreachable device`);
