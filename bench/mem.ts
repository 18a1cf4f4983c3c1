// Memory benchmark: the server's resident memory per idle session. Baseline: the server started,
// accounts (and rosters) in its store, after a full GC. Then N sessions log in, fetch the roster
// and send initial presence (which, with the presence module, goes to and probes their online
// contacts), and go idle; after a full GC the server's VmRSS is read again.
// Per session = (RSS after − RSS before) / N. The JS heap share is reported beside it.

import { BenchClient, type LoginTarget } from './client.js';
import type { BenchServer, ServerMemory } from './server-process.js';
import { fmtInt, monotonicUs, sleep } from './stats.js';
import { attribute, elementName } from './frames.js';
import { formatHeapGrowth, heapGrowth } from './heap-summary.js';
import { join } from 'node:path';

export interface MemBenchOptions {
  target: LoginTarget;
  sessions: number;
  password: string;
  starttls: boolean;
  concurrency: number;
  /** Silence (no stanza received anywhere) that counts as idle. */
  quietMs: number;
  /** Also write V8 heap snapshots before and after into this directory (makes the RSS figure invalid). */
  heapSnapshotDir?: string;
  log: (line: string) => void;
}

export interface MemBenchResult {
  sessions: number;
  starttls: boolean;
  contactsPerRoster: number;
  before: ServerMemory;
  after: ServerMemory;
  perSessionKiB: number;
  heapPerSessionKiB: number;
  externalPerSessionKiB: number;
  loginSeconds: number;
  stanzasReceived: number;
  rosterAnswers: { result: number; error: number };
  /** From the first login until the sessions went quiet (for cutting the server's CPU profile). */
  windowUs: [number, number];
}

export async function runMemBench(server: BenchServer, contacts: number, options: MemBenchOptions): Promise<MemBenchResult> {
  await sleep(1000);
  const before = await server.memory();
  options.log(`mem: baseline RSS ${fmtInt(before.rssKiB)} KiB, heap ${fmtInt(before.heapUsed / 1024)} KiB`);
  const snapshots = options.heapSnapshotDir;
  if (snapshots) await server.heapSnapshot(join(snapshots, 'mem-before.heapsnapshot'));

  let lastActivity = performance.now();
  let stanzas = 0;
  const rosterAnswers = { result: 0, error: 0 };
  const clients: BenchClient[] = [];
  const loginStart = performance.now();
  const fromUs = monotonicUs();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency, options.sessions) }, async () => {
      while (next < options.sessions) {
        const i = next++;
        const client = await BenchClient.login(options.target, { username: `u${i}`, password: options.password, resource: 'bench', starttls: options.starttls });
        clients.push(client);
        await new Promise<void>((resolve) => {
          client.onElement = (raw) => {
            stanzas++;
            lastActivity = performance.now();
            if (elementName(raw) === 'iq' && attribute(raw, 'id') === 'roster') {
              if (attribute(raw, 'type') === 'result') rosterAnswers.result++;
              else rosterAnswers.error++;
              // RFC 6121 §2.2: a client fetches the roster, then sends initial presence.
              client.send('<presence/>');
              resolve();
            }
          };
          client.send(`<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>`);
        });
      }
    }),
  );
  const loginSeconds = (performance.now() - loginStart) / 1000;
  options.log(`mem: ${fmtInt(clients.length)} sessions online in ${loginSeconds.toFixed(1)} s; waiting for quiet`);
  while (performance.now() - lastActivity < options.quietMs) await sleep(200);
  const toUs = monotonicUs() - options.quietMs * 1000;
  const stats = await server.stats();
  if (stats.sessions !== options.sessions) options.log(`mem: WARNING: server holds ${stats.sessions} sessions, expected ${options.sessions}`);
  await sleep(1000);
  const after = await server.memory();
  const n = options.sessions;
  const result: MemBenchResult = {
    sessions: n,
    starttls: options.starttls,
    contactsPerRoster: contacts,
    before,
    after,
    perSessionKiB: (after.rssKiB - before.rssKiB) / n,
    heapPerSessionKiB: (after.heapUsed - before.heapUsed) / 1024 / n,
    externalPerSessionKiB: (after.external - before.external) / 1024 / n,
    loginSeconds,
    stanzasReceived: stanzas,
    rosterAnswers,
    windowUs: [fromUs, toUs],
  };
  if (snapshots) {
    await server.heapSnapshot(join(snapshots, 'mem-after.heapsnapshot'));
    options.log('mem: heap snapshots written; the RSS figure of this run includes their cost and is not valid');
    options.log(formatHeapGrowth(heapGrowth(join(snapshots, 'mem-before.heapsnapshot'), join(snapshots, 'mem-after.heapsnapshot'), n, 25)));
  }
  for (const client of clients) client.close();
  return result;
}
