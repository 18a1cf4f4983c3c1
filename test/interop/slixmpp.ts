// `npm run test:interop`: Herald against an independent client, Debian's python3-slixmpp, used as a
// new user would use it: its own plugins, not hand-written XML. Starts a Herald on random ports,
// creates the accounts, and runs one Python script per feature, each reporting named checks:
//   core    slixmpp_check.py   STARTTLS (certificate checked against Herald's own), SCRAM, roster,
//                              subscription, chat messages
//   muc     slixmpp_muc.py     XEP-0045: create, configure, join, message, subject, history, kick
//   mam     slixmpp_mam.py     XEP-0313 with XEP-0059 paging over a chat between two slixmpp clients
//   pep     slixmpp_pep.py     XEP-0163: nick (XEP-0172) and avatar (XEP-0084) notifications to a
//                              contact that asked for them with +notify caps (XEP-0115)
//   upload  slixmpp_upload.py  XEP-0363: slot, PUT and GET over HTTPS, file too large
// The scripts share slixmpp_support.py; each prints `CHECK {json}` per check (see there).
// Skips (exit 0, saying why) when slixmpp is not installed; in CI (CI=true) a missing slixmpp is a
// failure, since .ci/run installs it.
//
//   node dist/test/interop/slixmpp.js [core muc mam pep upload]   only the named scripts
//   HERALD_INTEROP_DEBUG=1 …   a failing script's output then includes slixmpp's SEND/RECV stanza log
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, DEFAULT_PASSWORD } from '../../bin/testing.js';
import { selfSignedPaths } from '../../server/tls/files.js';
import { CheckReport, type CheckStatus } from './checks.js';

const here = dirname(fileURLToPath(import.meta.url));
// The Python files are not compiled: they stay in the source tree (dist/test/interop → test/interop).
const scripts = join(here, '../../../test/interop');
// Debian's python3 (slixmpp from apt); a python3 earlier on PATH (pyenv) would not have it.
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Each script's own time limit; its checks have shorter ones (slixmpp_support.py). */
const SCRIPT_TIMEOUT_MS = 90_000;

const GROUPS: { name: string; script: string; title: string }[] = [
  { name: 'core', script: 'slixmpp_check.py', title: 'core: login, roster, subscription, messages' },
  { name: 'muc', script: 'slixmpp_muc.py', title: 'XEP-0045 multi-user chat (slixmpp xep_0045)' },
  { name: 'mam', script: 'slixmpp_mam.py', title: 'XEP-0313 message archive (slixmpp xep_0313, xep_0059)' },
  { name: 'pep', script: 'slixmpp_pep.py', title: 'XEP-0163 PEP (slixmpp xep_0163, xep_0172, xep_0084, xep_0115)' },
  { name: 'upload', script: 'slixmpp_upload.py', title: 'XEP-0363 HTTP file upload (slixmpp xep_0363, aiohttp)' },
];

/** Every account any script logs in with (each script uses its own, so archives and rosters don't mix). */
const ACCOUNTS = ['alice', 'bob', 'mia', 'max', 'moe', 'ann', 'ben', 'pia', 'pete', 'ula'];

const wanted = process.argv.slice(2);
const groups = wanted.length ? GROUPS.filter((group) => wanted.includes(group.name)) : GROUPS;
if (groups.length !== (wanted.length || GROUPS.length)) {
  console.error(`unknown group(s) in ${wanted.join(', ')}; known: ${GROUPS.map((g) => g.name).join(', ')}`);
  process.exit(2);
}

const probe = spawnSync(python, ['-c', 'import slixmpp, aiohttp; print(slixmpp.__version__)'], { encoding: 'utf8' });
if (probe.status !== 0) {
  const message = 'slixmpp interop: SKIPPED — python3-slixmpp or python3-aiohttp is not installed (apt-get install python3-slixmpp python3-aiohttp)';
  if (process.env.CI === 'true') {
    console.log(message.replace('SKIPPED', 'FAILED (CI must have them)'));
    console.log('slixmpp interop: 0 passed, 1 failed');
    process.exit(1);
  }
  console.log(message);
  console.log('slixmpp interop: 0 passed, 0 failed, 1 skipped');
  process.exit(0);
}

const report = new CheckReport('slixmpp');
const started = Date.now();
console.log(`slixmpp ${probe.stdout.trim()} (${python}) against Herald`);

const server = await startServer({
  // A small upload limit so that the "too large" check needs no large file.
  config: { c2s: { require_encryption: true }, modules: { upload: { max_file_size: '1 MiB' } } },
});
try {
  for (const account of ACCOUNTS) await server.createUser(account);
  const { certPath } = selfSignedPaths(server.dataDir);
  const args = ['127.0.0.1', String(server.port), server.domain, DEFAULT_PASSWORD, certPath];
  for (const group of groups) {
    report.section(group.title);
    await runScript(group.script, args);
  }
} finally {
  await server.stop();
}
report.printSummary(Date.now() - started);
process.exit(report.count('failed') > 0 ? 1 : 0);

/** Runs one script, turning its CHECK lines into checks; a script that fails without a failed check fails one of its own. */
async function runScript(script: string, args: string[]): Promise<void> {
  const child = spawn(python, [join(scripts, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: SCRIPT_TIMEOUT_MS,
    // The scripts import slixmpp_support.py from their own folder; unbuffered so lines come as they happen.
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
  });
  let failedChecks = 0;
  let pending = '';
  const output: string[] = [];
  const onLine = (line: string): void => {
    if (!line.startsWith('CHECK ')) {
      if (line.trim()) output.push(line);
      return;
    }
    try {
      const result = JSON.parse(line.slice('CHECK '.length)) as { name: string; status: CheckStatus; ms: number; detail?: string | null };
      if (result.status === 'failed') failedChecks++;
      report.add({ name: result.name, status: result.status, ms: result.ms, detail: result.detail ?? undefined });
    } catch {
      output.push(line);
    }
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => output.push(...chunk.split('\n').filter((l) => l.trim())));
  const scriptStarted = Date.now();
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  if (pending) onLine(pending);
  if (code !== 0 && failedChecks === 0) {
    // A crash, a timeout, or an exit code without a failed check: its output says why.
    const why = signal ? `killed (${signal}) after ${SCRIPT_TIMEOUT_MS / 1000} s` : `exited ${code}`;
    report.add({ name: `${script} ran to its end`, status: 'failed', ms: Date.now() - scriptStarted, detail: [why, ...output.slice(-30)].join('\n') });
  } else if (failedChecks > 0 && output.length) {
    // What the script printed besides its checks (slixmpp's own log lines) helps with a failure.
    console.log(output.slice(-30).map((line) => `        | ${line}`).join('\n'));
  }
}
