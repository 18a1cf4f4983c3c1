// The server side of a benchmark: a normal Herald (bin/bootstrap.ts createHerald, all built-in
// modules) started in its own process by bench/run.ts, with bench accounts put into its store
// before it listens. Controlled over the Node IPC channel:
//   → { type: 'gc' }     full GC, then answers { type: 'memory', rssKiB, heapUsed, external, arrayBuffers, sessions }
//   → { type: 'stats' }  answers { type: 'stats', sessions, streams }
//   → { type: 'loop-delay', reset }  event-loop delay since the last reset: { type: 'loop-delay', p50, p99, max } (ms)
//   → { type: 'stop' }   graceful stop, then exit (a --cpu-prof profile is written on exit)
//   → { type: 'heap-snapshot', path }  full GC, V8 heap snapshot to path, answers { type: 'heap-snapshot', path }
//   ← { type: 'ready', port, modules, setupMs }
// With --seed it only fills the store (accounts, rosters) and exits; bench/run.ts does that first.
// SIGUSR2 also runs a full GC (start node with --expose-gc), for poking at it by hand.
//
// Accounts: one SCRAM derivation (4096 iterations, the production default) shared by every bench
// account — same password, same salt. A SCRAM login never runs PBKDF2 on the server (it checks the
// proof against the stored keys), so this changes nothing a login costs; it only saves ~5 ms of
// setup per account. The accounts are written straight into the store (no 'user:created' hook),
// by a separate --seed run of this file before the server under test starts.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfigFile } from '../conf/load.js';
import { createHerald } from '../bin/bootstrap.js';
import { builtinModules } from '../modules/index.js';
import { SqliteStore } from '../storage/sqlite.js';
import type { Store } from '../storage/store.js';
import type { RosterItem } from '../server/protocol/rfc6121.js';
import type { HeraldServer } from '../server/server.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    accounts: { type: 'string', default: '0' },
    password: { type: 'string', default: 'bench-password' },
    prefix: { type: 'string', default: 'u' },
    /** Contacts per account (subscription both), on a ring: u(i±1) … u(i±contacts/2). */
    roster: { type: 'string', default: '0' },
    /** Only fill the store (accounts, rosters), print what was written as JSON, and exit. */
    seed: { type: 'boolean', default: false },
  },
});

type ParentMessage = { type: 'gc' } | { type: 'stats' } | { type: 'stop' } | { type: 'heap-snapshot'; path: string } | { type: 'loop-delay'; reset: boolean };

const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  if (!values.config) throw new Error('--config is required');
  const started = performance.now();
  const { config } = loadConfigFile(values.config);
  const { server } = createHerald(config);
  if (values.seed) {
    const seeded = await seed(server, config.domain);
    await server.store.close();
    console.log(JSON.stringify({ ...seeded, setupMs: Math.round(performance.now() - started) }));
    return;
  }
  await server.start();
  const setupMs = Math.round(performance.now() - started);

  // Event-loop delay: tells a server that stalled (or was descheduled) from one that was merely busy.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await server.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.on('SIGUSR2', () => fullGc());
  process.on('disconnect', () => void stop());
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stop') void stop();
    else if (message.type === 'loop-delay') {
      const ms = (ns: number) => ns / 1e6;
      process.send!({ type: 'loop-delay', p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) });
      if (message.reset) loopDelay.reset();
    }
    else if (message.type === 'heap-snapshot') {
      fullGc();
      process.send!({ type: 'heap-snapshot', path: writeHeapSnapshot(message.path) });
    }
    else if (message.type === 'stats') process.send!({ type: 'stats', sessions: server.sessions.size, streams: server.streams.size });
    else if (message.type === 'gc') {
      fullGc();
      const usage = process.memoryUsage();
      process.send!({
        type: 'memory',
        rssKiB: readRssKiB(),
        heapUsed: usage.heapUsed,
        heapTotal: usage.heapTotal,
        external: usage.external,
        arrayBuffers: usage.arrayBuffers,
        sessions: server.sessions.size,
      });
    }
  });
  process.send!({
    type: 'ready',
    port: server.ports.c2s,
    modules: builtinModules.map((m) => m.name).filter((name) => !config.modules_disabled.includes(name)),
    setupMs,
  });
}

/**
 * Roster items straight into the roster module's store (modules/roster.ts: map 'items', owner =
 * localpart, key = contact bare JID, value a RosterItem), a symmetric ring with subscription
 * 'both', so initial presence goes out to (and probes) contacts who are online. No roster version
 * is stored: the module starts one on first use, as for any roster it has not versioned yet.
 */
async function seedRosters(store: Store, domain: string, prefix: string, accounts: number, contacts: number): Promise<number> {
  const items = store.map<RosterItem>(domain, 'roster', 'items');
  const half = Math.max(1, Math.floor(contacts / 2));
  let count = 0;
  await inOneTransaction(store, () => {
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < accounts; i++) {
      for (let d = 1; d <= half; d++) {
        for (const j of [i + d, i - d]) {
          const contact = `${prefix}${((j % accounts) + accounts) % accounts}@${domain}`;
          const item: RosterItem = { jid: contact, name: contact.split('@')[0], subscription: 'both', groups: ['Bench'] };
          writes.push(items.set(`${prefix}${i}`, contact, item));
          count++;
        }
      }
    }
    return writes;
  });
  return count;
}

/**
 * Runs a batch of store writes in one SQLite transaction (100,000 roster items in a second rather
 * than one commit each). The SQLite store does its work synchronously inside each call, so the
 * writes issued by `issue` all land inside the transaction; other stores just run them.
 */
async function inOneTransaction(store: Store, issue: () => Promise<unknown>[]): Promise<void> {
  let writes: Promise<unknown>[] = [];
  if (store instanceof SqliteStore) store.db.transaction(() => void (writes = issue()))();
  else writes = issue();
  await Promise.all(writes);
}

/**
 * Fills the store: the bench accounts and, when the roster module exists, their rosters. Runs in
 * its own process before the server under test starts, so the server's memory baseline holds
 * nothing of this work (freed-but-kept heap pages would otherwise hide session memory).
 */
async function seed(server: HeraldServer, domain: string): Promise<{ accounts: number; rosterItems: number; rosterSkipped: boolean }> {
  const accounts = Number(values.accounts);
  const contacts = Number(values.roster);
  const prefix = values.prefix!;
  const credentials = server.deriveCredentials(values.password!);
  await inOneTransaction(server.store, () => {
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < accounts; i++) writes.push(server.store.accounts.create(domain, `${prefix}${i}`, credentials));
    return writes;
  });
  const hasRoster = builtinModules.some((m) => m.name === 'roster');
  let rosterItems = 0;
  if (contacts > 0 && hasRoster) rosterItems = await seedRosters(server.store, domain, prefix, accounts, contacts);
  return { accounts, rosterItems, rosterSkipped: contacts > 0 && !hasRoster };
}

function fullGc(): void {
  if (!gc) return;
  gc();
  gc();
}

function readRssKiB(): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : Math.round(process.memoryUsage().rss / 1024);
}

main().catch((err: unknown) => {
  console.error('bench server failed:', err);
  process.exit(1);
});
