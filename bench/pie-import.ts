// `herald import` speed: generates an XEP-0227 file with N accounts (SCRAM-SHA-1 and -256 keys,
// a 10-contact roster, a small vCard each) and imports it into a fresh SQLite store, the way the
// CLI does (one exclusive transaction). The issue's target: 20,000 accounts in under a minute.
//
//   npm run bench -- pie-import                                    # 20,000 accounts (bench/run.ts)
//   npm run bench -- pie-import --accounts 5000 --plain-passwords  # plain password attributes (ejabberd's default storage)
//   node dist/bench/pie-import.js [--users 20000] [--plain-passwords]   # the same without the runner
//
// Results go to docs/benchmarks.md ("XEP-0227 import"). test/unit/pie-import.test.ts runs a small
// version of the same file.

import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../storage/sqlite.js';
import { importPie } from '../storage/pie/import.js';
import { deriveAccountCredentials } from '../server/accounts.js';
import { encodeScramCredentials } from '../storage/pie/format.js';
import { machineBusySeconds } from './proc.js';

export interface GeneratedFile {
  path: string;
  users: number;
  contacts: number;
  bytes: number;
}

/**
 * Writes `users` accounts u0…uN-1 of `domain`, each with `contacts` roster items (a ring:
 * u(i+1)…u(i+contacts), subscription both, one group) and a vCard. All share one password's SCRAM
 * keys (one derivation), or carry it as a plain password attribute.
 */
export async function generatePieFile(path: string, users: number, options: { contacts?: number; domain?: string; plainPasswords?: boolean } = {}): Promise<GeneratedFile> {
  const contacts = Math.min(options.contacts ?? 10, users - 1);
  const domain = options.domain ?? 'localhost';
  const credentials = deriveAccountCredentials('password');
  const scram = `${encodeScramCredentials('sha1', credentials.sha1!).toString()}${encodeScramCredentials('sha256', credentials.sha256!).toString()}`;
  const out = createWriteStream(path);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(`<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n  <host jid='${domain}'>\n`);
  for (let i = 0; i < users; i++) {
    const items = Array.from({ length: contacts }, (_, k) => `<item jid='u${(i + k + 1) % users}@${domain}' name='User ${(i + k + 1) % users}' subscription='both'><group>Friends</group></item>`).join('');
    const password = options.plainPasswords ? ` password='password'` : '';
    await write(`    <user name='u${i}'${password}>\n      ${options.plainPasswords ? '' : scram}\n      <query xmlns='jabber:iq:roster'>${items}</query>\n      <vCard xmlns='vcard-temp'><FN>User ${i}</FN><NICKNAME>u${i}</NICKNAME></vCard>\n    </user>\n`);
  }
  await write('  </host>\n</server-data>\n');
  await new Promise<void>((resolvePromise, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolvePromise())));
  return { path, users, contacts, bytes: statSync(path).size };
}

export interface PieImportBenchResult {
  accounts: number;
  contacts: number;
  rosterItems: number;
  vcards: number;
  plainPasswords: boolean;
  fileMiB: number;
  generateSeconds: number;
  /** Wall clock of importPie (one exclusive transaction, committed). */
  importSeconds: number;
  /** CPU of this process during the import (main thread and PBKDF2 threads). */
  cpuSeconds: number;
  /** CPU used meanwhile by other programs on the machine (cores × seconds); NaN off Linux. */
  othersCpuSeconds: number;
  loadAverage: number[];
  peakRssMiB: number;
}

/** Generates the file, imports it into a fresh SQLite store in a temp directory, measures. */
export async function runPieImportBench(options: { users: number; contacts?: number; plainPasswords?: boolean }): Promise<PieImportBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-pie-bench-'));
  try {
    let started = performance.now();
    const file = await generatePieFile(join(dir, 'export.xml'), options.users, { contacts: options.contacts, plainPasswords: options.plainPasswords });
    const generated = performance.now() - started;
    const store = new SqliteStore({ path: join(dir, 'herald.sqlite') });
    const busyBefore = machineBusySeconds();
    const cpuBefore = process.cpuUsage();
    started = performance.now();
    const report = await importPie(store, [file.path], { domain: 'localhost' });
    const imported = performance.now() - started;
    // CPU time as well: on a shared machine the wall clock says as much about the neighbours.
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const othersCpuSeconds = machineBusySeconds() - busyBefore - cpuSeconds;
    const loadAverage = loadavg();
    await store.close();
    return {
      accounts: report.accounts, contacts: file.contacts, rosterItems: report.items.roster, vcards: report.items.vcards,
      plainPasswords: options.plainPasswords === true, fileMiB: file.bytes / 1024 / 1024, generateSeconds: generated / 1000,
      importSeconds: imported / 1000, cpuSeconds, othersCpuSeconds: Math.max(0, othersCpuSeconds), loadAverage,
      peakRssMiB: (process.resourceUsage().maxRSS * 1024) / 1024 / 1024, // maxRSS is in KiB
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lines `node dist/bench/pie-import.js` and `npm run bench -- pie-import` print. */
export function formatPieImportResult(r: PieImportBenchResult): string[] {
  const n = (value: number) => value.toLocaleString('en-US');
  return [
    `file: ${n(r.accounts)} accounts × ${r.contacts} contacts${r.plainPasswords ? ', plain passwords' : ', SCRAM-SHA-1 and -256 keys'}, ${r.fileMiB.toFixed(1)} MiB (written in ${r.generateSeconds.toFixed(1)} s)`,
    `import: ${n(r.accounts)} accounts, ${n(r.rosterItems)} roster items, ${n(r.vcards)} vCards in ${r.importSeconds.toFixed(2)} s (${n(Math.round(r.accounts / r.importSeconds))} accounts/s); CPU ${r.cpuSeconds.toFixed(2)} s (main thread and PBKDF2 threads)`,
    `machine: other programs used ${Number.isNaN(r.othersCpuSeconds) ? 'unknown' : `${(r.othersCpuSeconds / r.importSeconds).toFixed(2)} cores`} during the import; load average ${r.loadAverage.map((l) => l.toFixed(2)).join(' ')}`,
    `peak RSS of the process: ${r.peakRssMiB.toFixed(0)} MiB`,
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { users: { type: 'string', default: '20000' }, 'plain-passwords': { type: 'boolean', default: false } } });
  const result = await runPieImportBench({ users: Number(values.users), plainPasswords: values['plain-passwords'] });
  process.stdout.write(`${formatPieImportResult(result).join('\n')}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
