// A mock APNs provider API: HTTP/2 over TLS (a throwaway certificate from server/tls/selfsigned.ts)
// that checks what Apple checks — the provider token's ES256 signature against the team's public
// key, kid, iss and iat age (or the client certificate), the topic, push type and priority, the
// token path, the payload size — and answers with Apple's status codes and reasons.

import { randomUUID, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, constants as h2, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { generateSelfSignedCertificate } from '../../server/tls/selfsigned.js';
import { Recorder, nowSeconds, verifyJwt, type VerifiedJwt } from './common.js';

export interface ApnsMockOptions {
  /** Token auth: the team and key whose public half verifies provider tokens. */
  teamId?: string;
  keyId?: string;
  publicKey?: KeyObject;
  /** Certificate auth instead: the client certificate (PEM) that is trusted. */
  clientCertificate?: string;
  /** Bundle IDs this team may push to. */
  topics: string[];
  /** Names in the mock's certificate (the first is its subject; give two mocks different ones to trust both). */
  certificateNames?: string[];
}

export interface ApnsRequest {
  token: string;
  headers: IncomingHttpHeaders;
  payload: Record<string, unknown> & { aps?: Record<string, unknown> };
  jwt?: VerifiedJwt;
  /** What the mock answered. */
  status: number;
  reason?: string;
}

export interface ApnsMock extends Pick<Recorder<ApnsRequest>, 'received' | 'next' | 'failNext'> {
  url: string;
  /** PEM file of the mock's certificate: the backend's ca_file. */
  caFile: string;
  /** Tokens answered with 410 Unregistered. */
  goneTokens: Set<string>;
  /** Sends GOAWAY on every open connection and closes it, as APNs does on maintenance. */
  dropConnections(): Promise<void>;
  close(): Promise<void>;
}

/** A team's APNs auth key as Apple hands it out (.p8: PKCS#8 PEM, P-256), written to `dir`. */
export function createApnsKey(dir: string, keyId = 'KEY1234567'): { keyFile: string; publicKey: KeyObject; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyFile = join(dir, `AuthKey_${keyId}.p8`);
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { keyFile, publicKey, keyId };
}

export async function startApnsMock(options: ApnsMockOptions): Promise<ApnsMock> {
  const recorder = new Recorder<ApnsRequest>();
  const goneTokens = new Set<string>();
  const cert = generateSelfSignedCertificate({ domains: options.certificateNames ?? ['127.0.0.1', 'localhost'] });
  const dir = mkdtempSync(join(tmpdir(), 'apns-mock-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert.certPem);
  const server: Http2SecureServer = createSecureServer({
    cert: cert.certPem,
    key: cert.keyPem,
    ...(options.clientCertificate ? { requestCert: true, rejectUnauthorized: false, ca: [options.clientCertificate] } : {}),
  });
  server.on('stream', (stream, headers) => void handle(stream, headers));
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });

  async function handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = String(headers[h2.HTTP2_HEADER_PATH] ?? '');
    const token = /^\/3\/device\/([^/?]+)$/.exec(path)?.[1] ?? '';
    const request: ApnsRequest = { token, headers, payload: {}, status: 200 };
    try {
      request.payload = JSON.parse(body.toString('utf8')) as ApnsRequest['payload'];
    } catch { /* judged below */ }
    const scripted = recorder.takeFailure();
    const verdict = scripted ? { status: scripted.status, reason: (scripted.body as { reason?: string } | undefined)?.reason } : judge(stream, headers, token, body, request);
    request.status = verdict.status;
    if (verdict.reason) request.reason = verdict.reason;
    recorder.record(request);
    if (stream.destroyed) return;
    const responseHeaders = { [h2.HTTP2_HEADER_STATUS]: verdict.status, 'apns-id': randomUUID(), ...(scripted?.headers ?? {}) };
    if (verdict.status === 200) {
      stream.respond(responseHeaders, { endStream: true });
      return;
    }
    stream.respond({ ...responseHeaders, 'content-type': 'application/json' });
    const answer: Record<string, unknown> = scripted?.body !== undefined ? scripted.body as Record<string, unknown> : { reason: verdict.reason };
    if (verdict.status === 410 && answer.timestamp === undefined) answer.timestamp = Date.now();
    stream.end(JSON.stringify(answer));
  }

  function judge(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, token: string, body: Buffer, request: ApnsRequest): { status: number; reason?: string } {
    if (headers[h2.HTTP2_HEADER_METHOD] !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
    if (!token) return { status: 404, reason: 'BadPath' };
    const auth = options.clientCertificate ? checkCertificate(stream) : checkProviderToken(headers, request);
    if (auth) return auth;
    if (!/^[0-9a-f]{64,}$/i.test(token)) return { status: 400, reason: 'BadDeviceToken' };
    const topic = headers['apns-topic'];
    if (typeof topic !== 'string' || topic === '') return { status: 400, reason: 'MissingTopic' };
    if (!options.topics.includes(topic)) return { status: 400, reason: 'TopicDisallowed' };
    const pushType = headers['apns-push-type'];
    const priority = headers['apns-priority'];
    if (pushType !== 'alert' && pushType !== 'background') return { status: 400, reason: 'InvalidPushType' };
    if (priority !== '5' && priority !== '10') return { status: 400, reason: 'BadPriority' };
    // Apple: background pushes must be sent with priority 5.
    if (pushType === 'background' && priority !== '5') return { status: 400, reason: 'BadPriority' };
    if (!/^\d+$/.test(String(headers['apns-expiration'] ?? '0'))) return { status: 400, reason: 'BadExpirationDate' };
    if (Buffer.byteLength(String(headers['apns-collapse-id'] ?? '')) > 64) return { status: 400, reason: 'BadCollapseId' };
    if (body.length === 0) return { status: 400, reason: 'PayloadEmpty' };
    if (body.length > 4096) return { status: 413, reason: 'PayloadTooLarge' };
    const aps = request.payload.aps;
    if (typeof aps !== 'object' || aps === null) return { status: 400, reason: 'PayloadEmpty' };
    if (pushType === 'background' && aps['content-available'] !== 1) return { status: 400, reason: 'InvalidPushType' };
    if (pushType === 'alert' && aps.alert === undefined) return { status: 400, reason: 'InvalidPushType' };
    if (goneTokens.has(token)) return { status: 410, reason: 'Unregistered' };
    return { status: 200 };
  }

  function checkProviderToken(headers: IncomingHttpHeaders, request: ApnsRequest): { status: number; reason: string } | undefined {
    const authorization = headers.authorization;
    const match = typeof authorization === 'string' ? /^bearer (\S+)$/.exec(authorization) : null;
    if (!match?.[1]) return { status: 403, reason: 'MissingProviderToken' };
    if (!options.publicKey) return { status: 403, reason: 'InvalidProviderToken' };
    const jwt = verifyJwt(match[1], 'ES256', options.publicKey);
    if (typeof jwt === 'string') return { status: 403, reason: 'InvalidProviderToken' };
    request.jwt = jwt;
    if (jwt.header.kid !== options.keyId || jwt.claims.iss !== options.teamId) return { status: 403, reason: 'InvalidProviderToken' };
    const iat = jwt.claims.iat;
    if (typeof iat !== 'number') return { status: 403, reason: 'InvalidProviderToken' };
    // Apple: "APNs rejects ... a token [whose] issue time is more than one hour in the past".
    if (iat < nowSeconds() - 3600) return { status: 403, reason: 'ExpiredProviderToken' };
    if (iat > nowSeconds() + 60) return { status: 403, reason: 'InvalidProviderToken' };
    return undefined;
  }

  function checkCertificate(stream: ServerHttp2Stream): { status: number; reason: string } | undefined {
    const socket = stream.session?.socket as TLSSocket | undefined;
    if (!socket?.authorized) return { status: 403, reason: 'BadCertificate' };
    return undefined;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile,
    goneTokens,
    dropConnections: async () => {
      await Promise.all([...sessions].map((session) => new Promise<void>((resolve) => {
        session.goaway(h2.NGHTTP2_NO_ERROR);
        session.close(() => resolve());
      })));
    },
    received: recorder.received,
    next: (timeoutMs?: number) => recorder.next(timeoutMs),
    failNext: (status, body, headers) => recorder.failNext(status, body, headers),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open client sessions would keep close() waiting: end them.
        for (const session of sessions) session.destroy();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
