// XEP-0357 Push Notifications, server part (0.4.1): remembers each device's push service and
// publishes a summary to it when the device cannot be reached: while its stream-management session
// hibernates (XEP-0198), while the account has nothing online and messages go to offline storage,
// and, for devices with no session, when the archive (modules/mam) keeps a message delivered elsewhere.
// Push-enabled sessions hibernate longer (`hibernation`) until their first push. Which stanzas push
// and what the summary says: summary.ts; coalescing, retries and disabling: publisher.ts; the
// account's push options (mod_push's urn:xmpp:push:options form): options.ts. docs/push-server.md
// explains the behaviour for client developers and admins.
// Left out: pushing for a live session whose acks are late (Prosody's "smacks-ack-delayed"),
// subscription requests for accounts with no session (they wait in the roster, not in offline
// storage), and re-trying automatically disabled services later (XEP-0357 §7.1 MAY).
import { z } from 'zod';
import { Priority, STOP, defineModule, duration, tryParseJid, type Session, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { parseForm } from '../../server/protocol/xep0004.js';
import { defineErrors } from '../../server/errors.js';
import { capped, nextOptions, optionsForm, splitEnableForms, storedFields, type OptionsPolicy, type PushOptions } from './options.js';
import { PushStore, enableKey, type PushEnable } from './store.js';
import { NS_PUSH, classify, remoteDisable, type PushEvent } from './summary.js';
import { Publisher } from './publisher.js';

/** The account's push services, for admin tools and other modules. */
export interface PushService {
  enables(username: string): Promise<{ jid: string; node: string; resource: string; enabledAt: number }[]>;
  /**
   * The archive (modules/mam) kept a message for the account and delivered it to some of its
   * sessions: devices with no session at all learn of it only from a push (as in Prosody's
   * mod_cloud_notify); hibernated sessions push from their queue, live ones need none.
   */
  archived(username: string, stanza: XmlElement): void;
  /**
   * Pushes for a stanza another module judged worth it (MUC: a group chat message that mentions a
   * member who is not in the room) to the account's devices whose session is not live, as for an
   * offline message. `exceptResources`: devices left out (sessions the stanza is queued on already
   * push for it themselves).
   */
  notify(username: string, stanza: XmlElement, options?: { exceptResources?: string[] }): Promise<void>;
}

declare module '../../server/module-api.js' {
  interface Services {
    push: PushService;
  }
}

/** Per session: the devices its hibernation pushes for, and its own resume window while extended. */
interface SessionPush {
  /** Keys of the enables made from this session's resource; set while it hibernates. */
  devices: Promise<string[]> | undefined;
  /** The resume window the session had before push changed it. */
  normalWindow: number | undefined;
  /** Still in the long window (no push yet). */
  extended: boolean;
}

const errors = defineErrors({
  // Like ejabberd: XEP-0357 §5 makes 'node' mandatory, and a device without one cannot be told apart.
  noNode: ['cancel', 'feature-not-implemented', 'Enabling push without a node is not supported'],
  noJid: ['modify', 'bad-request', "The push service 'jid' is required"],
  badJid: ['modify', 'jid-malformed', "The push service 'jid' is not a valid JID"],
});

export default defineModule({
  name: 'push',
  xeps: [{ xep: 357, version: '0.4.1', status: 'complete', note: 'server part; urn:xmpp:push:options as in ejabberd mod_push' }],
  depends: ['disco', 'offline'],
  config: z
    .object({
      max_devices: z.number().int().min(1).max(50).default(5).describe('Push services (devices) kept per account; enabling one more disables the oldest'),
      hibernation: duration().prefault('72h').describe('How long a push-enabled session may hibernate before its first push; after it, the normal resume timeout applies'),
      coalesce_window: duration().prefault('30s').describe('After a push, later events for the same device wait this long and go out as one push'),
      important_only: z.boolean().default(false).describe('Push only for important stanzas (messages with a body or encryption, calls, subscription requests)'),
      include_senders: z.boolean().default(false).describe('Default for accounts that did not choose: put the sender JIDs in pushes'),
      include_message_count: z.boolean().default(true).describe('Default for accounts that did not choose: put the number of pending messages in pushes'),
      include_subscription_count: z.boolean().default(true).describe('Default for accounts that did not choose: put the number of pending subscription requests in pushes'),
      include_message_bodies: z.boolean().default(false).describe('Default for accounts that did not choose: put the message text in pushes'),
      allow_senders: z.boolean().default(true).describe('Let clients opt in to sender JIDs in pushes'),
      allow_message_bodies: z.boolean().default(true).describe('Let clients opt in to message text in pushes (it passes through the push vendor)'),
      max_errors: z.number().int().min(1).max(1000).default(10).describe('Publish errors in a row after which a push service is disabled'),
      publish_timeout: duration().prefault('30s').describe('A publish not answered within this time counts as an error'),
      retry_attempts: z.number().int().min(0).max(10).default(3).describe("Retries of a publish answered with a 'wait' error before it counts as an error"),
      retry_delay: duration().prefault('5s').describe('Wait before the first retry of a publish, doubled for each further one'),
    })
    .strict(),
  setup(m) {
    const store = new PushStore(m.store.map<PushEnable>('enables'), m.store.keyval<PushOptions>('options'));
    const sessionPush = m.sessionSlot<SessionPush>('push', () => ({ devices: undefined, normalWindow: undefined, extended: false }));
    /** Stanzas a hibernated session pushed for, so their later trip to offline storage does not push again. */
    const notified = new WeakMap<XmlElement, Set<string>>();
    const inflight = new Set<Promise<unknown>>();
    const policy: OptionsPolicy = {
      defaults: {
        senders: m.config.include_senders,
        messageCount: m.config.include_message_count,
        subscriptionCount: m.config.include_subscription_count,
        bodies: m.config.include_message_bodies,
      },
      allowSenders: m.config.allow_senders,
      allowBodies: m.config.allow_message_bodies,
    };
    const optionsOf = async (username: string) => capped((await store.getOptions(username)) ?? policy.defaults, policy);
    const publisher = new Publisher({
      store,
      log: m.log,
      host: m.host,
      route: (stanza) => m.route(stanza),
      optionsOf,
      pushed: (username, enable) => fallBack(username, enable.resource),
      disabled: (username, enable) => dropDevice(username, enable),
      config: {
        coalesceWindow: m.config.coalesce_window,
        publishTimeout: m.config.publish_timeout,
        maxErrors: m.config.max_errors,
        retryAttempts: m.config.retry_attempts,
        retryDelay: m.config.retry_delay,
      },
    });

    // XEP-0357 §4.1: the account's bare JID announces support; the options form (XEP-0128) is
    // shown to the account itself only, as it says what its pushes reveal.
    m.accountFeature(NS_PUSH);
    m.accountDiscoExtension(async (username, from) => (from.local === username && from.domain === m.host ? optionsForm(await optionsOf(username)) : undefined));
    m.provide('push', {
      enables: async (username) => (await store.list(username)).map(({ jid, node, resource, enabledAt }) => ({ jid, node, resource, enabledAt })),
      archived: (username, stanza) => {
        const event = worthPushing(stanza);
        if (event) track(archivedPush(username, stanza, event));
      },
      notify: async (username, stanza, options = {}) => {
        const event = worthPushing(stanza);
        if (!event) return;
        const pushed = offlinePush(username, stanza, event, options.exceptResources);
        track(pushed);
        await pushed;
      },
    });

    // XEP-0357 §5: "the App Client sends an IQ-set to the user's bare JID with an <enable/> element".
    m.iq.set(
      NS_PUSH,
      'enable',
      async ({ payload, from, username }) => {
        const jid = serviceJid(payload);
        const node = payload.attrs.node;
        if (!node) throw errors.noNode();
        const forms = splitEnableForms(payload.getChildren('x', NS.DATA_FORMS).map(parseForm));
        return store.serial(username, async () => {
          const existing = await store.list(username);
          const key = enableKey(jid, node);
          const current = existing.length > 0 ? ((await store.getOptions(username)) ?? policy.defaults) : undefined;
          const options = nextOptions(current, forms.requested, policy);
          const others = existing.filter((e) => enableKey(e.jid, e.node) !== key).sort((a, b) => a.enabledAt - b.enabledAt);
          // Prosody's push_max_devices: the oldest device makes room (logged as a disable).
          for (const old of others.slice(0, Math.max(0, others.length + 1 - m.config.max_devices))) await publisher.disable(username, old, 'max_devices reached');
          // §5: "If the combination of JID and node has already been enabled, then the server
          // SHOULD use the last received request for any publish options."
          publisher.forget(username, key);
          await store.put(username, {
            jid, node, publishOptions: storedFields(forms.publishOptions), resource: from.resource, enabledAt: Date.now(),
            errors: 0, pendingMessages: 0, pendingSubscriptions: 0,
          });
          await store.setOptions(username, options);
          m.log.info({ user: username, resource: from.resource, service: jid }, 'push enabled');
          // As mod_push: an enable that chose options is answered with the options now in force.
          return forms.optionsForm ? optionsForm(options) : undefined;
        });
      },
      { scope: 'self' },
    );

    // XEP-0357 §6: with 'node', that one; without, "all enabled entries for the specified service".
    // Nothing to disable is still a success: the client's wish holds.
    m.iq.set(
      NS_PUSH,
      'disable',
      async ({ payload, username }) => {
        const jid = serviceJid(payload);
        const node = payload.attrs.node || undefined;
        await store.serial(username, async () => {
          for (const enable of await store.list(username)) {
            if (enable.jid === jid && (node === undefined || enable.node === node)) await publisher.disable(username, enable, 'disabled by the client');
          }
        });
      },
      { scope: 'self' },
    );

    // Push mode starts when the device's session hibernates: its window grows, and what it had not
    // acknowledged when the connection died may already be worth a push.
    m.on('session:hibernated', ({ session }) => {
      const state = sessionPush.get(session);
      state.devices = store.forResource(session.username, session.resource).then((list) => list.map((e) => enableKey(e.jid, e.node)));
      track(startPushMode(session, state));
    });

    m.on('session:queued', ({ session, stanza }) => {
      const devices = sessionPush.get(session).devices;
      if (!devices) return;
      const event = worthPushing(stanza);
      if (event) track(devices.then((keys) => notifyFor(session.username, keys, stanza, event)));
    });

    // The device is back: counters start over, and its session keeps its own resume window.
    const online = ({ session }: { session: Session }) => {
      const state = sessionPush.get(session);
      state.devices = undefined;
      if (state.normalWindow !== undefined) session.extendHibernation(state.normalWindow);
      state.normalWindow = undefined;
      state.extended = false;
      if (!store.knownWithoutEnables(session.username)) track(publisher.online(session.username, session.resource));
    };
    m.on('session:bound', online);
    m.on('session:resumed', online);

    // Messages for an account with nothing online: every device not online and not yet told.
    m.on('message:stored-offline', ({ stanza, username }) => {
      const event = worthPushing(stanza);
      if (event) track(offlinePush(username, stanza, event));
    });

    // The push services' answers come to the account's bare JID (we publish from it, as in §7).
    m.on(
      'iq/bare',
      ({ stanza }) => {
        const type = stanza.attrs.type;
        return (type === 'result' || type === 'error') && publisher.answer(stanza) ? STOP : undefined;
      },
      Priority.GUARD,
    );

    // XEP-0357 §8: a push service may announce it stopped accepting our notifications.
    m.on(
      'message/bare',
      async ({ stanza, from, to }) => {
        const request = remoteDisable(stanza);
        if (!request || (request.jid !== '' && tryParseJid(request.jid)?.bareString !== to.bareString)) return undefined;
        const service = from.toString();
        const removed = await store.serial(to.local, async () => {
          const target = (await store.list(to.local)).find((e) => e.jid === service && e.node === request.node);
          if (target) await publisher.disable(to.local, target, 'disabled by the push service');
          return target !== undefined;
        });
        return removed ? STOP : undefined;
      },
      Priority.GUARD,
    );

    m.on('user:deleted', ({ username }) =>
      store.serial(username, async () => {
        for (const enable of await store.list(username)) publisher.forget(username, enableKey(enable.jid, enable.node));
        await store.removeAccount(username);
      }),
    );

    m.on('server:started', () => void track(publisher.resumeOwed()));
    m.on('server:stopping', () => publisher.stop());
    m.onStop(async () => {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      await store.idle();
    });

    function worthPushing(stanza: XmlElement): PushEvent | undefined {
      const event = classify(stanza);
      return event && (event.priority === 'high' || !m.config.important_only) ? event : undefined;
    }

    async function startPushMode(session: Session, state: SessionPush): Promise<void> {
      const keys = await state.devices!;
      if (keys.length === 0 || !session.sm || session.state !== 'hibernated') return;
      state.normalWindow ??= session.sm.resumeWindow;
      state.extended = true;
      session.extendHibernation(Math.max(m.config.hibernation, state.normalWindow));
      session.log.debug({ devices: keys.length }, 'push mode');
      for (const stanza of session.sm.queue.pending()) {
        const event = worthPushing(stanza);
        if (event) await notifyFor(session.username, keys, stanza, event);
      }
    }

    async function notifyFor(username: string, keys: string[], stanza: XmlElement, event: PushEvent): Promise<void> {
      if (keys.length === 0) return;
      const seen = notified.get(stanza) ?? new Set<string>();
      for (const key of keys) seen.add(`${username}\n${key}`);
      notified.set(stanza, seen);
      await publisher.notify(username, keys, event);
    }

    async function offlinePush(username: string, stanza: XmlElement, event: PushEvent, exceptResources: string[] = []): Promise<void> {
      const seen = notified.get(stanza);
      // keyed(): this runs for every message to an offline account; the keys are known already.
      const keys = (await store.keyed(username))
        .filter(([, e]) => !exceptResources.includes(e.resource) && m.sessions.get(`${username}@${m.host}`, e.resource)?.state !== 'live')
        .map(([key]) => key)
        .filter((key) => !seen?.has(`${username}\n${key}`));
      await publisher.notify(username, keys, event);
    }

    /** Devices whose resource has no session (not even a hibernated one) and were not told of the stanza yet. */
    async function archivedPush(username: string, stanza: XmlElement, event: PushEvent): Promise<void> {
      const seen = notified.get(stanza);
      const keys = (await store.keyed(username))
        .filter(([, e]) => m.sessions.get(`${username}@${m.host}`, e.resource) === undefined)
        .map(([key]) => key)
        .filter((key) => !seen?.has(`${username}\n${key}`));
      await notifyFor(username, keys, stanza, event);
    }

    /** After the first push, the session gets the normal resume timeout, counted from now. */
    function fallBack(username: string, resource: string): void {
      const session = m.sessions.get(`${username}@${m.host}`, resource);
      if (!session?.sm || session.state !== 'hibernated') return;
      const state = sessionPush.get(session);
      if (!state.extended || state.normalWindow === undefined) return;
      state.extended = false;
      session.extendHibernation(Date.now() - session.sm.hibernatedAt + state.normalWindow);
      session.log.debug('push sent: normal resume timeout from now');
    }

    /** A disabled device no longer keeps its hibernating session waiting for a push. */
    function dropDevice(username: string, enable: PushEnable): void {
      const session = m.sessions.get(`${username}@${m.host}`, enable.resource);
      const state = session && sessionPush.get(session);
      if (!state?.devices) return;
      const key = enableKey(enable.jid, enable.node);
      state.devices = state.devices.then((keys) => {
        const left = keys.filter((k) => k !== key);
        if (left.length === 0) fallBack(username, enable.resource);
        return left;
      });
    }

    function track(promise: Promise<unknown>): void {
      const tracked = promise.catch((err: unknown) => m.log.error({ err }, 'push failed'));
      inflight.add(tracked);
      void tracked.finally(() => inflight.delete(tracked));
    }
  },
});

/** The enable's or disable's 'jid' (XEP-0357: "MUST contain a 'jid' attribute"), normalised. */
function serviceJid(payload: XmlElement): string {
  const raw = payload.attrs.jid;
  if (raw === undefined || raw === '') throw errors.noJid();
  const jid = tryParseJid(raw);
  if (!jid) throw errors.badJid();
  return jid.toString();
}
