// Sends the pushes of each device (an enabled jid/node): coalesced, retried, and switched off when
// the push service says the node is gone.
//
// Coalescing: the first event after the device was last online is pushed at once; after a push,
// events wait until `coalesce_window` has passed since it and then go out as one push carrying the
// updated counts. So a burst of messages costs one or two pushes, and a device that wakes up and
// resumes (which resets everything) costs nothing more.
//
// XEP-0357 §7.1: "If a publish request is returned with an IQ-error, then the server SHOULD consider
// the particular JID and node combination to be disabled. However, a server MAY choose to keep a
// service enabled if the error is deemed recoverable or transient, until a sufficient number of
// errors have been received in a row." Herald: conditions that say the node or service is not
// there for us (DISABLING) disable at once; `wait` errors are retried with backoff and then count
// as one error; every other error (and a timeout) counts, and `max_errors` in a row disable.
import { randomId, tryParseJid, type ModuleContext, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import type { PushOptions } from './options.js';
import { enableKey, type PushEnable, type PushStore } from './store.js';
import { publishIq, summaryForm, type PushEvent, type PushPriority } from './summary.js';

const DISABLING = new Set([
  'item-not-found',
  'forbidden',
  'not-authorized',
  'policy-violation',
  'not-allowed',
  'registration-required',
  'subscription-required',
  'gone',
  'service-unavailable',
  'feature-not-implemented',
  'remote-server-not-found',
]);

export interface PublisherConfig {
  coalesceWindow: number;
  publishTimeout: number;
  maxErrors: number;
  retryAttempts: number;
  retryDelay: number;
}

export interface PublisherDeps {
  store: PushStore;
  config: PublisherConfig;
  log: ModuleContext['log'];
  host: string;
  route(stanza: XmlElement): void;
  optionsOf(username: string): Promise<PushOptions>;
  /** A push went out for this device (its session's hibernation falls back to normal). */
  pushed(username: string, enable: PushEnable): void;
  /** An enable was removed (its session's hibernation falls back to normal). */
  disabled(username: string, enable: PushEnable): void;
}

/** What a publish came back with. */
type Outcome = { kind: 'ok' } | { kind: 'error'; type: string; condition: string } | { kind: 'timeout' } | { kind: 'stopped' };

/** Per device, in memory: what the next summary adds to the stored counters. */
interface DeviceRuntime {
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  priority: PushPriority | undefined;
  lastMessageSender?: string;
  lastMessageBody?: string;
  lastSubscriptionSender?: string;
}

export class Publisher {
  private readonly devices = new Map<string, DeviceRuntime>();
  private readonly waiting = new Map<string, { from: string; done(outcome: Outcome): void; timer: NodeJS.Timeout }>();
  private readonly sleeps = new Set<() => void>();
  private stopping = false;

  constructor(private readonly deps: PublisherDeps) {}

  /** Records an event for these devices of an account and pushes now or when their window ends. */
  async notify(username: string, keys: string[], event: PushEvent): Promise<void> {
    if (keys.length === 0) return;
    await this.deps.store.serial(username, async () => {
      for (const key of keys) {
        const enable = await this.deps.store.get(username, key);
        if (!enable) continue;
        const device = this.device(username, key);
        const counted = event.kind === 'subscription' || event.priority === 'high';
        if (event.kind === 'message') {
          if (event.priority === 'high') {
            enable.pendingMessages++;
            device.lastMessageSender = event.sender;
            device.lastMessageBody = event.body;
          }
        } else {
          enable.pendingSubscriptions++;
          device.lastSubscriptionSender = event.sender;
        }
        if (device.priority !== 'high') device.priority = event.priority;
        await this.pushOrDefer(username, enable, device, counted);
      }
    });
  }

  /** The device is online again: counters and coalescing start over. */
  async online(username: string, resource: string): Promise<void> {
    await this.deps.store.serial(username, async () => {
      for (const enable of await this.deps.store.forResource(username, resource)) {
        this.forget(username, enableKey(enable.jid, enable.node));
        if (enable.pendingMessages === 0 && enable.pendingSubscriptions === 0 && enable.lastPushAt === undefined && !enable.owed) continue;
        await this.deps.store.put(username, { ...enable, pendingMessages: 0, pendingSubscriptions: 0, lastPushAt: undefined, owed: false });
      }
    });
  }

  /** Drops the in-memory state of a device (disabled, or online again). */
  forget(username: string, key: string): void {
    const id = `${username}\n${key}`;
    const device = this.devices.get(id);
    if (device?.timer) clearTimeout(device.timer);
    this.devices.delete(id);
  }

  /** After a restart: owed pushes go out when their window ends. */
  async resumeOwed(): Promise<void> {
    for (const username of await this.deps.store.owners()) {
      for (const enable of await this.deps.store.list(username)) {
        if (enable.owed) this.schedule(username, enable, this.device(username, enableKey(enable.jid, enable.node)));
      }
    }
  }

  /** An IQ result or error for the account's bare JID: true when it answers one of our publishes. */
  answer(stanza: XmlElement): boolean {
    const id = stanza.attrs.id;
    const pending = id === undefined ? undefined : this.waiting.get(id);
    // pending.from is normalised already, and the push service's answer usually carries that very
    // string: only another spelling needs parsing (and normalising) to be compared.
    const from = stanza.attrs.from ?? '';
    if (!pending || (from !== pending.from && tryParseJid(from)?.toString() !== pending.from)) return false;
    const error = stanza.getChild('error');
    const condition = error?.elements().find((el) => el.attrs.xmlns === NS.STANZA_ERRORS)?.name ?? 'undefined-condition';
    pending.done(stanza.attrs.type === 'result' ? { kind: 'ok' } : { kind: 'error', type: error?.attrs.type ?? 'cancel', condition });
    return true;
  }

  /** Server stopping: nothing new goes out; owed pushes stay owed in storage for the next start. */
  stop(): void {
    this.stopping = true;
    for (const device of this.devices.values()) if (device.timer) clearTimeout(device.timer);
    for (const pending of this.waiting.values()) pending.done({ kind: 'stopped' });
    for (const wake of this.sleeps) wake();
  }

  private device(username: string, key: string): DeviceRuntime {
    const id = `${username}\n${key}`;
    let device = this.devices.get(id);
    if (!device) {
      device = { timer: undefined, inFlight: false, priority: undefined };
      this.devices.set(id, device);
    }
    return device;
  }

  /** Inside the account's serial chain: push now if the window allows, else owe it. */
  private async pushOrDefer(username: string, enable: PushEnable, device: DeviceRuntime, counted = true): Promise<void> {
    const now = Date.now();
    const due = (enable.lastPushAt ?? -Infinity) + this.deps.config.coalesceWindow;
    if (this.stopping || device.inFlight || now < due) {
      // Already owed and no counter changed (a receipt or marker within the window): storage
      // holds exactly this already, so there is nothing to write.
      if (!enable.owed || counted) {
        enable.owed = true;
        this.saveCounters(username, enable);
      }
      this.schedule(username, enable, device);
      return;
    }
    enable.owed = false;
    enable.lastPushAt = now;
    this.saveCounters(username, enable);
    await this.send(username, enable, device);
  }

  /**
   * The counters and coalescing state every push changes: read back from the store's cache at
   * once, committed lazily and not waited for, so a push never waits for a commit. A crash can
   * lose the last few milliseconds of counting (a count one short in the next summary, or an owed
   * push that goes out with the next message instead); a failed write is logged and the cache is
   * dropped, so the next push reads what storage really holds.
   */
  private saveCounters(username: string, enable: PushEnable): void {
    this.deps.store.put(username, enable, { lazy: true }).catch((err: unknown) => this.deps.log.error({ err, user: username }, 'push state not saved'));
  }

  private schedule(username: string, enable: PushEnable, device: DeviceRuntime): void {
    if (this.stopping || device.timer || device.inFlight) return; // the push in flight reschedules when done
    const delay = Math.max(0, (enable.lastPushAt ?? 0) + this.deps.config.coalesceWindow - Date.now());
    const key = enableKey(enable.jid, enable.node);
    device.timer = setTimeout(() => {
      device.timer = undefined;
      void this.deps.store
        .serial(username, async () => {
          const current = await this.deps.store.get(username, key);
          if (current?.owed && this.devices.get(`${username}\n${key}`) === device) await this.pushOrDefer(username, current, device, false);
        })
        .catch((err: unknown) => this.deps.log.error({ err, user: username }, 'push failed'));
    }, delay);
    device.timer.unref();
  }

  /** Builds the summary, then publishes in the background (the account's chain moves on). */
  private async send(username: string, enable: PushEnable, device: DeviceRuntime): Promise<void> {
    const options = await this.deps.optionsOf(username);
    const summary = summaryForm(
      {
        messages: enable.pendingMessages,
        subscriptions: enable.pendingSubscriptions,
        // After a restart the runtime is gone; what the counters hold was worth a 'high' push then.
        priority: device.priority ?? (enable.pendingMessages + enable.pendingSubscriptions > 0 ? 'high' : 'normal'),
        lastMessageSender: device.lastMessageSender,
        lastMessageBody: device.lastMessageBody,
        lastSubscriptionSender: device.lastSubscriptionSender,
      },
      options,
    );
    device.priority = undefined;
    device.lastMessageSender = device.lastMessageBody = device.lastSubscriptionSender = undefined;
    device.inFlight = true;
    const from = `${username}@${this.deps.host}`;
    const iq = publishIq(from, enable.jid, enable.node, summary, enable.publishOptions);
    this.deps.log.debug({ user: username, service: enable.jid, messages: enable.pendingMessages }, 'push sent');
    this.deps.pushed(username, enable);
    void this.publishWithRetry(iq, enable.jid)
      .then((outcome) => this.deps.store.serial(username, () => this.settle(username, enable, device, outcome)))
      .catch((err: unknown) => this.deps.log.error({ err, user: username }, 'push failed'));
  }

  private async publishWithRetry(iq: XmlElement, to: string): Promise<Outcome> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.publishOnce(iq.clone(), to);
      if (outcome.kind !== 'error' || outcome.type !== 'wait' || attempt >= this.deps.config.retryAttempts || this.stopping) return outcome;
      await this.sleep(this.deps.config.retryDelay * 2 ** attempt);
    }
  }

  private publishOnce(iq: XmlElement, to: string): Promise<Outcome> {
    if (this.stopping) return Promise.resolve({ kind: 'stopped' });
    const id = randomId(9);
    iq.attrs.id = id;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ kind: 'timeout' }), this.deps.config.publishTimeout);
      timer.unref();
      const done = (outcome: Outcome) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(outcome);
      };
      this.waiting.set(id, { from: tryParseJid(to)?.toString() ?? to, done, timer });
      try {
        this.deps.route(iq);
      } catch (err) {
        this.deps.log.error({ err, service: to }, 'push publish could not be routed');
        done({ kind: 'error', type: 'cancel', condition: 'undefined-condition' });
      }
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.sleeps.add(wake);
    });
  }

  /** Inside the account's chain: what the publish's outcome means for the enable. */
  private async settle(username: string, sent: PushEnable, device: DeviceRuntime, outcome: Outcome): Promise<void> {
    device.inFlight = false;
    const key = enableKey(sent.jid, sent.node);
    const enable = await this.deps.store.get(username, key);
    if (!enable || outcome.kind === 'stopped') return; // disabled meanwhile, or owed for the next start
    const who = { user: username, service: enable.jid, node: enable.node };
    if (outcome.kind === 'ok') {
      if (enable.errors !== 0) await this.deps.store.put(username, { ...enable, errors: 0 });
    } else if (outcome.kind === 'error' && outcome.type !== 'wait' && DISABLING.has(outcome.condition)) {
      await this.disable(username, enable, `publish error ${outcome.type}/${outcome.condition}`);
      return;
    } else {
      const errors = enable.errors + 1;
      const reason = outcome.kind === 'timeout' ? 'timeout' : `${outcome.type}/${outcome.condition}`;
      if (errors >= this.deps.config.maxErrors) {
        await this.disable(username, enable, `${errors} publish errors in a row (last: ${reason})`);
        return;
      }
      this.deps.log.warn({ ...who, reason, errors }, 'push publish failed');
      await this.deps.store.put(username, { ...enable, errors });
    }
    if (enable.owed && this.devices.get(`${username}\n${key}`) === device) this.schedule(username, enable, device);
  }

  /** Removes an enable, always with a logged reason (inside the account's chain). */
  async disable(username: string, enable: PushEnable, reason: string): Promise<void> {
    this.forget(username, enableKey(enable.jid, enable.node));
    if (!(await this.deps.store.remove(username, enable))) return;
    this.deps.log.info({ user: username, service: enable.jid, node: enable.node, reason }, 'push disabled');
    this.deps.disabled(username, enable);
  }
}
