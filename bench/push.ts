// Push benchmark: the latency of XEP-0357 pushes, from a message queued for a hibernated session to
// the vendor's HTTP endpoint receiving the push, through the whole built-in pipeline: push module
// (modules/push) → embedded push service (modules/pubsub) → app server (modules/appserver) → the
// UnifiedPush backend's HTTP POST. The "vendor" is an HTTP receiver in this process on 127.0.0.1,
// so send and arrival times are read on one clock.
//
// Setup (not measured): N devices each log in, register with the app server (ad-hoc command
// register-push-unifiedpush, endpoint http://127.0.0.1:PORT/up/<i>), enable push with the returned
// jid/node/secret and include-message-bodies, enable stream management with resumption, and drop
// their TCP connection: their sessions hibernate. A few sender accounts stay online.
// Each step then sends chat messages to the devices' full JIDs at a fixed aggregate rate, round
// robin over the devices (message n → device n mod N). Each body starts with the message's
// sequence number, which the push carries back (last-message-body), so every push names its
// message. Latency = arrival of the push's HTTP request (body complete) − the message's send time;
// it includes the client→server hop (a fraction of a millisecond on loopback; see the msg bench).
//
// The server runs with modules.push.coalesce_window 0: every message may push at once. A push is
// still held back while the device's previous one is in flight (modules/push/publisher.ts), and
// then goes out with the later message: such a message is "coalesced" (covered by a later push's
// message-count), not lost. The bench measures the pipeline, not the coalescing policy.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BenchClient, type LoginTarget } from './client.js';
import type { BenchServer } from './server-process.js';
import { NOISE_CORES, SEND_RATE_TOLERANCE, measureStepLoad, quietStep, sendAtRate, type SteppedRunOptions, type StepLoad } from './steps.js';
import { Samples, fmtInt, latencyLine, monotonicUs, sleep, summarize, type LatencySummary } from './stats.js';
import { attribute, elementName } from './frames.js';

export interface PushBenchOptions extends SteppedRunOptions {
  target: LoginTarget;
  /** Hibernated push-enabled sessions (accounts u0 … u(devices-1)). */
  devices: number;
  /** Online accounts that send the messages (the next `senders` accounts). */
  senders: number;
  password: string;
  /** Stepping goes on at least up to this rate, then stops at the first failing step. */
  targetRate: number;
}

export interface PushStep extends StepLoad {
  offered: number;
  sent: number;
  sentPerSecond: number;
  /** Messages whose own push arrived (the latency samples). */
  pushed: number;
  /** Messages not pushed themselves but counted in a later push of their device (message-count). */
  coalesced: number;
  /** Messages no push told of. */
  lost: number;
  /** HTTP requests the receiver got for this step's messages. */
  pushes: number;
  /** Messages bounced to the sender (an error instead of queueing). */
  errors: number;
  /** TCP connections the server's HTTP client opened to the receiver during the step (keep-alive reuses them). */
  httpConnections: number;
  latency: LatencySummary;
  /** Server CPU per message/push, in µs (serverCpu / sent rate). */
  serverUsPerPush: number;
}

export interface PushBenchResult {
  devices: number;
  senders: number;
  stepSeconds: number;
  steps: PushStep[];
  /** Seconds to log in, register, enable and hibernate every device. */
  setupSeconds: number;
  /** Pushes that named no message of ours, arrived twice, or came for an earlier step. */
  strays: { unparsable: number; duplicates: number; late: number };
  /** From the first measured step to the end of the last (for cutting the server's CPU profile). */
  windowUs: [number, number];
}

const BODY = 'Benchmark push: the quick brown fox jumps over the lazy dog.';
const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const NS_DATA = 'jabber:x:data';

export async function runPushBench(server: BenchServer, options: PushBenchOptions): Promise<PushBenchResult> {
  const { devices, senders, target } = options;

  // ---- per message: send time, device, ordinal on its device; whether its own push arrived ----
  let capacity = 1 << 18;
  let sendTimes = new Float64Array(capacity);
  let deviceOf = new Int32Array(capacity);
  let ordinalOf = new Int32Array(capacity);
  let pushedFlag = new Uint8Array(capacity);
  let seq = 0;
  let stepFirstSeq = 0;
  const sentTo = new Int32Array(devices); // messages sent to each device so far (its ordinals)
  const countSeen = new Int32Array(devices); // highest message-count a push of the device carried
  const latencies = new Samples();
  let stepPushes = 0;
  let stepPushed = 0;
  const strays = { unparsable: 0, duplicates: 0, late: 0 };

  const ensureCapacity = (needed: number): void => {
    if (needed <= capacity) return;
    while (capacity < needed) capacity *= 2;
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    sendTimes = grow(sendTimes, (n) => new Float64Array(n));
    deviceOf = grow(deviceOf, (n) => new Int32Array(n));
    ordinalOf = grow(ordinalOf, (n) => new Int32Array(n));
    pushedFlag = grow(pushedFlag, (n) => new Uint8Array(n));
  };

  // ---- the vendor: UnifiedPush distributor endpoints /up/<device> ----
  const onPush = (device: number, body: string, arrived: number): void => {
    let summary: Record<string, unknown>;
    try {
      summary = JSON.parse(body) as Record<string, unknown>;
    } catch {
      strays.unparsable++;
      return;
    }
    const count = Number(summary['message-count']);
    if (device >= 0 && device < devices && count > countSeen[device]!) countSeen[device] = count;
    const text = summary['last-message-body'];
    const n = typeof text === 'string' ? Number.parseInt(text, 10) : Number.NaN;
    if (!(n >= 0 && n < seq) || deviceOf[n] !== device) {
      strays.unparsable++;
      return;
    }
    if (pushedFlag[n]) {
      strays.duplicates++;
      return;
    }
    pushedFlag[n] = 1;
    if (n < stepFirstSeq) {
      strays.late++;
      return;
    }
    stepPushes++;
    stepPushed++;
    latencies.push(arrived - sendTimes[n]!);
  };
  const receiver = await startReceiver((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const arrived = performance.now();
      const match = /^\/up\/(\d+)$/.exec(req.url ?? '');
      // RFC 8030 §5: 201 Created for an accepted push message.
      res.writeHead(match ? 201 : 404, { 'content-length': 0 });
      res.end();
      if (match) onPush(Number(match[1]), Buffer.concat(chunks).toString('utf8'), arrived);
    });
  });
  const receiverPort = (receiver.address() as AddressInfo).port;
  let httpConnections = 0;
  receiver.on('connection', () => httpConnections++);

  try {
    // ---- setup: devices register, enable push and SM, then drop their connection ----
    const setupStart = performance.now();
    let next = 0;
    let hibernating = 0;
    await Promise.all(
      Array.from({ length: Math.min(100, devices) }, async () => {
        while (next < devices) {
          const i = next++;
          await setUpDevice(target, options.password, i, `http://127.0.0.1:${receiverPort}/up/${i}`);
          hibernating++;
        }
      }),
    );
    // The server hibernates a session when it sees the connection gone; wait until only the senders' streams are left.
    const senderClients: BenchClient[] = new Array(senders);
    let bounced = 0;
    for (let s = 0; s < senders; s++) {
      const client = await BenchClient.login(target, { username: `u${devices + s}`, password: options.password, resource: 'bench', starttls: false });
      client.onElement = (raw) => {
        if (elementName(raw) === 'message' && attribute(raw, 'type') === 'error') bounced++;
      };
      client.send('<presence/>');
      senderClients[s] = client;
    }
    const settleUntil = performance.now() + 30_000;
    for (;;) {
      const stats = await server.stats();
      if (stats.streams <= senders && stats.sessions >= devices + senders) break;
      if (performance.now() > settleUntil) {
        options.log(`push: WARNING: server has ${stats.streams} streams and ${stats.sessions} sessions; expected ${senders} and ${devices + senders}`);
        break;
      }
      await sleep(100);
    }
    await sleep(1000); // push mode starts on 'session:hibernated' (a store read per device)
    const setupSeconds = (performance.now() - setupStart) / 1000;
    options.log(`push: ${fmtInt(hibernating)} devices registered, push-enabled and hibernated, ${senders} senders online, in ${setupSeconds.toFixed(1)} s; receiver on 127.0.0.1:${receiverPort}`);

    const stanzaFor = (device: number, n: number): string =>
      `<message to='u${device}@${target.domain}/bench' type='chat' id='p${n}'><body>${n} ${BODY}</body></message>`;

    /** Messages of the current step no push has told of yet (neither their own nor a later one's count). */
    const unresolved = (): { coalesced: number; lost: number } => {
      let coalesced = 0;
      let lost = 0;
      for (let n = stepFirstSeq; n < seq; n++) {
        if (pushedFlag[n]) continue;
        if (countSeen[deviceOf[n]!]! >= ordinalOf[n]!) coalesced++;
        else lost++;
      }
      return { coalesced, lost };
    };

    const step = async (rate: number, ms: number): Promise<PushStep> => {
      ensureCapacity(seq + Math.ceil((rate * ms) / 1000) + 10_000);
      stepFirstSeq = seq;
      stepPushes = 0;
      stepPushed = 0;
      bounced = 0;
      latencies.clear();
      const connectionsBefore = httpConnections;
      const load = await measureStepLoad(server);
      const { sent, start, sendSeconds } = await sendAtRate(rate, ms, () => {
        const n = seq++;
        const device = n % devices;
        deviceOf[n] = device;
        ordinalOf[n] = ++sentTo[device]!;
        sendTimes[n] = performance.now();
        senderClients[n % senders]!.send(stanzaFor(device, n));
      });
      const drainUntil = performance.now() + options.drainMs;
      while (performance.now() < drainUntil && (stepPushed < sent ? unresolved().lost > 0 : false)) await sleep(20);
      const latency = summarize(latencies.values());
      const machine = await load.stop();
      const { coalesced, lost } = unresolved();
      const sentPerSecond = sent / sendSeconds;
      const result: PushStep = {
        offered: rate,
        sent,
        sentPerSecond,
        pushed: stepPushed,
        coalesced,
        lost,
        pushes: stepPushes,
        errors: bounced,
        httpConnections: httpConnections - connectionsBefore,
        latency,
        ...machine,
        // The step's CPU window includes the drain; per push over the whole window is close enough.
        serverUsPerPush: (machine.serverCpu * ((performance.now() - start) / 1000) * 1e6) / Math.max(1, sent),
        pass: false,
        generatorBound: sentPerSecond < rate * SEND_RATE_TOLERANCE,
      };
      result.pass = lost === 0 && bounced === 0 && latency.p99 < options.p99LimitMs && !result.generatorBound;
      return result;
    };

    const report = (s: PushStep): void =>
      options.log(
        `push: offered ${fmtInt(s.offered)}/s → sent ${fmtInt(s.sentPerSecond)}/s, pushed ${fmtInt(s.pushed)}/${fmtInt(s.sent)}` +
          ` (coalesced ${fmtInt(s.coalesced)}, lost ${fmtInt(s.lost)}${s.errors > 0 ? `, ${fmtInt(s.errors)} bounced` : ''}), ${latencyLine(s.latency)}; ` +
          `CPU server ${(s.serverCpu * 100).toFixed(0)}% (${fmtInt(s.serverUsPerPush)} µs per push), generator ${(s.generatorCpu * 100).toFixed(0)}%, ` +
          `others ${(s.othersCpu * 100).toFixed(0)}%${s.steal > 0.02 ? `, steal ${(s.steal * 100).toFixed(0)}%` : ''} → ` +
          `${s.pass ? 'PASS' : s.generatorBound ? 'NO RESULT (the generator could not send this fast)' : 'FAIL'}` +
          `\n     event-loop delay max: server ${s.serverLoopDelay.max.toFixed(0)} ms, generator ${s.generatorLoopDelay.max.toFixed(0)} ms; ` +
          `${fmtInt(s.httpConnections)} new HTTP connections to the receiver` +
          (s.othersCpu > NOISE_CORES ? `\n     (noisy: ${s.busiestOthers.join(', ')})` : ''),
      );

    const measuredStep = (rate: number): Promise<PushStep> => quietStep('push', options, () => step(rate, options.stepMs), report);

    if (options.warmupMs > 0) {
      const rate = options.rates[0] ?? 1000;
      const warm = await step(rate, options.warmupMs);
      const untouched = devices - Math.min(devices, warm.sent);
      options.log(`push: warm-up at ${fmtInt(rate)}/s done (${fmtInt(warm.pushed)}/${fmtInt(warm.sent)} pushed, ${latencyLine(warm.latency)})` +
        (untouched > 0 ? `; ${fmtInt(untouched)} devices got no message yet (their first push, which shortens hibernation, falls in the measurement)` : ''));
      await sleep(1000);
    }

    const steps: PushStep[] = [];
    const fromUs = monotonicUs();
    for (const rate of options.rates) {
      const s = await measuredStep(rate);
      steps.push(s);
      report(s);
      if (!s.pass && !s.generatorBound && rate >= options.targetRate) break;
      await sleep(1000);
    }
    const toUs = monotonicUs();
    if (strays.unparsable + strays.duplicates > 0) options.log(`push: ${strays.unparsable} pushes named no message of ours, ${strays.duplicates} came twice (a bug somewhere)`);
    for (const client of senderClients) client.close();
    return { devices, senders, stepSeconds: options.stepMs / 1000, steps, setupSeconds, strays, windowUs: [fromUs, toUs] };
  } finally {
    receiver.closeAllConnections();
    receiver.close();
  }
}

/** An HTTP/1.1 server on 127.0.0.1 (any port) that keeps connections open as long as the server's agent wants. */
async function startReceiver(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const receiver = createServer(handler);
  // The server's HTTP agent keeps connections alive and closes idle ones itself; closing them from
  // this side too would race with a request on a reused connection (ECONNRESET → a retry).
  receiver.keepAliveTimeout = 10 * 60_000;
  receiver.headersTimeout = 11 * 60_000;
  receiver.requestTimeout = 0;
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  return receiver;
}

/**
 * One device: login, initial presence, register-push-unifiedpush on the server's JID, enable push
 * (bodies included, so a push names its message), enable SM with resumption, then drop the TCP
 * connection without </stream:stream>, so the session hibernates.
 */
async function setUpDevice(target: LoginTarget, password: string, i: number, endpoint: string): Promise<void> {
  const client = await BenchClient.login(target, { username: `u${i}`, password, resource: 'bench', starttls: false });
  const answers = new Map<string, (raw: string) => void>();
  client.onElement = (raw) => {
    const name = elementName(raw);
    const key = name === 'iq' ? attribute(raw, 'id') ?? '' : name;
    const waiter = answers.get(key);
    if (waiter) {
      answers.delete(key);
      waiter(raw);
    }
  };
  const expect = (key: string, send: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`device u${i}: no answer to ${key} within 30 s`)), 30_000);
      answers.set(key, (raw) => {
        clearTimeout(timer);
        resolve(raw);
      });
      client.send(send);
    });
  client.send('<presence/>');
  const registered = await expect(
    'reg',
    `<iq type='set' to='${target.domain}' id='reg'><command xmlns='${NS_COMMANDS}' node='register-push-unifiedpush' action='execute'>` +
      `<x xmlns='${NS_DATA}' type='submit'><field var='endpoint'><value>${endpoint}</value></field>` +
      `<field var='device-id'><value>bench</value></field></x></command></iq>`,
  );
  const jid = formField(registered, 'jid');
  const node = formField(registered, 'node');
  const secret = formField(registered, 'secret');
  if (attribute(registered, 'type') !== 'result' || !jid || !node || !secret) throw new Error(`device u${i}: register-push-unifiedpush failed: ${registered.slice(0, 400)}`);
  const enabled = await expect(
    'push',
    `<iq type='set' id='push'><enable xmlns='urn:xmpp:push:0' jid='${jid}' node='${node}'>` +
      `<x xmlns='${NS_DATA}' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:options</value></field>` +
      `<field var='include-message-bodies'><value>1</value></field></x>` +
      `<x xmlns='${NS_DATA}' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
      `<field var='secret'><value>${secret}</value></field></x></enable></iq>`,
  );
  if (attribute(enabled, 'type') !== 'result') throw new Error(`device u${i}: push enable failed: ${enabled.slice(0, 400)}`);
  const sm = await expect('enabled', `<enable xmlns='urn:xmpp:sm:3' resume='true'/>`);
  if (attribute(sm, 'resume') !== 'true' && attribute(sm, 'resume') !== '1') throw new Error(`device u${i}: no resumable SM: ${sm.slice(0, 200)}`);
  client.destroy();
}

/** The first <value> of a data-form field `var` in a raw stanza (bench payloads need no unescaping). */
function formField(raw: string, name: string): string | undefined {
  for (const quote of ["'", '"']) {
    const at = raw.indexOf(`var=${quote}${name}${quote}`);
    if (at < 0) continue;
    const end = raw.indexOf('</field>', at);
    const value = raw.indexOf('<value>', at);
    if (value < 0 || (end >= 0 && value > end)) return '';
    return raw.slice(value + 7, raw.indexOf('</value>', value));
  }
  return undefined;
}
