// A mock of Windows Push Notification Services: the OAuth 2.0 token endpoint (client credentials
// grant with the app's Package SID and secret, scope notify.windows.com) and channel URIs that
// accept raw notifications only with a valid access token, X-WNS-Type: wns/raw and
// Content-Type: application/octet-stream, answering with WNS's status codes.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Recorder, closeServer, listen, nowSeconds, readBody, sendJson } from './common.js';

export interface WnsRequest {
  channel: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  payload?: unknown;
  status: number;
}

export interface WnsMock extends Pick<Recorder<WnsRequest>, 'received' | 'next' | 'failNext'> {
  url: string;
  tokenUrl: string;
  tokenRequests: { status: number; scope?: string }[];
  /** A channel URI for a device (…/w/?token=…), as a Windows app gets from CreatePushNotificationChannelForApplicationAsync. */
  channel(): string;
  /** The channel expires: 410 Gone. */
  expire(channelUri: string): void;
  revokeAccessTokens(): void;
  tokenLifetimeS: number;
  close(): Promise<void>;
}

export async function startWnsMock(credentials: { clientId: string; clientSecret: string }): Promise<WnsMock> {
  const recorder = new Recorder<WnsRequest>();
  const tokenRequests: WnsMock['tokenRequests'] = [];
  const channels = new Set<string>();
  const expired = new Set<string>();
  const accessTokens = new Map<string, number>();
  const server = createServer((req, res) => void handle(req, res));
  const url = await listen(server);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.method === 'POST' && req.url === '/accesstoken.srf') return tokenEndpoint(body, res);
    const channel = new URL(req.url ?? '/', url).searchParams.get('token') ?? '';
    const request: WnsRequest = { channel, headers: req.headers, body, status: 200 };
    try {
      request.payload = JSON.parse(body.toString('utf8'));
    } catch { /* raw bytes */ }
    const scripted = recorder.takeFailure();
    const verdict = scripted ?? judge(req, channel);
    request.status = verdict.status;
    recorder.record(request);
    res.writeHead(verdict.status, {
      'x-wns-msg-id': randomBytes(8).toString('hex'),
      ...(verdict.status === 200 ? { 'x-wns-status': 'received', 'x-wns-deviceconnectionstatus': 'connected' } : {}),
      ...(verdict.headers ?? {}),
    });
    res.end();
  }

  function tokenEndpoint(body: Buffer, res: ServerResponse): void {
    const form = new URLSearchParams(body.toString('utf8'));
    const refuse = (error: string) => {
      tokenRequests.push({ status: 400, scope: form.get('scope') ?? undefined });
      sendJson(res, 400, { error, error_description: error });
    };
    if (form.get('grant_type') !== 'client_credentials') return refuse('unsupported_grant_type');
    if (form.get('client_id') !== credentials.clientId || form.get('client_secret') !== credentials.clientSecret) return refuse('invalid_client');
    if (form.get('scope') !== 'notify.windows.com') return refuse('invalid_scope');
    const token = `EgAcAQMAAAAALYAAY/mock${randomBytes(12).toString('base64url')}`;
    accessTokens.set(token, nowSeconds() + mock.tokenLifetimeS);
    tokenRequests.push({ status: 200, scope: form.get('scope') ?? undefined });
    sendJson(res, 200, { token_type: 'bearer', access_token: token, expires_in: mock.tokenLifetimeS });
  }

  function judge(req: IncomingMessage, channel: string): { status: number; headers?: Record<string, string> } {
    if (req.method !== 'POST') return { status: 405 };
    const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const expiry = bearer ? accessTokens.get(bearer) : undefined;
    if (expiry === undefined || expiry <= nowSeconds()) {
      return { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token",error_description="Token expired"' } };
    }
    if (req.headers['x-wns-type'] !== 'wns/raw') return { status: 400, headers: { 'x-wns-error-description': 'X-WNS-Type missing or not wns/raw' } };
    if (req.headers['content-type'] !== 'application/octet-stream') return { status: 400, headers: { 'x-wns-error-description': 'raw needs application/octet-stream' } };
    if (expired.has(channel)) return { status: 410 };
    if (!channels.has(channel)) return { status: 404 };
    return { status: 200 };
  }

  const mock: WnsMock = {
    url,
    tokenUrl: `${url}/accesstoken.srf`,
    tokenRequests,
    tokenLifetimeS: 86400,
    received: recorder.received,
    next: (timeoutMs?: number) => recorder.next(timeoutMs),
    failNext: (status, body, headers) => recorder.failNext(status, body, headers),
    channel: () => {
      const token = randomBytes(16).toString('base64url');
      channels.add(token);
      return `${url}/w/?token=${token}`;
    },
    expire: (channelUri) => void expired.add(new URL(channelUri).searchParams.get('token') ?? ''),
    revokeAccessTokens: () => accessTokens.clear(),
    close: () => closeServer(server),
  };
  return mock;
}
