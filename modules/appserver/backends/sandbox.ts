// The sandbox push backend: no vendor at all. Pushes are kept in memory (the last `inbox_size` per
// node) so integration testers can assert on them: over HTTP (`GET /push/inbox/{node}`, served by
// modules/appserver/inbox.ts), with `herald push inbox`, or in-process (`server.sandboxInbox` of
// the testing API). On by default; it costs nothing while nobody registers with it.
// The payload is what a backend would send a vendor; for the sandbox, the notification itself.
import { z } from 'zod';
import { stanzaError } from '../../../server/errors.js';
import { field, formValue, type DataForm } from '../../../server/protocol/xep0004.js';
import { PushDeliveryError, defineBackend, type DeliveryFailure, type PushBackend, type PushNotification, type PushRegistration } from '../backend.js';

/** One push as the sandbox inbox shows it (also the JSON of GET /push/inbox/{node}). */
export interface SandboxPush {
  node: string;
  backend: 'sandbox';
  /** ISO 8601 time it arrived. */
  received: string;
  payload: PushNotification;
}

/** The sandbox inbox in-process (`m.service('sandboxInbox')`, the testing API's `server.sandboxInbox`). */
export interface SandboxInbox {
  /** The pushes kept for a node, oldest first; undefined when no sandbox registration has that node. */
  list(node: string): Promise<SandboxPush[] | undefined>;
  /** Every sandbox registration's node with its pushes. */
  all(): Promise<Record<string, SandboxPush[]>>;
  /**
   * The oldest push (to `node`, or to any node) that no earlier next() returned, waiting for one
   * to arrive if need be; rejects after `timeoutMs` (default 10 s).
   */
  next(node?: string, options?: { timeoutMs?: number }): Promise<SandboxPush>;
  /** Makes the next `times` (default 1) deliveries to `node` fail as a vendor would (error-path tests). */
  failNext(node: string, kind: DeliveryFailure, options?: { times?: number; retryAfterMs?: number }): void;
}

declare module '../../../server/module-api.js' {
  interface Services {
    sandboxInbox: SandboxInbox;
  }
}

const sandboxConfig = z
  .object({
    enabled: z.boolean().default(true).describe('Offer register-push-sandbox: pushes go nowhere and are shown at GET /push/inbox/{node} on the HTTP listener'),
    inbox_size: z.number().int().min(1).max(10_000).default(100).describe('Pushes kept per sandbox node; older ones are dropped'),
  })
  .strict();
export type SandboxConfig = z.output<typeof sandboxConfig>;

const MAX_TOKEN_LENGTH = 4096;
/** Pushes waiting for next() across all nodes; older ones are dropped first. */
const MAX_UNREAD = 1000;
const DEFAULT_NEXT_TIMEOUT_MS = 10_000;

interface Waiter {
  node: string | undefined;
  resolve: (push: SandboxPush) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Failure {
  kind: DeliveryFailure;
  remaining: number;
  retryAfterMs: number | undefined;
}

export class SandboxBackend implements PushBackend {
  readonly name = 'sandbox' as const;
  readonly fields = [field('token', 'text-single', { label: 'Token (optional; the sandbox sends nothing anywhere)' })];
  private readonly kept = new Map<string, SandboxPush[]>();
  private unread: SandboxPush[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly failures = new Map<string, Failure>();

  constructor(private readonly config: SandboxConfig) {}

  parseRegistration(form: DataForm): Record<string, string> {
    const token = formValue(form, 'token');
    if (token === undefined || token === '') return {};
    if (token.length > MAX_TOKEN_LENGTH) throw stanzaError.notAcceptable('token is too long');
    return { token };
  }

  async send(registration: PushRegistration, notification: PushNotification): Promise<void> {
    const failure = this.failures.get(registration.node);
    if (failure) {
      if (--failure.remaining <= 0) this.failures.delete(registration.node);
      const details = failure.retryAfterMs !== undefined ? { reason: 'simulated', retryAfterMs: failure.retryAfterMs } : { reason: 'simulated' };
      throw new PushDeliveryError(failure.kind, `sandbox: simulated '${failure.kind}' failure`, details);
    }
    // What went "over the wire": plain JSON, the same in-process as over HTTP.
    const payload = JSON.parse(JSON.stringify(notification)) as PushNotification;
    const push: SandboxPush = { node: registration.node, backend: 'sandbox', received: new Date().toISOString(), payload };
    const list = this.kept.get(push.node) ?? [];
    list.push(push);
    if (list.length > this.config.inbox_size) list.splice(0, list.length - this.config.inbox_size);
    this.kept.set(push.node, list);
    this.handOut(push);
  }

  /** The pushes kept for a node, oldest first. */
  pushes(node: string): SandboxPush[] {
    return [...(this.kept.get(node) ?? [])];
  }

  /** Drops what was kept for a node whose registration is gone. */
  forget(node: string): void {
    this.kept.delete(node);
    this.failures.delete(node);
    this.unread = this.unread.filter((push) => push.node !== node);
  }

  next(node?: string, timeoutMs = DEFAULT_NEXT_TIMEOUT_MS): Promise<SandboxPush> {
    const index = this.unread.findIndex((push) => node === undefined || push.node === node);
    if (index >= 0) return Promise.resolve(this.unread.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        node,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(`no sandbox push${node === undefined ? '' : ` to node ${node}`} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  failNext(node: string, kind: DeliveryFailure, options: { times?: number; retryAfterMs?: number } = {}): void {
    this.failures.set(node, { kind, remaining: options.times ?? 1, retryAfterMs: options.retryAfterMs });
  }

  async close(): Promise<void> {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('the server stopped'));
    }
    this.waiters.clear();
  }

  /** Gives a new push to the first next() waiting for it, or keeps it for a later next(). */
  private handOut(push: SandboxPush): void {
    for (const waiter of this.waiters) {
      if (waiter.node !== undefined && waiter.node !== push.node) continue;
      this.waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve(push);
      return;
    }
    this.unread.push(push);
    if (this.unread.length > MAX_UNREAD) this.unread.shift();
  }
}

export const sandbox = defineBackend({
  name: 'sandbox',
  schema: sandboxConfig.prefault({}).describe('The sandbox backend (no vendor: for development and integration tests)'),
  create: (config) => new SandboxBackend(config),
});
