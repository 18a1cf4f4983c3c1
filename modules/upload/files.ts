// Where uploads live: data_dir/upload/<slot id>/<file name> on disk, and one record per slot in the
// module's store (owner '' so the HTTP side, which knows no user, finds it by slot id), plus each
// user's slots under their own name for the quota (that part goes with the account by itself).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MapStore } from '../../server/module-api.js';

export interface UploadRecord {
  /** The uploader's localpart. */
  owner: string;
  /** As it appears on disk and in the URLs (sanitised). */
  filename: string;
  size: number;
  /** The slot request's content-type; undefined: whatever the PUT says. */
  contentType: string | undefined;
  /** SHA-256 of the PUT secret (hex): the secret itself is only in the slot sent to the client. */
  secretHash: string;
  /** When the slot was given out (ms). */
  created: number;
  /** When the PUT completed (ms); undefined while the slot waits for it. */
  uploaded?: number;
  /** The Content-Type the file is served with, once uploaded. */
  servedType?: string;
}

/** Per user: what each slot takes of the quota. */
export interface QuotaEntry {
  size: number;
  created: number;
  uploaded?: number;
}

const SLOT_ID = /^[A-Za-z0-9_-]{24}$/;
/** Longest file name kept, in UTF-8 bytes (ext4 and most file systems stop at 255). */
const MAX_NAME_BYTES = 200;

export class UploadFiles {
  readonly root: string;

  constructor(
    dataDir: string,
    private readonly records: MapStore<UploadRecord>,
    private readonly quota: MapStore<QuotaEntry>,
  ) {
    this.root = join(dataDir, 'upload');
  }

  static newSlotId(): string {
    return randomBytes(18).toString('base64url');
  }

  static newSecret(): { secret: string; hash: string } {
    const secret = randomBytes(24).toString('base64url');
    return { secret, hash: hashSecret(secret) };
  }

  static isSlotId(text: string | undefined): text is string {
    return text !== undefined && SLOT_ID.test(text);
  }

  get(slotId: string): Promise<UploadRecord | undefined> {
    return this.records.get('', slotId);
  }

  async add(slotId: string, record: UploadRecord): Promise<void> {
    await this.records.set('', slotId, record);
    await this.quota.set(record.owner, slotId, { size: record.size, created: record.created });
  }

  /** Records a completed upload. */
  async markUploaded(slotId: string, record: UploadRecord): Promise<void> {
    await this.records.set('', slotId, record);
    await this.quota.set(record.owner, slotId, { size: record.size, created: record.created, uploaded: record.uploaded });
  }

  /** The slots (uploaded or still open) that count against a user's quota. */
  usage(owner: string): Promise<{ key: string; value: QuotaEntry }[]> {
    return this.quota.list(owner);
  }

  /** Every slot, for the expiry sweep and account deletion (the store has no index on values). */
  all(): Promise<{ key: string; value: UploadRecord }[]> {
    return this.records.list('');
  }

  /** Creates data_dir/upload if needed (before a PUT streams into it). */
  async ensureRoot(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  /** The temporary file a PUT streams into (beside the slot's directory, so no file name can clash). */
  partialPath(slotId: string): string {
    return join(this.root, `${slotId}.part`);
  }

  filePath(slotId: string, record: UploadRecord): string {
    return join(this.root, slotId, record.filename);
  }

  /** Moves a complete upload into place. */
  async publish(slotId: string, record: UploadRecord): Promise<void> {
    await mkdir(join(this.root, slotId), { recursive: true });
    await rename(this.partialPath(slotId), this.filePath(slotId, record));
  }

  /** Deletes a slot: its file, its directory and its records. */
  async remove(slotId: string, record: UploadRecord): Promise<void> {
    await rm(join(this.root, slotId), { recursive: true, force: true });
    await rm(this.partialPath(slotId), { force: true });
    await this.records.delete('', slotId);
    await this.quota.delete(record.owner, slotId);
  }
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(presented: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(presented), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A file name safe to store and serve: the last path component only, no control characters, no
 * '/' or '\', NFC, at most MAX_NAME_BYTES (keeping the extension). XEP-0363 §4: the service "SHOULD
 * keep the file name and especially the file ending intact", so nothing else changes. Undefined
 * when nothing usable is left ('', '.', '..').
 */
export function sanitiseFilename(name: string): string | undefined {
  const last = name.normalize('NFC').split(/[/\\]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  let clean = last.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (clean === '' || clean === '.' || clean === '..') return undefined;
  if (Buffer.byteLength(clean) > MAX_NAME_BYTES) {
    const dot = clean.lastIndexOf('.');
    const extension = dot > 0 && clean.length - dot <= 16 ? clean.slice(dot) : '';
    let stem = clean.slice(0, clean.length - extension.length);
    while (Buffer.byteLength(stem + extension) > MAX_NAME_BYTES) stem = Array.from(stem).slice(0, -1).join('');
    clean = stem + extension;
  }
  return clean;
}

/** A syntactically valid Content-Type (RFC 9110 §8.3: type/subtype, optional parameters). */
export function isMediaType(text: string): boolean {
  return /^[A-Za-z0-9!#$&^_.+-]{1,64}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;.{0,200})?$/.test(text);
}

/** The media type without parameters, lower case: 'Text/Plain; charset=utf-8' → 'text/plain'. */
export function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/** Whether a media type matches one of the patterns ('image/*', 'text/plain'). */
export function matchesType(type: string, patterns: readonly string[]): boolean {
  const essence = mediaType(type);
  return patterns.some((pattern) => (pattern.endsWith('/*') ? essence.startsWith(pattern.slice(0, -1)) : essence === pattern.toLowerCase()));
}
