// A mock UBports push server: POST /notify with { appid, token, expire_on, data } as in
// ubports/ubuntu-push (server/api/handlers.go) — application/json with a Content-Length, a data
// field of at most 2 KiB, an RFC 3339 expire_on in the future — answering {"ok":true} or the
// server's { error, message } with its status codes.

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Recorder, closeServer, listen, readBody, sendJson } from './common.js';

export interface UbportsRequest {
  headers: IncomingHttpHeaders;
  body: { appid?: string; token?: string; expire_on?: string; data?: unknown; replace_tag?: string; clear_pending?: boolean };
  status: number;
  error?: string;
}

export interface UbportsMock extends Pick<Recorder<UbportsRequest>, 'received' | 'next' | 'failNext'> {
  url: string;
  /** Tokens the server knows, with their app ID; any other token is 'unknown-token'. */
  tokens: Map<string, string>;
  close(): Promise<void>;
}

const MAX_DATA_BYTES = 2 * 1024;  // MaxUnicastPayload
const MAX_BODY_BYTES = 4 * 1024;  // MaxRequestBodyBytes

export async function startUbportsMock(): Promise<UbportsMock> {
  const recorder = new Recorder<UbportsRequest>();
  const tokens = new Map<string, string>();
  const server = createServer((req, res) => void handle(req, res));
  const url = await listen(server);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (req.url !== '/notify') return sendJson(res, 404, { error: 'not-found', message: 'no such endpoint' });
    let body: UbportsRequest['body'] = {};
    try {
      body = JSON.parse(raw.toString('utf8')) as UbportsRequest['body'];
    } catch { /* judged below */ }
    const request: UbportsRequest = { headers: req.headers, body, status: 200 };
    const scripted = recorder.takeFailure();
    const verdict = scripted ?? judge(req, raw, body);
    request.status = verdict.status;
    if (verdict.status !== 200) request.error = (verdict.body as { error?: string } | undefined)?.error;
    recorder.record(request);
    sendJson(res, verdict.status, verdict.status === 200 ? { ok: true } : verdict.body, verdict.headers);
  }

  function judge(req: IncomingMessage, raw: Buffer, body: UbportsRequest['body']): { status: number; body?: unknown; headers?: Record<string, string> } {
    const apiError = (status: number, error: string, message: string) => ({ status, body: { error, message } });
    if (req.method !== 'POST') return apiError(405, 'invalid-request', 'Wrong request method, should be POST');
    if (req.headers['content-length'] === undefined) return apiError(411, 'invalid-request', 'A Content-Length must be provided');
    if (raw.length > MAX_BODY_BYTES) return apiError(413, 'invalid-request', 'Request body too large');
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return apiError(415, 'invalid-request', 'Wrong content type, should be application/json');
    }
    if (!body.appid || !body.token) return apiError(400, 'invalid-request', 'Missing id field');
    if (body.data === undefined) return apiError(400, 'invalid-request', 'Missing data field');
    if (Buffer.byteLength(JSON.stringify(body.data)) > MAX_DATA_BYTES) return apiError(400, 'invalid-request', 'Data too large');
    const expire = Date.parse(body.expire_on ?? '');
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(body.expire_on ?? '') || Number.isNaN(expire)) {
      return apiError(400, 'invalid-request', 'Invalid expiration date');
    }
    if (expire < Date.now()) return apiError(400, 'invalid-request', 'Past expiration date');
    const app = tokens.get(body.token);
    if (app === undefined) return apiError(400, 'unknown-token', 'Unknown token');
    if (app !== body.appid) return apiError(401, 'unauthorized', 'Unauthorized');
    return { status: 200 };
  }

  return {
    url,
    tokens,
    received: recorder.received,
    next: (timeoutMs?: number) => recorder.next(timeoutMs),
    failNext: (status, body, headers) => recorder.failNext(status, body, headers),
    close: () => closeServer(server),
  };
}
