// Debian's prosody and prosody-modules for the interop run: found, or installed with apt-get when
// we may (root, or sudo without a password). .ci/run installs them too; this covers a developer's
// `npm run test:interop` on a machine where they are missing.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where Debian's prosody-modules puts mod_cloud_notify (the same plugin folder as Prosody's own modules). */
const CLOUD_NOTIFY_PATHS = ['/usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua', '/usr/lib/prosody/modules/mod_cloud_notify.lua'];
const PACKAGES = ['prosody', 'prosody-modules'];

export interface ProsodyInstallation {
  /** e.g. "prosody 0.12.3-1+deb12u1, prosody-modules 0.0~hg20230223.556bf57d6417+dfsg-1" */
  versions: string;
  /** True when this run installed the packages. */
  installed: boolean;
}

export function findProsody(): ProsodyInstallation | undefined {
  const hasProsody = spawnSync('sh', ['-c', 'command -v prosody && command -v prosodyctl'], { encoding: 'utf8' }).status === 0;
  if (!hasProsody || !CLOUD_NOTIFY_PATHS.some((path) => existsSync(path))) return undefined;
  const query = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', ...PACKAGES], { encoding: 'utf8' });
  const versions = query.status === 0 ? query.stdout.trim().split('\n').join(', ') : 'versions unknown (not from dpkg)';
  return { versions, installed: false };
}

/** Finds Prosody, or installs it when allowed; undefined (with the reason) when it is not there. */
export function ensureProsody(): { installation?: ProsodyInstallation; reason?: string } {
  const found = findProsody();
  if (found) return { installation: found };
  const root = process.getuid?.() === 0;
  const sudo = root ? [] : ['sudo', '-n'];
  if (!root && spawnSync('sudo', ['-n', 'true']).status !== 0) {
    return { reason: 'prosody and prosody-modules are not installed, and apt-get needs root (sudo apt-get install prosody prosody-modules)' };
  }
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status !== 0) {
    return { reason: 'prosody and prosody-modules are not installed, and there is no apt-get here' };
  }
  console.log(`installing ${PACKAGES.join(' and ')} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]) => {
    const [command, ...rest] = [...sudo, 'apt-get', ...args];
    return spawnSync(command!, rest, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  };
  // Try without a fresh package list first: it is slow, and often already there.
  let result = apt(['install', '-y', '-qq', ...PACKAGES]);
  if (result.status !== 0) {
    apt(['update', '-qq']);
    result = apt(['install', '-y', '-qq', ...PACKAGES]);
  }
  const after = findProsody();
  if (!after) return { reason: `apt-get install ${PACKAGES.join(' ')} failed: ${(result.stderr || result.stdout || '').trim().split('\n').slice(-3).join(' / ')}` };
  return { installation: { ...after, installed: true } };
}
