// The `herald` command as admins and service managers use it: the compiled CLI run as a child
// process (node dist/bin/herald.js) in a temporary directory, with a real server where needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { XmppClient } from '../../server/client.js';
import { generateSelfSignedCertificate } from '../../server/tls/selfsigned.js';
import { EXAMPLE_FILE } from '../../bin/config-docs.js';
import { CLI, runCli as run, type CliResult as RunResult } from './cli-helpers.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

interface TestContextLike {
  after(fn: () => unknown): void;
}

interface Daemon {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `herald start ...` and resolves once it logged 'server started' (rejects if it exits first). */
async function startDaemon(t: TestContextLike, args: string[], cwd: string): Promise<Daemon> {
  const child = spawn(process.execPath, [CLI, 'start', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolvePromise, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('"msg":"server started"')) resolvePromise();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then((code) => reject(new Error(`herald start exited with ${code} before starting:\n${stderr}\n${stdout}`)));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Exit 0, or a failure that shows what the CLI said. */
function succeeds(result: RunResult): RunResult {
  assert.equal(result.code, 0, `exit ${result.code}:\n${result.stderr}${result.stdout}`);
  return result;
}

function tempDir(t: TestContextLike): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A port free right now on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
  const { port } = server.address() as { port: number };
  await new Promise((resolvePromise) => server.close(resolvePromise));
  return port;
}

/** Occupies a port on 127.0.0.1 until the test ends. */
async function occupy(t: TestContextLike, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolvePromise);
  });
  t.after(() => server.close());
  return server;
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const probe = createServer();
    probe.once('error', () => resolvePromise(false));
    probe.listen({ port }, () => probe.close(() => resolvePromise(true)));
  });
}

/** A config on 127.0.0.1 with only the client port open (plus `extra` YAML lines). */
function writeConfig(dir: string, c2s: number, extra = '', name = 'herald.yml'): string {
  const file = join(dir, name);
  writeFileSync(file, `domain: localhost
data_dir: ./data
listen:
  interfaces: ['127.0.0.1']
  c2s: ${c2s}
  c2s_direct_tls: 0
  s2s: 0
  component: 0
  http: 0
  https: 0
${extra}`);
  return file;
}

async function login(port: number, username: string, password: string): Promise<XmppClient> {
  return XmppClient.login({ port, domain: 'localhost', username, password });
}

async function loginFails(port: number, username: string, password: string): Promise<boolean> {
  return login(port, username, password).then(
    (client) => {
      client.dropTcp();
      return false;
    },
    () => true,
  );
}

// Every suite works in its own temporary directory with its own ports, so they run side by side.
describe('herald CLI', { concurrency: true }, () => {
  describe('cli: herald start', { concurrency: true }, () => {
    test('first start without herald.yml → writes it from the example, creates data/, prints the adduser hint; SIGTERM → exit 0', async (t) => {
      const dir = tempDir(t);
      // The example listens on the standard ports; when something else holds them, the write still
      // happens and the start must fail clearly instead.
      const portsFree = (await isFree(5222)) && (await isFree(5223));
      if (portsFree) {
        const daemon = await startDaemon(t, [], dir);
        assert.equal(readFileSync(join(dir, 'herald.yml'), 'utf8'), readFileSync(EXAMPLE_FILE, 'utf8'));
        assert.ok(existsSync(join(dir, 'data', 'herald.sqlite')));
        assert.ok(existsSync(join(dir, 'data', 'tls', 'herald.crt')));
        assert.match(daemon.stdout(), /"msg":"generated a self-signed certificate"/);
        daemon.child.kill('SIGTERM');
        assert.equal(await daemon.exited, 0, daemon.stderr());
        // stderr is complete once the process has exited.
        assert.match(daemon.stderr(), /Wrote herald\.yml from the example/);
        assert.match(daemon.stderr(), /npx herald adduser you@localhost\n/);
      } else {
        const result = await run(['start'], dir);
        assert.equal(result.code, 1);
        assert.ok(existsSync(join(dir, 'herald.yml')));
        assert.match(result.stderr, /cannot listen on port 522[23].*already in use/);
      }
    });

    test('SIGTERM with a client connected → the client gets <system-shutdown/>, the process exits 0', async (t) => {
      const dir = tempDir(t);
      const port = await freePort();
      writeConfig(dir, port);
      // adduser before the server ever ran: it creates the database itself.
      succeeds(await run(['adduser', 'romeo@localhost', '--password-stdin'], dir, 'wherefore\n'));
      const daemon = await startDaemon(t, ['--config', 'herald.yml'], dir);
      const romeo = await login(port, 'romeo', 'wherefore');
      daemon.child.kill('SIGTERM');
      await romeo.expectStreamError('system-shutdown');
      assert.equal(await daemon.exited, 0, daemon.stderr());
      assert.match(daemon.stdout(), /"msg":"server stopped"/);
      assert.doesNotMatch(daemon.stderr(), /adduser/, 'no first-start hint once an account exists');
    });

    test('--config FILE that does not exist → exit 1, and no file is written', async (t) => {
      const dir = tempDir(t);
      const result = await run(['start', '--config', 'missing.yml'], dir);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /missing\.yml: file not found/);
      assert.equal(existsSync(join(dir, 'missing.yml')), false);
    });

    test('an unknown key and a bad module setting → exit 1 with FILE:LINE: key.path', async (t) => {
      const dir = tempDir(t);
      writeConfig(dir, 0, 'c2s:\n  require_encryption: true\n  bogus_key: 1\n');
      const unknown = await run(['start', '--config', 'herald.yml'], dir);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /herald\.yml:13: c2s\.bogus_key: unknown key/);
      writeConfig(dir, 0, 'modules:\n  register:\n    min_password_length: none\n');
      const module = await run(['start', '--config', 'herald.yml'], dir);
      assert.equal(module.code, 1);
      assert.match(module.stderr, /herald\.yml:13: modules\.register\.min_password_length: /);
    });

    test('the client port in use → exit 1 naming the port and the key', async (t) => {
      const dir = tempDir(t);
      const port = await freePort();
      await occupy(t, port);
      writeConfig(dir, port);
      const result = await run(['start', '--config', 'herald.yml'], dir);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`cannot listen on port ${port} \\(listen\\.c2s in herald\\.yml\\): it is already in use`));
    });
  });

  describe('cli: accounts', { concurrency: true }, () => {
    test('adduser --password-stdin while the server runs → logs in at once; users, passwd, deluser', async (t) => {
      const dir = tempDir(t);
      const port = await freePort();
      writeConfig(dir, port, '', 'xmpp.yml');
      const daemon = await startDaemon(t, ['--config', 'xmpp.yml'], dir);

      const added = await run(['adduser', 'juliet@localhost', '--password-stdin', '--config', 'xmpp.yml'], dir, 'balcony-1\nignored second line\n');
      assert.equal(added.code, 0, added.stderr);
      const juliet = await login(port, 'juliet', 'balcony-1');
      assert.equal(juliet.jid.startsWith('juliet@localhost/'), true);
      juliet.dropTcp();

      // Without --password-stdin and with stdin not a terminal, the first line is the password too.
      succeeds(await run(['adduser', 'nurse', '--config', 'xmpp.yml'], dir, 'nurse-pw\n'));
      const users = succeeds(await run(['users', '--config', 'xmpp.yml'], dir));
      assert.equal(users.stdout, 'juliet@localhost\nnurse@localhost\n');

      const duplicate = await run(['adduser', 'juliet@localhost', '--password-stdin', '--config', 'xmpp.yml'], dir, 'other\n');
      assert.equal(duplicate.code, 1);
      assert.match(duplicate.stderr, /juliet@localhost exists already/);
      const elsewhere = await run(['adduser', 'romeo@example.com', '--password-stdin', '--config', 'xmpp.yml'], dir, 'x\n');
      assert.equal(elsewhere.code, 1);
      assert.match(elsewhere.stderr, /example\.com is not served here/);
      const empty = await run(['adduser', 'romeo', '--password-stdin', '--config', 'xmpp.yml'], dir, '\n');
      assert.equal(empty.code, 1);

      succeeds(await run(['passwd', 'juliet@localhost', '--password-stdin', '--config', 'xmpp.yml'], dir, 'balcony-2\n'));
      assert.equal(await loginFails(port, 'juliet', 'balcony-1'), true);
      (await login(port, 'juliet', 'balcony-2')).dropTcp();
      assert.equal((await run(['passwd', 'tybalt', '--password-stdin', '--config', 'xmpp.yml'], dir, 'x\n')).code, 1);

      // Deleted by another process while online: the server hears of it (AccountStore.announce)
      // and ends the connection as if it had deleted the account itself.
      const online = await login(port, 'juliet', 'balcony-2');
      const deleted = await run(['deluser', 'juliet@localhost', '--config', 'xmpp.yml'], dir);
      assert.equal(deleted.code, 0);
      await online.expectStreamError('not-authorized', 10_000);
      assert.equal(await loginFails(port, 'juliet', 'balcony-2'), true);
      assert.equal(succeeds(await run(['users', '--config', 'xmpp.yml'], dir)).stdout, 'nurse@localhost\n');
      assert.equal((await run(['deluser', 'juliet@localhost', '--config', 'xmpp.yml'], dir)).code, 1);
      daemon.child.kill('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr());
      assert.match(daemon.stderr(), /npx herald adduser you@localhost --config xmpp\.yml\n/);
    });

    test('a command other than start without herald.yml → exit 1 saying how to create it', async (t) => {
      const dir = tempDir(t);
      const result = await run(['users'], dir);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /herald\.yml not found: run `herald start`/);
      assert.equal(existsSync(join(dir, 'herald.yml')), false);
    });
  });

  describe('cli: herald check', { concurrency: true }, () => {
    test('a good setup (certificate generated, ports free, localhost) → exit 0', async (t) => {
      const dir = tempDir(t);
      writeConfig(dir, await freePort());
      succeeds(await run(['cert'], dir));
      const result = await run(['check'], dir);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /ok {4}config is valid/);
      assert.match(result.stdout, /ok {4}certificate data\/tls\/herald\.crt covers localhost/);
      assert.match(result.stdout, /ok {4}ports free: \d+ \(c2s\)/);
      assert.match(result.stdout, /DNS checks skipped/);
      assert.match(result.stdout, /All checks passed/);
    });

    test('a broken config → exit 1 with FILE:LINE and the key', async (t) => {
      const dir = tempDir(t);
      writeFileSync(join(dir, 'herald.yml'), 'domain: localhost\nlisten:\n  c2s: many\n');
      const result = await run(['check'], dir);
      assert.equal(result.code, 1);
      assert.match(result.stdout, /FAIL {2}herald\.yml:3: listen\.c2s: /);
    });

    test('a port in use and a certificate for another domain → exit 1 listing both', async (t) => {
      const dir = tempDir(t);
      const port = await freePort();
      await occupy(t, port);
      writeConfig(dir, port);
      succeeds(await run(['cert'], dir));
      writeFileSync(join(dir, 'herald.yml'), readFileSync(join(dir, 'herald.yml'), 'utf8').replace('domain: localhost', 'domain: example.test'));
      const result = await run(['check'], dir);
      assert.equal(result.code, 1);
      assert.match(result.stdout, new RegExp(`FAIL {2}port ${port} \\(listen\\.c2s\\): in use`));
      assert.match(result.stdout, /FAIL {2}data\/tls\/herald\.crt: certificate does not cover example\.test/);
      assert.match(result.stderr, /2 problems found/);
    });
  });

  describe('cli: herald cert', { concurrency: true }, () => {
    test('cert → a new self-signed certificate each time; --import takes a matching pair', async (t) => {
      const dir = tempDir(t);
      writeConfig(dir, 0);
      const first = await run(['cert'], dir);
      const second = await run(['cert'], dir);
      assert.equal(first.code, 0);
      const fingerprint = (text: string) => /SHA-256 ([0-9A-F:]+)/.exec(text)?.[1];
      assert.notEqual(fingerprint(first.stdout), fingerprint(second.stdout));
      assert.equal(statSync(join(dir, 'data', 'tls', 'herald.key')).mode & 0o777, 0o600);

      const mine = generateSelfSignedCertificate({ domains: ['localhost'] });
      writeFileSync(join(dir, 'mine.crt'), mine.certPem);
      writeFileSync(join(dir, 'mine.key'), mine.keyPem);
      const imported = await run(['cert', '--import', 'mine.crt', 'mine.key'], dir);
      assert.equal(imported.code, 0, imported.stderr);
      assert.equal(readFileSync(join(dir, 'data', 'tls', 'herald.crt'), 'utf8'), mine.certPem);
    });

    test('--import with a key of another certificate, or for another domain → refused, nothing replaced', async (t) => {
      const dir = tempDir(t);
      writeConfig(dir, 0);
      succeeds(await run(['cert'], dir));
      const before = readFileSync(join(dir, 'data', 'tls', 'herald.crt'), 'utf8');
      const one = generateSelfSignedCertificate({ domains: ['localhost'] });
      const other = generateSelfSignedCertificate({ domains: ['elsewhere.example'] });
      writeFileSync(join(dir, 'one.crt'), one.certPem);
      writeFileSync(join(dir, 'other.key'), other.keyPem);
      writeFileSync(join(dir, 'other.crt'), other.certPem);
      const mismatched = await run(['cert', '--import', 'one.crt', 'other.key'], dir);
      assert.equal(mismatched.code, 1);
      assert.match(mismatched.stderr, /private key does not match the certificate/);
      const wrongDomain = await run(['cert', '--import', 'other.crt', 'other.key'], dir);
      assert.equal(wrongDomain.code, 1);
      assert.match(wrongDomain.stderr, /does not cover localhost/);
      assert.equal(readFileSync(join(dir, 'data', 'tls', 'herald.crt'), 'utf8'), before);
    });
  });

  describe('cli: entry point', { concurrency: true }, () => {
    test('--version prints the package version; the compiled entry starts with a node shebang', async (t) => {
      const dir = tempDir(t);
      const result = await run(['--version'], dir);
      assert.equal(result.stdout.trim(), pkg.version);
      assert.ok(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'));
    });
  });
});
