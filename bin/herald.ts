#!/usr/bin/env node
// The `herald` command (DESIGN.md §8): start the server in the foreground, manage accounts in its
// SQLite file (also while it runs: WAL and a busy timeout make that safe, and a new account can log
// in at once), manage the certificate, and check a setup the way `prosodyctl check` does.
// Output for people goes to stderr (hints) or stdout (command results); the server logs JSON
// lines (pino) to stdout. Exit codes: 0 fine, 1 failed, 130 interrupted at a prompt.

import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { createRequire } from 'node:module';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { Command } from 'commander';
import { ConfigFileError, lineOfKey, loadConfigFile, validateModuleConfigs, type LoadedConfig } from '../conf/load.js';
import type { HeraldConfig } from '../conf/schema.js';
import { createHerald, openStore } from './bootstrap.js';
import { PieFormatError } from '../storage/pie/format.js';
import { PieImportError, formatImportReport, importPie } from '../storage/pie/import.js';
import { exportPie, exportPieSplit, streamSink, type ExportReport } from '../storage/pie/export.js';
import { builtinModules } from '../modules/index.js';
import { createLogger, type Logger } from '../server/log.js';
import { ConfigError, type HeraldServer } from '../server/server.js';
import { createAccountInStore, setPasswordInStore } from '../server/accounts.js';
import { parseJid, type Jid } from '../server/jid.js';
import { certificateCoversDomain, certificateProblems, inspectCertificate } from '../server/tls/inspect.js';
import { defaultCertificateDomains, selfSignedPaths } from '../server/tls/files.js';
import { generateSelfSignedCertificate } from '../server/tls/selfsigned.js';
import type { Store } from '../storage/store.js';
import type { SandboxPush } from '../modules/appserver/backends/sandbox.js';
import { componentDomain, hostPort, startAppServer, type AppServer } from './appserver.js';
import invitesModule, { INVITE_TOKENS, invitesConfig, issueInvite, type Invite } from '../modules/invites.js';
import { parseDuration } from '../conf/units.js';
import { dateTime } from '../server/protocol/xep0082.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

/** `herald start` without --config reads (and on first start writes) this file in the working directory. */
export const DEFAULT_CONFIG = 'herald.yml';

/** A failure to report in one line (or a few) and exit with `exitCode`; no stack trace. */
class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

interface ConfigOption {
  config?: string;
}

// ---- configuration ----

/** A path for messages: relative to the working directory when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/**
 * Loads and fully validates the config (global and module keys). Only `start` without --config
 * creates a missing file; every other command needs one to exist.
 */
function loadConfig(option: string | undefined, createIfMissing = false): LoadedConfig {
  const file = resolve(option ?? DEFAULT_CONFIG);
  if (option === undefined && !createIfMissing && !existsSync(file)) {
    throw new CliError(`${shown(file)} not found: run \`herald start\` here once to create it, or pass --config FILE`);
  }
  try {
    const loaded = loadConfigFile(file, { createIfMissing: createIfMissing && option === undefined });
    validateModuleConfigs(loaded, builtinModules);
    return loaded;
  } catch (err) {
    if (err instanceof ConfigFileError) throw new CliError(withShownFile(err));
    throw err;
  }
}

function withShownFile(err: ConfigFileError): string {
  return err.message.startsWith(err.file) ? shown(err.file) + err.message.slice(err.file.length) : err.message;
}

/** The account a JID argument names: `user@domain` (the configured domain) or just `user`. */
function accountOf(text: string, loaded: LoadedConfig): string {
  const domain = loaded.config.domain;
  let jid: Jid;
  try {
    jid = parseJid(text.includes('@') ? text : `${text}@${domain}`);
  } catch (err) {
    throw new CliError(`'${text}' is not a valid JID: ${(err as Error).message}`);
  }
  if (jid.resource !== '') throw new CliError(`give a bare JID, without '/${jid.resource}'`);
  if (jid.local === '') throw new CliError(`give an account as user@${domain}`);
  if (jid.domain !== domain) {
    throw new CliError(`${jid.domain} is not served here: this server's domain is ${domain} (domain: in ${shown(loaded.file)})`);
  }
  return jid.local;
}

async function withStore<T>(config: HeraldConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

// ---- passwords ----

/**
 * A new password: with --password-stdin, or when stdin is not a terminal, the first line of stdin;
 * else typed twice at a prompt that does not echo.
 */
async function readNewPassword(fromStdin: boolean): Promise<string> {
  if (!fromStdin && process.stdin.isTTY) {
    const first = await promptHidden('Password: ');
    if (first === '') throw new CliError('the password must not be empty');
    const again = await promptHidden('Again: ');
    if (again !== first) throw new CliError('the passwords differ');
    return first;
  }
  const line = await readFirstLine(process.stdin);
  if (line === undefined || line === '') throw new CliError('no password: the first line of standard input was empty');
  return line;
}

function readFirstLine(input: NodeJS.ReadStream): Promise<string | undefined> {
  return new Promise((resolvePromise, reject) => {
    let buffered = '';
    const finish = (line: string | undefined) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', reject);
      input.destroy(); // the rest of stdin is not ours to wait for
      resolvePromise(line?.replace(/\r$/, ''));
    };
    const onData = (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline !== -1) finish(buffered.slice(0, newline));
    };
    const onEnd = () => finish(buffered === '' ? undefined : buffered);
    input.setEncoding('utf8');
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', reject);
  });
}

/** Reads a line from the terminal in raw mode, showing nothing of what is typed. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolvePromise, reject) => {
    let value = '';
    const done = () => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          done();
          return resolvePromise(value);
        }
        if (ch === '\u0003') {
          done();
          return reject(new CliError('interrupted', 130));
        }
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else value += ch;
      }
    };
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.on('data', onData);
    input.resume();
  });
}

/** deriveAccountCredentials refuses what SASLprep prohibits (RFC 4013 §2.3); say so plainly. */
function passwordRefused(err: unknown): never {
  if (err instanceof Error && err.name === 'SaslprepError') {
    throw new CliError('the password contains characters that are not allowed (control or unassigned characters)');
  }
  throw err;
}

// ---- herald start ----

async function start(options: ConfigOption): Promise<void> {
  const loaded = loadConfig(options.config, true);
  const { config, file } = loaded;
  if (loaded.created) {
    process.stderr.write(`Wrote ${shown(file)} from the example configuration (domain: ${config.domain}). Edit it and restart to change the domain.\n`);
  }
  const log = createLogger(config.log_level);
  renewSelfSignedForDomain(config, log);
  let created: ReturnType<typeof createHerald>;
  try {
    created = createHerald(config, { log });
  } catch (err) {
    throw new CliError(`cannot start: ${(err as Error).message}`);
  }
  const { server, certificateGenerated, certPath } = created;
  if (certificateGenerated) {
    const info = inspectCertificate(readFileSync(certPath, 'utf8'));
    log.info({ cert: certPath, domains: info.domains, sha256: info.fingerprint256 }, 'generated a self-signed certificate');
  }
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw startupError(err, loaded);
  }
  stopOnSignals(server, log);
  if ((await server.store.accounts.count(config.domain)) === 0) {
    process.stderr.write(firstStartHint(loaded, server, certPath));
  }
}

/**
 * A certificate Herald generated follows the domain: after `domain:` changes, the old one would not
 * cover the new name. Imported and configured certificates are never touched.
 */
function renewSelfSignedForDomain(config: HeraldConfig, log: Logger): void {
  if (config.tls.cert !== undefined || config.tls.key !== undefined) return;
  const { certPath, keyPath } = selfSignedPaths(config.data_dir);
  if (!existsSync(certPath)) return;
  try {
    const certPem = readFileSync(certPath, 'utf8');
    if (certificateCoversDomain(certPem, config.domain) || !inspectCertificate(certPem).selfSigned) return;
  } catch {
    return; // unreadable: starting reports it
  }
  const fresh = generateSelfSignedCertificate({ domains: defaultCertificateDomains(config.domain) });
  writeFileSync(keyPath, fresh.keyPem, { mode: 0o600 });
  writeFileSync(certPath, fresh.certPem, { mode: 0o644 });
  log.warn({ cert: certPath, domain: config.domain }, 'the self-signed certificate was for another domain; generated a new one');
}

/** Turns what server.start() threw into a message that names the config key and, when it can, the line. */
function startupError(err: unknown, loaded: LoadedConfig): CliError {
  if (err instanceof ConfigError) {
    const line = lineOfKey(loaded.text, err.key.split('.'));
    return new CliError(`${shown(loaded.file)}${line !== undefined ? `:${line}` : ''}: ${err.key}: ${err.reason}`);
  }
  const code = (err as NodeJS.ErrnoException).code;
  const port = (err as { port?: number }).port;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    const key = listenerKeyFor(loaded.config, port);
    const where = `port ${port ?? '?'}${key ? ` (listen.${key} in ${shown(loaded.file)})` : ''}`;
    if (code === 'EADDRINUSE') return new CliError(`cannot listen on ${where}: it is already in use. Is Herald (or another XMPP server) already running? Stop it or choose another port.`);
    if (code === 'EACCES') return new CliError(`cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`);
    return new CliError(`cannot listen on ${where}: ${(err as { address?: string }).address ?? 'that address'} is not an address of this machine (listen.interfaces)`);
  }
  return new CliError(`cannot start: ${(err as Error).message ?? String(err)}`);
}

type ListenerKey = 'c2s' | 'c2s_direct_tls' | 's2s' | 'component' | 'http' | 'https';
const LISTENER_KEYS: ListenerKey[] = ['c2s', 'c2s_direct_tls', 's2s', 'component', 'http', 'https'];

function listenerKeyFor(config: HeraldConfig, port: number | undefined): ListenerKey | undefined {
  return LISTENER_KEYS.find((key) => config.listen[key] === port && port !== 0);
}

/** SIGTERM/SIGINT: system-shutdown to every stream, storage flushed, exit 0. A second signal exits at once. */
function stopOnSignals(server: Pick<HeraldServer, 'stop'>, log: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.stop().then(
      () => exitAfterLogs(log, 0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        exitAfterLogs(log, 1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function exitAfterLogs(log: Logger, code: number): void {
  log.flush(() => process.exit(code));
  setTimeout(() => process.exit(code), 1000).unref();
}

function firstStartHint(loaded: LoadedConfig, server: HeraldServer, certPath: string): string {
  const { config, file } = loaded;
  const configArg = resolve(file) === resolve(DEFAULT_CONFIG) ? '' : ` --config ${shown(file)}`;
  const ports = [
    server.ports.c2s && `${server.ports.c2s} (STARTTLS)`,
    server.ports.c2s_direct_tls && `${server.ports.c2s_direct_tls} (direct TLS)`,
  ].filter(Boolean);
  const selfSigned = config.tls.cert === undefined;
  const lines = [
    '',
    `Herald ${pkg.version} is running for ${config.domain}; clients connect on port ${ports.join(' and ') || '(none: listen.c2s is 0)'}.`,
    'There are no accounts yet. Add one from another terminal:',
    '',
    `    npx herald adduser you@${config.domain}${configArg}`,
    '',
    `Then sign in with an XMPP client (Gajim, Dino, Conversations, Monal, ...) as you@${config.domain}.`,
    ...(config.domain === 'localhost' || !config.domain.includes('.')
      ? [
          `Clients on this machine find '${config.domain}' as it is. From another device (a phone with Conversations,`,
          `say), set the client's host to this machine's IP address and port ${server.ports.c2s ?? config.listen.c2s}, or give the server`,
          `a real DNS name: set domain: in ${shown(file)} and restart.`,
        ]
      : []),
    ...(selfSigned
      ? [
          `The certificate is self-signed (${shown(certPath)}): the client will ask you to trust it. Its fingerprint:`,
          `    SHA-256 ${inspectCertificate(readFileSync(certPath, 'utf8')).fingerprint256}`,
        ]
      : []),
    `\`npx herald check${configArg}\` tests the setup (config, certificate, ports, DNS). Ctrl-C stops the server.`,
    '',
  ];
  return lines.join('\n') + '\n';
}

// ---- accounts ----

async function addUser(jidText: string, options: ConfigOption & { passwordStdin?: boolean }): Promise<void> {
  const loaded = loadConfig(options.config);
  const username = accountOf(jidText, loaded);
  const password = await readNewPassword(options.passwordStdin === true);
  const domain = loaded.config.domain;
  const { created } = await withStore(loaded.config, (store) => createAccountInStore(store, domain, username, password).catch(passwordRefused));
  if (!created) throw new CliError(`${username}@${domain} exists already (\`herald passwd ${username}@${domain}\` changes its password)`);
  process.stdout.write(`Created ${username}@${domain}.\n`);
}

async function changePassword(jidText: string, options: ConfigOption & { passwordStdin?: boolean }): Promise<void> {
  const loaded = loadConfig(options.config);
  const username = accountOf(jidText, loaded);
  const domain = loaded.config.domain;
  // Look before asking for a password nobody will use.
  if (!(await withStore(loaded.config, (store) => store.accounts.exists(domain, username)))) throw new CliError(`no account ${username}@${domain}`);
  const password = await readNewPassword(options.passwordStdin === true);
  const changed = await withStore(loaded.config, (store) => setPasswordInStore(store, domain, username, password).catch(passwordRefused));
  if (!changed) throw new CliError(`no account ${username}@${domain}`);
  process.stdout.write(`Changed the password of ${username}@${domain}.\n`);
}

async function deleteUser(jidText: string, options: ConfigOption): Promise<void> {
  const loaded = loadConfig(options.config);
  const username = accountOf(jidText, loaded);
  const domain = loaded.config.domain;
  const deleted = await withStore(loaded.config, async (store) => {
    const done = await store.accounts.delete(domain, username);
    // A running server reads this within seconds: it ends the account's connections and forgets it.
    if (done) await store.accounts.announce(domain, username, 'deleted');
    return done;
  });
  if (!deleted) throw new CliError(`no account ${username}@${domain}`);
  process.stdout.write(`Deleted ${username}@${domain} and all its data.\n`);
}

async function listUsers(options: ConfigOption): Promise<void> {
  const loaded = loadConfig(options.config);
  const domain = loaded.config.domain;
  const users = await withStore(loaded.config, (store) => store.accounts.list(domain));
  for (const user of users) process.stdout.write(`${user}@${domain}\n`);
}

// ---- herald cert ----

async function certCommand(files: string[], options: ConfigOption & { import?: boolean }): Promise<void> {
  const loaded = loadConfig(options.config);
  const { config, file } = loaded;
  if (config.tls.cert !== undefined || config.tls.key !== undefined) {
    throw new CliError(`tls.cert and tls.key are set in ${shown(file)}, so the certificate in ${shown(join(config.data_dir, 'tls'))} is not used: replace the files those keys name instead`);
  }
  const { certPath, keyPath } = selfSignedPaths(config.data_dir);
  let certPem: string;
  let keyPem: string;
  if (options.import) {
    if (files.length !== 2) throw new CliError('usage: herald cert --import CERT.pem KEY.pem');
    [certPem, keyPem] = files.map((path) => readText(path)) as [string, string];
    const problems = certificateProblems(certPem, keyPem, [config.domain]);
    const fatal = problems.filter((problem) => !problem.startsWith('warning:'));
    if (fatal.length > 0) throw new CliError(`not imported:\n${fatal.map((problem) => `  - ${problem}`).join('\n')}`);
    for (const warning of problems.filter((problem) => problem.startsWith('warning:'))) process.stderr.write(`${warning}\n`);
  } else {
    if (files.length > 0) throw new CliError('to use existing files: herald cert --import CERT.pem KEY.pem');
    ({ certPem, keyPem } = generateSelfSignedCertificate({ domains: defaultCertificateDomains(config.domain) }));
  }
  mkdirSync(join(config.data_dir, 'tls'), { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, keyPem, { mode: 0o600 });
  writeFileSync(certPath, certPem, { mode: 0o644 });
  const info = inspectCertificate(certPem);
  process.stdout.write(
    `${options.import ? 'Imported' : 'Generated a self-signed certificate:'} ${shown(certPath)} (key: ${shown(keyPath)})\n` +
      `  names ${info.domains.join(', ')}; valid until ${info.validTo.toISOString().slice(0, 10)}\n` +
      `  SHA-256 ${info.fingerprint256}\n` +
      'Restart Herald to use it.\n',
  );
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

// ---- herald check ----

type Level = 'ok' | 'note' | 'hint' | 'warn' | 'FAIL';

class Report {
  readonly lines: { level: Level; text: string }[] = [];
  add(level: Level, text: string): void {
    this.lines.push({ level, text });
    process.stdout.write(`  ${level.padEnd(5)} ${text.replace(/\n/g, '\n        ')}\n`);
  }
  get failures(): number {
    return this.lines.filter((line) => line.level === 'FAIL').length;
  }
}

async function check(options: ConfigOption): Promise<void> {
  const report = new Report();
  const file = resolve(options.config ?? DEFAULT_CONFIG);
  process.stdout.write(`Checking ${shown(file)}\n`);
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(options.config);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    report.add('FAIL', err.message);
    throw new CliError('1 problem found', 1);
  }
  report.add('ok', `config is valid (domain ${loaded.config.domain})`);
  checkCertificate(loaded, report);
  await checkPorts(loaded.config, report);
  await checkDns(loaded.config, report);
  const failures = report.failures;
  if (failures > 0) throw new CliError(`${failures} problem${failures === 1 ? '' : 's'} found`);
  process.stdout.write('All checks passed.\n');
}

function checkCertificate({ config, file }: LoadedConfig, report: Report): void {
  const configured = config.tls.cert !== undefined || config.tls.key !== undefined;
  if (configured && (config.tls.cert === undefined || config.tls.key === undefined)) {
    report.add('FAIL', `tls.cert and tls.key go together: set both or neither (${shown(file)})`);
    return;
  }
  const { certPath, keyPath } = configured ? { certPath: config.tls.cert!, keyPath: config.tls.key! } : selfSignedPaths(config.data_dir);
  if (!configured && !existsSync(certPath)) {
    report.add('note', `no certificate yet: \`herald start\` generates a self-signed one for ${defaultCertificateDomains(config.domain).join(', ')}`);
    return;
  }
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readText(certPath);
    keyPem = readText(keyPath);
  } catch (err) {
    report.add('FAIL', `${(err as Error).message}${configured ? ` (tls.cert / tls.key in ${shown(file)})` : ''}`);
    return;
  }
  const problems = certificateProblems(certPem, keyPem, [config.domain]);
  for (const problem of problems) {
    if (problem.startsWith('warning:')) report.add('warn', `${shown(certPath)}: ${problem.slice('warning:'.length).trim()}`);
    else report.add('FAIL', `${shown(certPath)}: ${problem}`);
  }
  const info = inspectCertificate(certPem);
  if (problems.some((problem) => !problem.startsWith('warning:'))) {
    if (!configured && info.selfSigned) report.add('hint', '`herald cert` generates a new self-signed certificate for the configured domain (so does `herald start`)');
    return;
  }
  report.add('ok', `certificate ${shown(certPath)} covers ${config.domain}, valid until ${info.validTo.toISOString().slice(0, 10)}`);
  if (info.selfSigned) {
    report.add('note', 'the certificate is self-signed: clients ask their users to trust it, and other servers may refuse to federate.\nFor a public server use one from a CA (e.g. Let\'s Encrypt) via tls.cert/tls.key or `herald cert --import`.');
  }
}

async function checkPorts(config: HeraldConfig, report: Report): Promise<void> {
  const byPort = new Map<number, ListenerKey>();
  const free: string[] = [];
  for (const key of LISTENER_KEYS) {
    const port = config.listen[key];
    if (port === 0) continue;
    const other = byPort.get(port);
    if (other) {
      report.add('FAIL', `listen.${other} and listen.${key} both use port ${port}`);
      continue;
    }
    byPort.set(port, key);
    // The component listener only runs for configured components, on its own interfaces.
    if (key === 'component' && Object.keys(config.components).length === 0) continue;
    const interfaces = key === 'http' ? config.listen.http_interfaces : key === 'component' ? config.listen.component_interfaces : config.listen.interfaces;
    const problem = await firstBindProblem(port, interfaces);
    if (problem) report.add('FAIL', `port ${port} (listen.${key}): ${problem}`);
    else free.push(`${port} (${key})`);
  }
  if (free.length > 0) report.add('ok', `ports free: ${free.join(', ')}`);
}

/** Tries to bind each address the server would; undefined when all are free. */
async function firstBindProblem(port: number, interfaces: string[]): Promise<string | undefined> {
  const addresses = interfaces.flatMap((name) => (name === 'localhost' ? ['127.0.0.1', '::1'] : name === '*' ? [undefined] : [name]));
  for (const address of addresses) {
    const code = await tryBind(port, address);
    if (code === undefined) continue;
    if (code === 'EADDRNOTAVAIL' && address === '::1') continue; // IPv6 off: the server skips it too
    const where = address ?? 'all addresses';
    if (code === 'EADDRINUSE') return `in use on ${where}. Is Herald (or another server) already running?`;
    if (code === 'EACCES') return `permission denied on ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    if (code === 'EADDRNOTAVAIL') return `${where} is not an address of this machine (listen.interfaces)`;
    return `cannot bind on ${where} (${code})`;
  }
  return undefined;
}

function tryBind(port: number, host: string | undefined): Promise<string | undefined> {
  return new Promise((resolvePromise) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolvePromise(err.code ?? 'EUNKNOWN'));
    probe.listen({ port, host, ipv6Only: host === '::1', exclusive: true }, () => probe.close(() => resolvePromise(undefined)));
  });
}

/** Names no public DNS knows, where SRV lookups would only time out or mislead. */
function isPrivateName(domain: string): boolean {
  return isIP(domain) !== 0 || !domain.includes('.') || /\.(localhost|test|local|example|invalid|internal|lan|home\.arpa)$/.test(domain);
}

const DNS_TIMEOUT_MS = 2500;

async function checkDns(config: HeraldConfig, report: Report): Promise<void> {
  const domain = config.domain;
  if (isPrivateName(domain)) {
    report.add('note', `DNS checks skipped: ${domain} is not a public DNS name`);
    return;
  }
  const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: 1 });
  // XEP-0368 / RFC 6120 §3.2: where clients (STARTTLS, direct TLS) and servers find us.
  const services: { name: string; port: number; key: ListenerKey }[] = [
    { name: '_xmpp-client._tcp', port: config.listen.c2s, key: 'c2s' },
    { name: '_xmpps-client._tcp', port: config.listen.c2s_direct_tls, key: 'c2s_direct_tls' },
    { name: '_xmpp-server._tcp', port: config.listen.s2s, key: 's2s' },
  ];
  const missing: string[] = [];
  let found = 0;
  for (const service of services) {
    if (service.port === 0) continue;
    const record = `${service.name}.${domain}`;
    try {
      const targets = await resolver.resolveSrv(record);
      found++;
      const described = targets.map((t) => `${t.name}:${t.port}`).join(', ');
      if (targets.some((t) => t.port === service.port)) report.add('ok', `${record} → ${described}`);
      else report.add('warn', `${record} → ${described}, but listen.${service.key} is ${service.port}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') {
        missing.push(`${record}. 3600 IN SRV 0 5 ${service.port} ${domain}.`);
        continue;
      }
      report.add('warn', `DNS lookups failed (${code ?? (err as Error).message}): is this machine offline? Skipping the DNS checks.`);
      return;
    }
  }
  if (missing.length > 0) {
    report.add('hint', `add these DNS records (SRV records are optional when ${domain} itself points here and the ports are the standard ones):\n  ${missing.join('\n  ')}`);
  }
  if (found === 0 && !(await resolvesToAddress(resolver, domain))) {
    report.add('FAIL', `${domain} has no SRV, A or AAAA records: clients and other servers cannot find this server`);
  }
}

async function resolvesToAddress(resolver: Resolver, domain: string): Promise<boolean> {
  const lookups = await Promise.allSettled([resolver.resolve4(domain), resolver.resolve6(domain)]);
  return lookups.some((result) => result.status === 'fulfilled' && result.value.length > 0);
}

// ---- herald import / export (XEP-0227; docs/migrate.md) ----

/**
 * Imports XEP-0227 files into the configured domain, all or nothing. Refused while the server (or
 * another herald command) has the database open: the import holds it alone until it commits.
 */
async function importCommand(files: string[], options: ConfigOption & { replace?: boolean; dryRun?: boolean }): Promise<void> {
  const { config } = loadConfig(options.config);
  const progress = process.stderr.isTTY ? (count: number) => process.stderr.write(`\r${count.toLocaleString('en-US')} accounts…`) : undefined;
  const store = openStore(config);
  try {
    const report = await importPie(store, files, {
      domain: config.domain,
      replace: options.replace,
      dryRun: options.dryRun,
      onProgress: progress,
      maxStanzaBytes: config.limits.max_stanza_size,
    });
    if (progress) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${formatImportReport(report, shown).join('\n')}\n`);
  } catch (err) {
    if (progress) process.stderr.write('\r\x1b[K');
    if (err instanceof PieFormatError) throw new CliError(`${shown(err.file)}:${err.line}: ${err.reason}\nNothing was imported.`);
    if (err instanceof PieImportError) throw new CliError(`${err.message}\nNothing was imported.`);
    throw err;
  } finally {
    await store.close();
  }
}

/** Exports the configured domain as XEP-0227: to FILE, to stdout, or one file per user (--split). */
async function exportCommand(file: string | undefined, options: ConfigOption & { ejabberd?: boolean; split?: string }): Promise<void> {
  const { config } = loadConfig(options.config);
  if (file !== undefined && options.split !== undefined) throw new CliError('give FILE or --split DIR, not both');
  const exportOptions = { domain: config.domain, ejabberd: options.ejabberd };
  const store = openStore(config);
  let report: ExportReport;
  try {
    if (options.split !== undefined) {
      report = await exportPieSplit(store, resolve(options.split), exportOptions).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST' ? new CliError(`${err.path ?? options.split} exists already: export into an empty directory`) : err;
      });
    } else if (file === undefined) {
      report = await exportPie(store, streamSink(process.stdout), exportOptions);
    } else {
      report = await exportToFile(store, file, exportOptions);
    }
  } finally {
    await store.close();
  }
  const where = options.split !== undefined ? `${shown(resolve(options.split))}/ (one file per user)` : file === undefined ? 'standard output' : shown(resolve(file));
  process.stderr.write(`Exported ${report.accounts} account${report.accounts === 1 ? '' : 's'} of ${config.domain} to ${where}.\n`);
  for (const skipped of report.skipped) process.stderr.write(`  left out: ${skipped}\n`);
}

/** XEP-0227 §7: the file holds password equivalents, so only its owner may read it; never overwritten. */
async function exportToFile(store: ReturnType<typeof openStore>, file: string, options: { domain: string; ejabberd?: boolean }): Promise<ExportReport> {
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  try {
    await once(out, 'open');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EEXIST' ? `${file} exists already: remove it or choose another name` : `cannot write ${file}: ${(err as Error).message}`);
  }
  try {
    const report = await exportPie(store, streamSink(out), options);
    await new Promise<void>((resolvePromise, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolvePromise())));
    return report;
  } catch (err) {
    out.destroy();
    rmSync(file, { force: true }); // no half-written export left behind
    throw err;
  }
}

// ---- herald push inbox ----

/**
 * Prints what the sandbox push backend received, asking the running server's HTTP listener
 * (GET /push/inbox[/NODE], docs/push.md): all sandbox nodes, or one.
 */
async function pushInbox(node: string | undefined, options: ConfigOption & { json?: boolean }): Promise<void> {
  const { config, file } = loadConfig(options.config);
  if (config.listen.http === 0) throw new CliError(`the HTTP listener is off (listen.http: 0 in ${shown(file)}): the sandbox inbox is served there`);
  const url = `http://${localHttpHost(config.listen.http_interfaces)}:${config.listen.http}/push/inbox${node === undefined ? '' : `/${encodeURIComponent(node)}`}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message;
    throw new CliError(`cannot reach ${url} (${cause}): is Herald running with this config?`);
  }
  const text = await response.text();
  if (response.status === 404) {
    throw new CliError(node === undefined ? 'this server has no sandbox inbox (modules.appserver.sandbox.enabled is false?)' : `no sandbox registration has the node ${node}`);
  }
  if (!response.ok) throw new CliError(`${url} answered HTTP ${response.status}: ${text.trim()}`);
  if (options.json) {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    return;
  }
  const parsed = JSON.parse(text) as SandboxPush[] | Record<string, SandboxPush[]>;
  const byNode = Array.isArray(parsed) ? { [node!]: parsed } : parsed;
  if (Object.keys(byNode).length === 0) process.stdout.write('No sandbox registrations yet (register a device with register-push-sandbox).\n');
  for (const [name, pushes] of Object.entries(byNode)) {
    process.stdout.write(`${name}: ${pushes.length === 0 ? 'no pushes yet' : pushes.length === 1 ? '1 push' : `${pushes.length} pushes`}\n`);
    for (const push of pushes) process.stdout.write(`  ${push.received}  ${JSON.stringify(push.payload)}\n`);
  }
}

/** An address of this machine the HTTP listener answers on (listen.http_interfaces). */
function localHttpHost(interfaces: string[]): string {
  const first = interfaces[0] ?? 'localhost';
  if (first === 'localhost' || first === '*' || first === '0.0.0.0') return '127.0.0.1';
  if (first === '::') return '[::1]';
  return isIP(first) === 6 ? `[${first}]` : first;
}

// ---- herald appserver ----

interface AppServerCliOptions extends ConfigOption {
  component: string;
  domain: string;
  secret?: string;
  secretFile?: string;
  dataDir?: string;
  http?: string;
}

/**
 * The app server as an XEP-0114 component of another XMPP server (bin/appserver.ts): in the
 * foreground, reconnecting when the connection drops, stopped by SIGTERM/SIGINT like `start`.
 */
async function appserver(options: AppServerCliOptions): Promise<void> {
  const loaded = options.config !== undefined ? loadConfig(options.config) : undefined;
  let domain: string;
  try {
    domain = componentDomain(options.domain);
    hostPort(options.component);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const secret = options.secret ?? (options.secretFile !== undefined ? readText(options.secretFile).split('\n')[0]!.trim() : undefined);
  if (secret === undefined || secret === '') {
    throw new CliError(`give the component's shared secret with --secret or --secret-file (the one configured for ${domain} on the other server)`);
  }
  let httpPort: number | undefined;
  if (options.http !== undefined) {
    httpPort = Number(options.http);
    if (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535) throw new CliError(`--http ${options.http}: a port (0 for none)`);
  }
  const config = loaded?.config;
  const log = createLogger(config?.log_level ?? 'info');
  let app: AppServer;
  try {
    app = await startAppServer({ component: options.component, domain, secret, config, dataDir: options.dataDir !== undefined ? resolve(options.dataDir) : undefined, httpPort, log });
  } catch (err) {
    if (loaded) throw startupError(err, loaded);
    throw new CliError(`cannot start: ${(err as Error).message}`);
  }
  stopOnSignals(app, log);
}

// ---- herald invite ----

interface InviteCliOptions extends ConfigOption {
  rosterOf?: string;
  expires?: string;
  username?: string;
}

/**
 * Prints an invitation (XEP-0401): an xmpp: URI with which someone creates an account here from
 * their client even while registration is closed, and with --roster-of also becomes USER's contact
 * (both subscribed). The single-use token goes into the database the server reads, so this works
 * while it runs, like adduser.
 */
async function invite(options: InviteCliOptions): Promise<void> {
  const loaded = loadConfig(options.config);
  const { config, file } = loaded;
  const domain = config.domain;
  const off = ['invites', 'register'].find((name) => config.modules_disabled.includes(name));
  if (off !== undefined) throw new CliError(`invitations need the ${off} module, which modules_disabled turns off in ${shown(file)}`);
  const settings = invitesConfig.parse(config.modules[invitesModule.name] ?? {});
  let ttl = settings.expiry;
  if (options.expires !== undefined) {
    try {
      ttl = parseDuration(options.expires);
    } catch (err) {
      throw new CliError(`--expires ${options.expires}: ${(err as Error).message}`);
    }
    if (ttl <= 0) throw new CliError(`--expires ${options.expires}: must be longer than nothing`);
  }
  const inviter = options.rosterOf !== undefined ? accountOf(options.rosterOf, loaded) : undefined;
  const username = options.username !== undefined ? accountOf(options.username, loaded) : undefined;
  if (inviter !== undefined && username !== undefined) throw new CliError('--username is for account invitations: with --roster-of the invitee chooses a name');
  const issued = await withStore(config, async (store) => {
    if (inviter !== undefined && !(await store.accounts.exists(domain, inviter))) throw new CliError(`${inviter}@${domain} does not exist (\`herald users\` lists the accounts)`);
    if (username !== undefined && (await store.accounts.exists(domain, username))) throw new CliError(`${username}@${domain} exists already`);
    const tokens = store.map<Invite>(domain, invitesModule.name, INVITE_TOKENS);
    const common = { register: true, ttl, landingPage: settings.landing_page };
    return issueInvite(tokens, domain, inviter !== undefined ? { kind: 'contact', inviter, ...common } : { kind: 'account', username, ...common });
  });
  process.stdout.write(`${issued.uri}\n`);
  if (issued.landingUrl !== undefined) process.stdout.write(`${issued.landingUrl}\n`);
  const what = inviter !== undefined ? `one new account (or an existing one) that becomes ${inviter}@${domain}'s contact` : `one new account${username !== undefined ? ` named ${username}@${domain}` : ''}`;
  process.stderr.write(`Valid for ${what}, until ${dateTime(issued.expires)}. Open the URI with an XMPP client (Conversations, Dino, Gajim, Monal, ...).\n`);
}

// ---- commands ----

function program(): Command {
  const cli = new Command('herald')
    .description('Herald: an XMPP server with mobile push built in')
    .version(pkg.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError()
    .addHelpText('after', `
Examples:
  herald start                                  first start: writes ./herald.yml, data/, a certificate
  herald adduser you@localhost                  asks for a password (twice, not shown)
  echo "$PASS" | herald adduser you@localhost --password-stdin --config /etc/herald/herald.yml
  herald check                                  config, certificate, ports, DNS
  herald invite --roster-of you@localhost       an invitation link: a new account that is your contact
  herald import prosody-export/                 move accounts over from Prosody or ejabberd (docs/migrate.md)
  herald export backup.xml                      accounts, rosters, vCards, ... as XEP-0227
  herald push inbox                             what the sandbox push backend received
  herald appserver --component 127.0.0.1:5347 --domain push.example.org --secret-file secret.txt
                                                the app server alone, as a component of Prosody & co.

Docs: README.md, docs/config.md (every config key).`);
  const configOption = ['-c, --config <file>', `config file (default: ./${DEFAULT_CONFIG})`] as const;

  cli.command('start')
    .description(`run the server in the foreground (logs to stdout; SIGTERM/SIGINT stop it cleanly). Without --config, a missing ./${DEFAULT_CONFIG} is written from the example`)
    .option(...configOption)
    .action((options: ConfigOption) => start(options));
  cli.command('adduser')
    .description('create an account (works while the server runs; the account can log in at once)')
    .argument('<jid>', 'user@domain, or just user for the configured domain')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option(...configOption)
    .action((jid: string, options: ConfigOption & { passwordStdin?: boolean }) => addUser(jid, options));
  cli.command('passwd')
    .description("change an account's password")
    .argument('<jid>', 'user@domain, or just user')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option(...configOption)
    .action((jid: string, options: ConfigOption & { passwordStdin?: boolean }) => changePassword(jid, options));
  cli.command('deluser')
    .description('delete an account and everything stored for it (roster, offline messages, vCard, ...)')
    .argument('<jid>', 'user@domain, or just user')
    .option(...configOption)
    .action((jid: string, options: ConfigOption) => deleteUser(jid, options));
  cli.command('users')
    .description('list the accounts, one JID per line')
    .option(...configOption)
    .action((options: ConfigOption) => listUsers(options));
  cli.command('cert')
    .description('generate a new self-signed certificate in data_dir/tls, or import one with --import CERT.pem KEY.pem')
    .argument('[files...]', 'with --import: the certificate (chain) and the private key, PEM')
    .option('--import', 'copy CERT.pem and KEY.pem into data_dir/tls after checking they match and cover the domain')
    .option(...configOption)
    .action((files: string[], options: ConfigOption & { import?: boolean }) => certCommand(files, options));
  cli.command('import')
    .description('import XEP-0227 files (exports of Prosody, ejabberd or Herald) into the domain; all or nothing. Stop the server first')
    .argument('<files...>', 'XEP-0227 files (XIncludes are followed), or directories of them (Prosody writes one file per user)')
    .option('--replace', 'replace accounts that exist already, with everything stored for them (default: keep them, skip their data in the file)')
    .option('--dry-run', 'read and check everything, report, write nothing')
    .option(...configOption)
    .action((files: string[], options: ConfigOption & { replace?: boolean; dryRun?: boolean }) => importCommand(files, options));
  cli.command('export')
    .description("export the domain's accounts as XEP-0227 (SCRAM keys, rosters, vCards, private XML, offline messages, PEP); works while the server runs")
    .argument('[file]', 'write here (created readable by its owner only; never overwritten); default: standard output')
    .option('--split <dir>', 'one file per user, DIR/user@domain.xml: the layout Prosody\'s mod_storage_xep0227 reads')
    .option('--ejabberd', "SCRAM values base64-encoded twice, as ejabberd's import_piefxis expects")
    .option(...configOption)
    .action((file: string | undefined, options: ConfigOption & { ejabberd?: boolean; split?: string }) => exportCommand(file, options));
  cli.command('check')
    .description('check the config, the certificate, that the ports are free, and DNS (exit 1 when something is wrong)')
    .option(...configOption)
    .action((options: ConfigOption) => check(options));
  cli.command('appserver')
    .description('run only the push app server, as an XEP-0114 component of another XMPP server (Prosody, ejabberd, ...; docs/components.md)')
    .requiredOption('--component <host:port>', "the other server's component port, e.g. 127.0.0.1:5347")
    .requiredOption('--domain <domain>', 'the component domain configured there, e.g. push.example.org')
    .option('--secret <secret>', 'the shared secret configured there for that domain')
    .option('--secret-file <file>', 'read the secret from the first line of this file instead (keeps it out of `ps`)')
    .option('--data-dir <dir>', 'where appserver.sqlite is kept (default: data_dir of --config, else ./data)')
    .option('--http <port>', 'serve the sandbox inbox (GET /push/inbox) on this port (default: listen.http of --config, else none)')
    .option('-c, --config <file>', 'a config file for the backends (modules.appserver), limits, log_level, data_dir and listen.http; none by default')
    .action((options: AppServerCliOptions) => appserver(options));
  cli.command('invite')
    .description('print an invitation URI (XEP-0401): someone creates an account with it, even while registration is closed (works while the server runs)')
    .option('--roster-of <jid>', 'the new account and this user become contacts (an xmpp:USER?roster URI; an existing account may use it too)')
    .option('--username <name>', 'the account invited must have this name (reserved until the invitation expires)')
    .option('--expires <duration>', 'how long the invitation is valid, e.g. 7d, 12h (default: modules.invites.expiry, 7 days)')
    .option(...configOption)
    .action((options: InviteCliOptions) => invite(options));
  const push = cli.command('push').description('push notifications (docs/push.md)');
  push.command('inbox')
    .description('print what the sandbox push backend received, for one node or all (asks the running server on listen.http)')
    .argument('[node]', 'a node from register-push-sandbox; without it, every sandbox node')
    .option('--json', 'print the JSON the server answered')
    .option(...configOption)
    .action((node: string | undefined, options: ConfigOption & { json?: boolean }) => pushInbox(node, options));
  return cli;
}

try {
  await program().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CliError) {
    process.stderr.write(`herald: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`herald: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
