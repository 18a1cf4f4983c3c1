// The HTTP side of XEP-0363: PUT /upload/<slot>/<name> takes the file once, from the client holding
// the slot's secret (sent as `Authorization: Bearer …`, a header XEP-0363 §4 lets the slot carry),
// streaming it to disk; GET and HEAD serve it to anyone with the URL (§2: "everyone who knows the URL
// SHOULD be able to access it"), with single byte ranges for media players. CORS (§7): the core's
// listener sends Access-Control-Allow-Origin * on every answer and answers preflights.

import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { HttpRequestContext, ModuleContext } from '../../server/module-api.js';
import { UploadFiles, isMediaType, matchesType, mediaType, secretMatches, type UploadRecord } from './files.js';

export interface UploadHttpOptions {
  files: UploadFiles;
  slotTimeout: number;
  /** 0: files are kept until their account goes. */
  fileExpiry: number;
  /** Served inline (shown by browsers); everything else as an attachment (downloaded). */
  inlineTypes: readonly string[];
  log: ModuleContext['log'];
}

export function uploadHttp({ files, slotTimeout, fileExpiry, inlineTypes, log }: UploadHttpOptions) {
  /** Slots whose PUT is being received right now. */
  const uploading = new Set<string>();

  async function slotFor(rest: string[]): Promise<{ slotId: string; record: UploadRecord } | undefined> {
    const slotId = rest[0];
    if (rest.length !== 2 || !UploadFiles.isSlotId(slotId)) return undefined;
    const record = await files.get(slotId);
    // The name must be the slot's own: the path on disk is built from the record, never from the URL.
    if (!record || record.filename !== rest[1]) return undefined;
    return { slotId, record };
  }

  async function put({ req, res, rest }: HttpRequestContext): Promise<void> {
    const slot = await slotFor(rest);
    if (!slot) return refuse(res, 404, 'No such upload slot');
    const { slotId, record } = slot;
    // A slot takes one file: never a second PUT, nor one while the first is still arriving.
    if (record.uploaded !== undefined || uploading.has(slotId)) return refuse(res, 409, 'This slot has been used');
    if (Date.now() > record.created + slotTimeout) return refuse(res, 410, 'This slot has expired: request a new one');
    const secret = bearerToken(req.headers.authorization);
    if (secret === undefined) return refuse(res, 401, 'The slot secret is missing (Authorization header)', { 'WWW-Authenticate': 'Bearer' });
    if (!secretMatches(secret, record.secretHash)) return refuse(res, 403, 'Wrong slot secret');
    const length = req.headers['content-length'];
    // XEP-0363 §5: the service "MUST reject the file upload if the Content-Length does not match".
    if (length === undefined) return refuse(res, 411, `Content-Length must be given (${record.size})`);
    if (Number(length) !== record.size) return refuse(res, Number(length) > record.size ? 413 : 400, `Content-Length must be ${record.size}, the size of the slot`);
    const type = req.headers['content-type'];
    // XEP-0363 §5: it "SHOULD reject the file if the Content-Type has been specified beforehand and does not match".
    if (record.contentType !== undefined && (type === undefined || mediaType(type) !== mediaType(record.contentType))) {
      return refuse(res, 415, `Content-Type must be ${record.contentType}, as in the slot request`);
    }
    uploading.add(slotId);
    try {
      // The record read above may predate a PUT that finished while this one waited for it.
      if ((await files.get(slotId))?.uploaded !== undefined) return refuse(res, 409, 'This slot has been used');
      await files.ensureRoot();
      await receive(req, files.partialPath(slotId), record.size);
      const done: UploadRecord = { ...record, uploaded: Date.now(), servedType: record.contentType ?? (type !== undefined && isMediaType(type) ? type : 'application/octet-stream') };
      await files.publish(slotId, done);
      await files.markUploaded(slotId, done);
      log.info({ user: record.owner, size: record.size }, 'file uploaded');
      res.writeHead(201, { 'Content-Type': 'text/plain' });
      res.end('created\n');
    } catch (err) {
      await rm(files.partialPath(slotId), { force: true });
      log.debug({ err, slot: slotId }, 'upload failed');
      if (!res.headersSent && !res.destroyed) refuse(res, 400, 'The upload did not arrive whole');
    } finally {
      uploading.delete(slotId);
    }
  }

  async function get({ req, res, rest }: HttpRequestContext): Promise<void> {
    const slot = await slotFor(rest);
    if (!slot || slot.record.uploaded === undefined) return refuse(res, 404, 'Not found');
    const { slotId, record } = slot;
    if (fileExpiry > 0 && record.uploaded! + fileExpiry < Date.now()) {
      await files.remove(slotId, record); // expired: the sweep would have deleted it soon anyway
      return refuse(res, 404, 'Not found');
    }
    const path = files.filePath(slotId, record);
    const size = await stat(path).then((s) => s.size, () => undefined);
    if (size === undefined) return refuse(res, 404, 'Not found');
    const type = record.servedType ?? 'application/octet-stream';
    const headers: Record<string, string> = {
      'Content-Type': type,
      'Content-Disposition': contentDisposition(matchesType(type, inlineTypes) ? 'inline' : 'attachment', record.filename),
      // Never let a browser guess a type (an uploaded page must not run as one of ours).
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
      'Cache-Control': 'public, max-age=31536000, immutable',
      'Last-Modified': new Date(record.uploaded!).toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return refuse(res, 416, 'Range not satisfiable', { 'Content-Range': `bytes */${size}` });
    const [start, end] = range ?? [0, size - 1];
    headers['Content-Length'] = String(Math.max(0, end - start + 1));
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    await pipeline(createReadStream(path, { start, end }), res).catch((err: unknown) => log.debug({ err, slot: slotId }, 'download ended early'));
  }

  return { put, get, isUploading: (slotId: string) => uploading.has(slotId) };
}

/** Streams the body into `path`; rejects unless exactly `size` bytes arrived. */
async function receive(req: IncomingMessage, path: string, size: number): Promise<void> {
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      callback(received > size ? new Error('more than the slot size') : null, chunk);
    },
  });
  await pipeline(req, counter, createWriteStream(path, { mode: 0o600 }));
  if (received !== size) throw new Error(`received ${received} of ${size} bytes`);
}

function refuse(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  // A refused PUT's body is not read: close the connection rather than drain it.
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...headers });
  res.end(`${text}\n`);
}

function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** RFC 6266: an ASCII fallback name plus the exact UTF-8 one (RFC 8187). */
function contentDisposition(kind: 'inline' | 'attachment', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** RFC 9110 §14.2, one range only (what players ask for); undefined: the whole file. */
function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return [start, end];
}
