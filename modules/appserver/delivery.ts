// From a XEP-0357 publish to a vendor push: find the node's registration, read the summary, call
// the backend, and turn what the vendor said into the publish's answer (DESIGN.md §4 step 3):
//   delivered → result;  token gone → registration removed, cancel/item-not-found (the user's
//   server disables the enable);  try later → retried here with backoff, then wait/resource-constraint;
//   our credentials wrong → logged loudly, registration kept, wait/internal-server-error;
//   refused for another reason → modify/not-acceptable.
// Retries wait in memory while the publish waits for its answer; the publisher owns longer-term
// retrying (modules/push), so nothing here needs to survive a restart.
import type { ModuleContext, Services } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { PushDeliveryError, type BackendName, type PushBackend, type PushNotification, type PushRegistration } from './backend.js';
import type { Registrations } from './registrations.js';
import { parseSummary } from './summary.js';

type PushPublishHandler = Parameters<Services['pubsub']['onPublish']>[0];

/**
 * No retry starts later than this after the publish arrived: the publisher waits for our answer
 * (modules/push: publish_timeout, 30 s by default), and an answer after it gave up helps no one.
 */
const RETRY_BUDGET_MS = 20_000;

export interface RetryPolicy {
  /** Attempts in all (1 = no retry). */
  attempts: number;
  /** Wait before the first retry (ms), doubled each time. */
  delayMs: number;
  /** Longest wait (ms); a vendor asking for longer gets the wait error at once. */
  maxDelayMs: number;
  /** Deliveries allowed to wait for a retry at the same time. */
  maxWaiting: number;
}

export interface DeliveryDeps {
  registrations: Registrations;
  backends: ReadonlyMap<BackendName, PushBackend>;
  retry: RetryPolicy;
  log: ModuleContext['log'];
}

export interface Delivery {
  handler: PushPublishHandler;
  /** Ends the retry waits (server shutdown): their publishes get a wait error. */
  stop(): void;
}

export function createDelivery(deps: DeliveryDeps): Delivery {
  const { registrations, backends, retry, log } = deps;
  const sleeping = new Set<{ timer: NodeJS.Timeout; wake: (stopped: boolean) => void }>();
  let stopped = false;

  /** Waits ms; false when the server stopped meanwhile. */
  const pause = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const entry = {
        timer: setTimeout(() => entry.wake(false), ms),
        wake(halted: boolean) {
          sleeping.delete(entry);
          resolve(!halted);
        },
      };
      sleeping.add(entry);
    });

  const handler: PushPublishHandler = async ({ node, owner, notification }) => {
    const registration = await registrations.get(owner, node);
    if (!registration) {
      // A node without registration: a leftover of an interrupted removal. It goes now.
      await registrations.removeOrphanNode(node);
      throw stanzaError.itemNotFound('No such registration');
    }
    const backend = backends.get(registration.backend);
    if (!backend) throw stanzaError.serviceUnavailable(`The ${registration.backend} push backend is not configured on this server`);
    const summary = parseSummary(notification, node);
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const failure = await trySend(backend, registration, summary);
      if (!failure) return;
      let delay = failure.kind === 'retry' ? retryDelay(failure, attempt) : undefined;
      if (delay !== undefined && Date.now() - started + delay > RETRY_BUDGET_MS) delay = undefined;
      if (delay === undefined || stopped || sleeping.size >= retry.maxWaiting) throw await answerFor(failure, registration, attempt);
      if (!(await pause(delay))) throw await answerFor(failure, registration, attempt);
    }
  };

  /** undefined when delivered. */
  async function trySend(backend: PushBackend, registration: PushRegistration, summary: PushNotification): Promise<PushDeliveryError | undefined> {
    try {
      await backend.send(registration, summary);
      log.debug({ node: registration.node, backend: registration.backend }, 'push delivered');
      return undefined;
    } catch (err) {
      if (err instanceof PushDeliveryError) return err;
      log.error({ err, node: registration.node, backend: registration.backend }, 'push backend failed');
      return new PushDeliveryError('retry', 'backend failure');
    }
  }

  /** The wait before the next attempt, or undefined to give up now. */
  function retryDelay(failure: PushDeliveryError, attempt: number): number | undefined {
    if (attempt >= retry.attempts) return undefined;
    const backoff = retry.delayMs * 2 ** (attempt - 1);
    const asked = failure.details.retryAfterMs ?? 0;
    // Retry-After is the vendor's word: waiting less would be refused again, so when it asks for
    // more than we wait, the publisher hears "later" at once.
    if (asked > retry.maxDelayMs) return undefined;
    return Math.min(Math.max(backoff, asked), retry.maxDelayMs);
  }

  async function answerFor(failure: PushDeliveryError, registration: PushRegistration, attempts: number): Promise<Error> {
    const where = { node: registration.node, backend: registration.backend, owner: registration.owner, status: failure.details.status, reason: failure.details.reason };
    switch (failure.kind) {
      case 'gone':
        log.info(where, 'push token gone: registration removed');
        await registrations.remove(registration);
        return stanzaError.itemNotFound('The device is no longer registered with its push service');
      case 'auth':
        // Our side is broken (key, certificate, account): every push of this backend fails until
        // an admin acts, so this is an error, and the device's registration stays.
        log.error({ ...where, message: failure.message }, 'push backend credentials refused: check its configuration');
        return stanzaError.internalServerError('The push backend is misconfigured', { type: 'wait' });
      case 'rejected':
        log.warn({ ...where, message: failure.message }, 'push refused by the vendor');
        return stanzaError.notAcceptable('The push service refused the notification');
      case 'retry':
        log.warn({ ...where, attempts }, 'push not delivered: vendor unavailable');
        return stanzaError.resourceConstraint('The push service is unavailable; try later');
    }
  }

  return {
    handler,
    stop() {
      stopped = true;
      for (const entry of [...sleeping]) {
        clearTimeout(entry.timer);
        entry.wake(true);
      }
    },
  };
}
