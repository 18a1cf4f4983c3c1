// XEP-0363 HTTP File Upload (1.1.0): the service upload.<domain> hands the server's users slots (a PUT
// and a GET URL) on Herald's own HTTP listener, https://<domain>:<listen.https>/upload/… unless
// `base_url` says otherwise (a reverse proxy). Limits: a maximum file size (announced in disco#info),
// a quota per user, slots that expire when unused, files that expire after `file_expiry`; files go
// with their account. The HTTP side is ./http.ts, the files and their records ./files.ts.
// Left out: the legacy namespaces (urn:xmpp:http:upload, eu:siacs:conversations:http:upload), uploads
// by users of other servers, and per-type allow lists.
import { z } from 'zod';
import { bytes, defineModule, duration, keyedSerial, x, type Jid, type XmlElement } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { buildForm } from '../../server/protocol/xep0004.js';
import { dateTime } from '../../server/protocol/xep0082.js';
import { UploadFiles, isMediaType, sanitiseFilename, type UploadRecord } from './files.js';
import { uploadHttp } from './http.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const HTTP_PATH = '/upload';

export default defineModule({
  name: 'upload',
  xeps: [{ xep: 363, version: '1.1.0', status: 'complete' }],
  config: z
    .object({
      service: z.string().min(1).default('upload').describe("The upload service's JID: a label under the domain ('upload' → upload.<domain>) or a full domain"),
      name: z.string().min(1).default('HTTP File Upload').describe('Name of the service in disco#info'),
      base_url: z
        .string()
        .url()
        .optional()
        .meta({ description: `Public URL that reaches Herald's ${HTTP_PATH} path (behind a reverse proxy); absent: https://<domain>:<listen.https>${HTTP_PATH}`, example: `https://upload.example.org${HTTP_PATH}` }),
      max_file_size: bytes().prefault('100 MiB').describe('Largest file accepted (announced to clients as max-file-size)'),
      quota: bytes().prefault('1 GiB').describe("Space one user's files may take, counting slots not used yet (0: no limit)"),
      slot_timeout: duration().prefault('5 minutes').describe('A slot whose PUT has not started within this time is void'),
      file_expiry: duration().prefault('30 days').describe('Files are deleted this long after their upload (0: kept until the account is deleted)'),
      inline_types: z
        .array(z.string())
        .default(['image/*', 'video/*', 'audio/*', 'text/plain'])
        .describe('Content types browsers may show in place; others are served as attachments (downloaded)'),
    })
    .strict(),
  setup(m) {
    const config = m.config;
    const files = new UploadFiles(m.dataDir, m.store.map<UploadRecord>('files'), m.store.map('quota'));
    const service = m.component(config.service);
    service.identities.push({ category: 'store', type: 'file', name: config.name });
    // XEP-0363 §3: the limit as a XEP-0128 field "max-file-size", in bytes.
    service.extensions.push(
      buildForm({
        type: 'result',
        fields: [
          { var: 'FORM_TYPE', type: 'hidden', values: [NS_UPLOAD] },
          { var: 'max-file-size', values: [String(config.max_file_size)] },
        ],
      }),
    );
    // XEP-0363 §3: the user's server "SHOULD include any known entities that provide such services into its service discovery items".
    m.discoItem(service.domain, config.name);

    const perUser = keyedSerial();
    const http = uploadHttp({ files, slotTimeout: config.slot_timeout, fileExpiry: config.file_expiry, inlineTypes: config.inline_types, log: m.log });
    m.httpRoute('PUT', HTTP_PATH, http.put);
    m.httpRoute('GET', HTTP_PATH, http.get);
    m.httpRoute('HEAD', HTTP_PATH, http.get);

    service.iq('get', NS_UPLOAD, 'request', async ({ payload, from }) => {
      const request = parseRequest(payload, from);
      const slotId = UploadFiles.newSlotId();
      const { secret, hash } = UploadFiles.newSecret();
      // One request per user at a time, so two cannot both fit in the last of the quota.
      await perUser(request.owner, async () => {
        await checkQuota(request.owner, request.size);
        await files.add(slotId, { owner: request.owner, filename: request.filename, size: request.size, contentType: request.contentType, secretHash: hash, created: Date.now() });
      });
      m.log.debug({ user: request.owner, size: request.size }, 'upload slot given');
      const url = `${baseUrl()}/${slotId}/${encodeURIComponent(request.filename)}`;
      return x(
        'slot',
        { xmlns: NS_UPLOAD },
        x('put', { url }, x('header', { name: 'Authorization' }, `Bearer ${secret}`)),
        x('get', { url }),
      );
    });

    function parseRequest(payload: XmlElement, from: Jid): { owner: string; filename: string; size: number; contentType: string | undefined } {
      // XEP-0363 §4 (example 7): a permanent refusal is cancel/not-allowed.
      if (from.domain !== m.host || from.local === '') throw stanzaError.notAllowed('Only users of this server may upload files');
      const { filename: rawName, size: rawSize } = payload.attrs;
      // Converse.js sends content-type='' for a file the browser has no type for: the same as none.
      const contentType = payload.attrs['content-type']?.trim() || undefined;
      // XEP-0363 §4: the request "MUST include the attributes filename and size".
      if (rawName === undefined || rawSize === undefined) throw stanzaError.badRequest("The request needs 'filename' and 'size'");
      const filename = sanitiseFilename(rawName);
      if (filename === undefined) throw stanzaError.badRequest('Invalid file name');
      if (!/^\d{1,16}$/.test(rawSize)) throw stanzaError.badRequest('The size must be a whole number of bytes');
      const size = Number(rawSize);
      if (contentType !== undefined && !isMediaType(contentType)) throw stanzaError.badRequest('Invalid content-type');
      // XEP-0363 §4 (example 5): too large is modify/not-acceptable with <file-too-large/> giving the limit.
      if (size > config.max_file_size) {
        throw stanzaError.notAcceptable(`File too large. The maximum file size is ${config.max_file_size} bytes`, {
          app: x('file-too-large', { xmlns: NS_UPLOAD }, x('max-file-size', null, String(config.max_file_size))),
        });
      }
      return { owner: from.local, filename, size, contentType };
    }

    async function checkQuota(owner: string, size: number): Promise<void> {
      if (config.quota === 0) return;
      // More than the whole quota can never fit: a permanent refusal (XEP-0363 §4, example 7).
      if (size > config.quota) throw stanzaError.notAllowed(`Your upload quota is ${config.quota} bytes: this file can never fit`);
      const now = Date.now();
      const live = (await files.usage(owner)).map((e) => e.value).filter((entry) => !expired(entry, now));
      const used = live.reduce((sum, entry) => sum + entry.size, 0);
      if (used + size <= config.quota) return;
      // XEP-0363 §4 (example 6): a quota is a temporary refusal, wait/resource-constraint, with
      // <retry stamp/> saying when trying again may help (when the oldest file expires).
      const freed = live.map((entry) => releaseTime(entry)).filter((t): t is number => t !== undefined);
      const retry = freed.length > 0 ? x('retry', { xmlns: NS_UPLOAD, stamp: dateTime(new Date(Math.min(...freed))) }) : undefined;
      throw stanzaError.resourceConstraint(`Quota reached: your files take ${used} of ${config.quota} bytes`, { app: retry });
    }

    function expired(entry: { created: number; uploaded?: number }, now: number): boolean {
      if (entry.uploaded === undefined) return entry.created + config.slot_timeout < now;
      return config.file_expiry > 0 && entry.uploaded + config.file_expiry < now;
    }

    function releaseTime(entry: { created: number; uploaded?: number }): number | undefined {
      if (entry.uploaded === undefined) return entry.created + config.slot_timeout;
      return config.file_expiry > 0 ? entry.uploaded + config.file_expiry : undefined;
    }

    function baseUrl(): string {
      if (config.base_url !== undefined) return config.base_url.replace(/\/+$/, '');
      const https = m.server.ports.https;
      if (https) return `https://${m.host}${https === 443 ? '' : `:${https}`}${HTTP_PATH}`;
      // No HTTPS listener and no base_url: only the plain listener is left (local use, tests).
      return `http://${m.host}:${m.server.ports.http ?? 80}${HTTP_PATH}`;
    }

    /** Deletes expired files and void slots, and the files of accounts deleted while the server was down or by the CLI. */
    async function sweep(onlyOwner?: string): Promise<void> {
      const now = Date.now();
      const exists = new Map<string, boolean>();
      for (const { key, value } of await files.all()) {
        if ((onlyOwner !== undefined && value.owner !== onlyOwner) || http.isUploading(key)) continue;
        let gone = onlyOwner !== undefined || expired(value, now);
        if (!gone) {
          if (!exists.has(value.owner)) exists.set(value.owner, await m.accounts.exists(value.owner));
          gone = !exists.get(value.owner);
        }
        if (gone) await files.remove(key, value);
      }
    }

    m.on('user:deleted', ({ username }) => sweep(username));
    m.every(3_600_000, () => sweep());
    m.on('server:started', () => {
      if (config.base_url === undefined && !m.server.ports.https) m.log.warn('no base_url and no HTTPS listener: upload slots point at the plain HTTP listener');
      void sweep().catch((err: unknown) => m.log.error({ err }, 'upload sweep failed'));
    });
  },
});
