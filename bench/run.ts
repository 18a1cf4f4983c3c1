// Herald's benchmark runner: `npm run bench -- login|msg|mem|push|all|pie-import [options]` (see bench/README.md).
//
// The server under test runs in its own process (bench/server-main.ts), pinned to core 0; this
// process is the load generator, pinned to core 1. To get there it re-executes itself once under
// `taskset -c 1`, with the open-files limit raised to the hard limit (10,000 sessions need 10,000
// sockets on each side). Results go to stdout; --json FILE keeps them for docs/benchmarks.md.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchServer, type ServerOptions } from './server-process.js';
import { machineBusySeconds } from './proc.js';
import { speedOnCore } from './calibrate.js';
import { runLoginBench, type LoginBenchResult } from './login.js';
import { runMsgBench, type MsgBenchResult } from './msg.js';
import { NOISE_CORES } from './steps.js';
import { runMemBench, type MemBenchResult } from './mem.js';
import { runPushBench, type PushBenchResult } from './push.js';
import { formatPieImportResult, runPieImportBench, type PieImportBenchResult } from './pie-import.js';
import { formatProfileSummary, summarizeProfile, type ProfileSummary } from './profile-summary.js';
import { fmtInt, latencyLine, ms, sleep } from './stats.js';

const USAGE = `usage: npm run bench -- login|msg|mem|push|all|pie-import [options]

  login   logins/s, SCRAM-SHA-1, plain TCP and STARTTLS, 50 in flight
  msg     highest message rate among 1,000 online users with p99 delivery <= 100 ms
  mem     server RSS per idle session at 10,000 sessions (10-contact rosters, initial presence)
  push    push latency, message to a hibernated session → UnifiedPush HTTP endpoint, at 1,000/s
  all     the four in turn
  pie-import  herald import speed: an XEP-0227 file of 20,000 accounts (10-contact rosters,
          vCards) into a fresh database, no server (not part of all)

options:
  --profile [DIR]      run the server under node --cpu-prof; profiles into DIR
                       (default bench/profiles) and a top-15 summary printed
  --no-pin             do not pin server and generator to cores 0 and 1
  --quiet-wait 120     before each benchmark, wait up to this many seconds for other programs
                       to use less than 10% of a core (0: don't wait)
  --noisy-retries 2    repeat a login measurement or msg step disturbed by other programs
  --json FILE          also write the results as JSON
  --server-flags=...   extra node flags for the server process (e.g. --server-flags=--trace-gc)
  --disable a,b        built-in modules not to load (modules_disabled), to see what a module costs
  login:  --inflight 50  --warmup 2  --duration 10 (seconds)  --variants plain,starttls
          --repeat 1  (several runs, each with a fresh server; the median is reported too)
  msg:    --users 1000  --rates 5000,10000,15000,20000,26000,30000,35000,40000,45000,50000,60000  --step 10
          --msg-warmup 3  --p99 100 (ms)  --refine 3  --msg-tls
  mem:    --sessions 10000  --contacts 10  --mem-tls
          --heap-snapshots DIR   V8 heap snapshots before/after and what grew per session
                                 (a diagnostic: the RSS figure of such a run is not valid)
  push:   --devices 1000  --senders 10  --push-rates 500,1000,2000,4000  --push-step 10
          --push-warmup 3  --push-p99 50 (ms)
  pie-import: --accounts 20000  --contacts 10  --plain-passwords`;

const PASSWORD = 'bench-password';
const TARGETS = { loginPlain: 2800, msgRate: 26_000, msgP99: 100, memKiB: 19, pushRate: 1000, pushP99: 50 };

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '120' },
    'noisy-retries': { type: 'string', default: '2' },
    repeat: { type: 'string', default: '1' },
    json: { type: 'string' },
    'server-flags': { type: 'string' },
    disable: { type: 'string' },
    inflight: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    variants: { type: 'string', default: 'plain,starttls' },
    users: { type: 'string', default: '1000' },
    rates: { type: 'string', default: '5000,10000,15000,20000,26000,30000,35000,40000,45000,50000,60000' },
    step: { type: 'string', default: '10' },
    'msg-warmup': { type: 'string', default: '3' },
    p99: { type: 'string', default: '100' },
    refine: { type: 'string', default: '3' },
    'msg-tls': { type: 'boolean', default: false },
    sessions: { type: 'string', default: '10000' },
    contacts: { type: 'string', default: '10' },
    'mem-tls': { type: 'boolean', default: false },
    'heap-snapshots': { type: 'string' },
    devices: { type: 'string', default: '1000' },
    senders: { type: 'string', default: '10' },
    'push-rates': { type: 'string', default: '500,1000,2000,4000' },
    'push-step': { type: 'string', default: '10' },
    'push-warmup': { type: 'string', default: '3' },
    'push-p99': { type: 'string', default: '50' },
    accounts: { type: 'string', default: '20000' },
    'plain-passwords': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

// `--profile DIR` reads naturally; parseArgs sees DIR as a positional, so take it from there.
const benches = positionals.filter((p) => ['login', 'msg', 'mem', 'push', 'all', 'pie-import'].includes(p));
const profileDirArg = values['profile-dir'] ?? positionals.find((p) => !benches.includes(p));

function log(line: string): void {
  console.log(line);
}

// After the re-exec this process is pinned to one core: the machine's figures come from the parent.
const cores = Number(process.env.HERALD_BENCH_CORES) || availableParallelism();
const canPin = process.env.HERALD_BENCH_PINNED !== undefined ? process.env.HERALD_BENCH_PINNED === '1' : !values['no-pin'] && cores >= 2 && hasTaskset();
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

function hasTaskset(): boolean {
  return spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Re-runs this script pinned to the generator core with the fd limit raised; returns false if this is that run. */
function reexecIfNeeded(): boolean {
  if (process.env.HERALD_BENCH_CHILD === '1') return false;
  const script = fileURLToPath(import.meta.url);
  const inner = canPin ? ['taskset', '-c', String(GENERATOR_CORE), process.execPath, ...process.execArgv, script] : [process.execPath, ...process.execArgv, script];
  const result = spawnSync('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...inner, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, HERALD_BENCH_CHILD: '1', HERALD_BENCH_CORES: String(cores), HERALD_BENCH_PINNED: canPin ? '1' : '0' },
  });
  process.exitCode = result.status ?? 1;
  return true;
}

function fdLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return Number.NaN;
  }
}

interface Results {
  date: string;
  commit: string;
  machine: { cores: number; cpu: string; node: string; pinned: boolean; fdLimit: number };
  modules?: string[];
  login?: (LoginBenchResult & { profile?: ProfileSummary; coreSpeed: number })[];
  msg?: MsgBenchResult & { profile?: ProfileSummary; coreSpeed: number };
  mem?: MemBenchResult & { profile?: ProfileSummary; coreSpeed: number };
  push?: PushBenchResult & { profile?: ProfileSummary; coreSpeed: number; p99LimitMs: number; config: Record<string, unknown> };
  pieImport?: PieImportBenchResult;
}

function serverOptions(extra: Partial<ServerOptions>): ServerOptions {
  const nodeFlags = values['server-flags']?.split(/\s+/).filter((f) => f !== '');
  const disabled = values.disable?.split(',').map((m) => m.trim()).filter((m) => m !== '');
  const config = disabled ? { ...extra.config, modules_disabled: disabled } : extra.config;
  return { accounts: 0, password: PASSWORD, core: canPin ? SERVER_CORE : undefined, nodeFlags, ...extra, config };
}

function profileDir(): string | undefined {
  if (!values.profile && values['profile-dir'] === undefined) return undefined;
  const dir = resolve(profileDirArg ?? join(process.cwd(), 'bench', 'profiles'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The newest .cpuprofile in a directory written after `since` (ms epoch). */
function newestProfile(dir: string, since: number): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ path: join(dir, f), mtime: statSync(join(dir, f)).mtimeMs }))
    .filter((f) => f.mtime >= since)
    .sort((a, b) => b.mtime - a.mtime);
  return files[0]?.path;
}

/** Speed of the server's core measured before the latest benchmark (bench/calibrate.ts). */
let lastSpeed = Number.NaN;

/** Waits (bounded) until other programs leave the CPUs alone: a shared machine makes noisy numbers. */
async function waitForQuiet(): Promise<void> {
  const deadline = performance.now() + Number(values['quiet-wait']) * 1000;
  let warned = false;
  for (;;) {
    const busyStart = machineBusySeconds();
    await sleep(1000);
    const others = machineBusySeconds() - busyStart;
    if (!(others > 0.1)) return;
    if (performance.now() > deadline) {
      log(`WARNING: other programs still use ${others.toFixed(2)} cores; measuring anyway (figures suspect)`);
      return;
    }
    if (!warned) log(`waiting for the machine to be quiet (other programs use ${others.toFixed(2)} cores) ...`);
    warned = true;
  }
}

async function withServer<T>(options: ServerOptions, fn: (server: BenchServer) => Promise<T>, window?: (result: T) => [number, number]): Promise<{ result: T; profile?: ProfileSummary; profilePath?: string; modules: string[] }> {
  if (Number(values['quiet-wait']) > 0) await waitForQuiet();
  // The VM's speed drifts: a fixed workload on the server's core makes runs comparable.
  const speed = speedOnCore(options.core);
  // The generator's core too: on a shared VM the two drift apart (one measured 6 while the other was at 9).
  const generatorSpeed = options.core !== undefined ? speedOnCore(GENERATOR_CORE) : Number.NaN;
  log(`core ${options.core ?? '(any)'} speed: ${speed.toFixed(1)} rounds/ms (bench/calibrate.ts; higher is faster)` +
    (Number.isNaN(generatorSpeed) ? '' : `; generator's core ${GENERATOR_CORE}: ${generatorSpeed.toFixed(1)}`));
  lastSpeed = speed;
  const started = Date.now();
  const server = await BenchServer.start(options);
  log(`server: pid ${server.pid}${options.core !== undefined ? ` on core ${options.core}` : ''}, port ${server.ready.port}, ` +
    `${fmtInt(server.ready.accounts)} accounts${server.ready.rosterItems ? `, ${fmtInt(server.ready.rosterItems)} roster items` : ''}, ` +
    `seeded in ${server.ready.seedMs} ms, started in ${server.ready.setupMs} ms; modules: ${server.ready.modules.join(', ') || '(none)'}`);
  let result: T;
  try {
    result = await fn(server);
  } finally {
    await server.stop();
  }
  // Measured again afterwards: a run whose core changed speed meanwhile is not comparable with others.
  const after = speedOnCore(options.core);
  log(`core ${options.core ?? '(any)'} speed after the run: ${after.toFixed(1)} rounds/ms${Math.abs(after - speed) > 0.15 * speed ? ' (it changed during the run: figures suspect)' : ''}`);
  if (!options.profileDir) return { result, modules: server.ready.modules };
  const path = newestProfile(options.profileDir, started);
  if (!path) {
    log('profile: no .cpuprofile was written');
    return { result, modules: server.ready.modules };
  }
  const [fromUs, toUs] = window ? window(result) : [0, Number.POSITIVE_INFINITY];
  const profile = summarizeProfile(path, { top: 15, fromUs, toUs });
  log(`profile: ${path} (measurement window only)`);
  log(formatProfileSummary(profile));
  return { result, profile, profilePath: path, modules: server.ready.modules };
}

async function login(results: Results): Promise<void> {
  const variants = values.variants!.split(',').map((v) => v.trim()) as ('plain' | 'starttls')[];
  results.login = [];
  for (const variant of variants) {
    const accounts = 1000;
    const options = serverOptions({
      accounts,
      profileDir: profileDir(),
      label: `server ${variant}`,
      config: { c2s: { require_encryption: variant === 'starttls' } },
    });
    log(`\n== login (${variant}): SCRAM-SHA-1${variant === 'starttls' ? ' after STARTTLS' : ' over plain TCP'}, ${values.inflight} in flight, ` +
      `${values.warmup} s warm-up + ${values.duration} s`);
    const measure = () =>
      withServer(
        options,
        (server) =>
          runLoginBench(server, {
            target: { host: '127.0.0.1', port: server.ready.port, domain: 'localhost' },
            starttls: variant === 'starttls',
            inflight: Number(values.inflight),
            warmupMs: Number(values.warmup) * 1000,
            durationMs: Number(values.duration) * 1000,
            accounts,
            password: PASSWORD,
          }),
        (r) => r.windowUs,
      );
    const repeats = Math.max(1, Number(values.repeat));
    const runs: LoginBenchResult[] = [];
    for (let n = 0; n < repeats; n++) {
      let run = await measure();
      for (let retry = 0; retry < Number(values['noisy-retries']) && run.result.othersCpu > NOISE_CORES; retry++) {
        log(`login ${variant}: ${fmtInt(run.result.perSecond)} logins/s, but other programs used ${pct(run.result.othersCpu)} of a core: repeating`);
        run = await measure();
      }
      const { result, profile, modules } = run;
      results.modules = modules;
      const target = variant === 'plain' && standardLogin() ? ` (target >= ${fmtInt(TARGETS.loginPlain)}: ${verdict(result.perSecond >= TARGETS.loginPlain, result.perSecond / TARGETS.loginPlain)})` : '';
      log(`login ${variant}${repeats > 1 ? ` #${n + 1}` : ''}: ${fmtInt(result.perSecond)} logins/s${target}; ${fmtInt(result.logins)} in ${result.seconds.toFixed(1)} s, ${result.errors} errors`);
      log(`  latency ${latencyLine(result.latency)}`);
      log(`  CPU: server ${pct(result.serverCpu)}, generator ${pct(result.generatorCpu)}, other programs ${pct(result.othersCpu)}, hypervisor steal ${pct(result.steal)}${noisy(result.othersCpu + result.steal)}`);
      if (result.othersCpu > NOISE_CORES) log(`  busiest other processes: ${result.busiestOthers.join(', ') || '(none: kernel time?)'}`);
      if (result.firstErrors.length > 0) log(`  first errors: ${result.firstErrors.join(' | ')}`);
      results.login.push({ ...result, profile, coreSpeed: lastSpeed });
      runs.push(result);
    }
    if (repeats > 1) {
      const rates = runs.map((r) => r.perSecond).sort((a, b) => a - b);
      const median = rates[Math.floor(rates.length / 2)]!;
      const target = variant === 'plain' && standardLogin() ? ` (target >= ${fmtInt(TARGETS.loginPlain)}: ${verdict(median >= TARGETS.loginPlain, median / TARGETS.loginPlain)})` : '';
      log(`login ${variant}: median ${fmtInt(median)} logins/s of ${repeats} runs (${rates.map(fmtInt).join(', ')})${target}`);
    }
  }
}

async function msg(results: Results): Promise<void> {
  const users = Number(values.users);
  log(`\n== msg: ${fmtInt(users)} users, chat to random full JIDs, ${values.step} s per step, pass = no loss and p99 <= ${values.p99} ms`);
  const { result, profile, modules } = await withServer(
    serverOptions({ accounts: users, profileDir: profileDir(), label: 'server msg', config: { c2s: { require_encryption: values['msg-tls'] } } }),
    (server) =>
      runMsgBench(server, {
        target: { host: '127.0.0.1', port: server.ready.port, domain: 'localhost' },
        users,
        password: PASSWORD,
        starttls: values['msg-tls']!,
        rates: values.rates!.split(',').map(Number),
        stepMs: Number(values.step) * 1000,
        warmupMs: Number(values['msg-warmup']) * 1000,
        drainMs: 3000,
        p99LimitMs: Number(values.p99),
        refineSteps: Number(values.refine),
        noisyRetries: Number(values['noisy-retries']),
        waitForQuiet,
        log,
      }),
    (r) => r.windowUs,
  );
  results.modules = modules;
  const best = result.steps.filter((s) => s.pass).sort((a, b) => b.offered - a.offered)[0];
  const standard = users === 1000 && Number(values.p99) === TARGETS.msgP99 && !values['msg-tls'];
  log(`msg: best ${fmtInt(result.best)} msg/s with p99 ${best ? ms(best.latency.p99) : '-'}` +
    (standard ? ` (target >= ${fmtInt(TARGETS.msgRate)}: ${verdict(result.best >= TARGETS.msgRate, result.best / TARGETS.msgRate)})` : ' (not the target\'s setup: no verdict)'));
  if (result.generatorBound) log(`msg: the generator ran out of CPU first: the server handles at least ${fmtInt(result.best)} msg/s; its limit is higher`);
  results.msg = { ...result, profile, coreSpeed: lastSpeed };
}

async function mem(results: Results): Promise<void> {
  const sessions = Number(values.sessions);
  const contacts = Number(values.contacts);
  const limit = fdLimit();
  if (limit < sessions + 100) log(`mem: WARNING: open-files limit ${limit} is below ${sessions + 100}; raise it (ulimit -n) or lower --sessions`);
  log(`\n== mem: ${fmtInt(sessions)} idle sessions, ${contacts}-contact rosters, initial presence${values['mem-tls'] ? ', STARTTLS' : ', plain TCP'}`);
  const { result, modules, profile } = await withServer(
    serverOptions({ accounts: sessions, roster: contacts, profileDir: profileDir(), label: 'server mem', config: { c2s: { require_encryption: values['mem-tls'] } } }),
    async (server) => {
      if (server.ready.rosterSkipped) log('mem: no roster module in this build: sessions have empty rosters');
      return runMemBench(server, server.ready.rosterSkipped ? 0 : contacts, {
        target: { host: '127.0.0.1', port: server.ready.port, domain: 'localhost' },
        sessions,
        password: PASSWORD,
        starttls: values['mem-tls']!,
        concurrency: 200,
        quietMs: 2000,
        heapSnapshotDir: values['heap-snapshots'] !== undefined ? resolve(values['heap-snapshots']) : undefined,
        log,
      });
    },
    (r) => r.windowUs,
  );
  results.modules = modules;
  const standardMem = sessions === 10_000 && contacts === 10 && !values['mem-tls'];
  log(`mem: ${result.perSessionKiB.toFixed(1)} KiB RSS per session` +
    (standardMem ? ` (target <= ${TARGETS.memKiB}: ${verdict(result.perSessionKiB <= TARGETS.memKiB, result.perSessionKiB / TARGETS.memKiB)})` : ' (not the target\'s setup: no verdict)') +
    `; JS heap ${result.heapPerSessionKiB.toFixed(1)} KiB, external ${result.externalPerSessionKiB.toFixed(1)} KiB per session`);
  log(`  RSS ${fmtInt(result.before.rssKiB)} → ${fmtInt(result.after.rssKiB)} KiB; heap ${fmtInt(result.before.heapUsed / 1024)} → ${fmtInt(result.after.heapUsed / 1024)} KiB; ` +
    `${fmtInt(result.after.sessions)} sessions; roster answers ${result.rosterAnswers.result} result / ${result.rosterAnswers.error} error; ` +
    `${fmtInt(result.stanzasReceived)} stanzas received by clients`);
  results.mem = { ...result, profile, coreSpeed: lastSpeed };
}

/**
 * The push pipeline end to end: messages to hibernated push-enabled sessions, through the push
 * module, the embedded push service and the app server's UnifiedPush backend, to an HTTP receiver
 * in the generator (bench/push.ts). Server config for the run:
 *  - modules.push.coalesce_window 0: every message may push (the bench measures the pipeline, not
 *    the coalescing policy);
 *  - modules.appserver.unifiedpush with allow_insecure_endpoints, so http://127.0.0.1 endpoints
 *    are accepted (and not refused as private addresses when posting);
 *  - c2s.resume_timeout 1 hour: after a device's first push its session falls back from the push
 *    module's 72 h to this, and must still be hibernating at the last step;
 *  - c2s.sm_max_queue 100,000: each device's queue holds every message of the run (the default
 *    1,000 would end sessions in long runs with few devices).
 */
async function push(results: Results): Promise<void> {
  const devices = Number(values.devices);
  const senders = Math.max(1, Number(values.senders));
  const rates = values['push-rates']!.split(',').map(Number);
  const p99LimitMs = Number(values['push-p99']);
  const config = {
    c2s: { require_encryption: false, resume_timeout: '1 hour', sm_max_queue: 100_000 },
    modules: {
      push: { coalesce_window: 0 },
      appserver: { unifiedpush: { allow_insecure_endpoints: true } },
    },
  };
  log(`\n== push: ${fmtInt(devices)} hibernated push-enabled devices (UnifiedPush to an HTTP receiver on 127.0.0.1), ${senders} senders, ` +
    `${values['push-step']} s per step, pass = no loss and p99 < ${p99LimitMs} ms`);
  const { result, profile, modules } = await withServer(
    serverOptions({ accounts: devices + senders, profileDir: profileDir(), label: 'server push', config }),
    (server) =>
      runPushBench(server, {
        target: { host: '127.0.0.1', port: server.ready.port, domain: 'localhost' },
        devices,
        senders,
        password: PASSWORD,
        rates,
        stepMs: Number(values['push-step']) * 1000,
        warmupMs: Number(values['push-warmup']) * 1000,
        drainMs: 5000,
        p99LimitMs,
        targetRate: TARGETS.pushRate,
        noisyRetries: Number(values['noisy-retries']),
        waitForQuiet,
        log,
      }),
    (r) => r.windowUs,
  );
  results.modules = modules;
  const atTarget = result.steps.filter((s) => s.offered === TARGETS.pushRate).at(-1);
  const standard = devices === 1000 && p99LimitMs === TARGETS.pushP99 && Number(values['push-step']) >= 10;
  if (!atTarget) log(`push: no step at ${fmtInt(TARGETS.pushRate)}/s: no verdict`);
  else {
    const losses = atTarget.lost > 0 || atTarget.errors > 0 ? `, ${fmtInt(atTarget.lost)} lost, ${fmtInt(atTarget.errors)} bounced` : ', none lost';
    log(`push: at ${fmtInt(TARGETS.pushRate)}/s p99 ${ms(atTarget.latency.p99)} (p50 ${ms(atTarget.latency.p50)}, max ${ms(atTarget.latency.max)})${losses}` +
      (standard
        ? ` (target p99 < ${TARGETS.pushP99} ms: ${atTarget.pass ? 'met' : 'MISSED'}, p99 at ${pct(atTarget.latency.p99 / TARGETS.pushP99)} of the budget)`
        : ' (not the target\'s setup: no verdict)') +
      `${noisy(atTarget.othersCpu + atTarget.steal)}`);
  }
  const passing = result.steps.filter((s) => s.pass).sort((a, b) => b.offered - a.offered)[0];
  if (passing) log(`push: highest passing step ${fmtInt(passing.offered)}/s (p99 ${ms(passing.latency.p99)})`);
  results.push = { ...result, profile, coreSpeed: lastSpeed, p99LimitMs, config };
}

/** `herald import` speed (bench/pie-import.ts), in this process: no server, no load generator. */
async function pieImport(results: Results): Promise<void> {
  if (Number(values['quiet-wait']) > 0) await waitForQuiet();
  log('\n== pie-import: herald import of an XEP-0227 file into a fresh database ==');
  const result = await runPieImportBench({ users: Number(values.accounts), contacts: Number(values.contacts), plainPasswords: values['plain-passwords'] });
  for (const line of formatPieImportResult(result)) log(line);
  const standard = result.accounts === 20_000 && result.contacts === 10;
  if (standard) log(`pie-import: ${result.importSeconds.toFixed(1)} s for 20,000 accounts (target under 60 s: ${result.importSeconds < 60 ? 'met' : 'MISSED'})`);
  results.pieImport = result;
}

/** The issue's login setup: 50 in flight, 10 s measured (the targets only apply to it). */
function standardLogin(): boolean {
  return Number(values.inflight) === 50 && Number(values.duration) >= 10;
}

function verdict(pass: boolean, ratio: number): string {
  return pass ? `met, ${(ratio * 100).toFixed(0)}% of target` : `MISSED, ${(ratio * 100).toFixed(0)}% of target`;
}

/** Other programs using more than a tenth of a core make a run suspect. */
function noisy(others: number): string {
  return others > NOISE_CORES ? '  (WARNING: the machine was not quiet; rerun)' : '';
}

function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(0)}%`;
}

/** The commit, with ' + uncommitted changes' when code outside bench/ and docs/ differs from it. */
function gitCommit(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const commit = git('rev-parse', '--short', 'HEAD').trim();
    const changed = git('status', '--porcelain', '--untracked-files=all')
      .split('\n')
      .map((line) => line.slice(3))
      .filter((path) => path !== '' && !path.startsWith('bench/') && !path.startsWith('docs/') && /\.(ts|json)$/.test(path));
    return changed.length > 0 ? `${commit} + uncommitted changes (${changed.length} files)` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  if (values.help || benches.length === 0) {
    console.log(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  if (reexecIfNeeded()) return;
  const results: Results = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: { cores, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, pinned: canPin, fdLimit: fdLimit() },
  };
  log(`herald bench: commit ${results.commit}, ${cores} cores (${results.machine.cpu}), Node ${process.version}, open-files limit ${results.machine.fdLimit}`);
  log(canPin ? `pinned: server on core ${SERVER_CORE}, generator on core ${GENERATOR_CORE}` : 'not pinned (no taskset, fewer than 2 cores, or --no-pin): numbers are not comparable with pinned runs');
  if (!existsSync(join(fileURLToPath(new URL('.', import.meta.url)), 'server-main.js'))) throw new Error('dist/bench/server-main.js missing: run npm run build');
  const all = benches.includes('all');
  if (all || benches.includes('login')) await login(results);
  if (all || benches.includes('msg')) await msg(results);
  if (all || benches.includes('mem')) await mem(results);
  if (all || benches.includes('push')) await push(results);
  if (benches.includes('pie-import')) await pieImport(results);
  if (values.json) {
    writeFileSync(values.json, JSON.stringify(results, null, 2));
    log(`\nresults written to ${values.json}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
