// The router: RFC 6120 §10 and RFC 6121 §8 delivery rules.
//
// Every stanza with a stamped 'from' comes here. The router picks the hook by stanza kind and the
// form of the 'to' address ('message/bare', 'iq/host', ...) and runs it; modules handle what they
// know (presence subscriptions, offline storage, ...) and the RFC defaults below run last, at
// Priority.FALLBACK. Whatever no one took gets the RFC answer: an error for what expects one,
// silence for what must not be answered.

import { randomBytes } from 'node:crypto';
import { x, type XmlElement } from './xml/element.js';
import { parseJid, tryParseJid, type Jid } from './jid.js';
import { StanzaError, errorReply, mayReplyWithError, stanzaError } from './errors.js';
import { HookBus, Priority, STOP, type HookResult, type MaybePromise, type Origin, type RouteEvent } from './hooks.js';
import type { SessionRegistry } from './sessions.js';
import type { Session } from './session.js';
import type { IqRegistry, IqScope } from './iq.js';
import type { Logger } from './log.js';
import type { ComponentRoute } from './components.js';

export interface RouterDeps {
  hosts: Set<string>;
  /** Domains served by something else in (or attached to) this process: push.<domain>, components. */
  components: Map<string, ComponentRoute>;
  sessions: SessionRegistry;
  hooks: HookBus;
  iq: IqRegistry;
  log: Logger;
  accountExists(host: string, username: string): Promise<boolean>;
}

const IQ_TIMEOUT_MS = 30_000;

export class Router {
  private readonly pendingIq = new Map<string, { resolve(el: XmlElement): void; reject(err: Error): void; timer: NodeJS.Timeout }>();

  constructor(private readonly deps: RouterDeps) {
    const { hooks } = deps;
    const fallback = Priority.FALLBACK;
    hooks.on('message/full', (e) => this.messageToFull(e), fallback);
    hooks.on('message/bare', (e) => this.messageToBare(e), fallback);
    hooks.on('message/host', (e) => this.toHostNoHandler(e), fallback);
    hooks.on('presence/full', (e) => this.presenceToFull(e), fallback);
    hooks.on('presence/bare', () => STOP, fallback); // presence module's business; else dropped
    hooks.on('presence/host', () => STOP, fallback);
    hooks.on('iq/full', (e) => this.iqToFull(e), fallback);
    hooks.on('iq/bare', (e) => this.iqToBare(e), fallback);
    hooks.on('iq/host', (e) => this.iqToHost(e), fallback);
    hooks.on('route/remote', (e) => this.remoteUnreachable(e), fallback);
  }

  isLocalDomain(domain: string): boolean {
    return this.deps.hosts.has(domain);
  }

  /**
   * Routes a stanza whose 'from' is set and trusted. `to` is the parsed destination (a client's
   * stanza without 'to' arrives with its own bare JID here, the attribute left absent).
   */
  route(stanza: XmlElement, from: Jid, to: Jid, origin: Origin): void {
    const event: RouteEvent = { stanza, from, to, origin };
    const component = this.deps.components.get(to.domain);
    if (component) {
      this.toComponent(component, event);
      return;
    }
    let hook: RouteHook;
    if (this.deps.hosts.has(to.domain)) {
      const form = to.local === '' ? 'host' : to.resource === '' ? 'bare' : 'full';
      hook = `${stanza.name as 'message' | 'presence' | 'iq'}/${form}`;
    } else {
      hook = 'route/remote';
    }
    const result = this.deps.hooks.run(hook, event, (err) => this.handlerFailed(err, event, hook));
    if (result instanceof Promise) result.catch((err: unknown) => this.handlerFailed(err, event, hook));
  }

  private toComponent(component: ComponentRoute, event: RouteEvent): void {
    const { stanza } = event;
    if (stanza.name === 'iq' && !isRequest(stanza) && this.resolvePending(stanza)) return;
    const fail = (err: unknown) => this.handlerFailed(err, event, `component ${component.domain}`);
    try {
      const r = component.route(event, (reply) => this.route(reply, event.to, event.from, { kind: 'local' }));
      if (r instanceof Promise) r.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  /** An IQ result or error answering one we sent with sendIq: true when it was ours. */
  private resolvePending(stanza: XmlElement): boolean {
    const id = stanza.attrs.id;
    const pending = id !== undefined ? this.pendingIq.get(id) : undefined;
    if (!pending || id === undefined) return false;
    this.pendingIq.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(stanza);
    return true;
  }

  /** Routes a stanza the server itself sends ('from' must be set). */
  routeLocal(stanza: XmlElement): void {
    const from = parseJid(stanza.attrs.from!);
    const to = parseJid(stanza.attrs.to!);
    this.route(stanza, from, to, { kind: 'local' });
  }

  /** Sends the RFC 6120 §8.3 error reply for a stanza, unless it must not be answered. */
  bounce(stanza: XmlElement, error: StanzaError): void {
    if (!mayReplyWithError(stanza)) return;
    const fromAttr = stanza.attrs.from;
    if (fromAttr === undefined) return;
    const reply = errorReply(stanza, error);
    let from: Jid;
    let to: Jid;
    try {
      to = parseJid(fromAttr);
      from = stanza.attrs.to !== undefined ? parseJid(stanza.attrs.to) : to.bare;
    } catch {
      return;
    }
    reply.attrs.from = from.toString();
    this.route(reply, from, to, { kind: 'local' });
  }

  /**
   * A stanza a session was sent but never acknowledged (XEP-0198), now that the session ended:
   * a message goes to the account's other resources or offline storage as if sent to the bare JID
   * (nothing is lost); an IQ request gets the error the RFC gives a gone resource; presence is
   * transient and dropped. Content no one stores (chat states) is dropped without an error.
   */
  redeliver(stanza: XmlElement): void {
    const to = stanza.attrs.to !== undefined ? tryParseJid(stanza.attrs.to) : null;
    if (!to || !this.deps.hosts.has(to.domain) || to.local === '') return;
    if (stanza.name === 'iq') {
      if (isRequest(stanza)) this.bounce(stanza, stanzaError.serviceUnavailable()); // RFC 6121 §8.5.3.2.3
      return;
    }
    const type = stanza.attrs.type ?? 'normal';
    if (stanza.name !== 'message' || type === 'error' || type === 'groupchat' || type === 'headline') return;
    const bare = to.bare;
    const targets = deliverable(this.deps.sessions.resourcesOf(bare.bareString));
    if (targets.length > 0) {
      const top = Math.max(...targets.map((s) => s.priority));
      const chosen = targets.filter((s) => s.priority === top);
      for (const s of chosen) s.send(stanza);
      this.delivered(stanza, bare, chosen);
      return;
    }
    const hasContent = stanza.getChild('body') !== undefined || stanza.getChild('subject') !== undefined;
    const event: RouteEvent = { stanza, from: to, to: bare, origin: { kind: 'local' } };
    const stored = this.deps.hooks.run('message:offline', { stanza, username: bare.local, to: bare }, (err) => this.handlerFailed(err, event, 'message:offline'));
    const after = (done: boolean) => {
      if (!done && hasContent) this.bounce(stanza, stanzaError.serviceUnavailable());
    };
    if (stored instanceof Promise) stored.then(after, (err: unknown) => this.deps.log.error({ err }, 'redelivery failed'));
    else after(stored);
  }

  /** Sends an IQ get/set from the server and waits for the answer (result or error element). */
  sendIq(stanza: XmlElement, timeoutMs = IQ_TIMEOUT_MS): Promise<XmlElement> {
    const id = stanza.attrs.id ?? randomBytes(8).toString('base64url');
    stanza.attrs.id = id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIq.delete(id);
        reject(new StanzaError('remote-server-timeout', 'no answer'));
      }, timeoutMs);
      timer.unref();
      this.pendingIq.set(id, { resolve, reject, timer });
      this.routeLocal(stanza);
    });
  }

  private handlerFailed(err: unknown, event: RouteEvent, hook: string): void {
    if (err instanceof StanzaError) {
      this.bounce(event.stanza, err);
      return;
    }
    this.deps.log.error({ err, hook, id: event.stanza.attrs.id }, 'stanza handler failed');
    this.bounce(event.stanza, stanzaError.internalServerError());
  }

  // ---- RFC 6121 §8.5 defaults ----

  /** §8.5.3: a full JID. Resource there: deliver. Otherwise per type. */
  private messageToFull(e: RouteEvent): MaybePromise<HookResult> {
    const session = this.deps.sessions.get(e.to.bareString, e.to.resource);
    if (session) {
      session.send(e.stanza);
      this.delivered(e.stanza, e.to, [session]);
      return STOP;
    }
    const type = e.stanza.attrs.type ?? 'normal';
    if (type === 'error') return STOP;
    // §8.5.3.2.1: chat goes to the bare JID's rules; normal, groupchat, headline get the error
    // (a groupchat bounce is how a MUC service learns an occupant is gone).
    if (type === 'chat') return this.messageToBare(e);
    return this.existsThen(e, () => this.bounce(e.stanza, stanzaError.serviceUnavailable()));
  }

  /** §8.5.2: a bare JID. */
  private messageToBare(e: RouteEvent): MaybePromise<HookResult> {
    const { stanza, to } = e;
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'error') return STOP;
    const sessions = this.deps.sessions.resourcesOf(to.bareString);
    const targets = deliverable(sessions);
    if (type === 'groupchat') {
      // §8.5.2.1.1: groupchat to a bare JID MUST be refused.
      return this.existsThen(e, () => this.bounce(stanza, stanzaError.serviceUnavailable()), sessions.length > 0);
    }
    if (targets.length > 0) {
      // §8.5.2.1.1: headlines to every available resource; normal and chat to the highest-priority one(s).
      const top = Math.max(...targets.map((s) => s.priority));
      const chosen = type === 'headline' ? targets : targets.filter((s) => s.priority === top);
      for (const s of chosen) s.send(stanza);
      this.delivered(stanza, to, chosen);
      return STOP;
    }
    // §8.5.2.2: nobody to take it now.
    return this.existsThen(
      e,
      () => {
        if (type === 'headline') return;
        const stored = this.deps.hooks.run('message:offline', { stanza, username: to.local, to }, (err) =>
          this.handlerFailed(err, e, 'message:offline'),
        );
        const bounceUnlessStored = (done: boolean) => {
          if (!done) this.bounce(stanza, stanzaError.serviceUnavailable());
        };
        if (stored instanceof Promise) return stored.then(bounceUnlessStored);
        bounceUnlessStored(stored);
        return undefined;
      },
      sessions.length > 0,
    );
  }

  /**
   * §8.5.1: runs `then` when the addressed account exists, else answers service-unavailable
   * (for what may be answered). `known` skips the lookup when a session proves the account exists.
   */
  private existsThen(e: RouteEvent, then: () => void | Promise<void>, known = false): MaybePromise<HookResult> {
    if (known) {
      const r = then();
      return r instanceof Promise ? r.then((): HookResult => STOP) : STOP;
    }
    return this.deps.accountExists(e.to.domain, e.to.local).then(async (exists): Promise<HookResult> => {
      if (!exists) {
        if (e.stanza.name !== 'presence') this.bounce(e.stanza, stanzaError.serviceUnavailable());
        return STOP;
      }
      await then();
      return STOP;
    });
  }

  private delivered(stanza: XmlElement, to: Jid, sessions: Session[]): void {
    if (!this.deps.hooks.has('message:delivered')) return;
    const r = this.deps.hooks.run('message:delivered', { stanza, to, sessions });
    if (r instanceof Promise) r.catch((err: unknown) => this.deps.log.error({ err }, 'message:delivered handler failed'));
  }

  private toHostNoHandler(e: RouteEvent): HookResult {
    if (e.stanza.attrs.type !== 'error') this.bounce(e.stanza, stanzaError.serviceUnavailable());
    return STOP;
  }

  private presenceToFull(e: RouteEvent): HookResult {
    this.deps.sessions.get(e.to.bareString, e.to.resource)?.send(e.stanza);
    return STOP;
  }

  private iqToFull(e: RouteEvent): HookResult {
    const session = this.deps.sessions.get(e.to.bareString, e.to.resource);
    if (session) session.send(e.stanza);
    else if (isRequest(e.stanza)) this.bounce(e.stanza, stanzaError.serviceUnavailable()); // §8.5.3.2.3
    return STOP;
  }

  private iqToBare(e: RouteEvent): MaybePromise<HookResult> {
    const { stanza, from, to } = e;
    // Results and errors to a bare JID: answers to an IQ the server sent on the account's behalf
    // (sendIq), else nowhere to go.
    if (!isRequest(stanza)) {
      this.resolvePending(stanza);
      return STOP;
    }
    const own = from.local === to.local && from.domain === to.domain;
    // RFC 6120 §10.3.3: no 'to' = handled for the sender's account; what the account does not
    // handle falls through to the server (ping, version, ...).
    const scopes: IqScope[] = own ? (stanza.attrs.to === undefined ? ['self', 'account', 'host'] : ['self', 'account']) : ['account'];
    const known = this.deps.sessions.hasAny(to.bareString) || own;
    return this.existsThen(e, () => this.dispatchIq(e, scopes, to.local), known);
  }

  private iqToHost(e: RouteEvent): MaybePromise<HookResult> {
    const { stanza } = e;
    if (!isRequest(stanza)) {
      this.resolvePending(stanza);
      return STOP;
    }
    const r = this.dispatchIq(e, ['host'], '');
    return r instanceof Promise ? r.then((): HookResult => STOP) : STOP;
  }

  private dispatchIq(e: RouteEvent, scopes: IqScope[], username: string): void | Promise<void> {
    const { stanza } = e;
    const type = stanza.attrs.type as 'get' | 'set';
    const payload = stanza.firstElement()!;
    const ns = payload.attrs.xmlns ?? '';
    for (const scope of scopes) {
      const handler = this.deps.iq.find(scope, type, ns, payload.name);
      if (!handler) continue;
      const session = e.origin.kind === 'c2s' ? e.origin.session : undefined;
      let result: MaybePromise<XmlElement | void | undefined>;
      try {
        result = handler({ stanza, payload, from: e.from, to: e.to, session, username });
      } catch (err) {
        this.handlerFailed(err, e, `iq ${ns}`);
        return;
      }
      if (result instanceof Promise) {
        return result.then(
          (value) => this.replyResult(e, value ?? undefined),
          (err: unknown) => this.handlerFailed(err, e, `iq ${ns}`),
        );
      }
      this.replyResult(e, result ?? undefined);
      return;
    }
    // Someone else's private data (roster, private XML, ...) is not theirs to ask for.
    if (!scopes.includes('self') && this.deps.iq.find('self', type, ns, payload.name)) {
      this.bounce(stanza, stanzaError.forbidden());
      return;
    }
    this.bounce(stanza, stanzaError.serviceUnavailable());
  }

  private replyResult(e: RouteEvent, payload: XmlElement | undefined): void {
    const reply = x('iq', { type: 'result', id: e.stanza.attrs.id, from: e.stanza.attrs.to, to: e.from.toString() }, payload);
    const from = e.stanza.attrs.to !== undefined ? e.to : e.from.bare;
    if (reply.attrs.from === undefined) reply.attrs.from = from.toString();
    // A reply to the asking session goes straight back to it, without a routing detour.
    if (e.origin.kind === 'c2s') {
      e.origin.session.sendRaw(withoutRedundantFrom(reply, e));
      return;
    }
    this.route(reply, from, e.from, { kind: 'local' });
  }

  private remoteUnreachable(e: RouteEvent): HookResult {
    this.bounce(e.stanza, stanzaError.remoteServerNotFound());
    return STOP;
  }
}

type RouteHook = 'message/host' | 'message/bare' | 'message/full' | 'presence/host' | 'presence/bare' | 'presence/full' | 'iq/host' | 'iq/bare' | 'iq/full' | 'route/remote';

function isRequest(stanza: XmlElement): boolean {
  const type = stanza.attrs.type;
  return type === 'get' || type === 'set';
}

/** RFC 6121 §8.5.2.1: available resources with non-negative priority. */
function deliverable(sessions: Session[]): Session[] {
  const out: Session[] = [];
  for (const s of sessions) if (s.available && s.priority >= 0 && s.state !== 'closed') out.push(s);
  return out;
}

/** RFC 6120 §8.1.2.1: a reply to an IQ the client sent without 'to' carries no 'from' (or its bare JID). */
function withoutRedundantFrom(reply: XmlElement, e: RouteEvent): XmlElement {
  if (e.stanza.attrs.to === undefined) delete reply.attrs.from;
  return reply;
}
