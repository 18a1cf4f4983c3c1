// `herald import`: XEP-0227 files (Prosody's, ejabberd's, Herald's own) into Herald's store, all or
// nothing. The files are read as a stream (reader.ts), each <user/> turned into records (user.ts)
// and written through the generic stores at the places the modules read them (layout.ts), inside
// one exclusive SQLite transaction: a malformed file, found at any line, leaves the database as it
// was; and a server holding the database open makes the import stop before it starts.
//
// Decisions (docs/migrate.md):
// - Only the configured domain is imported; other hosts in the file are counted and reported.
// - An account that exists already is left alone, its data in the file skipped and listed;
//   `replace` deletes it with everything stored for it, then imports the file's.
// - A user that appears twice (say, a host file given next to the main file that includes it) stops
//   the import: merging two versions of an account would be a guess.

import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tryParseJid } from '../../server/jid.js';
import { DEFAULT_SCRAM_ITERATIONS } from '../../server/accounts.js';
import type { Store } from '../store.js';
import { NS_PIE_MAM, PieFormatError } from './format.js';
import type { XmlElement } from '../../server/xml/element.js';
import { openHostStores, type HostStores } from './layout.js';
import { readPieFile, type PieUserEvent } from './reader.js';
import { readUser, type ImportedUser, type Notice } from './user.js';
import { DEFAULT_MAX_STANZA_BYTES, readArchive } from './mam.js';

export interface TransactionalStore extends Store {
  transaction<T>(mode: 'read' | 'exclusive', fn: () => Promise<T>): Promise<T>;
}

export interface ImportOptions {
  /** The domain this server serves (config `domain`). */
  domain: string;
  /** Replace accounts that exist already (and everything stored for them). */
  replace?: boolean;
  /** Read and check everything, then roll back. */
  dryRun?: boolean;
  /** PBKDF2 iterations for accounts that come with a plain password. */
  iterations?: number;
  /** Called every `PROGRESS_EVERY` accounts. */
  onProgress?: (accounts: number) => void;
  now?: () => Date;
  /** Archived messages larger than this (the server's limits.max_stanza_size) are left out. */
  maxStanzaBytes?: number;
}

export interface ImportWarning {
  file: string;
  line: number;
  kind: string;
  message: string;
}

export interface ImportReport {
  files: string[];
  domain: string;
  /** Accounts written (new and replaced). */
  accounts: number;
  replaced: string[];
  /** Accounts that exist already and were left alone. */
  existing: string[];
  /** Users of hosts other than `domain`, per host. */
  otherHosts: Record<string, number>;
  items: { roster: number; pendingIn: number; vcards: number; privateXml: number; offline: number; blocklists: number; pepNodes: number; pepItems: number; archived: number };
  /** The stamp (ms) of the oldest archived message imported, if any. */
  oldestArchived?: number;
  /** Accounts whose SCRAM keys were derived from a plain password in the file. */
  fromPassword: number;
  /** Accounts whose SCRAM values were base64-encoded twice (ejabberd). */
  doubleEncoded: number;
  /** Accounts with SCRAM-SHA-1 keys only (Prosody's default). */
  sha1Only: string[];
  withoutCredentials: string[];
  /** The first MAX_WARNINGS warnings; warningCount has them all. */
  warnings: ImportWarning[];
  warningCount: number;
  dryRun: boolean;
  elapsedMs: number;
}

/** A refusal that is not about one line of a file (no file, wrong domain, database busy). */
export class PieImportError extends Error {}

const MAX_WARNINGS = 1000;
const PROGRESS_EVERY = 1000;
/** Users read ahead while earlier ones are written: plain passwords hash on the thread pool meanwhile. */
const READ_AHEAD = 64;
/**
 * Archived messages the users read ahead may hold together: a user's archive is part of its
 * element (held until written), so users with long histories are written before more are read.
 */
const READ_AHEAD_ARCHIVED = 20_000;

class DryRunDone extends Error {}

export async function importPie(store: TransactionalStore, paths: string[], options: ImportOptions): Promise<ImportReport> {
  const started = performance.now();
  const files = await expandPaths(paths);
  const report: ImportReport = {
    files, domain: options.domain, accounts: 0, replaced: [], existing: [], otherHosts: {},
    items: { roster: 0, pendingIn: 0, vcards: 0, privateXml: 0, offline: 0, blocklists: 0, pepNodes: 0, pepItems: 0, archived: 0 },
    fromPassword: 0, doubleEncoded: 0, sha1Only: [], withoutCredentials: [], warnings: [], warningCount: 0,
    dryRun: options.dryRun === true, elapsedMs: 0,
  };
  try {
    await store.transaction('exclusive', async () => {
      const importer = new Importer(store, options, report);
      for (const file of files) await importer.readFile(file).catch((err: NodeJS.ErrnoException) => {
        // A file that cannot be opened (permissions: Prosody's are its own user's) is no format error.
        throw err.code !== undefined && err.syscall !== undefined ? new PieImportError(`cannot read ${file}: ${err.message}`) : err;
      });
      await importer.drain();
      checkSomethingMatched(report);
      if (options.dryRun) throw new DryRunDone();
    });
  } catch (err) {
    if (!(err instanceof DryRunDone)) throw busyToImportError(err);
  }
  report.elapsedMs = performance.now() - started;
  return report;
}

/** Files as given; a directory stands for its *.xml files (Prosody's export: one file per user). */
async function expandPaths(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new PieImportError(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
    if (!info.isDirectory()) {
      files.push(resolve(path));
      continue;
    }
    const names = (await readdir(path)).filter((name) => name.toLowerCase().endsWith('.xml')).sort();
    if (names.length === 0) throw new PieImportError(`${path} holds no .xml files`);
    files.push(...names.map((name) => resolve(join(path, name))));
  }
  if (files.length === 0) throw new PieImportError('no file to import');
  return files;
}

function checkSomethingMatched(report: ImportReport): void {
  const others = Object.keys(report.otherHosts);
  if (report.accounts + report.existing.length > 0 || others.length === 0) return;
  throw new PieImportError(
    `the file${report.files.length === 1 ? ' has users' : 's have users'} of ${others.join(', ')} only, and this server's domain is ${report.domain}: nothing to import`,
  );
}

function busyToImportError(err: unknown): unknown {
  const code = ((err as { cause?: { code?: string } }).cause ?? {}).code;
  if (code === 'SQLITE_BUSY') return new PieImportError('the database is in use by another process: stop Herald (and any `herald` command) before importing');
  return err;
}

interface ReadUser {
  event: PieUserEvent;
  user: Promise<ImportedUser>;
  /** Messages in its archives (mam.ts). */
  archived: number;
}

class Importer {
  private readonly stores: HostStores;
  private readonly hostDomains = new Map<string, string>();
  private readonly seen = new Map<string, string>();
  private readonly ahead: ReadUser[] = [];
  private aheadArchived = 0;

  constructor(private readonly store: Store, private readonly options: ImportOptions, private readonly report: ImportReport) {
    this.stores = openHostStores(store, options.domain);
  }

  async readFile(file: string): Promise<void> {
    for await (const event of readPieFile(file)) {
      if (event.kind === 'host') {
        this.hostDomain(event.jid, event.file, event.line);
      } else if (event.kind === 'ignored') {
        this.warn(event.file, event.line, 'ignored', `${event.what}: not part of XEP-0227, ignored`);
      } else {
        const domain = this.hostDomain(event.host, event.file, event.line);
        if (domain !== this.options.domain) {
          this.report.otherHosts[domain] = (this.report.otherHosts[domain] ?? 0) + 1;
          continue;
        }
        const archived = archivedIn(event.element);
        this.ahead.push({ event, user: this.read(event), archived });
        this.aheadArchived += archived;
        while (this.ahead.length >= READ_AHEAD || (this.aheadArchived > READ_AHEAD_ARCHIVED && this.ahead.length > 0)) await this.writeNext();
      }
    }
  }

  async drain(): Promise<void> {
    while (this.ahead.length > 0) await this.writeNext();
  }

  private hostDomain(jid: string, file: string, line: number): string {
    let domain = this.hostDomains.get(jid);
    if (domain === undefined) {
      const parsed = tryParseJid(jid);
      if (!parsed || parsed.local !== '' || parsed.resource !== '') throw new PieFormatError(file, line, `host jid '${jid}' is not a domain`);
      domain = parsed.domain;
      this.hostDomains.set(jid, domain);
    }
    return domain;
  }

  private noticeFor(event: PieUserEvent): Notice {
    return (kind, message) => this.warn(event.file, event.line, kind, message);
  }

  private read(event: PieUserEvent): Promise<ImportedUser> {
    const notice = this.noticeFor(event);
    const promise = readUser(event.element, {
      host: this.options.domain,
      iterations: this.options.iterations ?? DEFAULT_SCRAM_ITERATIONS,
      notice,
      now: this.options.now,
    }).catch((err: unknown) => {
      throw new PieFormatError(event.file, event.line, `<user name='${event.element.attrs.name ?? ''}'>: ${(err as Error).message}`);
    });
    promise.catch(() => undefined); // awaited in order by writeNext; not unhandled meanwhile
    return promise;
  }

  private async writeNext(): Promise<void> {
    const { event, user: pending, archived } = this.ahead.shift()!;
    this.aheadArchived -= archived;
    const user = await pending;
    const first = this.seen.get(user.username);
    if (first !== undefined) throw new PieFormatError(event.file, event.line, `user ${user.username} appears a second time (first at ${first})`);
    this.seen.set(user.username, `${event.file}:${event.line}`);
    if (await this.write(user, this.noticeFor(event))) this.count(user);
  }

  /** Writes one account and its data; false when it exists and is left alone. */
  private async write(user: ImportedUser, notice: Notice): Promise<boolean> {
    const { accounts } = this.store;
    const { domain } = this.options;
    const name = user.username;
    if (await accounts.exists(domain, name)) {
      if (!this.options.replace) {
        this.report.existing.push(name);
        return false;
      }
      await accounts.delete(domain, name); // and everything any module stored for it
      this.report.replaced.push(name);
    }
    await accounts.create(domain, name, user.credentials);
    const s = this.stores;
    for (const item of user.roster) await s.rosterItems.set(name, item.jid, item);
    for (const [jid, stanza] of user.pendingIn) await s.pendingIn.set(name, jid, stanza);
    if (user.vcard !== undefined) await s.vcard.set(name, user.vcard);
    for (const [ns, elements] of user.privateXml) await s.privateXml.set(name, ns, elements);
    for (const message of user.offline) await s.offline.append(name, message.stanza, { with: message.with, stamp: message.stamp });
    if (user.blocklist.length > 0) await s.blocklist.set(name, user.blocklist);
    for (const node of user.pep) {
      await s.pepNodes.set(name, node.name, node.record);
      for (const { stamp, ...item } of node.items) await s.pepItems.append(name, item, { with: node.name, stamp });
    }
    for (const archive of user.archives) await this.writeArchive(name, archive, notice);
    return true;
  }

  /**
   * One message at a time, in file order (oldest first: the archive orders by insertion), each
   * under its own id. An id the account's archive holds already (the file names it twice) is kept
   * once: clients know a message by its id.
   */
  private async writeArchive(name: string, archive: ImportedUser['archives'][number], notice: Notice): Promise<void> {
    const { mam } = this.stores;
    const ctx = { bare: `${name}@${this.options.domain}`, notice, maxStanzaBytes: this.options.maxStanzaBytes ?? DEFAULT_MAX_STANZA_BYTES };
    for (const message of readArchive(archive, ctx)) {
      if (await mam.findByKey(name, message.id)) {
        notice('mam', `archive item '${message.id}' of ${ctx.bare} appears twice: the first is kept`);
        continue;
      }
      await mam.append(name, message.value, { key: message.id, with: message.with, stamp: message.stamp });
      this.report.items.archived++;
      if (this.report.oldestArchived === undefined || message.stamp < this.report.oldestArchived) this.report.oldestArchived = message.stamp;
    }
    archive.children = []; // done with it: let the history go before the next users are read
  }

  private count(user: ImportedUser): void {
    const { report } = this;
    report.accounts++;
    report.items.roster += user.roster.length;
    report.items.pendingIn += user.pendingIn.length;
    report.items.vcards += user.vcard === undefined ? 0 : 1;
    report.items.privateXml += user.privateXml.length;
    report.items.offline += user.offline.length;
    report.items.blocklists += user.blocklist.length > 0 ? 1 : 0;
    report.items.pepNodes += user.pep.length;
    report.items.pepItems += user.pep.reduce((sum, node) => sum + node.items.length, 0);
    if (user.credentialSource === 'password') report.fromPassword++;
    if (user.doubleEncoded) report.doubleEncoded++;
    if (user.credentialSource === 'none') report.withoutCredentials.push(user.username);
    else if (!user.credentials.sha256) report.sha1Only.push(user.username);
    if (report.accounts % PROGRESS_EVERY === 0) this.options.onProgress?.(report.accounts);
  }

  private warn(file: string, line: number, kind: string, message: string): void {
    this.report.warningCount++;
    if (this.report.warnings.length < MAX_WARNINGS) this.report.warnings.push({ file, line, kind, message });
  }
}

/** How many messages a <user/> element's archives hold (its <archive/> children's children). */
function archivedIn(user: XmlElement): number {
  let count = 0;
  for (const child of user.children) {
    if (typeof child !== 'string' && child.name === 'archive' && child.attrs.xmlns === NS_PIE_MAM) count += child.elements().length;
  }
  return count;
}

// ---- the summary `herald import` prints ----

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
const have = (n: number) => (n === 1 ? 'has' : 'have');

function someNames(names: string[], max = 10): string {
  return names.slice(0, max).join(', ') + (names.length > max ? `, … (${names.length - max} more)` : '');
}

/** modules.mam's default retention (its config schema says '365d'). */
const DEFAULT_RETENTION_MS = 365 * 24 * 3_600_000;

/** Human-readable lines for the operator (XEP-0227 §2: "SHOULD notify the operator"). */
export function formatImportReport(report: ImportReport, shownFile: (path: string) => string = (path) => path, maxWarnings = 20): string[] {
  const { items } = report;
  const what = [
    plural(items.roster, 'roster item'), plural(items.pendingIn, 'pending subscription request'), plural(items.vcards, 'vCard'),
    plural(items.privateXml, 'private XML namespace'), plural(items.offline, 'offline message'), plural(items.blocklists, 'blocklist'),
    `${plural(items.pepNodes, 'PEP node')} (${plural(items.pepItems, 'item')})`, plural(items.archived, 'archived message'),
  ];
  const lines = [
    `${report.dryRun ? 'Checked (dry run, nothing written)' : 'Imported'} ${plural(report.accounts, 'account')} into ${report.domain} from ${plural(report.files.length, 'file')} in ${(report.elapsedMs / 1000).toFixed(1)} s: ${what.join(', ')}.`,
  ];
  if (report.oldestArchived !== undefined && report.oldestArchived < Date.now() - DEFAULT_RETENTION_MS) {
    // modules/mam deletes messages past its retention when the server starts: say so before that start.
    lines.push(
      `The oldest archived message is from ${new Date(report.oldestArchived).toISOString().slice(0, 10)}: the server deletes messages older than modules.mam.retention ` +
        '(365 days unless set) when it starts. Raise it (or set it to 0) before starting if that history should stay.',
    );
  }
  if (report.replaced.length > 0) lines.push(`Replaced ${plural(report.replaced.length, 'existing account')} (--replace): ${someNames(report.replaced)}.`);
  if (report.existing.length > 0) lines.push(`Skipped ${plural(report.existing.length, 'account')} that exist here already, with their data in the file: ${someNames(report.existing)} (--replace overwrites them).`);
  for (const [host, count] of Object.entries(report.otherHosts)) lines.push(`Skipped ${plural(count, 'user')} of ${host}: this server's domain is ${report.domain}.`);
  if (report.fromPassword > 0) lines.push(`${plural(report.fromPassword, 'account')} came with a plain password: only SCRAM keys derived from it were stored.`);
  if (report.doubleEncoded > 0) lines.push(`${plural(report.doubleEncoded, 'account')} had SCRAM keys base64-encoded twice (ejabberd's export): decoded.`);
  if (report.sha1Only.length > 0) {
    lines.push(`${plural(report.sha1Only.length, 'account')} ${have(report.sha1Only.length)} SCRAM-SHA-1 keys only: they log in with SCRAM-SHA-1 or PLAIN, not SCRAM-SHA-256, until their password is set again (see docs/migrate.md).`);
  }
  if (report.withoutCredentials.length > 0) lines.push(`${plural(report.withoutCredentials.length, 'account')} ${have(report.withoutCredentials.length)} no usable password and cannot log in until one is set (herald passwd): ${someNames(report.withoutCredentials)}.`);
  if (report.warningCount > 0) {
    lines.push(`${plural(report.warningCount, 'warning')} (data not imported):`);
    for (const w of report.warnings.slice(0, maxWarnings)) lines.push(`  ${shownFile(w.file)}:${w.line}: ${w.message}`);
    if (report.warningCount > maxWarnings) lines.push(`  … and ${report.warningCount - maxWarnings} more`);
  }
  return lines;
}
