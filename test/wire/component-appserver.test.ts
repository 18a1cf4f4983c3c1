// `herald appserver` (bin/appserver.ts): Herald's app server as an XEP-0114 component of another
// server, here a second Herald ("A", domain localhost, component apps.localhost configured). A's
// users register devices at apps.localhost, enable push with the jid/node/secret they get, and A's
// push module publishes to apps.localhost over the component stream: the component-mode Herald's
// sandbox backend receives the push. Also: disco, a dropped connection, and the CLI.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestServer, XmppClient } from '../../bin/testing.js';
import { startAppServer, type AppServer } from '../../bin/appserver.js';
import { createLogger, type LogLevel } from '../../server/log.js';
import { CMD, SM, commandForm, commandIq, enableSm, handled, registerDevice } from './appserver-helpers.js';
import { componentServer, freePort, sleep, until } from './component-helpers.js';
import { CLI, runCli } from './cli-helpers.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const APPS = 'apps.localhost';
const APPS_SECRET = 'push-secret';
const INFO = 'http://jabber.org/protocol/disco#info';

interface Setup {
  a: TestServer;
  app: AppServer;
  httpPort: number;
}

/** Server A with the component apps.localhost, and a component-mode app server connected to it. */
async function setup(t: { after(fn: () => unknown): void }): Promise<Setup> {
  const a = await componentServer(t, { [APPS]: { secret: APPS_SECRET } });
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-appserver-'));
  const httpPort = await freePort();
  const app = await startAppServer({
    component: `127.0.0.1:${a.componentPort}`,
    domain: APPS,
    secret: APPS_SECRET,
    dataDir,
    httpPort,
    log: createLogger((process.env.HERALD_TEST_LOG as LogLevel | undefined) ?? 'silent'),
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  });
  t.after(async () => {
    await app.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await app.link.whenConnected();
  return { a, app, httpPort };
}

async function enablePush(client: XmppClient, jid: string, node: string, secret: string): Promise<void> {
  const answer = await client.iq(
    `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='${jid}' node='${node}'><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>${secret}</value></field></x></enable></iq>`,
  );
  assert.equal(answer.attrs.type, 'result', answer.toString());
}

async function hibernated(server: TestServer, bare: string, resource: string): Promise<void> {
  await until(() => server.server.sessions.get(bare, resource)?.state === 'hibernated', `${bare}/${resource} to hibernate`);
}

describe('app server as a component (herald appserver)', () => {
  test('a user of A registers at the component, enables push, drops TCP; messages → a push in the component sandbox inbox; resume → each message once', async (t) => {
    const { a, app, httpPort } = await setup(t);
    const alice = await a.login('alice', { resource: 'phone' });
    const registered = await registerDevice(alice, { token: 'device-1' }, 'sandbox', APPS);
    assert.equal(registered.jid, APPS, 'the push service is the component domain');
    await enablePush(alice, registered.jid, registered.node, registered.secret);
    alice.send(`<presence/>`);
    const { id, mark } = await enableSm(alice);
    alice.dropTcp();
    await hibernated(a, 'alice@localhost', 'phone');

    const bob = await a.login('bob');
    bob.send(`<message to='alice@localhost' type='chat' id='m1'><body>one</body></message>`);
    bob.send(`<message to='alice@localhost' type='chat' id='m2'><body>two</body></message>`);
    const push = await app.server.service('sandboxInbox')!.next(registered.node, { timeoutMs: 5000 });
    assert.equal(push.node, registered.node);
    assert.ok((push.payload.messageCount ?? 0) >= 1, JSON.stringify(push));
    assert.equal(push.payload.lastMessageBody, undefined, 'no body by default');

    // The same over the component-mode server's HTTP inbox.
    const response = await fetch(`http://127.0.0.1:${httpPort}/push/inbox/${registered.node}`);
    assert.equal(response.status, 200);
    assert.ok(((await response.json()) as unknown[]).length >= 1);

    const resumed = await a.connect();
    await resumed.startTls();
    await resumed.authenticate('alice', 'password');
    resumed.send(`<resume xmlns='${SM}' previd='${id}' h='${handled(alice, mark)}'/>`);
    await resumed.waitFor(`<resumed xmlns='${SM}' previd='${id}'/>`);
    const bodies: string[] = [];
    while (bodies.length < 2) {
      const el = await resumed.next();
      if (el.name === 'message' && el.getChild('body')) bodies.push(el.getChildText('body') ?? '');
    }
    assert.deepEqual(bodies, ['one', 'two']);
    resumed.send(`<r xmlns='${SM}'/>`);
    await resumed.waitFor(`<a xmlns='${SM}'/>`);
    assert.equal(resumed.received.filter((el) => el.name === 'message').length, 2, 'each message exactly once');
  });

  test('disco#info of the component domain → app-server/herald and pubsub/push, push and commands features', async (t) => {
    const { a } = await setup(t);
    const alice = await a.login('alice');
    const answer = await iqExpect(
      alice,
      `<iq type='get' to='${APPS}' id='d1'><query xmlns='${INFO}'/></iq>`,
      `<iq type='result' from='${APPS}' id='d1'><query xmlns='${INFO}'><identity category='pubsub' type='push'/><identity category='app-server' type='herald'/></query></iq>`,
    );
    const features = answer.getChild('query', INFO)!.getChildren('feature').map((f) => f.attrs.var);
    for (const feature of ['urn:xmpp:push:0', CMD]) assert.ok(features.includes(feature), `${feature} in ${features.join(', ')}`);
  });

  test('registrations belong to the remote bare JID: list-push-registrations shows them to their owner only', async (t) => {
    const { a } = await setup(t);
    const alice = await a.login('alice', { resource: 'phone' });
    const registered = await registerDevice(alice, { token: 'device-1' }, 'sandbox', APPS);
    const list = async (client: XmppClient) => {
      const answer = await client.iq(commandIq('list-push-registrations', undefined, { to: APPS }));
      return (commandForm(answer).items ?? []).map((row) => row.find((f) => f.var === 'node')?.values[0]);
    };
    assert.deepEqual(await list(alice), [registered.node]);
    assert.deepEqual(await list(await a.login('bob')), []);
  });

  test('a publish with the wrong secret from A → forbidden, no push', async (t) => {
    const { a, app } = await setup(t);
    const alice = await a.login('alice');
    const registered = await registerDevice(alice, { token: 'device-1' }, 'sandbox', APPS);
    await iqExpect(
      alice,
      `<iq type='set' to='${APPS}' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${registered.node}'><item>` +
        `<notification xmlns='urn:xmpp:push:0'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>wrong</value></field></x></publish-options></pubsub></iq>`,
      `<iq type='error' from='${APPS}' id='p1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`,
    );
    assert.deepEqual(await app.server.service('sandboxInbox')!.list(registered.node), []);
  });

  test('A drops the component connection → the app server reconnects, registrations kept', async (t) => {
    const { a, app } = await setup(t);
    const alice = await a.login('alice');
    const registered = await registerDevice(alice, { token: 'device-1' }, 'sandbox', APPS);
    assert.equal(a.server.externalComponents.disconnect(APPS), true);
    await until(() => !app.link.connected, 'the app server to notice');
    await app.link.whenConnected(3000);
    await until(() => a.server.externalComponents.isConnected(APPS), 'A to see the component again');
    const answer = await alice.iq(commandIq('list-push-registrations', undefined, { to: APPS }));
    assert.deepEqual((commandForm(answer).items ?? []).map((row) => row.find((f) => f.var === 'node')?.values[0]), [registered.node]);
  });

  test('wrong secret → the app server is refused (not-authorized) and keeps retrying', async (t) => {
    const a = await componentServer(t, { [APPS]: { secret: APPS_SECRET } });
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-appserver-'));
    const app = await startAppServer({
      component: `127.0.0.1:${a.componentPort}`,
      domain: APPS,
      secret: 'wrong',
      dataDir,
      log: createLogger('silent'),
      reconnect: { minDelayMs: 50, maxDelayMs: 100 },
    });
    t.after(async () => {
      await app.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    await until(() => app.link.lastError === 'not-authorized', 'the refusal');
    await sleep(200);
    assert.equal(app.link.connected, false);
    assert.equal(a.server.externalComponents.isConnected(APPS), false);
  });
});

describe('herald appserver (CLI)', () => {
  test('connects to the server as the component, answers disco, exits 0 on SIGTERM', async (t) => {
    const a = await componentServer(t, { [APPS]: { secret: APPS_SECRET } });
    const dir = mkdtempSync(join(tmpdir(), 'herald-appserver-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'secret.txt'), `${APPS_SECRET}\n`);
    const child = spawn(
      process.execPath,
      [CLI, 'appserver', '--component', `127.0.0.1:${a.componentPort}`, '--domain', APPS, '--secret-file', join(dir, 'secret.txt'), '--data-dir', join(dir, 'data')],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await until(() => a.server.externalComponents.isConnected(APPS), `the component to connect\n${output}`, 10_000);
    const alice = await a.login('alice');
    await iqExpect(alice, `<iq type='get' to='${APPS}' id='d1'><query xmlns='${INFO}'/></iq>`, `<iq type='result' from='${APPS}' id='d1'><query xmlns='${INFO}'><identity category='app-server' type='herald'/></query></iq>`);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.match(output, /"msg":"app server component started"/);
  });

  test('without a secret → exit 1 with a message naming --secret', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-appserver-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { code, stderr } = await runCli(['appserver', '--component', '127.0.0.1:5347', '--domain', APPS], dir);
    assert.equal(code, 1);
    assert.match(stderr, /--secret/);
  });
});
