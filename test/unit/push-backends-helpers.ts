// Shared by test/unit/push-backends-*.test.ts: a backend context, registrations and notifications,
// a clock tests can move, and an assertion for PushDeliveryError.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { PushDeliveryError, type BackendContext, type BackendName, type DeliveryFailure, type PushNotification, type PushRegistration } from '../../modules/appserver/backend.js';
import { submitForm } from '../../server/protocol/xep0004.js';
import { StanzaError } from '../../server/errors.js';

export interface TestContextLike {
  after(fn: () => unknown): void;
}

/** A temporary directory removed after the test. */
export function tempDir(t: TestContextLike, prefix = 'push-backend-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A backend context whose log lines are kept in `logs` (to check nothing secret is logged). */
export function backendContext(dataDir: string): BackendContext & { logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  return { log: pino({ level: 'trace' }, sink), dataDir, logs };
}

export function registration(backend: BackendName, data: Record<string, string>, node = 'node-1'): PushRegistration {
  return { node, secret: 'secret-1', backend, owner: 'romeo@localhost', deviceId: 'phone', createdAt: Date.now(), data };
}

export function notification(overrides: Partial<PushNotification> = {}): PushNotification {
  return { node: 'node-1', messageCount: 3, priority: 'high', ...overrides };
}

/** A clock starting at `start` that tests advance by hand. */
export function fakeClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let current = start;
  return { now: () => current, advance: (ms) => void (current += ms) };
}

export async function assertDeliveryError(
  promise: Promise<unknown>,
  kind: DeliveryFailure,
  details: { status?: number; reason?: string; retryAfterMs?: number } = {},
): Promise<PushDeliveryError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PushDeliveryError, `expected PushDeliveryError '${kind}', got ${String(caught)}`);
  assert.equal(caught.kind, kind, `kind: ${caught.message} ${JSON.stringify(caught.details)}`);
  for (const [key, value] of Object.entries(details)) {
    assert.equal(caught.details[key as keyof typeof details], value, `details.${key}`);
  }
  return caught;
}

/** Runs a parseRegistration expecting a StanzaError with `condition`. */
export function assertRefused(parse: () => unknown, condition: string, text?: RegExp): void {
  assert.throws(parse, (err: unknown) => {
    assert.ok(err instanceof StanzaError, `expected StanzaError, got ${String(err)}`);
    assert.equal(err.condition, condition);
    if (text) assert.match(err.text ?? '', text);
    return true;
  });
}

export { submitForm };
