// `npm run test:interop` (with test/interop/run.ts): Herald against a real Prosody (Debian's 0.12
// with prosody-modules), both started here on loopback. Three runs:
//   1. s2s with Server Dialback: each side trusts only a CA that signed nothing, so certificates
//      cannot authenticate anyone;
//   2. s2s with SASL EXTERNAL: certificates from one throw-away CA both sides trust, and both
//      sides configured to refuse anything less (s2s_secure_auth, require_valid_certificates);
//   in each: messages and presence subscriptions both ways, a Prosody user's mod_cloud_notify
//   pushing through Herald's app server (registration by ad-hoc commands over s2s, the publish
//   from Prosody to push.herald.test), and which mechanism both servers' logs say was used;
//   3. `herald appserver --component` attached to Prosody as an XEP-0114 component, serving a
//      Prosody user the same way without federation.
// Nothing leaves the machine: .test domains, static routes both ways (s2s.host_map and
// plugins/mod_s2s_host_map.lua), and both servers' DNS pointed at a stub on loopback that answers
// NXDOMAIN (its queries are reported). Runs 1-2: federation.ts; run 3: component.ts; Prosody and
// its accounts: prosody.ts; the Herald side: herald.ts (in-process) and bin/appserver.ts (CLI).
//
// Skips (exit 0, saying why) when Prosody is missing and cannot be installed; in CI (CI=true)
// that is a failure, since .ci/run installs it.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsStub } from '../../wire/s2s-helpers.js';
import { CheckReport } from '../checks.js';
import { ensureProsody } from './install.js';
import { federationRun } from './federation.js';
import { componentRun } from './component.js';

/** The whole suite is stopped after this, whatever hangs (the issue asks for well under 5 minutes). */
const SUITE_DEADLINE_MS = 180_000;

const report = new CheckReport('prosody');
const started = Date.now();
const keepFiles = process.env.HERALD_INTEROP_KEEP === '1';

const { installation, reason } = ensureProsody();
if (!installation) {
  const message = `prosody interop: SKIPPED — ${reason}`;
  if (process.env.CI === 'true') {
    console.log(message.replace('SKIPPED', 'FAILED (CI must have Prosody: .ci/run installs it)'));
    console.log('prosody interop: 0 passed, 1 failed');
    process.exit(1);
  }
  console.log(message);
  console.log('prosody interop: 0 passed, 0 failed, 1 skipped');
  process.exit(0);
}
console.log(`Prosody interop with ${installation.versions}${installation.installed ? ' (installed by this run)' : ''}`);

const deadline = setTimeout(() => {
  console.error(`prosody interop: stopped after ${SUITE_DEADLINE_MS / 1000} s`);
  report.printSummary(Date.now() - started);
  process.exit(1);
}, SUITE_DEADLINE_MS);
deadline.unref();

const root = mkdtempSync(join(tmpdir(), 'herald-interop-prosody-'));
// Prosody runs as the prosody user when we are root: it must get through to its own folder.
chmodSync(root, 0o711);
// Every DNS question either server asks goes here and gets NXDOMAIN: nothing reaches a real resolver.
const dns = await startDnsStub(undefined, {});
try {
  const ctx = { report, root, dns };
  await federationRun(ctx, 'dialback');
  await federationRun(ctx, 'sasl-external');
  await componentRun(ctx);
  report.note(dns.queries.length === 0 ? 'DNS: no lookups at all reached the loopback stub (every peer came from a host map)' : `DNS: the loopback stub answered NXDOMAIN to ${dns.queries.join(', ')}`);
} finally {
  dns.close();
  const failed = report.count('failed') > 0;
  if (failed || keepFiles) console.log(`\nlogs and configs kept in ${root} (prosody.log, herald.log, prosody.cfg.lua per run)`);
  else rmSync(root, { recursive: true, force: true });
  report.printSummary(Date.now() - started);
  clearTimeout(deadline);
}
process.exit(report.count('failed') > 0 ? 1 : 0);
