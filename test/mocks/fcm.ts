// A mock of Google's OAuth2 token endpoint and the FCM HTTP v1 API. The token endpoint verifies the
// service account's RS256 assertion (signature, iss, aud, scope, iat/exp) as Google does and hands
// out access tokens; messages:send accepts only those tokens, checks the message and answers with
// FCM's error format ({ error: { code, status, message, details: [{ errorCode }] } }).

import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Recorder, closeServer, listen, nowSeconds, readBody, sendJson, verifyJwt, type VerifiedJwt } from './common.js';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

export interface ServiceAccountFixture {
  file: string;
  json: Record<string, string>;
  publicKey: KeyObject;
}

/** A service-account key file as the Firebase console downloads it, its token_uri at the mock. */
export function createServiceAccount(dir: string, tokenUri: string, projectId = 'herald-test'): ServiceAccountFixture {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const json = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: `firebase-adminsdk@${projectId}.iam.gserviceaccount.com`,
    client_id: '1234567890',
    token_uri: tokenUri,
  };
  const file = join(dir, 'service-account.json');
  writeFileSync(file, JSON.stringify(json, null, 2), { mode: 0o600 });
  return { file, json, publicKey };
}

export interface FcmMessageRequest {
  headers: IncomingHttpHeaders;
  project: string;
  message: { token?: string; data?: Record<string, unknown>; android?: Record<string, unknown> } & Record<string, unknown>;
  status: number;
}

export interface FcmTokenRequest {
  assertion?: VerifiedJwt;
  status: number;
  error?: string;
}

export interface FcmMock extends Pick<Recorder<FcmMessageRequest>, 'received' | 'next' | 'failNext'> {
  url: string;
  /** The token endpoint (the service account's token_uri). */
  tokenUrl: string;
  tokenRequests: FcmTokenRequest[];
  /** Registration tokens answered with 404 UNREGISTERED. */
  unregistered: Set<string>;
  /** Set once the service account is known (the key is made after the mock has its URL). */
  trust(account: { publicKey: KeyObject; clientEmail: string; projectId: string }): void;
  /** Forgets every access token handed out, as if they expired early. */
  revokeAccessTokens(): void;
  /** Lifetime of new access tokens (expires_in), seconds. */
  tokenLifetimeS: number;
  close(): Promise<void>;
}

export async function startFcmMock(): Promise<FcmMock> {
  const recorder = new Recorder<FcmMessageRequest>();
  const tokenRequests: FcmTokenRequest[] = [];
  const unregistered = new Set<string>();
  const accessTokens = new Map<string, number>();  // token → expiry (s)
  let account: { publicKey: KeyObject; clientEmail: string; projectId: string } | undefined;
  const server = createServer((req, res) => void route(req, res));
  const url = await listen(server);
  const tokenUrl = `${url}/token`;
  const mock: FcmMock = {
    url, tokenUrl, tokenRequests, unregistered, tokenLifetimeS: 3599,
    received: recorder.received,
    next: (timeoutMs?: number) => recorder.next(timeoutMs),
    failNext: (status, body, headers) => recorder.failNext(status, body, headers),
    trust: (trusted) => void (account = trusted),
    revokeAccessTokens: () => accessTokens.clear(),
    close: () => closeServer(server),
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.method === 'POST' && req.url === '/token') return tokenEndpoint(body, res);
    const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? '');
    if (req.method === 'POST' && send?.[1]) return messagesSend(decodeURIComponent(send[1]), req.headers, body, res);
    sendJson(res, 404, { error: { code: 404, status: 'NOT_FOUND', message: 'no such method' } });
  }

  function tokenEndpoint(body: Buffer, res: ServerResponse): void {
    const form = new URLSearchParams(body.toString('utf8'));
    const refuse = (status: number, error: string, description: string, assertion?: VerifiedJwt) => {
      tokenRequests.push({ status, error, assertion });
      sendJson(res, status, { error, error_description: description });
    };
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse(400, 'unsupported_grant_type', 'grant_type');
    if (!account) return refuse(400, 'invalid_grant', 'unknown service account');
    const jwt = verifyJwt(form.get('assertion') ?? '', 'RS256', account.publicKey);
    if (typeof jwt === 'string') return refuse(400, 'invalid_grant', `Invalid JWT Signature (${jwt})`);
    const { iss, aud, scope, iat, exp } = jwt.claims;
    if (iss !== account.clientEmail) return refuse(400, 'invalid_grant', 'iss', jwt);
    if (aud !== tokenUrl) return refuse(400, 'invalid_grant', 'Invalid JWT: aud', jwt);
    if (typeof scope !== 'string' || !scope.split(' ').includes(FCM_SCOPE)) return refuse(400, 'invalid_scope', 'scope', jwt);
    if (typeof iat !== 'number' || typeof exp !== 'number' || iat > nowSeconds() + 60 || exp <= nowSeconds() || exp - iat > 3600) {
      return refuse(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe', jwt);
    }
    const accessToken = `ya29.mock-${randomBytes(12).toString('base64url')}`;
    accessTokens.set(accessToken, nowSeconds() + mock.tokenLifetimeS);
    tokenRequests.push({ status: 200, assertion: jwt });
    sendJson(res, 200, { access_token: accessToken, expires_in: mock.tokenLifetimeS, token_type: 'Bearer' });
  }

  function messagesSend(project: string, headers: IncomingHttpHeaders, body: Buffer, res: ServerResponse): void {
    let parsed: { message?: FcmMessageRequest['message'] } = {};
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch { /* judged below */ }
    const request: FcmMessageRequest = { headers, project, message: parsed.message ?? {}, status: 200 };
    const scripted = recorder.takeFailure();
    const verdict = scripted ?? judge(request);
    request.status = verdict.status;
    recorder.record(request);
    if (verdict.status === 200) return sendJson(res, 200, { name: `projects/${project}/messages/0:${Date.now()}` });
    sendJson(res, verdict.status, verdict.body, verdict.headers);
  }

  function judge(request: FcmMessageRequest): { status: number; body?: unknown; headers?: Record<string, string> } {
    const bearer = /^Bearer (\S+)$/.exec(String(request.headers.authorization ?? ''))?.[1];
    const expiry = bearer ? accessTokens.get(bearer) : undefined;
    if (expiry === undefined || expiry <= nowSeconds()) {
      return fcmError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token');
    }
    if (request.project !== account?.projectId) return fcmError(403, 'PERMISSION_DENIED', 'Permission denied on project');
    const { token, data, android } = request.message;
    if (typeof token !== 'string' || token === '') return fcmError(400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token', 'INVALID_ARGUMENT');
    if (data && Object.values(data).some((value) => typeof value !== 'string')) {
      return fcmError(400, 'INVALID_ARGUMENT', 'Invalid value at message.data: data values must be strings', 'INVALID_ARGUMENT');
    }
    const priority = String(android?.priority ?? 'normal').toLowerCase();
    if (priority !== 'high' && priority !== 'normal') return fcmError(400, 'INVALID_ARGUMENT', 'Invalid value at message.android.priority', 'INVALID_ARGUMENT');
    if (unregistered.has(token)) return fcmError(404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED');
    return { status: 200 };
  }

  return mock;
}

/** FCM v1's error shape, with the FcmError detail when there is an error code. */
export function fcmError(status: number, grpcStatus: string, message: string, errorCode?: string): { status: number; body: unknown } {
  const details = errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : [];
  return { status, body: { error: { code: status, message, status: grpcStatus, details } } };
}
