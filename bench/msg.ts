// Message benchmark: N users online (logged in, initial presence sent) send one-to-one chat
// messages to random other users' full JIDs at a controlled aggregate rate. The offered rate steps
// up; each step runs for a fixed time, then waits for stragglers. Every message carries a sequence
// number in its id; the generator keeps the send time per number, so delivery latency is measured
// on one clock (sender and receiver are the same process). The result is the highest step whose
// messages all arrived with p99 latency within the limit, sent at (nearly) the offered rate.

import { BenchClient, type LoginTarget } from './client.js';
import type { BenchServer } from './server-process.js';
import { NOISE_CORES, SEND_RATE_TOLERANCE, measureStepLoad, quietStep, sendAtRate, type SteppedRunOptions, type StepLoad } from './steps.js';
import { Samples, fmtInt, latencyLine, monotonicUs, sleep, summarize, type LatencySummary } from './stats.js';
import { attribute, elementName } from './frames.js';

export interface MsgBenchOptions extends SteppedRunOptions {
  target: LoginTarget;
  users: number;
  password: string;
  starttls: boolean;
  /** Extra steps bisecting between the best passing and the first failing rate. */
  refineSteps: number;
}

export interface MsgStep extends StepLoad {
  offered: number;
  sent: number;
  sentPerSecond: number;
  delivered: number;
  deliveredPerSecond: number;
  lost: number;
  /** Messages that came back as errors (bounces). */
  errors: number;
  latency: LatencySummary;
}

export interface MsgBenchResult {
  users: number;
  bodyBytes: number;
  stanzaBytes: number;
  stepSeconds: number;
  steps: MsgStep[];
  /** Highest offered rate that passed (0: none did). */
  best: number;
  /** True when stepping stopped because the generator, not the server, ran out of CPU. */
  generatorBound: boolean;
  loginSeconds: number;
  /** From the first measured step to the end of the last (for cutting the server's CPU profile). */
  windowUs: [number, number];
}

const BODY = 'Benchmark message: the quick brown fox jumps over the lazy dog. 0123456789';

export async function runMsgBench(server: BenchServer, options: MsgBenchOptions): Promise<MsgBenchResult> {
  const { users } = options;
  let sendTimes = new Float64Array(1 << 20);
  let seen = new Uint8Array(1 << 20);
  let seq = 0;
  let stepFirstSeq = 0;
  let received = 0;
  let duplicates = 0;
  const latencies = new Samples();

  let errors = 0;
  const onElement = (raw: string): void => {
    if (elementName(raw) !== 'message') return;
    // A bounce carries the original id: it must not count as a delivery.
    if (attribute(raw, 'type') !== 'chat') {
      if (attribute(raw, 'type') === 'error') errors++;
      return;
    }
    const id = attribute(raw, 'id');
    if (id === undefined) return;
    const n = Number(id);
    const now = performance.now();
    if (!(n >= 0 && n < seq)) return;
    if (seen[n]) {
      duplicates++;
      return;
    }
    seen[n] = 1;
    if (n < stepFirstSeq) return; // a straggler from an earlier step
    received++;
    latencies.push(now - sendTimes[n]!);
  };

  // Log everyone in (plain SCRAM logins, 100 at a time), then initial presence.
  const loginStart = performance.now();
  const clients: BenchClient[] = new Array(users);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(100, users) }, async () => {
      while (next < users) {
        const i = next++;
        const client = await BenchClient.login(options.target, { username: `u${i}`, password: options.password, resource: 'bench', starttls: options.starttls });
        client.onElement = onElement;
        client.send('<presence/>');
        clients[i] = client;
      }
    }),
  );
  const loginSeconds = (performance.now() - loginStart) / 1000;
  options.log(`msg: ${fmtInt(users)} users online in ${loginSeconds.toFixed(1)} s`);
  await sleep(500);
  const jids = clients.map((c) => c.jid);

  const stanzaFor = (to: string, n: number): string => `<message to='${to}' type='chat' id='${n}'><body>${BODY}</body></message>`;

  const ensureCapacity = (needed: number): void => {
    if (needed <= sendTimes.length) return;
    let size = sendTimes.length;
    while (size < needed) size *= 2;
    const times = new Float64Array(size);
    times.set(sendTimes);
    sendTimes = times;
    const flags = new Uint8Array(size);
    flags.set(seen);
    seen = flags;
  };

  /** Sends at `rate` for `ms`, then waits for deliveries; returns the step's figures. */
  const step = async (rate: number, ms: number): Promise<MsgStep> => {
    ensureCapacity(seq + Math.ceil((rate * ms) / 1000) + 10_000);
    stepFirstSeq = seq;
    received = 0;
    errors = 0;
    latencies.clear();
    const load = await measureStepLoad(server);
    const { sent, start, sendSeconds } = await sendAtRate(rate, ms, () => {
      const from = Math.floor(Math.random() * users);
      let to = Math.floor(Math.random() * (users - 1));
      if (to >= from) to++;
      const n = seq++;
      sendTimes[n] = performance.now();
      clients[from]!.send(stanzaFor(jids[to]!, n));
    });
    const drainUntil = performance.now() + options.drainMs;
    while (received < sent && performance.now() < drainUntil) await sleep(20);
    const deliveredSeconds = (performance.now() - start) / 1000;
    const latency = summarize(latencies.values());
    const machine = await load.stop();
    const result: MsgStep = {
      offered: rate,
      sent,
      sentPerSecond: sent / sendSeconds,
      delivered: received,
      deliveredPerSecond: received / Math.max(sendSeconds, deliveredSeconds),
      lost: sent - received,
      errors,
      latency,
      ...machine,
      pass: false,
      generatorBound: false,
    };
    result.generatorBound = result.sentPerSecond < rate * SEND_RATE_TOLERANCE;
    result.pass = result.lost === 0 && result.errors === 0 && latency.p99 <= options.p99LimitMs && !result.generatorBound;
    return result;
  };

  const report = (s: MsgStep): void =>
    options.log(
      `msg: offered ${fmtInt(s.offered)}/s → sent ${fmtInt(s.sentPerSecond)}/s, delivered ${fmtInt(s.delivered)}/${fmtInt(s.sent)} ` +
        `(lost ${fmtInt(s.lost)}${s.errors > 0 ? `, ${fmtInt(s.errors)} bounced` : ''}), ${latencyLine(s.latency)}; CPU server ${(s.serverCpu * 100).toFixed(0)}%, ` +
        `generator ${(s.generatorCpu * 100).toFixed(0)}%, others ${(s.othersCpu * 100).toFixed(0)}%${s.steal > 0.02 ? `, steal ${(s.steal * 100).toFixed(0)}%` : ''} → ` +
        `${s.pass ? 'PASS' : s.generatorBound ? 'NO RESULT (the generator could not send this fast)' : 'FAIL'}` +
        `\n     event-loop delay max: server ${s.serverLoopDelay.max.toFixed(0)} ms, generator ${s.generatorLoopDelay.max.toFixed(0)} ms` +
        (s.othersCpu > NOISE_CORES ? `\n     (noisy: ${s.busiestOthers.join(', ')})` : ''),
    );

  const measuredStep = (rate: number): Promise<MsgStep> => quietStep('msg', options, () => step(rate, options.stepMs), report);

  if (options.warmupMs > 0) {
    const warm = await step(options.rates[0] ?? 5000, options.warmupMs);
    options.log(`msg: warm-up at ${fmtInt(warm.offered)}/s done (${latencyLine(warm.latency)})`);
    await sleep(500);
  }

  const steps: MsgStep[] = [];
  const fromUs = monotonicUs();
  let best = 0;
  let failedAt: number | undefined;
  let generatorBound = false;
  for (const rate of options.rates) {
    const s = await measuredStep(rate);
    steps.push(s);
    report(s);
    if (s.generatorBound && s.lost === 0 && s.latency.p99 <= options.p99LimitMs) {
      generatorBound = true; // the server kept up with all we could send: stop, no bisection
      break;
    }
    if (!s.pass) {
      failedAt = rate;
      break;
    }
    best = rate;
    await sleep(500);
  }
  // Bisect between the best passing rate and the first failing one, in steps of 500 msg/s.
  let low = best;
  let high = failedAt;
  for (let i = 0; i < options.refineSteps && high !== undefined && high - low > 1000; i++) {
    await sleep(1000);
    const rate = Math.round((low + high) / 2 / 500) * 500;
    const s = await measuredStep(rate);
    steps.push(s);
    report(s);
    if (s.pass) low = best = Math.max(best, rate);
    else if (s.generatorBound && s.lost === 0 && s.latency.p99 <= options.p99LimitMs) break;
    else high = rate;
  }
  const toUs = monotonicUs();
  if (duplicates > 0) options.log(`msg: ${duplicates} duplicate deliveries (a bug somewhere)`);
  for (const client of clients) client.close();
  return { users, bodyBytes: BODY.length, stanzaBytes: stanzaFor(jids[0]!, 123456).length, stepSeconds: options.stepMs / 1000, steps, best, generatorBound, loginSeconds, windowUs: [fromUs, toUs] };
}
