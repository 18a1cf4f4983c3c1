// `herald import` speed: generates an XEP-0227 file with N accounts (SCRAM-SHA-1 and -256 keys,
// a 10-contact roster, a small vCard each) and imports it into a fresh SQLite store, the way the
// CLI does (one exclusive transaction). The target: 20,000 accounts in under a minute.
//
//   npm run build && node dist/bench/pie-import.js                 # 20,000 accounts
//   node dist/bench/pie-import.js --users 5000 --plain-passwords   # plain password attributes (ejabberd's default storage)
//
// Results go to docs/benchmarks.md ("XEP-0227 import"). test/unit/pie-import.test.ts runs a small
// version of the same file.

import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../storage/sqlite.js';
import { importPie } from '../storage/pie/import.js';
import { deriveAccountCredentials } from '../server/accounts.js';
import { encodeScramCredentials } from '../storage/pie/format.js';

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

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { users: { type: 'string', default: '20000' }, 'plain-passwords': { type: 'boolean', default: false } } });
  const users = Number(values.users);
  const dir = mkdtempSync(join(tmpdir(), 'herald-pie-bench-'));
  try {
    let started = performance.now();
    const file = await generatePieFile(join(dir, 'export.xml'), users, { plainPasswords: values['plain-passwords'] });
    const generated = performance.now() - started;
    const store = new SqliteStore({ path: join(dir, 'herald.sqlite') });
    started = performance.now();
    const cpuBefore = process.cpuUsage();
    const report = await importPie(store, [file.path], { domain: 'localhost' });
    const imported = performance.now() - started;
    // CPU time as well: on a shared machine the wall clock says as much about the neighbours.
    const cpu = process.cpuUsage(cpuBefore);
    await store.close();
    const peakRss = process.resourceUsage().maxRSS * 1024; // KiB
    process.stdout.write(
      [
        `file: ${users.toLocaleString('en-US')} accounts × ${file.contacts} contacts${values['plain-passwords'] ? ', plain passwords' : ', SCRAM-SHA-1 and -256 keys'}, ${(file.bytes / 1024 / 1024).toFixed(1)} MiB (written in ${(generated / 1000).toFixed(1)} s)`,
        `import: ${report.accounts.toLocaleString('en-US')} accounts, ${report.items.roster.toLocaleString('en-US')} roster items, ${report.items.vcards.toLocaleString('en-US')} vCards in ${(imported / 1000).toFixed(2)} s (${Math.round(report.accounts / (imported / 1000)).toLocaleString('en-US')} accounts/s); CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (main thread and PBKDF2 threads)`,
        `peak RSS of the process: ${(peakRss / 1024 / 1024).toFixed(0)} MiB`,
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
