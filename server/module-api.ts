// The module API: everything a feature module may use. Modules import this file,
// server/protocol/* and server/errors.ts, nothing else of the core (STYLE.md §1).
//
//   export default defineModule({
//     name: 'ping', xeps: [{ xep: 199, version: '2.0.1' }],
//     setup(m) {
//       m.feature(NS.PING);
//       m.iq.get(NS.PING, 'ping', () => undefined, { scope: 'host' });
//     },
//   });

import type { z } from 'zod';
import type { Jid } from './jid.js';
import type { XmlElement } from './xml/element.js';
import type { HookHandler, HookName, MaybePromise } from './hooks.js';
import type { IqHandler, IqScope, IqType } from './iq.js';
import type { Session } from './session.js';
import type { Logger } from './log.js';
import type { StanzaError } from './errors.js';
import type { ArchiveStore, KeyValueStore, MapStore } from '../storage/store.js';
import type { LocalComponent } from './components.js';
import type { HttpHandler } from './http.js';

// Re-exported so modules have one import for the core's value types.
export { STOP, Priority, type HookResult, type RouteEvent, type Origin, type MaybePromise } from './hooks.js';
export { XmlElement, x, type XmlNode } from './xml/element.js';
export { parseXml } from './xml/parser.js';
export { keyedSerial, type KeyedSerial } from './keyed-serial.js';
export { randomId } from './random.js';
export { parseJid, tryParseJid, makeJid, Jid } from './jid.js';
export type { Session } from './session.js';
export type { IqRequest, IqHandler, IqScope } from './iq.js';
export type { ArchiveItem, ArchiveQuery, ArchiveStore, KeyValueStore, MapStore, WriteOptions } from '../storage/store.js';
export type { LocalComponent } from './components.js';
export type { HttpHandler, HttpRequestContext } from './http.js';
// Config units for module schemas ('10 minutes', '64 KiB'), STYLE.md §6.
export { duration, bytes } from '../conf/units.js';

export interface XepInfo {
  xep: number;
  version?: string;
  status?: 'complete' | 'partial';
  note?: string;
}

export interface ModuleDefinition<C = unknown> {
  name: string;
  /** XEPs (and their versions) this module implements; docs/xeps.md is generated from these. */
  xeps?: XepInfo[];
  /** Modules that must be loaded first (their services are available in setup). */
  depends?: string[];
  /** zod schema for `modules.<name>` in the config; every key with a default and a description. */
  config?: z.ZodType<C>;
  setup(m: ModuleContext<C>): void | Promise<void>;
}

export function defineModule<S extends z.ZodType = z.ZodType<Record<string, never>>>(
  definition: Omit<ModuleDefinition<z.output<S>>, 'config'> & { config?: S },
): ModuleDefinition<z.output<S>> {
  return definition as ModuleDefinition<z.output<S>>;
}

/**
 * Typed services modules offer each other (`m.provide` / `m.service`). Shared ones are declared here
 * so their users compile without importing the provider; others extend this by declaration merging.
 */
export interface Services {
  roster: import('./protocol/rfc6121.js').RosterService;
}

export interface IqOptions {
  /** Who the IQ is addressed to; default 'host'. See server/iq.ts. */
  scope?: IqScope;
}

/** A pre-authentication IQ (in-band registration): no account, no 'from'. */
export interface PreAuthIqRequest {
  stanza: XmlElement;
  payload: XmlElement;
  host: string;
  remoteAddress: string;
  secure: boolean;
  /** The same object for every pre-auth IQ of one client connection: a WeakMap key for state kept between them (XEP-0445's token, then the registration). */
  stream: object;
}
export type PreAuthIqHandler = (request: PreAuthIqRequest) => Promise<XmlElement | void | undefined> | XmlElement | void | undefined;

export type StreamStage = 'pre-auth' | 'post-auth';
export type StreamElementHandler = (session: Session, element: XmlElement) => void | Promise<void>;
export interface StreamInfo {
  host: string;
  secure: boolean;
  remoteAddress: string;
  /** The localpart once authenticated. */
  username: string | undefined;
}

export interface SessionSlot<T> {
  get(session: Session): T;
  set(session: Session, value: T): void;
}

export interface AccountService {
  exists(username: string): Promise<boolean>;
  /** Creates an account (SCRAM keys only are stored); false when it exists. Throws on an invalid username. */
  create(username: string, password: string): Promise<boolean>;
  setPassword(username: string, password: string): Promise<boolean>;
  verifyPassword(username: string, password: string): Promise<boolean>;
  /** Deletes the account, its data (every module's) and ends its sessions. */
  delete(username: string): Promise<boolean>;
  list(): Promise<string[]>;
}

export interface SessionView {
  get(bareJid: string, resource: string): Session | undefined;
  resourcesOf(bareJid: string): Session[];
  all(): Iterable<Session>;
  readonly count: number;
}

export interface DiscoView {
  hostFeatures(): string[];
  accountFeatures(): string[];
  hostIdentities(): { category: string; type: string; name?: string }[];
  hostItems(): { jid: string; name?: string; node?: string }[];
  /** Extended info forms (XEP-0128) for the host. */
  hostExtensions(): XmlElement[];
  /** Extended info forms (XEP-0128) for an account's bare JID, as `from` may see them. */
  accountExtensions(username: string, from: Jid): Promise<XmlElement[]>;
}

/** Builds an account's XEP-0128 form for a requester; undefined leaves it out (e.g. not the owner). */
export type AccountDiscoExtension = (username: string, from: Jid) => MaybePromise<XmlElement | undefined>;

export interface ServerInfo {
  readonly name: string;
  readonly version: string;
  readonly startedAt: Date;
  readonly hosts: ReadonlySet<string>;
  /** Bare JIDs of the server's administrators (config `admins`), normalised. */
  readonly admins: ReadonlySet<string>;
  /** The ports listened on, once started (with port 0 in tests, the ones the system chose). */
  readonly ports: Readonly<Partial<Record<'c2s' | 'c2s_direct_tls' | 's2s' | 's2s_direct_tls' | 'component' | 'http' | 'https', number>>>;
}

export interface ModuleContext<C = unknown> {
  readonly name: string;
  /** The domain this module instance serves. */
  readonly host: string;
  readonly config: C;
  readonly log: Logger;
  readonly server: ServerInfo;
  /** The server's data directory (config data_dir): for files a module keeps itself. */
  readonly dataDir: string;

  // Service discovery (XEP-0030) registrations.
  feature(ns: string): void;
  accountFeature(ns: string): void;
  identity(category: string, type: string, name?: string): void;
  discoItem(jid: string, name?: string, node?: string): void;
  discoExtension(form: XmlElement): void;
  /** A XEP-0128 form in the disco#info of accounts' bare JIDs, built per account and requester. */
  accountDiscoExtension(build: AccountDiscoExtension): void;
  readonly disco: DiscoView;

  readonly iq: {
    get(ns: string, name: string, handler: IqHandler, options?: IqOptions): void;
    set(ns: string, name: string, handler: IqHandler, options?: IqOptions): void;
  };
  preAuthIq(type: IqType, ns: string, name: string, handler: PreAuthIqHandler): void;
  /**
   * Handles a top-level element in another namespace than jabber:client on a bound client stream
   * (XEP-0352 <active/>, ...). Anything without a handler is an unsupported-stanza-type stream error.
   */
  streamElement(ns: string, name: string, handler: StreamElementHandler): void;
  /** Adds an element to <stream:features/> at a stage; return undefined to leave it out. */
  streamFeature(stage: StreamStage, build: (stream: StreamInfo) => XmlElement | undefined): void;

  on<K extends HookName>(name: K, handler: HookHandler<K>, priority?: number): void;
  /** Runs a hook (module-offered hooks). Resolves true when a handler returned STOP. */
  fire<K extends HookName>(name: K, event: import('./hooks.js').Hooks[K]): Promise<boolean>;

  provide<K extends keyof Services>(name: K, service: Services[K]): void;
  service<K extends keyof Services>(name: K): Services[K];

  readonly store: {
    map<T>(name: string): MapStore<T>;
    keyval<T>(name: string): KeyValueStore<T>;
    archive<T>(name: string): ArchiveStore<T>;
  };
  readonly accounts: AccountService;
  readonly sessions: SessionView;
  sessionSlot<T>(name: string, init: () => T): SessionSlot<T>;

  /**
   * A service with its own domain in this process (XEP-0030 item of the server, e.g. push.<domain>):
   * `name` is a subdomain label ('push') or a full domain. Register its identities, features and
   * IQ handlers on the returned component; stanzas to that domain go to it.
   */
  component(name: string): LocalComponent;
  /** Serves an HTTP route on Herald's HTTP(S) listeners (`prefix` routes get the rest of the path). */
  httpRoute(method: string, path: string, handler: HttpHandler): void;
  /** Routes a stanza the server sends; 'from' and 'to' must be set. */
  route(stanza: XmlElement): void;
  /** Routes a stanza on behalf of a local user (presence broadcast, roster pushes' companions). */
  routeFrom(from: Jid, stanza: XmlElement): void;
  /** Answers a stanza with an error (never an error with an error). */
  bounce(stanza: XmlElement, error: StanzaError): void;
  /** Sends an IQ get/set and waits for the result or error element. */
  sendIq(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement>;

  /** Runs fn every `ms` while the server runs. */
  every(ms: number, fn: () => void | Promise<void>): void;
  /** Runs fn when the server stops (after streams are closed, before storage closes). */
  onStop(fn: () => void | Promise<void>): void;
  /** True for addresses in `limits.exempt` (loopback by default), which per-IP limits leave alone. */
  isExemptAddress(address: string): boolean;
}
