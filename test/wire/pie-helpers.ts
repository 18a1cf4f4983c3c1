// Helpers for the XEP-0227 import/export tests: import into a data directory before a server
// starts on it (the import holds the database alone), log in as an imported account.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, XmppClient, type TestServer, type TestServerOptions } from '../../bin/testing.js';
import type { LoginOptions } from '../../server/client.js';
import { SqliteStore } from '../../storage/sqlite.js';
import { importPie, type ImportOptions, type ImportReport } from '../../storage/pie/import.js';
import { exportPie, type ExportOptions } from '../../storage/pie/export.js';

interface TestContextLike {
  after(fn: () => unknown): void;
}

/** test/fixtures/xep0227/<name> in the source tree (tests run from dist/). */
export const fixture = (name: string): string => fileURLToPath(new URL(`../../../test/fixtures/xep0227/${name}`, import.meta.url));

/** Servers started on a data directory inside a tempDir(), by that temporary directory. */
const serversIn = new Map<string, TestServer[]>();

/**
 * A temporary directory, removed after the test. Servers started in it with startServerIn() stop
 * first: test hooks run in the order they were added, so removing the directory would otherwise
 * race the server still writing there (ENOTEMPTY, and a server left running).
 */
export function tempDir(t: TestContextLike, prefix = 'herald-pie-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  serversIn.set(dir, []);
  t.after(async () => {
    for (const server of serversIn.get(dir) ?? []) await server.stop();
    serversIn.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** startServer() on `dataDir`, a tempDir() or a directory inside one. */
export async function startServerIn(t: TestContextLike, dataDir: string, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startServer(t, { ...options, dataDir });
  const owner = [...serversIn.keys()].find((dir) => dataDir === dir || dataDir.startsWith(`${dir}/`));
  if (owner !== undefined) serversIn.get(owner)!.push(server);
  return server;
}

export const databaseIn = (dataDir: string): string => join(dataDir, 'herald.sqlite');

/** Runs `fn` on the SQLite store of a data directory, closing it afterwards. */
export async function withDatabase<T>(dataDir: string, fn: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = new SqliteStore({ path: databaseIn(dataDir) });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function importInto(dataDir: string, files: string[], options: ImportOptions): Promise<ImportReport> {
  return withDatabase(dataDir, (store) => importPie(store, files, options));
}

/** The export of a data directory's domain as one string. */
export async function exportOf(dataDir: string, options: ExportOptions): Promise<string> {
  let text = '';
  await withDatabase(dataDir, (store) => exportPie(store, { write: async (chunk) => void (text += chunk) }, options));
  return text;
}

/** Imports `files` into a fresh data directory, then starts a server for `domain` on it. */
export async function serverWithImport(
  t: TestContextLike,
  domain: string,
  files: string[],
  options: Partial<ImportOptions> = {},
  serverOptions: TestServerOptions = {},
): Promise<{ server: TestServer; report: ImportReport; dataDir: string }> {
  const dataDir = tempDir(t);
  const report = await importInto(dataDir, files, { domain, ...options });
  const server = await startServerIn(t, dataDir, { domain, ...serverOptions });
  return { server, report, dataDir };
}

/** Logs in with a password the server never saw (the import brought the account's SCRAM keys). */
export async function loginImported(server: TestServer, username: string, password: string, options: Partial<LoginOptions> = {}): Promise<XmppClient> {
  const client = await XmppClient.login({ port: server.port, domain: server.domain, username, password, resource: 'r1', ...options });
  return client;
}
