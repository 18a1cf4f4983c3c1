// Starting and steering the server under test (bench/server-main.ts) as a child process: a
// generated config in a fresh temp directory, pinned to core 0 when there are cores to spare,
// optionally under `node --cpu-prof`, spoken to over the IPC channel.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface ServerOptions {
  accounts: number;
  password: string;
  /** Roster contacts per account (0: none). */
  roster?: number;
  /** Pin to this core with taskset (undefined: no pinning). */
  core?: number;
  /** Write a V8 CPU profile of the whole run into this directory. */
  profileDir?: string;
  /** Extra config keys merged over the bench defaults. */
  config?: Record<string, unknown>;
  /** Prefix for the server's own log lines on our stderr. */
  label?: string;
  /** Extra node flags for the server process (diagnostics: --trace-gc, --max-semi-space-size=…). */
  nodeFlags?: string[];
}

export interface ServerReady {
  port: number;
  modules: string[];
  accounts: number;
  rosterItems: number;
  rosterSkipped: boolean;
  /** Time the server took from process start to listening. */
  setupMs: number;
  /** Time the separate seeding run took. */
  seedMs: number;
}

export interface ServerMemory {
  rssKiB: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  sessions: number;
}

type ChildMessage =
  | ({ type: 'ready' } & ServerReady)
  | ({ type: 'memory' } & ServerMemory)
  | { type: 'stats'; sessions: number; streams: number }
  | { type: 'heap-snapshot'; path: string }
  | ({ type: 'loop-delay' } & LoopDelay);

/** The server's event-loop delay over a period, in ms (timer resolution 10 ms). */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

export class BenchServer {
  readonly pid: number;
  ready!: ServerReady;
  private readonly waiting = new Map<string, (message: ChildMessage) => void>();
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess, private readonly dataDir: string) {
    this.pid = child.pid!;
    child.on('message', (message: ChildMessage) => {
      const waiter = this.waiting.get(message.type);
      if (waiter) {
        this.waiting.delete(message.type);
        waiter(message);
      }
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static async start(options: ServerOptions): Promise<BenchServer> {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-'));
    const port = await freePort();
    const config = {
      domain: 'localhost',
      data_dir: join(dataDir, 'data'),
      log_level: 'warn',
      // Only the client listener: the benchmark talks to nothing else.
      listen: { interfaces: ['127.0.0.1'], c2s: port, c2s_direct_tls: 0, s2s: 0, component: 0, http: 0, https: 0 },
      ...options.config,
    };
    const configPath = join(dataDir, 'herald.yml');
    writeFileSync(configPath, stringify(config));
    // Fill the store in a process of its own first (see server-main.ts: seed()).
    const seedRun = spawnSync(
      process.execPath,
      [join(HERE, 'server-main.js'), '--config', configPath, '--seed', '--accounts', String(options.accounts), '--password', options.password, '--roster', String(options.roster ?? 0)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    if (seedRun.status !== 0) throw new Error(`seeding the bench store failed (exit ${seedRun.status})`);
    const seeded = JSON.parse(seedRun.stdout.split('\n').find((line) => line.startsWith('{"accounts"')) ?? '{}') as { accounts: number; rosterItems: number; rosterSkipped: boolean; setupMs: number };
    const nodeArgs = ['--expose-gc', ...(options.nodeFlags ?? [])];
    if (options.profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${resolve(options.profileDir)}`);
    const serverArgs = [join(HERE, 'server-main.js'), '--config', configPath];
    const command = options.core !== undefined ? 'taskset' : process.execPath;
    const args = options.core !== undefined ? ['-c', String(options.core), process.execPath, ...nodeArgs, ...serverArgs] : [...nodeArgs, ...serverArgs];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const label = options.label ?? 'server';
    const forward = (stream: NodeJS.ReadableStream | null) => {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (line.trim() !== '') process.stderr.write(`[${label}] ${line}\n`);
      });
    };
    forward(child.stdout);
    forward(child.stderr);
    const server = new BenchServer(child, dataDir);
    const ready = await Promise.race([
      server.request('ready'),
      server.exited.then((code) => {
        throw new Error(`bench server exited during startup (code ${code})`);
      }),
    ]);
    server.ready = { ...(ready as ServerReady), accounts: seeded.accounts, rosterItems: seeded.rosterItems, rosterSkipped: seeded.rosterSkipped, seedMs: seeded.setupMs };
    return server;
  }

  /** Full GC in the server, then its memory figures. */
  async memory(): Promise<ServerMemory> {
    this.child.send({ type: 'gc' });
    return (await this.request('memory')) as ServerMemory;
  }

  /** Full GC, then a V8 heap snapshot written to `path` by the server. */
  async heapSnapshot(path: string): Promise<string> {
    this.child.send({ type: 'heap-snapshot', path });
    return ((await this.request('heap-snapshot')) as { path: string }).path;
  }

  /** The server's event-loop delay since the previous call (which `reset` starts afresh). */
  async loopDelay(reset = true): Promise<LoopDelay> {
    this.child.send({ type: 'loop-delay', reset });
    const { p50, p99, max } = (await this.request('loop-delay')) as LoopDelay;
    return { p50, p99, max };
  }

  async stats(): Promise<{ sessions: number; streams: number }> {
    this.child.send({ type: 'stats' });
    return (await this.request('stats')) as { sessions: number; streams: number };
  }

  /** Graceful stop (lets --cpu-prof write its profile); kills after a grace period. */
  async stop(): Promise<void> {
    if (this.child.connected) this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private request(type: string): Promise<ChildMessage> {
    return new Promise((resolve) => this.waiting.set(type, resolve));
  }
}

/**
 * A TCP port free right now, below Linux's ephemeral range (32768+): the generator's own outgoing
 * connections (tens of thousands in a login run) take ephemeral ports, and one of them holding
 * the port the server is about to listen on makes its listen fail with EADDRINUSE.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
