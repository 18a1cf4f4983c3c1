// The server: owns config, storage, hooks, router, sessions and listeners, and loads the modules.
// One HeraldServer serves one domain for now (multi-host arrives with `hosts:`).

import { createRequire } from 'node:module';
import type { Server as NetServer } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { HeraldConfig } from '../conf/schema.js';
import type { Store } from '../storage/store.js';
import { HookBus, type HookName, type Hooks } from './hooks.js';
import { IqRegistry, type IqScope, type IqType } from './iq.js';
import { parseJid, normalizeLocalpart, type Jid } from './jid.js';
import type { Logger } from './log.js';
import type {
  AccountDiscoExtension,
  AccountService,
  DiscoView,
  ModuleContext,
  ModuleDefinition,
  PreAuthIqHandler,
  ServerInfo,
  Services,
  SessionSlot,
  StreamElementHandler,
  StreamInfo,
  StreamStage,
} from './module-api.js';
import { Router } from './router.js';
import type { Session, SessionHost, SessionOutput } from './session.js';
import { ResumptionRegistry } from './sm.js';
import { LocalComponent, type ComponentRoute } from './components.js';
import { SessionRegistry } from './sessions.js';
import { verifyPasswordAgainst } from './sasl/scram.js';
import { DEFAULT_SCRAM_ITERATIONS, deriveAccountCredentials } from './accounts.js';
import type { ScramCredentials, ScramHash } from './sasl/mechanism.js';
import type { XmlElement } from './xml/element.js';
import { StreamError } from './errors.js';
import { IpLimiter } from './limits.js';
import { listenC2s, type C2sStream } from './c2s.js';
import { HttpService } from './http.js';
import { tlsServerEndPoint } from './sasl/channel-binding.js';
import { S2sManager } from './s2s/manager.js';
import { ExternalComponents } from './component.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
/** How often the server reads the account changes the CLI announces (AccountStore.announce). */
const ANNOUNCEMENT_POLL_MS = 2_000;

export interface HeraldServerOptions {
  config: HeraldConfig;
  store: Store;
  modules: ModuleDefinition<unknown>[];
  log: Logger;
  tls: { certPem: string; keyPem: string };
  /** SCRAM iteration count for new passwords (tests lower it to save time). */
  scramIterations?: number;
  /**
   * Listeners to start on a random free port whatever the config says (test servers; in the
   * config itself 0 means "off").
   */
  ephemeralPorts?: boolean;
}

interface StreamFeatureEntry {
  stage: StreamStage;
  build: (stream: StreamInfo) => XmlElement | undefined;
}

export class HeraldServer {
  readonly config: HeraldConfig;
  readonly store: Store;
  readonly log: Logger;
  readonly hooks: HookBus;
  readonly iq = new IqRegistry();
  readonly sessions = new SessionRegistry();
  readonly router: Router;
  readonly hosts: Set<string>;
  readonly domain: string;
  readonly limiter: IpLimiter;
  readonly info: ServerInfo;
  /** Live c2s streams (authenticated or not), for shutdown. */
  readonly streams = new Set<C2sStream>();
  /** Domains served by in-process services (push.<domain>, conference.<domain>, ...). */
  readonly components = new Map<string, ComponentRoute>();
  /** XEP-0198 sessions that may be resumed, by resumption id. */
  readonly resumable = new ResumptionRegistry();
  readonly preAuthIq = new Map<string, PreAuthIqHandler>();
  readonly streamFeatures: StreamFeatureEntry[] = [];
  /** Handlers for non-stanza top-level elements on bound streams, by `${ns} ${name}`. */
  readonly streamElements = new Map<string, StreamElementHandler>();
  secureContext: SecureContext;
  /** Certificate and key (PEM) for TLS listeners; clients without SNI (connecting by IP) get these. */
  tlsCredentials: { cert: string; key: string };
  /** RFC 5929 tls-server-end-point data for our certificate (computed once). */
  serverEndPoint: Buffer | null = null;
  /** Options for a TLS listener: our certificate for every client, SNI or not. */
  tlsServerOptions(): { cert: string; key: string; minVersion: 'TLSv1.2'; SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void } {
    return { ...this.tlsCredentials, minVersion: 'TLSv1.2', SNICallback: (_name, cb) => cb(null, this.secureContext) };
  }

  /** Actual listening ports once started (useful with port 0). */
  readonly ports: { c2s?: number; c2s_direct_tls?: number; s2s?: number; s2s_direct_tls?: number; component?: number; http?: number; https?: number } = {};
  /** HTTP and HTTPS listeners: WebSocket, host-meta, module routes. */
  readonly http: HttpService;
  /** Federation: outgoing and incoming server-to-server streams (server/s2s/). */
  readonly s2s: S2sManager;
  /** External components (XEP-0114, server/component.ts): `components:` in the config. */
  readonly externalComponents: ExternalComponents;

  private readonly listeners: NetServer[] = [];
  /** config `admins`, as normalised bare JIDs (filled by start()). */
  private readonly admins = new Set<string>();
  private readonly services = new Map<string, unknown>();
  private readonly discoRegistry = {
    hostFeatures: new Set<string>(),
    accountFeatures: new Set<string>(),
    identities: [] as { category: string; type: string; name?: string }[],
    items: [] as { jid: string; name?: string; node?: string }[],
    extensions: [] as XmlElement[],
    accountExtensions: [] as AccountDiscoExtension[],
  };
  private readonly slotNames: string[] = [];
  private readonly slotInits: (() => unknown)[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stopHandlers: (() => void | Promise<void>)[] = [];
  private readonly scramIterations: number;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: HeraldServerOptions) {
    this.config = options.config;
    this.store = options.store;
    this.log = options.log;
    this.domain = options.config.domain;
    this.hosts = new Set([this.domain]);
    this.hooks = new HookBus(this.log);
    this.scramIterations = options.scramIterations ?? DEFAULT_SCRAM_ITERATIONS;
    this.limiter = new IpLimiter(this.config.limits);
    this.router = new Router({
      hosts: this.hosts,
      components: this.components,
      sessions: this.sessions,
      hooks: this.hooks,
      iq: this.iq,
      log: this.log,
      accountExists: (host, username) => this.store.accounts.exists(host, username),
    });
    this.tlsCredentials = { cert: options.tls.certPem, key: options.tls.keyPem };
    this.secureContext = this.makeSecureContext(options.tls);
    this.http = new HttpService(this);
    this.s2s = new S2sManager(this);
    this.externalComponents = new ExternalComponents(this);
    this.info = { name: 'Herald', version: pkg.version, startedAt: new Date(), hosts: this.hosts, admins: this.admins, ports: this.ports };
  }

  /** Replaces the certificate for new connections (e.g. after renewal). */
  setCertificate(tls: { certPem: string; keyPem: string }): void {
    this.tlsCredentials = { cert: tls.certPem, key: tls.keyPem };
    this.secureContext = this.makeSecureContext(tls);
  }

  private makeSecureContext(tls: { certPem: string; keyPem: string }): SecureContext {
    const context = createSecureContext({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' });
    try {
      const first = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(tls.certPem);
      this.serverEndPoint = first ? tlsServerEndPoint(Buffer.from(first[1]!.replace(/\s+/g, ''), 'base64')) : null;
    } catch {
      this.serverEndPoint = null;
    }
    return context;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('already started');
    this.started = true;
    try {
      await this.startParts();
    } catch (err) {
      // A failed start releases what it opened (listeners, the store and its checkpointer thread),
      // so an embedding program or a test can go on, and remove the data directory.
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    for (const admin of this.config.admins) {
      try {
        this.admins.add(parseJid(admin).bareString);
      } catch {
        throw new ConfigError('admins', `'${admin}' is not a JID`);
      }
    }
    // Before the modules, so a module's service on a component's domain is a startup error.
    this.externalComponents.register();
    // Like Prosody, the configured components are listed in the server's disco#items.
    for (const domain of this.externalComponents.domains) this.discoRegistry.items.push({ jid: domain });
    await this.loadModules();
    this.sweepStreams();
    const listen = this.config.listen;
    const ephemeral = this.options.ephemeralPorts === true;
    if (listen.c2s !== 0 || ephemeral) {
      const servers = await listenC2s(this, ephemeral ? 0 : listen.c2s, false);
      this.ports.c2s = portOf(servers[0]);
      this.listeners.push(...servers);
    }
    if (listen.c2s_direct_tls !== 0 || ephemeral) {
      const servers = await listenC2s(this, ephemeral ? 0 : listen.c2s_direct_tls, true);
      this.ports.c2s_direct_tls = portOf(servers[0]);
      this.listeners.push(...servers);
    }
    if (listen.s2s !== 0 || ephemeral) {
      const servers = await this.s2s.listen(ephemeral ? 0 : listen.s2s, false);
      this.ports.s2s = portOf(servers[0]);
      this.listeners.push(...servers);
    }
    if (listen.s2s_direct_tls !== 0 || ephemeral) {
      const servers = await this.s2s.listen(ephemeral ? 0 : listen.s2s_direct_tls, true);
      this.ports.s2s_direct_tls = portOf(servers[0]);
      this.listeners.push(...servers);
    }
    if (this.externalComponents.domains.length > 0 && (listen.component !== 0 || ephemeral)) {
      const servers = await this.externalComponents.listen(ephemeral ? 0 : listen.component);
      this.ports.component = portOf(servers[0]);
      this.listeners.push(...servers);
    }
    this.listeners.push(...(await this.http.listen(ephemeral)));
    Object.assign(this.ports, this.http.ports);
    await this.watchAnnouncements();
    await this.hooks.run('server:started', {});
    this.log.info({ domain: this.domain, ports: this.ports, version: this.info.version }, 'server started');
  }

  /** Graceful shutdown: system-shutdown to every stream, listeners closed, storage flushed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info('server stopping');
    for (const timer of this.timers) clearInterval(timer);
    await this.hooks.run('server:stopping', {});
    for (const listener of this.listeners) listener.close();
    const closing = [...this.streams].map((stream) => stream.shutdown(new StreamError('system-shutdown', 'Server is shutting down')));
    await Promise.allSettled([...closing, this.s2s.stop(), this.externalComponents.stop()]);
    // Hibernated sessions end now: what they queued goes to offline storage before storage closes.
    for (const session of [...this.sessions.all()]) if (session.state !== 'closed') this.endSession(session, 'server shutdown');
    await new Promise((resolve) => setImmediate(resolve));
    for (const fn of this.stopHandlers) {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err }, 'stop handler failed');
      }
    }
    await this.store.close();
    this.log.info('server stopped');
  }

  // ---- accounts (shared by SASL, the CLI and modules) ----

  async createAccount(username: string, password: string): Promise<boolean> {
    const local = normalizeLocalpart(username);
    const created = await this.store.accounts.create(this.domain, local, this.deriveCredentials(password));
    if (created) await this.hooks.run('user:created', { username: local });
    return created;
  }

  async setPassword(username: string, password: string): Promise<boolean> {
    const local = normalizeLocalpart(username);
    const changed = await this.store.accounts.setCredentials(this.domain, local, this.deriveCredentials(password));
    if (changed) await this.hooks.run('user:password-changed', { username: local });
    return changed;
  }

  async verifyPassword(username: string, password: string): Promise<boolean> {
    const account = await this.store.accounts.get(this.domain, username);
    if (!account) return false;
    const hash: ScramHash = account.credentials.sha256 ? 'sha256' : 'sha1';
    const creds = account.credentials[hash];
    return creds ? verifyPasswordAgainst(creds, hash, password) : false;
  }

  async deleteAccount(username: string): Promise<boolean> {
    const local = normalizeLocalpart(username);
    this.endSessionsOfDeleted(local);
    const deleted = await this.store.accounts.delete(this.domain, local);
    if (deleted) await this.hooks.run('user:deleted', { username: local });
    return deleted;
  }

  private endSessionsOfDeleted(local: string): void {
    for (const session of this.sessions.resourcesOf(`${local}@${this.domain}`)) {
      session.close(new StreamError('not-authorized', 'Account deleted'));
    }
  }

  /**
   * Accounts the CLI changes while the server runs (AccountStore.announce): `herald deluser` has
   * deleted the account's rows already; here its sessions end and the modules forget it (caches,
   * uploaded files, room affiliations), as when the server deletes an account itself. Read every
   * ANNOUNCEMENT_POLL_MS; announcements from before this start are not ours to act on (the store
   * was already without the account when the modules loaded).
   */
  private async watchAnnouncements(): Promise<void> {
    let after = await this.store.accounts.lastAnnouncementId();
    let reading = false;
    const read = async (): Promise<void> => {
      for (const announcement of await this.store.accounts.announcementsAfter(this.domain, after)) {
        after = announcement.id;
        // Created again meanwhile: its rows are the new account's, which user:deleted would wipe.
        if (announcement.change !== 'deleted' || (await this.store.accounts.exists(this.domain, announcement.username))) continue;
        this.log.info({ user: announcement.username }, 'account deleted by another process');
        this.endSessionsOfDeleted(announcement.username);
        await this.hooks.run('user:deleted', { username: announcement.username });
      }
    };
    const timer = setInterval(() => {
      if (reading) return;
      reading = true;
      read()
        .catch((err: unknown) => this.log.error({ err }, 'reading account announcements failed'))
        .finally(() => (reading = false));
    }, ANNOUNCEMENT_POLL_MS);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * One timer makes every client stream's time checks (C2sStream.sweep: authentication deadline,
   * keepalive), often enough for the shortest of them to be kept within a quarter of its length.
   */
  private sweepStreams(): void {
    const c2s = this.config.c2s;
    const period = Math.max(50, Math.min(1000, Math.floor(c2s.keepalive_interval / 2), Math.floor(c2s.auth_timeout / 4)));
    const timer = setInterval(() => {
      const now = Date.now();
      for (const stream of this.streams) stream.sweep(now);
    }, period);
    timer.unref();
    this.timers.push(timer);
  }

  deriveCredentials(password: string): Partial<Record<ScramHash, ScramCredentials>> {
    // Shared with the CLI (server/accounts.ts): both hashes, so SCRAM-SHA-1 and -256 clients can log in.
    return deriveAccountCredentials(password, this.scramIterations);
  }

  // ---- sessions ----

  /** Called by c2s after bind: registers the session, replacing one with the same full JID. */
  bindSession(session: Session): void {
    const previous = this.sessions.add(session);
    if (previous && previous !== session) {
      previous.logInfo({}, 'session replaced by a new bind');
      // A hibernated one has no stream to close: it ends here (its queue goes to offline storage).
      if (previous.state === 'hibernated') this.endSession(previous, 'replaced by a new bind');
      else previous.close(new StreamError('conflict', 'Replaced by new connection'));
    }
    session.slots.length = this.slotInits.length;
    for (let i = 0; i < this.slotInits.length; i++) session.slots[i] = this.slotInits[i]!();
    void this.hooks.run('session:bound', { session });
  }

  /** Called when a session ends for good (also for a hibernated one whose time ran out). */
  endSession(session: Session, reason: string): void {
    if (session.state === 'closed') {
      this.sessions.remove(session);
      return;
    }
    const wasRegistered = this.sessions.remove(session);
    session.state = 'closed';
    const sm = session.sm;
    let unacked: XmlElement[] = [];
    if (sm) {
      if (sm.hibernationTimer) clearTimeout(sm.hibernationTimer);
      if (sm.id !== undefined) this.resumable.remove(sm.id, session);
      unacked = sm.queue.drain();
    }
    session.logInfo({ reason, unacked: unacked.length }, 'session closed');
    if (wasRegistered || session.sm) {
      const r = this.hooks.run('session:closed', { session, reason });
      if (r instanceof Promise) r.catch((err: unknown) => this.log.error({ err }, 'session:closed handler failed'));
    }
    // XEP-0198 §4: what the client never acknowledged was not delivered: other resources or
    // offline storage take the messages, IQ requests get their error.
    for (const stanza of unacked) this.router.redeliver(stanza);
  }

  /** The connection under a live session is gone without </stream:stream>: hibernate it when it may be resumed. */
  connectionLost(session: Session, reason: string): void {
    if (session.state !== 'live') return;
    const sm = session.sm;
    if (!sm?.resumable) {
      this.endSession(session, reason);
      return;
    }
    session.state = 'hibernated';
    session.attach(DETACHED);
    sm.ackRequested = false;
    sm.hibernatedAt = Date.now();
    this.armHibernation(session);
    session.logInfo({ reason, window_ms: sm.resumeWindow, queued: sm.queue.length }, 'session hibernated');
    void this.hooks.run('session:hibernated', { session });
  }

  /** Gives a (hibernated or not yet) session a different resume window, counted from hibernation. */
  extendHibernation(session: Session, windowMs: number): void {
    if (!session.sm) return;
    session.sm.resumeWindow = windowMs;
    if (session.state === 'hibernated') this.armHibernation(session);
  }

  private armHibernation(session: Session): void {
    const sm = session.sm!;
    if (sm.hibernationTimer) clearTimeout(sm.hibernationTimer);
    const left = Math.max(0, sm.hibernatedAt + sm.resumeWindow - Date.now());
    sm.hibernationTimer = setTimeout(() => this.endSession(session, 'not resumed in time'), left);
    sm.hibernationTimer.unref();
  }

  /**
   * XEP-0198 §5 resumption: attaches the session with this id to a new connection. `h` is what the
   * client says it received. Returns the session, or why it cannot be resumed.
   */
  resumeSession(previd: string, h: number, username: string, host: string, output: SessionOutput): Session | 'item-not-found' | 'handled-count-too-high' {
    const session = this.resumable.get(previd);
    if (!session || session.state === 'closed' || session.username !== username || session.host !== host) return 'item-not-found';
    const sm = session.sm!;
    if (!sm.queue.ack(h)) {
      this.endSession(session, 'resumed with a bad h');
      return 'handled-count-too-high';
    }
    const previous = session.state === 'live' ? session.connection : undefined;
    session.attach(output);
    session.state = 'live';
    sm.ackRequested = false;
    if (sm.hibernationTimer) clearTimeout(sm.hibernationTimer);
    sm.hibernationTimer = undefined;
    // The old connection may not know yet that it is dead: it goes, the session stays.
    previous?.close(new StreamError('conflict', 'Session resumed on another connection'));
    session.logInfo({ queued: sm.queue.length }, 'session resumed');
    return session;
  }

  /** After <resumed/> and the replay went out: modules may write to the session again. */
  sessionResumed(session: Session): void {
    const r = this.hooks.run('session:resumed', { session });
    if (r instanceof Promise) r.catch((err: unknown) => this.log.error({ err }, 'session:resumed handler failed'));
  }

  /** SessionHost: a stanza queued for a hibernated session. */
  stanzaQueued(session: Session, stanza: XmlElement): void {
    const sm = session.sm!;
    if (sm.queue.length > this.config.c2s.sm_max_queue) {
      session.log.warn({ queued: sm.queue.length }, 'hibernated session queue full');
      this.endSession(session, 'queue full while hibernated');
      return;
    }
    const r = this.hooks.run('session:queued', { session, stanza });
    if (r instanceof Promise) r.catch((err: unknown) => this.log.error({ err }, 'session:queued handler failed'));
  }

  /** What sessions need from the server (see SessionHost). */
  readonly sessionHost: SessionHost = {
    outboundFilter: (session, stanza) => this.outboundFilter(session, stanza),
    stanzaQueued: (session, stanza) => this.stanzaQueued(session, stanza),
    endSession: (session, reason) => this.endSession(session, reason),
    extendHibernation: (session, windowMs) => this.extendHibernation(session, windowMs),
  };

  /** 'stanza:out' interceptors, for Session.send. */
  readonly outboundFilter = (session: Session, stanza: XmlElement): boolean => {
    const result = this.hooks.run('stanza:out', { stanza, session });
    if (result === true) return false;
    if (result instanceof Promise) {
      // An async interceptor decides later; it writes the stanza itself if it lets it through.
      result.then((stopped) => {
        if (!stopped) session.sendRaw(stanza);
      }, (err: unknown) => this.log.error({ err }, 'stanza:out handler failed'));
      return false;
    }
    return true;
  };

  streamFeaturesFor(stage: StreamStage, info: StreamInfo): XmlElement[] {
    const out: XmlElement[] = [];
    for (const entry of this.streamFeatures) {
      if (entry.stage !== stage) continue;
      const el = entry.build(info);
      if (el) out.push(el);
    }
    return out;
  }

  // ---- modules ----

  /** A service a loaded module provides (for embedders and the testing API); undefined when none does. */
  service<K extends keyof Services>(name: K): Services[K] | undefined {
    return this.services.get(name) as Services[K] | undefined;
  }

  private async loadModules(): Promise<void> {
    const disabled = new Set(this.config.modules_disabled);
    const byName = new Map(this.options.modules.map((m) => [m.name, m]));
    const loaded = new Set<string>();
    const visiting = new Set<string>();
    const load = async (def: ModuleDefinition<unknown>): Promise<void> => {
      if (loaded.has(def.name)) return;
      if (visiting.has(def.name)) throw new Error(`module dependency cycle at ${def.name}`);
      visiting.add(def.name);
      for (const dep of def.depends ?? []) {
        const depDef = byName.get(dep);
        if (!depDef || disabled.has(dep)) throw new Error(`module ${def.name} needs module ${dep}, which is ${depDef ? 'disabled' : 'not available'}`);
        await load(depDef);
      }
      await def.setup(this.contextFor(def));
      loaded.add(def.name);
      this.log.debug({ mod: def.name }, 'module loaded');
    };
    for (const def of this.options.modules) if (!disabled.has(def.name)) await load(def);
    const unknown = Object.keys(this.config.modules).filter((name) => !byName.has(name));
    if (unknown.length > 0) throw new ConfigError(`modules.${unknown[0]}`, 'no such module');
  }

  private contextFor(def: ModuleDefinition<unknown>): ModuleContext<unknown> {
    const server = this;
    const raw = this.config.modules[def.name] ?? {};
    let config: unknown = raw;
    if (def.config) {
      const parsed = def.config.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ConfigError(['modules', def.name, ...issue.path.map(String)].join('.'), issue.message);
      }
      config = parsed.data;
    }
    const log = this.log.child({ mod: def.name });
    const registerIq = (type: IqType) => (ns: string, name: string, handler: Parameters<IqRegistry['register']>[4], options?: { scope?: IqScope }) => {
      this.iq.register(options?.scope ?? 'host', type, ns, name, handler, def.name);
    };
    const disco: DiscoView = {
      hostFeatures: () => [...this.discoRegistry.hostFeatures],
      accountFeatures: () => [...this.discoRegistry.accountFeatures],
      hostIdentities: () => [...this.discoRegistry.identities],
      hostItems: () => [...this.discoRegistry.items],
      hostExtensions: () => [...this.discoRegistry.extensions],
      accountExtensions: async (username, from) => {
        const forms = await Promise.all(this.discoRegistry.accountExtensions.map((build) => build(username, from)));
        return forms.filter((form): form is XmlElement => form !== undefined);
      },
    };
    const accounts: AccountService = {
      exists: (username) => this.store.accounts.exists(this.domain, username),
      create: (username, password) => this.createAccount(username, password),
      setPassword: (username, password) => this.setPassword(username, password),
      verifyPassword: (username, password) => this.verifyPassword(username, password),
      delete: (username) => this.deleteAccount(username),
      list: () => this.store.accounts.list(this.domain),
    };
    const ctx: ModuleContext<unknown> = {
      name: def.name,
      host: this.domain,
      config,
      log,
      server: this.info,
      dataDir: this.config.data_dir,
      feature: (ns) => void this.discoRegistry.hostFeatures.add(ns),
      accountFeature: (ns) => void this.discoRegistry.accountFeatures.add(ns),
      identity: (category, type, name) => void this.discoRegistry.identities.push(name === undefined ? { category, type } : { category, type, name }),
      discoItem: (jid, name, node) => void this.discoRegistry.items.push({ jid, ...(name !== undefined && { name }), ...(node !== undefined && { node }) }),
      discoExtension: (form) => void this.discoRegistry.extensions.push(form),
      accountDiscoExtension: (build) => void this.discoRegistry.accountExtensions.push(build),
      disco,
      iq: { get: registerIq('get'), set: registerIq('set') },
      preAuthIq: (type, ns, name, handler) => void this.preAuthIq.set(`${type} ${name} ${ns}`, handler),
      streamFeature: (stage, build) => void this.streamFeatures.push({ stage, build }),
      streamElement: (ns, name, handler) => {
        const key = `${ns} ${name}`;
        if (this.streamElements.has(key)) throw new Error(`stream element ${name} ${ns} is handled twice`);
        this.streamElements.set(key, handler);
      },
      on: (name, handler, priority) => void this.hooks.on(name, handler, priority, def.name),
      fire: async <K extends HookName>(name: K, event: Hooks[K]) => this.hooks.run(name, event),
      provide: (name, service) => {
        if (this.services.has(name)) throw new Error(`service ${String(name)} is provided twice`);
        this.services.set(name, service);
      },
      service: <K extends keyof Services>(name: K) => {
        if (!this.services.has(name)) throw new Error(`module ${def.name} asked for service ${String(name)}, which no loaded module provides`);
        return this.services.get(name) as Services[K];
      },
      store: {
        map: (name) => this.store.map(this.domain, def.name, name),
        keyval: (name) => this.store.keyval(this.domain, def.name, name),
        archive: (name) => this.store.archive(this.domain, def.name, name),
      },
      accounts,
      sessions: {
        get: (bare, resource) => this.sessions.get(bare, resource),
        resourcesOf: (bare) => this.sessions.resourcesOf(bare),
        all: () => this.sessions.all(),
        get count() {
          return server.sessions.size;
        },
      },
      sessionSlot: <T>(name: string, init: () => T): SessionSlot<T> => {
        const index = this.slotInits.length;
        this.slotNames.push(`${def.name}.${name}`);
        this.slotInits.push(init);
        return {
          get: (session) => (index < session.slots.length ? session.slots[index] : init()) as T,
          set: (session, value) => {
            session.slots[index] = value;
          },
        };
      },
      component: (name) => {
        const domain = name.includes('.') ? name : `${name}.${this.domain}`;
        if (this.components.has(domain) || this.hosts.has(domain)) throw new Error(`module ${def.name}: domain ${domain} is served already`);
        const component = new LocalComponent(domain);
        this.components.set(domain, component);
        return component;
      },
      httpRoute: (method, path, handler) => this.http.route(method, path, handler),
      route: (stanza) => this.router.routeLocal(stanza),
      routeFrom: (from: Jid, stanza) => {
        stanza.attrs.from = from.toString();
        this.router.route(stanza, from, parseJid(stanza.attrs.to!), { kind: 'local' });
      },
      bounce: (stanza, error) => this.router.bounce(stanza, error),
      sendIq: (stanza, timeoutMs) => this.router.sendIq(stanza, timeoutMs),
      every: (ms, fn) => {
        const timer = setInterval(() => {
          Promise.resolve()
            .then(fn)
            .catch((err: unknown) => log.error({ err }, 'periodic task failed'));
        }, ms);
        timer.unref();
        this.timers.push(timer);
      },
      onStop: (fn) => void this.stopHandlers.push(fn),
      isExemptAddress: (address) => this.limiter.isExempt(address),
    };
    return ctx;
  }
}

/** The output of a hibernated session: nothing is written (Session queues instead). */
const DETACHED: SessionOutput = {
  write: () => false,
  flushed: () => Promise.reject(new Error('session is hibernated')),
  close: () => undefined,
  secure: true,
  remoteAddress: 'none',
  kind: 'tcp',
};

export class ConfigError extends Error {
  constructor(readonly key: string, readonly reason: string) {
    super(`${key}: ${reason}`);
  }
}

function portOf(server: NetServer | undefined): number | undefined {
  const address = server?.address();
  return address && typeof address === 'object' ? address.port : undefined;
}
