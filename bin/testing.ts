// `import { startServer } from 'herald/testing'`: a real Herald for test suites, Herald's own and
// other projects'. Port 0, a temporary data directory, accounts created on request, clean shutdown.
//
//   const server = await startServer(t);              // node:test context: stopped by t.after
//   const romeo = await server.login('romeo');         // creates romeo, STARTTLS, SCRAM, bind
//   romeo.send(`<message to='juliet@localhost'><body>hi</body></message>`);
//   const push = await server.sandboxInbox.next();    // pushes to register-push-sandbox devices (docs/push.md)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type ConfigInput, type HeraldConfig } from '../conf/schema.js';
import { createHerald } from './bootstrap.js';
import { createLogger } from '../server/log.js';
import type { HeraldServer } from '../server/server.js';
import type { ModuleDefinition } from '../server/module-api.js';
import { XmppClient, type LoginOptions } from '../server/client.js';
import type { SandboxInbox } from '../modules/appserver/backends/sandbox.js';

export { XmppClient, matchElement } from '../server/client.js';
export type { HeraldServer } from '../server/server.js';
export type { SandboxInbox, SandboxPush } from '../modules/appserver/backends/sandbox.js';

export interface TestServerOptions {
  domain?: string;
  /** Config keys, merged over the test defaults (ports 0 on 127.0.0.1, silent logs). */
  config?: ConfigInput;
  /** Shorthand for config.modules. */
  modules?: Record<string, Record<string, unknown>>;
  /** Replace the module list (default: all built-in modules). */
  moduleList?: ModuleDefinition<unknown>[];
  /** Keep data here instead of a fresh temporary directory (restart tests). */
  dataDir?: string;
  logLevel?: HeraldConfig['log_level'];
}

interface TestContextLike {
  after(fn: () => unknown): void;
}

export const DEFAULT_PASSWORD = 'password';

export class TestServer {
  server!: HeraldServer;
  readonly dataDir: string;
  readonly domain: string;
  private readonly ownsDataDir: boolean;
  private readonly clients = new Set<XmppClient>();
  private readonly users = new Set<string>();
  private stopped = false;

  constructor(private readonly options: TestServerOptions) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'herald-test-'));
    this.domain = options.domain ?? 'localhost';
  }

  get config(): HeraldConfig {
    return this.server.config;
  }

  /** c2s (STARTTLS) port. */
  get port(): number {
    return this.server.ports.c2s!;
  }

  get directTlsPort(): number {
    return this.server.ports.c2s_direct_tls!;
  }

  /** Server-to-server port (STARTTLS). */
  get s2sPort(): number {
    return this.server.ports.s2s!;
  }

  /** Server-to-server port with direct TLS (XEP-0368). */
  get s2sDirectTlsPort(): number {
    return this.server.ports.s2s_direct_tls!;
  }

  /** External component port (XEP-0114); set when the config has `components`. */
  get componentPort(): number {
    return this.server.ports.component!;
  }

  /** ws:// URL of the WebSocket endpoint on the plain HTTP listener (loopback: trusted as encrypted). */
  get websocketUrl(): string {
    return `ws://127.0.0.1:${this.server.ports.http}${this.server.config.http.websocket_path}`;
  }

  /** wss:// URL of the WebSocket endpoint on the HTTPS listener. */
  get secureWebsocketUrl(): string {
    return `wss://127.0.0.1:${this.server.ports.https}${this.server.config.http.websocket_path}`;
  }

  /**
   * The sandbox push backend's inbox, in-process: `await server.sandboxInbox.next()` is the next
   * push a device registered with register-push-sandbox received (docs/push.md).
   */
  get sandboxInbox(): SandboxInbox {
    const inbox = this.server.service('sandboxInbox');
    if (!inbox) throw new Error('the sandbox push backend is off (modules.appserver.sandbox.enabled) or the appserver module is not loaded');
    return inbox;
  }

  buildConfig(): HeraldConfig {
    const input = this.options.config ?? {};
    return configSchema.parse({
      ...input,
      domain: this.domain,
      data_dir: this.dataDir,
      log_level: this.options.logLevel ?? process.env.HERALD_TEST_LOG ?? 'silent',
      listen: { interfaces: ['127.0.0.1'], http_interfaces: ['127.0.0.1'], component_interfaces: ['127.0.0.1'], ...input.listen },
      modules: { ...input.modules, ...this.options.modules },
    });
  }

  async start(): Promise<this> {
    const config = this.buildConfig();
    const { server } = createHerald(config, { log: createLogger(config.log_level), modules: this.options.moduleList, ephemeralPorts: true });
    this.server = server;
    await server.start();
    this.stopped = false;
    return this;
  }

  /** Stops and starts again on the same data directory (persistence across restarts). */
  async restart(): Promise<void> {
    await this.server.stop();
    this.clients.clear();
    await this.start();
  }

  async createUser(username: string, password = DEFAULT_PASSWORD): Promise<string> {
    if (!this.users.has(username)) {
      await this.server.createAccount(username, password);
      this.users.add(username);
    }
    return `${username}@${this.domain}`;
  }

  /** A connected, unauthenticated client (stream open, features received). */
  async connect(options: { directTls?: boolean; websocket?: string } = {}): Promise<XmppClient> {
    const client = await XmppClient.connect({
      port: options.directTls ? this.directTlsPort : this.port,
      domain: this.domain,
      directTls: options.directTls,
      websocket: options.websocket,
    });
    this.clients.add(client);
    return client;
  }

  /** Creates the account if needed and logs in (STARTTLS, SCRAM-SHA-1, bind). */
  async login(username: string, options: Partial<LoginOptions> = {}): Promise<XmppClient> {
    await this.createUser(username, options.password ?? DEFAULT_PASSWORD);
    const client = await XmppClient.login({
      port: options.directTls ? this.directTlsPort : this.port,
      domain: this.domain,
      username,
      password: DEFAULT_PASSWORD,
      ...options,
    });
    this.clients.add(client);
    return client;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const client of this.clients) client.dropTcp();
    await this.server.stop();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * Lets test servers federate on loopback: each gets a static route (s2s.host_map, set at runtime,
 * since ports are known only once started) to every other one's domain and component domains.
 * Call it again after a restart (the ports change).
 */
export function federate(...servers: TestServer[]): void {
  for (const server of servers) {
    for (const other of servers) {
      if (other === server) continue;
      const target = `127.0.0.1:${other.s2sPort}`;
      for (const domain of [other.domain, ...other.server.components.keys()]) server.server.s2s.setRoute(domain, target);
    }
  }
}

/** Starts servers with these options (give each its own `domain`) and makes them federate. */
export async function startFederation(t: TestContextLike | undefined, ...options: TestServerOptions[]): Promise<TestServer[]> {
  const servers = await Promise.all(options.map((opts) => (t ? startServer(t, opts) : startServer(opts))));
  federate(...servers);
  return servers;
}

/** Starts a server; with a node:test context, it stops after the test. */
export async function startServer(t?: TestContextLike | TestServerOptions, options: TestServerOptions = {}): Promise<TestServer> {
  const context = t && typeof (t as TestContextLike).after === 'function' ? (t as TestContextLike) : undefined;
  const opts = context ? options : ((t as TestServerOptions | undefined) ?? options);
  const server = new TestServer(opts);
  await server.start();
  context?.after(() => server.stop());
  return server;
}
