// What the stepped benchmarks (msg, push) share: how they are driven, and what each step measured
// besides its own counts.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LoadMeter } from './proc.js';
import type { BenchServer, LoopDelay } from './server-process.js';

/** A run of steps at rising offered rates. */
export interface SteppedRunOptions {
  /** Offered aggregate rates (per second), tried in order. */
  rates: number[];
  stepMs: number;
  /** A first step at rates[0], not reported (JIT, connections, caches). */
  warmupMs: number;
  /** Longest wait for what is still in flight after a step. */
  drainMs: number;
  p99LimitMs: number;
  /** Repeat a step this many times when other programs used more than a tenth of a core meanwhile. */
  noisyRetries: number;
  /** Waits until the machine is quiet (between repeats). */
  waitForQuiet: () => Promise<void>;
  log: (line: string) => void;
}

/** The load on the machine during one step. */
export interface StepLoad {
  serverCpu: number;
  generatorCpu: number;
  /** CPU used by other programs meanwhile, in cores (noise indicator). */
  othersCpu: number;
  busiestOthers: string[];
  /** CPU the hypervisor took from the machine meanwhile, in cores. */
  steal: number;
  /** Event-loop delay of the server and of the generator during the step (ms): a stall shows here. */
  serverLoopDelay: LoopDelay;
  generatorLoopDelay: LoopDelay;
  pass: boolean;
  /** The generator could not send at the offered rate: the step says nothing about the server. */
  generatorBound: boolean;
}

/** A step passes only if the generator sent at least this share of the offered rate. */
export const SEND_RATE_TOLERANCE = 0.98;
/** Other programs using more than this many cores during a step make it noisy (it is repeated). */
export const NOISE_CORES = 0.1;
const TICK_MS = 1;

/**
 * Calls `sendOne` `rate` times a second for `ms`, paced in 1 ms ticks (at most a twentieth of a
 * second's worth per tick, so a late tick does not turn into a burst). Resolves when the time is up.
 */
export async function sendAtRate(rate: number, ms: number, sendOne: () => void): Promise<{ sent: number; start: number; sendSeconds: number }> {
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - start;
      const due = Math.min(Math.floor((rate * Math.min(elapsed, ms)) / 1000) - sent, Math.ceil(rate / 20));
      for (let k = 0; k < due; k++) {
        sendOne();
        sent++;
      }
      if (elapsed >= ms) resolve();
      else setTimeout(tick, TICK_MS);
    };
    tick();
  });
  return { sent, start, sendSeconds: (performance.now() - start) / 1000 };
}

/** Starts measuring a step's load on the machine; `stop()` returns it (pass and generatorBound are the caller's). */
export async function measureStepLoad(server: BenchServer): Promise<{ stop(): Promise<Omit<StepLoad, 'pass' | 'generatorBound'>> }> {
  const load = new LoadMeter(server.pid);
  await server.loopDelay(true);
  const ownDelay = monitorEventLoopDelay({ resolution: 10 });
  ownDelay.enable();
  load.start();
  return {
    async stop() {
      const cpu = load.stop();
      ownDelay.disable();
      const serverLoopDelay = await server.loopDelay(true);
      const generatorLoopDelay = { p50: ownDelay.percentile(50) / 1e6, p99: ownDelay.percentile(99) / 1e6, max: ownDelay.max / 1e6 };
      return {
        serverCpu: cpu.server,
        generatorCpu: cpu.generator,
        othersCpu: cpu.others,
        busiestOthers: cpu.busiest,
        steal: cpu.steal,
        serverLoopDelay,
        generatorLoopDelay,
      };
    },
  };
}

/** Runs a step, and again (after waiting for quiet) while other programs disturbed it. */
export async function quietStep<S extends StepLoad>(
  name: string,
  options: SteppedRunOptions,
  run: () => Promise<S>,
  report: (step: S) => void,
): Promise<S> {
  let s = await run();
  for (let retry = 0; retry < options.noisyRetries && s.othersCpu > NOISE_CORES; retry++) {
    report(s);
    options.log(`${name}: other programs used ${(s.othersCpu * 100).toFixed(0)}% of a core during that step: repeating it`);
    await options.waitForQuiet();
    s = await run();
  }
  return s;
}
