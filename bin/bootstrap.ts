// Putting Herald together: config → data directory → certificate → SQLite → server with the
// built-in modules. Used by `herald start`, the other CLI commands and the testing API.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HeraldConfig } from '../conf/schema.js';
import { HeraldServer } from '../server/server.js';
import { createLogger, type Logger } from '../server/log.js';
import { ensureCertificate } from '../server/tls/files.js';
import { SqliteStore } from '../storage/sqlite.js';
import type { ModuleDefinition } from '../server/module-api.js';
import { builtinModules } from '../modules/index.js';

export function databasePath(config: HeraldConfig): string {
  return join(config.data_dir, 'herald.sqlite');
}

/** The SQLite store of a config's data directory; `server`: for a long-running server (checkpoints in a worker thread). */
export function openStore(config: HeraldConfig, options: { server?: boolean } = {}): SqliteStore {
  mkdirSync(config.data_dir, { recursive: true });
  return new SqliteStore({ path: databasePath(config), backgroundCheckpoints: options.server === true });
}

export interface CreateOptions {
  log?: Logger;
  modules?: ModuleDefinition<unknown>[];
  scramIterations?: number;
  ephemeralPorts?: boolean;
}

export function createHerald(config: HeraldConfig, options: CreateOptions = {}): { server: HeraldServer; certificateGenerated: boolean; certPath: string } {
  const log = options.log ?? createLogger(config.log_level);
  mkdirSync(config.data_dir, { recursive: true });
  const cert = ensureCertificate({ domain: config.domain, dataDir: config.data_dir, cert: config.tls.cert, key: config.tls.key });
  const store = openStore(config, { server: true });
  const server = new HeraldServer({
    config,
    store,
    log,
    modules: options.modules ?? builtinModules,
    tls: { certPem: cert.certPem, keyPem: cert.keyPem },
    scramIterations: options.scramIterations,
    ephemeralPorts: options.ephemeralPorts,
  });
  return { server, certificateGenerated: cert.generated, certPath: cert.certPath };
}
