// `herald appserver`: the app server as an XEP-0114 component of another XMPP server — the historic
// oshiya mode, for Prosody, ejabberd or Openfire users who want Herald's push backends. Only the
// embedded push service (modules/pubsub) and the app server (modules/appserver, with adhoc and
// disco under it) run; there are no client, server-to-server or component listeners, only the HTTP
// listener for the sandbox inbox when asked for.
//
// The component's domain (push.example.org) is where everything answers: the register-push-*
// commands, the app-server/<name> and pubsub/push disco identities, and the publishes. In Herald
// that is one in-process component (server/components.ts) shared by the push service and the app
// server (modules.pubsub.push_service = modules.appserver.jid = the domain). The HeraldServer
// around it needs a domain of its own that is not the component's; it is INTERNAL_DOMAIN, which
// nothing outside ever sees (it names the storage namespace in appserver.sqlite).
//
// Stanzas from the other server go into the router; what the push service and app server send to
// other domains (their answers) goes back on the component stream instead of federation.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema, type HeraldConfig } from '../conf/schema.js';
import { HeraldServer } from '../server/server.js';
import { createLogger, type Logger } from '../server/log.js';
import { ComponentClient, type ComponentClientOptions } from '../server/component-client.js';
import { normalizeDomainpart, tryParseJid } from '../server/jid.js';
import { Priority, STOP, type HookResult, type RouteEvent } from '../server/hooks.js';
import { stanzaError } from '../server/errors.js';
import { generateSelfSignedCertificate } from '../server/tls/selfsigned.js';
import type { XmlElement } from '../server/xml/element.js';
import { SqliteStore } from '../storage/sqlite.js';
import { builtinModules } from '../modules/index.js';

/**
 * What runs in component mode: appserver needs adhoc and pubsub, adhoc needs disco, disco needs
 * roster. Disco and roster serve only the inner server's own domain, which nothing can reach.
 */
export const APPSERVER_MODULES = ['roster', 'disco', 'adhoc', 'pubsub', 'appserver'];
/** The inner server's own domain: never on the wire (RFC 2606 reserves .invalid for exactly that). */
export const INTERNAL_DOMAIN = 'appserver.invalid';
/** The SQLite file in the data directory: its own, even when the directory is shared with a Herald. */
export const APPSERVER_DATABASE = 'appserver.sqlite';
const DEFAULT_COMPONENT_PORT = 5347;

export interface AppServerOptions {
  /** The XMPP server's component port: 'host:port' (port 5347 when left out). */
  component: string;
  /** The component domain configured on that server (push.example.org). */
  domain: string;
  /** The component's shared secret, as configured on that server. */
  secret: string;
  /** Global and module settings (log_level, limits, listen.http, modules.appserver backends); default: the defaults. */
  config?: HeraldConfig;
  /** Where appserver.sqlite (and backend files) live; default: config.data_dir. */
  dataDir?: string;
  /** HTTP listener for the sandbox inbox (GET /push/inbox): a port, or 0 for none; default: config.listen.http when a config was given, else none. */
  httpPort?: number;
  log?: Logger;
  reconnect?: ComponentClientOptions['reconnect'];
}

/** The config of the inner server: only the push service and the app server, on the component's domain. */
export function appServerConfig(options: AppServerOptions): HeraldConfig {
  const base = options.config ?? configSchema.parse({});
  const domain = componentDomain(options.domain);
  const appserver = { ...(base.modules.appserver ?? {}), jid: domain, allow_remote: true };
  const modules = Object.fromEntries(Object.entries(base.modules).filter(([name]) => APPSERVER_MODULES.includes(name)));
  return {
    ...base,
    domain: INTERNAL_DOMAIN,
    data_dir: options.dataDir ?? base.data_dir,
    listen: {
      ...base.listen,
      c2s: 0,
      c2s_direct_tls: 0,
      s2s: 0,
      s2s_direct_tls: 0,
      component: 0,
      https: 0,
      http: options.httpPort ?? (options.config ? base.listen.http : 0),
    },
    components: {},
    modules: { ...modules, pubsub: { ...(modules.pubsub ?? {}), push_service: domain }, appserver },
    modules_disabled: [],
  };
}

export class AppServer {
  readonly server: HeraldServer;
  readonly link: ComponentClient;
  readonly domain: string;
  readonly log: Logger;
  /** The XMPP server's component port, as given. */
  readonly target: string;

  constructor(options: AppServerOptions) {
    this.target = options.component;
    const config = appServerConfig(options);
    this.domain = componentDomain(options.domain);
    this.log = options.log ?? createLogger(config.log_level);
    mkdirSync(config.data_dir, { recursive: true });
    // No TLS listener runs; the server still wants a certificate, so one lives in memory only.
    const tls = generateSelfSignedCertificate({ domains: [INTERNAL_DOMAIN] });
    this.server = new HeraldServer({
      config,
      store: new SqliteStore({ path: join(config.data_dir, APPSERVER_DATABASE) }),
      log: this.log,
      modules: builtinModules.filter((m) => APPSERVER_MODULES.includes(m.name)),
      tls,
    });
    // Above federation (S2sManager, Priority.DEFAULT): every other domain is behind the component stream.
    this.server.hooks.on('route/remote', (e) => this.toServer(e), Priority.GUARD, 'appserver-component');
    const { host, port } = hostPort(options.component);
    this.link = new ComponentClient(
      { host, port, domain: this.domain, secret: options.secret, log: this.log.child({ mod: 'component-client' }), limits: xmlLimits(config), reconnect: options.reconnect },
      { stanza: (el) => this.fromServer(el) },
    );
  }

  /** Loads the modules, starts the HTTP listener if any, and connects (reconnecting until stop()). */
  async start(): Promise<void> {
    await this.server.start();
    this.link.start();
    this.log.info({ domain: this.domain, server: this.target, http: this.server.ports.http }, 'app server component started');
  }

  async stop(): Promise<void> {
    await this.link.stop();
    await this.server.stop();
  }

  /** A stanza from the other server: for our domain, into the router as if from federation. */
  private fromServer(el: XmlElement): void {
    const from = el.attrs.from !== undefined ? tryParseJid(el.attrs.from) : null;
    const to = el.attrs.to !== undefined ? tryParseJid(el.attrs.to) : null;
    // The server addresses both ends (RFC 6120 §4.9.3.7); a stanza for another domain has no place here.
    if (!from || !to || to.domain !== this.domain) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to }, 'stanza from the server not addressed to the component; dropped');
      return;
    }
    this.server.router.route(el, from, to, { kind: 's2s', domain: from.domain });
  }

  /** 'route/remote': what the push service and the app server send goes back on the component stream. */
  private toServer(e: RouteEvent): HookResult {
    // The server would close the stream with invalid-from for anything else (XEP-0114).
    if (e.from.domain !== this.domain) {
      this.log.warn({ from: e.from.domain, to: e.to.domain }, 'not sending a stanza from a domain other than the component');
      return STOP;
    }
    if (!this.link.send(e.stanza)) {
      // Not connected: answered as federation answers an unreachable server (RFC 6120 §8.3).
      this.server.router.bounce(e.stanza, stanzaError.remoteServerTimeout('The app server is not connected to its XMPP server'));
    }
    return STOP;
  }
}

/** Builds, starts and connects an app server component. */
export async function startAppServer(options: AppServerOptions): Promise<AppServer> {
  const app = new AppServer(options);
  try {
    await app.start();
  } catch (err) {
    await app.stop().catch(() => undefined);
    throw err;
  }
  return app;
}

/** 'host:port', '[v6]:port' or 'host' (port 5347). */
export function hostPort(value: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(value.trim()) ?? /^([^:\s[\]]+)(?::(\d+))?$/.exec(value.trim());
  if (!match?.[1]) throw new Error(`'${value}' is not host:port`);
  const port = match[2] === undefined ? DEFAULT_COMPONENT_PORT : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`'${value}': the port must be 1–65535`);
  return { host: match[1], port };
}

/** The component domain, normalised; it needs a dot (a label alone would become <label>.<INTERNAL_DOMAIN> in the modules). */
export function componentDomain(value: string): string {
  let domain: string;
  try {
    domain = normalizeDomainpart(value);
  } catch (err) {
    throw new Error(`'${value}' is not a valid domain (${(err as Error).message})`);
  }
  if (!domain.includes('.') || value.includes('@') || value.includes('/')) throw new Error(`'${value}' is not a component domain like push.example.org`);
  return domain;
}

function xmlLimits(config: HeraldConfig): ComponentClientOptions['limits'] {
  const limits = config.limits;
  return { maxStanzaBytes: limits.max_stanza_size, maxDepth: limits.max_xml_depth, maxAttributes: limits.max_attributes, maxAttributeLength: limits.max_attribute_length };
}
