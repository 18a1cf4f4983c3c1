// A throw-away Prosody for the interop tests: a generated config in a temporary directory, every
// listener on 127.0.0.1 on ports picked for the run (never the machine's 5222/5269/5347/5280),
// accounts made with prosodyctl, the daemon in the foreground as a child process, its log at debug
// level in the directory (read by the checks: which s2s method authenticated, hibernation, ...).
//
// Prosody refuses to run as root (mod_posix: "Danger, Will Robinson!"), and only prosodyctl
// switches users by itself. So when the tests run as root (CI), both are started with the uid and
// gid of Debian's `prosody` user and the directory is handed to that user.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The Lua plugins in the source tree (dist/ holds only the compiled TypeScript). */
export const PLUGIN_SOURCE_DIR = join(here, '../../../../test/interop/prosody/plugins');

export interface ProsodyPorts {
  c2s: number;
  s2s: number;
  component: number;
  http: number;
  https: number;
}

export interface ProsodyOptions {
  /** The VirtualHost, e.g. prosody.test. */
  domain: string;
  /** An empty directory for config, data, log and pid (removed by the caller). */
  dir: string;
  /** Certificate and key for the VirtualHost (PEM). */
  certPem: string;
  keyPem: string;
  /** CA certificates Prosody trusts for other servers (ssl.cafile). */
  caPem: string;
  /** s2s_secure_auth: refuse servers whose certificate is not valid (no dialback fallback). */
  secureAuth: boolean;
  /** Static s2s routes (mod_s2s_host_map): domain → 'ip:port'. */
  hostMap: Record<string, string>;
  /** XEP-0114 components: domain → shared secret. */
  components?: Record<string, string>;
  /** 'ip:port' of a DNS server on loopback that every lookup goes to (libunbound forward). */
  dnsServer: string;
  /** Accounts made before the start, all with `password`. */
  users: string[];
  password: string;
}

/** What the account of the prosody user is, when we have to switch to it (running as root). */
interface RunAs {
  uid: number;
  gid: number;
}

export class Prosody {
  readonly ports: ProsodyPorts;
  readonly configFile: string;
  readonly logFile: string;
  private process: ChildProcess | undefined;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly runAs: RunAs | undefined;

  private constructor(readonly options: ProsodyOptions, ports: ProsodyPorts) {
    this.ports = ports;
    this.configFile = join(options.dir, 'prosody.cfg.lua');
    this.logFile = join(options.dir, 'prosody.log');
    this.runAs = prosodyUser();
  }

  /** Picks free loopback ports, so that a peer's config can name them before the start. */
  static async pickPorts(): Promise<ProsodyPorts> {
    return { c2s: await freePort(), s2s: await freePort(), component: await freePort(), http: await freePort(), https: await freePort() };
  }

  /** Writes the config, makes the accounts and starts Prosody; resolves when c2s and s2s accept connections. */
  static async start(options: ProsodyOptions, ports?: ProsodyPorts): Promise<Prosody> {
    const prosody = new Prosody(options, ports ?? (await Prosody.pickPorts()));
    await prosody.launch();
    return prosody;
  }

  private async launch(): Promise<void> {
    const { dir } = this.options;
    for (const sub of ['data', 'plugins', 'certs']) mkdirSync(join(dir, sub), { recursive: true });
    for (const plugin of readdirSync(PLUGIN_SOURCE_DIR).filter((name) => name.endsWith('.lua'))) {
      copyFileSync(join(PLUGIN_SOURCE_DIR, plugin), join(dir, 'plugins', plugin));
    }
    writeFileSync(join(dir, 'prosody.crt'), this.options.certPem);
    writeFileSync(join(dir, 'prosody.key'), this.options.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'trusted-ca.pem'), this.options.caPem);
    writeFileSync(this.configFile, renderConfig(this.options, this.ports));
    if (this.runAs) {
      chownTree(dir, this.runAs);
      // Prosody's own message for an unreadable config is "We looked for: /etc/prosody//tmp/...".
      const readable = spawnSync('test', ['-r', this.configFile], { uid: this.runAs.uid, gid: this.runAs.gid });
      if (readable.status !== 0) throw new Error(`the prosody user cannot read ${this.configFile}: a folder above it is closed to others (set TMPDIR to /tmp?)`);
    }

    // prosodyctl writes the account files directly (internal storage): no server needed yet.
    await Promise.all(this.options.users.map((user) => this.prosodyctl(['register', user, this.options.domain, this.options.password])));

    const child = spawn('prosody', ['-F', '--config', this.configFile], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.runAs && { uid: this.runAs.uid, gid: this.runAs.gid }),
      env: { ...process.env, HOME: dir },
    });
    this.process = child;
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
    });
    child.on('error', (err) => {
      output += `\n${err.message}`;
      this.exited ??= { code: null, signal: null };
    });
    killOnExit.add(child);
    try {
      await this.untilListening([this.ports.c2s, this.ports.s2s], 10_000);
    } catch (err) {
      await this.stop();
      throw new Error(`Prosody did not start: ${(err as Error).message}\n${output}\n${this.logTail(30)}`, { cause: err });
    }
  }

  /** Runs prosodyctl with this config (as the prosody user when we are root). */
  prosodyctl(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('prosodyctl', ['--config', this.configFile, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(this.runAs && { uid: this.runAs.uid, gid: this.runAs.gid }),
        env: { ...process.env, HOME: this.options.dir },
      });
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`prosodyctl ${args[0]} exited with ${code}: ${output.trim()}`))));
    });
  }

  private async untilListening(ports: number[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const port of ports) {
      for (;;) {
        if (this.exited) throw new Error(`prosody exited (code ${this.exited.code}, signal ${this.exited.signal})`);
        if (await accepts(port)) break;
        if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
        await sleep(50);
      }
    }
  }

  /** The whole debug log so far. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  logTail(lines: number): string {
    return this.log().split('\n').slice(-lines - 1).join('\n');
  }

  /** Waits until a log line matches (Prosody writes its log file unbuffered). */
  async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.log().match(pattern);
      if (match) return match;
      if (this.exited) throw new Error(`prosody exited while waiting for /${pattern.source}/`);
      if (Date.now() > deadline) throw new Error(`no line matching /${pattern.source}/ in Prosody's log within ${timeoutMs} ms\n${this.logTail(20)}`);
      await sleep(50);
    }
  }

  /** The mechanism of each s2s authentication (logged by plugins/mod_interop_log.lua). */
  s2sAuthentications(): { direction: string; remote: string; mechanism: string }[] {
    const out: { direction: string; remote: string; mechanism: string }[] = [];
    for (const match of this.log().matchAll(/interop: s2s (incoming|outgoing) authenticated remote=(\S+) mechanism=(\S+)/g)) {
      out.push({ direction: match[1]!, remote: match[2]!, mechanism: match[3]! });
    }
    return out;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || this.exited) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    killOnExit.delete(child);
  }
}

// ---------------------------------------------------------------------------------------------
// The config

/** A Lua string literal (paths, domains and secrets made by these tests: printable ASCII). */
function lua(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`not printable ASCII: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function luaTable(entries: Record<string, string>): string {
  return `{ ${Object.entries(entries).map(([key, value]) => `[${lua(key)}] = ${lua(value)};`).join(' ')} }`;
}

export function renderConfig(options: ProsodyOptions, ports: ProsodyPorts): string {
  const { dir } = options;
  const [dnsHost, dnsPort] = options.dnsServer.split(':');
  const components = Object.entries(options.components ?? {})
    .map(([domain, secret]) => `\nComponent ${lua(domain)}\n  component_secret = ${lua(secret)}\n`)
    .join('');
  return `-- Generated by test/interop/prosody for one interop run: loopback only, throw-away data.
pidfile = ${lua(join(dir, 'prosody.pid'))}
data_path = ${lua(join(dir, 'data'))}
plugin_paths = { ${lua(join(dir, 'plugins'))} }
-- An empty folder: without it Prosody indexes /etc/prosody/certs.
certificates = ${lua(join(dir, 'certs'))}
log = { { levels = { min = "debug" }, to = "file", filename = ${lua(join(dir, 'prosody.log'))} } }

-- Every listener on loopback, on ports picked for this run; no direct TLS listeners.
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${ports.c2s} }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { ${ports.s2s} }
s2s_direct_tls_ports = { }
component_ports = { ${ports.component} }
component_interfaces = { "127.0.0.1" }
http_ports = { ${ports.http} }
http_interfaces = { "127.0.0.1" }
https_ports = { ${ports.https} }
https_interfaces = { "127.0.0.1" }

-- DNS: every lookup goes to a stub on loopback (libunbound, no resolv.conf, no /etc/hosts).
unbound = { resolvconf = false; hoststxt = false; forward = ${lua(`${dnsHost}@${dnsPort}`)} }
-- Peers are found through this map instead (plugins/mod_s2s_host_map.lua).
s2s_host_map = ${luaTable(options.hostMap)}

modules_enabled = {
  "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping";
  "smacks";        -- XEP-0198 (in Prosody 0.12 itself)
  "cloud_notify";  -- XEP-0357 (prosody-modules)
  "s2s_host_map"; "interop_log";
}
authentication = "internal_hashed"
storage = "internal"

-- Trusted for other servers: only cafile (capath is the empty folder, not /etc/ssl/certs).
ssl = { certificate = ${lua(join(dir, 'prosody.crt'))}; key = ${lua(join(dir, 'prosody.key'))}; cafile = ${lua(join(dir, 'trusted-ca.pem'))}; capath = ${lua(join(dir, 'certs'))} }
s2s_require_encryption = true
s2s_secure_auth = ${options.secureAuth ? 'true' : 'false'}

smacks_hibernation_time = 60

VirtualHost ${lua(options.domain)}
${components}`;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** The prosody user's ids when we are root (Prosody refuses root), else undefined: run as ourselves. */
function prosodyUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = spawnSync('getent', ['passwd', 'prosody'], { encoding: 'utf8' });
  const fields = passwd.stdout.trim().split(':');
  if (passwd.status !== 0 || fields.length < 4) throw new Error('running as root, and there is no prosody user to run Prosody as (Debian\'s prosody package makes one)');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function chownTree(path: string, owner: RunAs): void {
  chownSync(path, owner.uid, owner.gid);
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}

/** A loopback port nothing listens on right now (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prosody processes still running when this process exits (a failed assertion, a timeout) are killed. */
const killOnExit = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of killOnExit) child.kill('SIGKILL');
});
