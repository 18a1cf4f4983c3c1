// `npm run test:interop`: Herald against an independent client, Debian's python3-slixmpp.
// Starts a Herald on random ports, creates two accounts, runs test/interop/slixmpp_check.py.
// Skips (exit 0, saying why) when slixmpp is not installed and cannot be; in CI (CI=true) a
// missing slixmpp is a failure, since .ci/run installs it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, DEFAULT_PASSWORD } from '../../bin/testing.js';

const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, '../../../test/interop/slixmpp_check.py');
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const probe = spawnSync(python, ['-c', 'import slixmpp; print(slixmpp.__version__)'], { encoding: 'utf8' });
if (probe.status !== 0) {
  const message = 'slixmpp interop: SKIPPED — python3-slixmpp is not installed (apt-get install python3-slixmpp)';
  if (process.env.CI === 'true') {
    console.error(message.replace('SKIPPED', 'FAILED (CI must have it)'));
    process.exit(1);
  }
  console.log(message);
  process.exit(0);
}

const server = await startServer({ config: { c2s: { require_encryption: true } } });
try {
  await server.createUser('alice');
  await server.createUser('bob');
  // Asynchronous: the server runs in this process and must keep serving while Python talks to it.
  const child = spawn(python, [script, '127.0.0.1', String(server.port), server.domain, DEFAULT_PASSWORD], { stdio: 'inherit', timeout: 60_000 });
  const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (status !== 0) {
    console.error(`slixmpp interop: FAILED (slixmpp ${probe.stdout.trim()}, exit ${status})`);
    process.exitCode = 1;
  } else {
    console.log(`slixmpp interop: PASSED (slixmpp ${probe.stdout.trim()}: STARTTLS, SCRAM, roster, subscription, messages both ways)`);
  }
} finally {
  await server.stop();
}
