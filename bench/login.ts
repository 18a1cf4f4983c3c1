// Login benchmark: how many complete logins per second the server sustains with a fixed number in
// flight. One login = TCP connect, stream header, [STARTTLS + TLS handshake], SASL SCRAM-SHA-1 (two
// round trips), stream restart, resource bind; then `</stream:stream>` and FIN (the server's
// teardown of the session runs during the measurement, as it would in production). A new login
// starts as soon as one finishes. Measured: completions inside the window after the warm-up,
// login latency (connect → bind result), and the CPU both processes used.

import { BenchClient, type LoginTarget } from './client.js';
import type { BenchServer } from './server-process.js';
import { LoadMeter } from './proc.js';
import { Samples, monotonicUs, summarize, type LatencySummary } from './stats.js';

export interface LoginBenchOptions {
  target: LoginTarget;
  starttls: boolean;
  inflight: number;
  warmupMs: number;
  durationMs: number;
  /** Accounts to cycle through (u0 … u(n-1)). */
  accounts: number;
  password: string;
}

export interface LoginBenchResult {
  variant: 'plain' | 'starttls';
  inflight: number;
  seconds: number;
  logins: number;
  perSecond: number;
  errors: number;
  firstErrors: string[];
  latency: LatencySummary;
  serverCpu: number;
  generatorCpu: number;
  /** CPU used by other programs on the machine during the window, in cores (noise indicator). */
  othersCpu: number;
  /** The other processes that used the most CPU meanwhile. */
  busiestOthers: string[];
  /** CPU the hypervisor took from the machine meanwhile, in cores. */
  steal: number;
  /** The measurement window on the monotonic clock (for cutting the server's CPU profile). */
  windowUs: [number, number];
}

export async function runLoginBench(server: BenchServer, options: LoginBenchOptions): Promise<LoginBenchResult> {
  const latencies = new Samples();
  const firstErrors: string[] = [];
  let errors = 0;
  let counter = 0;
  let measuring = false;
  let running = true;
  let windowLogins = 0;

  const worker = async (): Promise<void> => {
    while (running) {
      const n = counter++;
      const started = performance.now();
      try {
        const client = await BenchClient.login(options.target, {
          username: `u${n % options.accounts}`,
          password: options.password,
          resource: `r${n}`,
          starttls: options.starttls,
          timeoutMs: 10_000,
        });
        const elapsed = performance.now() - started;
        client.close();
        if (measuring) {
          windowLogins++;
          latencies.push(elapsed);
        }
      } catch (err) {
        errors++;
        if (firstErrors.length < 5) firstErrors.push((err as Error).message);
      }
    }
  };

  const workers = Array.from({ length: options.inflight }, () => worker());
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  const load = new LoadMeter(server.pid);
  load.start();
  const windowStart = performance.now();
  const fromUs = monotonicUs();
  measuring = true;
  await new Promise((resolve) => setTimeout(resolve, options.durationMs));
  measuring = false;
  const toUs = monotonicUs();
  const seconds = (performance.now() - windowStart) / 1000;
  const cpu = load.stop();
  const result: LoginBenchResult = {
    variant: options.starttls ? 'starttls' : 'plain',
    inflight: options.inflight,
    seconds,
    logins: windowLogins,
    perSecond: windowLogins / seconds,
    errors,
    firstErrors,
    latency: summarize(latencies.values()),
    serverCpu: cpu.server,
    generatorCpu: cpu.generator,
    othersCpu: cpu.others,
    busiestOthers: cpu.busiest,
    steal: cpu.steal,
    windowUs: [fromUs, toUs],
  };
  running = false;
  await Promise.all(workers);
  return result;
}
