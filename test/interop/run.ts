// `npm run test:interop`: every interop suite, one after the other, each in its own process (they
// start servers and call process.exit). Prints each suite's output as it comes, then one summary:
// the suites' own closing lines ("<suite> interop: N passed, N failed[, N skipped]") added up, or
// PASSED/SKIPPED/FAILED from the exit code for a suite that prints no count. Exit 1 when any failed.
//
//   node dist/test/interop/run.js              all suites
//   node dist/test/interop/run.js prosody      only the named ones (slixmpp, prosody)

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

const SUITES: { name: string; script: string; what: string }[] = [
  { name: 'slixmpp', script: join(here, 'slixmpp.js'), what: 'an independent client (Debian python3-slixmpp) against Herald: core, MUC, MAM, PEP, upload' },
  { name: 'prosody', script: join(here, 'prosody/index.js'), what: 'federation, push and the app server component with a real Prosody' },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !SUITES.some((suite) => suite.name === name));
if (unknown.length) {
  console.error(`unknown interop suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const suites = wanted.length ? SUITES.filter((suite) => wanted.includes(suite.name)) : SUITES;

interface SuiteOutcome {
  name: string;
  exitCode: number | null;
  passed: number;
  failed: number;
  skipped: number;
  seconds: number;
  /** The suite's own closing line, or a verdict made from its exit code. */
  line: string;
}

const outcomes: SuiteOutcome[] = [];
for (const suite of suites) {
  console.log(`\n=== interop: ${suite.name} — ${suite.what}`);
  outcomes.push(await runSuite(suite.name, suite.script));
}

console.log('\n=== interop summary');
let passed = 0;
let failed = 0;
let skipped = 0;
for (const outcome of outcomes) {
  passed += outcome.passed;
  failed += outcome.failed;
  skipped += outcome.skipped;
  console.log(`  ${outcome.name.padEnd(8)} ${outcome.line} (${outcome.seconds.toFixed(1)} s)`);
}
console.log(`interop: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);

async function runSuite(name: string, script: string): Promise<SuiteOutcome> {
  const started = Date.now();
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lastLines = '';
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    lastLines = (lastLines + chunk.toString('utf8')).slice(-2000);
  });
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const seconds = (Date.now() - started) / 1000;
  const counted = [...lastLines.matchAll(/^\w+ interop: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/gm)].at(-1);
  if (counted) {
    const [line, p, f, s] = counted;
    // A suite that counted no failure but exited non-zero (crashed after counting) still failed.
    const extraFailure = exitCode !== 0 && Number(f) === 0 ? 1 : 0;
    return { name, exitCode, passed: Number(p), failed: Number(f) + extraFailure, skipped: Number(s ?? 0), seconds, line: extraFailure ? `${line} (then exited ${exitCode})` : line };
  }
  if (exitCode !== 0) return { name, exitCode, passed: 0, failed: 1, skipped: 0, seconds, line: `FAILED (exit ${exitCode})` };
  const wasSkipped = /SKIPPED/.test(lastLines);
  return { name, exitCode, passed: wasSkipped ? 0 : 1, failed: 0, skipped: wasSkipped ? 1 : 0, seconds, line: wasSkipped ? 'SKIPPED' : 'PASSED' };
}
