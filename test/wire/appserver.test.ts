// The app server (modules/appserver): disco identity, the mod_push/oshiya ad-hoc commands in one
// and two stages, registrations (replace, list, unregister, restart, account deletion), delivery
// through the sandbox backend with the vendor-error mapping, and the sandbox inbox over HTTP,
// in-process and through `herald push inbox`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { formValue, formValues } from '../../server/protocol/xep0004.js';
import { runCli } from './cli-helpers.js';
import { assertMatches, iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { CMD, SM, commandForm, commandIq, enableSm, handled, publishIq, registerDevice } from './appserver-helpers.js';
import { builtinModules } from '../../modules/index.js';
import push from '../../modules/push/index.js';

const VENDOR_COMMANDS = ['apns', 'fcm', 'gcm', 'webpush', 'ubuntu', 'wns', 'unifiedpush'];
/** The built-in modules with the XEP-0357 server part (modules/push) loaded. */
const withPush = builtinModules.some((def) => def.name === 'push') ? builtinModules : [...builtinModules, push];
const FAST_RETRIES = { retry_attempts: 3, retry_delay: '10ms', retry_max_delay: '100ms' };

function inboxUrl(server: TestServer, node?: string): string {
  return `http://127.0.0.1:${server.server.ports.http}/push/inbox${node === undefined ? '' : `/${encodeURIComponent(node)}`}`;
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, body: response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

async function listRegistrations(client: XmppClient): Promise<{ deviceId: string; deviceName: string | undefined; node: string }[]> {
  const answer = await client.iq(commandIq('list-push-registrations'));
  assert.equal(answer.getChild('command', CMD)?.attrs.status, 'completed', answer.toString());
  const form = commandForm(answer);
  return (form.items ?? []).map((row) => {
    const value = (name: string) => row.find((f) => f.var === name)?.values[0];
    return { deviceId: value('device-id') ?? '', deviceName: value('device-name'), node: value('node') ?? '' };
  });
}

describe('appserver: disco and the command list', () => {
  test('the domain has identity app-server/herald; the name is configurable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, `<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='app-server' type='herald'/></query></iq>`);
    const named = await startServer(t, { modules: { appserver: { name: 'acme' } } });
    const juliet = await named.login('juliet');
    await iqExpect(juliet, `<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, `<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='app-server' type='acme'/></query></iq>`);
  });

  test('the command list offers sandbox, list and unregister, and no unconfigured vendor backend', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const items = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='${CMD}'/></iq>`);
    const nodes = items.getChild('query')!.getChildren('item').map((item) => item.attrs.node);
    for (const node of ['register-push-sandbox', 'list-push-registrations', 'unregister-push']) assert.ok(nodes.includes(node), `${node} in ${nodes.join(', ')}`);
    for (const vendor of VENDOR_COMMANDS) assert.ok(!nodes.includes(`register-push-${vendor}`), `register-push-${vendor} is not offered`);
  });

  test('register-push-<vendor> for an unconfigured backend → cancel/service-unavailable with a text', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    for (const vendor of VENDOR_COMMANDS) {
      const answer = await iqExpect(romeo, commandIq(`register-push-${vendor}`, { token: 'abc' }), `<iq type='error'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
      assert.match(answer.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? '', /not configured/);
    }
  });

  test('sandbox enabled: false → register-push-sandbox is service-unavailable and /push/inbox is 404', async (t) => {
    const server = await startServer(t, { modules: { appserver: { sandbox: { enabled: false } } } });
    const romeo = await server.login('romeo');
    await iqExpect(romeo, commandIq('register-push-sandbox', {}), `<iq type='error'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    assert.equal((await getJson(inboxUrl(server, 'x'))).status, 404);
  });

  test('jid: a separate app server JID → identity and commands there, listed in the server items; push.localhost works too', async (t) => {
    const server = await startServer(t, { modules: { appserver: { jid: 'appserver.localhost' } } });
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='appserver.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, `<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='app-server' type='herald'/></query></iq>`);
    const items = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assert.ok(items.toString().includes("jid='appserver.localhost'"), items.toString());
    const registered = await registerDevice(romeo, {}, 'sandbox', 'appserver.localhost');
    assert.equal(registered.jid, 'push.localhost');
    const shared = await startServer(t, { modules: { appserver: { jid: 'push.localhost' } } });
    const juliet = await shared.login('juliet');
    const there = await registerDevice(juliet, {}, 'sandbox', 'push.localhost');
    assertMatches(await juliet.iq(publishIq(there.node, there.secret)), `<iq type='result'/>`);
    await iqExpect(juliet, `<iq type='get' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, `<iq type='result'><query><identity category='pubsub' type='push'/><identity category='app-server' type='herald'/></query></iq>`);
  });
});

describe('appserver: registering devices', () => {
  test('register-push-sandbox in one stage → completed with jid (the push service), node and secret; device-id defaults to the resource', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    const answer = await romeo.iq(commandIq('register-push-sandbox', { token: 't1', 'device-name': 'Romeo phone' }));
    assertMatches(answer, `<iq type='result' from='localhost'><command xmlns='${CMD}' node='register-push-sandbox' status='completed'><x xmlns='jabber:x:data' type='result'/></command></iq>`);
    const form = commandForm(answer);
    assert.equal(formValue(form, 'jid'), 'push.localhost');
    assert.match(formValue(form, 'node') ?? '', /^[A-Za-z0-9_-]{16,}$/);
    assert.match(formValue(form, 'secret') ?? '', /^[A-Za-z0-9_-]{24,}$/);
    assert.deepEqual(await listRegistrations(romeo), [{ deviceId: 'phone', deviceName: 'Romeo phone', node: formValue(form, 'node')! }]);
  });

  test('register-push-sandbox in two stages: execute without form → the form; submit → completed', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const first = await romeo.iq(commandIq('register-push-sandbox'));
    const command = first.getChild('command', CMD)!;
    assert.equal(command.attrs.status, 'executing', first.toString());
    const fields = commandForm(first).fields.map((field) => field.var);
    assert.deepEqual(fields, ['token', 'device-id', 'device-name']);
    const done = await romeo.iq(commandIq('register-push-sandbox', { 'device-id': 'tablet' }, { sessionid: command.attrs.sessionid! }));
    assert.equal(done.getChild('command', CMD)?.attrs.status, 'completed', done.toString());
    assert.ok(formValue(commandForm(done), 'node'));
    assert.deepEqual((await listRegistrations(romeo)).map((r) => r.deviceId), ['tablet']);
  });

  test('the same device-id again → replaces the registration: one entry, new node, the old node is gone', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const old = await registerDevice(romeo, { 'device-id': 'd1' });
    const other = await registerDevice(romeo, { 'device-id': 'd2' });
    const fresh = await registerDevice(romeo, { 'device-id': 'd1', 'device-name': 'renamed' });
    assert.notEqual(fresh.node, old.node);
    const list = await listRegistrations(romeo);
    assert.deepEqual(list.map((r) => [r.deviceId, r.node]), [['d2', other.node], ['d1', fresh.node]]);
    await iqExpect(romeo, publishIq(old.node, old.secret), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    assertMatches(await romeo.iq(publishIq(fresh.node, fresh.secret)), `<iq type='result'/>`);
  });

  test('the same device-id from another account is another registration', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const mine = await registerDevice(romeo, { 'device-id': 'd1' });
    await registerDevice(juliet, { 'device-id': 'd1' });
    assert.deepEqual((await listRegistrations(romeo)).map((r) => r.node), [mine.node]);
  });

  test('more devices than max_devices → cancel/not-allowed; replacing one still works', async (t) => {
    const server = await startServer(t, { modules: { appserver: { max_devices: 2 } } });
    const romeo = await server.login('romeo');
    await registerDevice(romeo, { 'device-id': 'a' });
    await registerDevice(romeo, { 'device-id': 'b' });
    await iqExpect(romeo, commandIq('register-push-sandbox', { 'device-id': 'c' }), `<iq type='error'>${stanzaErrorPattern('cancel', 'not-allowed')}</iq>`);
    await registerDevice(romeo, { 'device-id': 'b' });
  });

  test('list-push-registrations without registrations → an empty result form', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(commandIq('list-push-registrations'));
    assertMatches(answer, `<iq type='result'><command xmlns='${CMD}' status='completed'><x xmlns='jabber:x:data' type='result'/></command></iq>`);
    assert.deepEqual(commandForm(answer), { type: 'result', fields: [] });
  });

  test('list-push-registrations → <reported> device-id, device-name, node and one <item> per device', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const a = await registerDevice(romeo, { 'device-id': 'a', 'device-name': 'Phone' });
    const b = await registerDevice(romeo, { 'device-id': 'b' });
    const answer = await romeo.iq(commandIq('list-push-registrations'));
    assertMatches(
      answer,
      `<iq type='result'><command xmlns='${CMD}' status='completed'><x xmlns='jabber:x:data' type='result'>
        <reported><field var='device-id'/><field var='device-name'/><field var='node'/></reported>
        <item><field var='device-id'><value>a</value></field><field var='device-name'><value>Phone</value></field><field var='node'><value>${a.node}</value></field></item>
        <item><field var='device-id'><value>b</value></field><field var='device-name'/><field var='node'><value>${b.node}</value></field></item>
      </x></command></iq>`,
    );
  });

  test('unregister-push by device-id (one stage) → the removed node; publishing there → item-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const a = await registerDevice(romeo, { 'device-id': 'a' });
    const b = await registerDevice(romeo, { 'device-id': 'b' });
    const answer = await romeo.iq(commandIq('unregister-push', { 'device-id': 'a' }));
    assert.equal(answer.getChild('command', CMD)?.attrs.status, 'completed', answer.toString());
    assert.deepEqual(formValues(commandForm(answer), 'nodes'), [a.node]);
    assert.deepEqual((await listRegistrations(romeo)).map((r) => r.node), [b.node]);
    await iqExpect(romeo, publishIq(a.node, a.secret), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
  });

  test("unregister-push by nodes in two stages → the form lists my nodes; only my own are removed", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const a = await registerDevice(romeo, { 'device-id': 'a' });
    const b = await registerDevice(romeo, { 'device-id': 'b' });
    const hers = await registerDevice(juliet, { 'device-id': 'j' });
    const first = await romeo.iq(commandIq('unregister-push'));
    const command = first.getChild('command', CMD)!;
    assert.equal(command.attrs.status, 'executing');
    const options = commandForm(first).fields.find((f) => f.var === 'nodes')?.options?.map((o) => o.value);
    assert.deepEqual(options, [a.node, b.node]);
    const done = await romeo.iq(commandIq('unregister-push', { nodes: [a.node, b.node, hers.node, 'unknown'] }, { sessionid: command.attrs.sessionid! }));
    assert.deepEqual(formValues(commandForm(done), 'nodes'), [a.node, b.node]);
    assert.deepEqual(await listRegistrations(romeo), []);
    assert.equal((await listRegistrations(juliet)).length, 1);
  });

  test('unregister-push with neither device-id nor nodes → modify/bad-request; an unknown device → no nodes', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, commandIq('unregister-push', {}), `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    const answer = await romeo.iq(commandIq('unregister-push', { 'device-id': 'nope' }));
    assert.deepEqual(formValues(commandForm(answer), 'nodes'), []);
  });

  test('registrations survive a restart: listed, and publishing still reaches the sandbox', async (t) => {
    const server = await startServer(t);
    let romeo = await server.login('romeo');
    const registered = await registerDevice(romeo, { 'device-id': 'd' });
    await server.restart();
    romeo = await server.login('romeo');
    assert.deepEqual((await listRegistrations(romeo)).map((r) => r.node), [registered.node]);
    assertMatches(await romeo.iq(publishIq(registered.node, registered.secret)), `<iq type='result'/>`);
    assert.equal((await server.sandboxInbox.next(registered.node)).node, registered.node);
  });

  test('a deleted account takes its registrations along (its nodes stop taking publishes)', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const registered = await registerDevice(romeo);
    await server.server.deleteAccount('romeo');
    await iqExpect(juliet, publishIq(registered.node, registered.secret), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
  });
});

describe('appserver: delivery through the sandbox backend', () => {
  test('register → publish a summary → the inbox has it: HTTP 200 with node, backend, received and the notification', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const registered = await registerDevice(romeo, { token: 'tok' });
    assert.deepEqual(await getJson(inboxUrl(server, registered.node)), { status: 200, body: [] });
    const before = Date.now();
    await iqExpect(
      juliet,
      publishIq(registered.node, registered.secret, { 'message-count': '3', 'last-message-sender': 'juliet@localhost', 'last-message-body': 'hi', 'pending-subscription-count': '1', 'last-subscription-sender': 'nurse@localhost' }),
      `<iq type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${registered.node}'/></pubsub></iq>`,
    );
    const { status, body } = await getJson(inboxUrl(server, registered.node));
    assert.equal(status, 200);
    const pushes = body as { node: string; backend: string; received: string; payload: unknown }[];
    assert.equal(pushes.length, 1);
    assert.equal(pushes[0]!.node, registered.node);
    assert.equal(pushes[0]!.backend, 'sandbox');
    assert.ok(Date.parse(pushes[0]!.received) >= before - 1000 && pushes[0]!.received.endsWith('Z'), pushes[0]!.received);
    assert.deepEqual(pushes[0]!.payload, {
      node: registered.node,
      priority: 'high',
      messageCount: 3,
      pendingSubscriptionCount: 1,
      lastMessageSender: 'juliet@localhost',
      lastMessageBody: 'hi',
      lastSubscriptionSender: 'nurse@localhost',
    });
  });

  test('pushes are listed oldest first; last-message-priority normal is passed on; an unknown node → 404', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    await romeo.iq(publishIq(registered.node, registered.secret, { 'message-count': '1' }));
    await romeo.iq(publishIq(registered.node, registered.secret, { 'message-count': '2', 'last-message-priority': 'normal' }));
    const { body } = await getJson(inboxUrl(server, registered.node));
    assert.deepEqual((body as { payload: { messageCount: number; priority: string } }[]).map((p) => [p.payload.messageCount, p.payload.priority]), [[1, 'high'], [2, 'normal']]);
    assert.equal((await getJson(inboxUrl(server, 'no-such-node'))).status, 404);
    const all = await getJson(inboxUrl(server));
    assert.deepEqual(Object.keys(all.body as object), [registered.node]);
  });

  test('in-process: server.sandboxInbox.next() resolves with the next push, list() shows them all', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    const waiting = server.sandboxInbox.next();
    await romeo.iq(publishIq(registered.node, registered.secret, { 'message-count': '5' }));
    const push = await waiting;
    assert.equal(push.payload.messageCount, 5);
    assert.equal((await server.sandboxInbox.list(registered.node))?.length, 1);
    assert.equal(await server.sandboxInbox.list('nope'), undefined);
    await assert.rejects(server.sandboxInbox.next(registered.node, { timeoutMs: 50 }), /no sandbox push/);
  });

  test("the vendor says the token is gone → cancel/item-not-found, and the registration is removed", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    server.sandboxInbox.failNext(registered.node, 'gone');
    await iqExpect(romeo, publishIq(registered.node, registered.secret), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    assert.deepEqual(await listRegistrations(romeo), []);
    assert.equal((await getJson(inboxUrl(server, registered.node))).status, 404);
  });

  test('"try later" twice → retried with backoff, then delivered', async (t) => {
    const server = await startServer(t, { modules: { appserver: FAST_RETRIES } });
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    server.sandboxInbox.failNext(registered.node, 'retry', { times: 2 });
    assertMatches(await romeo.iq(publishIq(registered.node, registered.secret)), `<iq type='result'/>`);
    assert.equal((await server.sandboxInbox.list(registered.node))?.length, 1);
  });

  test('"try later" every time, or for longer than retry_max_delay → wait/resource-constraint; the registration stays', async (t) => {
    const server = await startServer(t, { modules: { appserver: FAST_RETRIES } });
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    server.sandboxInbox.failNext(registered.node, 'retry', { times: 3 });
    await iqExpect(romeo, publishIq(registered.node, registered.secret), `<iq type='error'>${stanzaErrorPattern('wait', 'resource-constraint')}</iq>`);
    server.sandboxInbox.failNext(registered.node, 'retry', { retryAfterMs: 60_000 });
    const started = Date.now();
    await iqExpect(romeo, publishIq(registered.node, registered.secret), `<iq type='error'>${stanzaErrorPattern('wait', 'resource-constraint')}</iq>`);
    assert.ok(Date.now() - started < 5000);
    assert.equal((await listRegistrations(romeo)).length, 1);
  });

  test('max_retrying deliveries already wait for a retry → the next "try later" gets wait/resource-constraint at once', async (t) => {
    const server = await startServer(t, { modules: { appserver: { retry_attempts: 2, retry_delay: '1s', max_retrying: 1 } } });
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    server.sandboxInbox.failNext(registered.node, 'retry', { times: 2 });
    const waiting = romeo.iq(publishIq(registered.node, registered.secret, { 'message-count': '1' }));
    await new Promise((resolve) => setTimeout(resolve, 200)); // the first publish now waits for its retry
    const started = Date.now();
    await iqExpect(romeo, publishIq(registered.node, registered.secret, { 'message-count': '2' }), `<iq type='error'>${stanzaErrorPattern('wait', 'resource-constraint')}</iq>`);
    assert.ok(Date.now() - started < 700, 'refused without waiting');
    assertMatches(await waiting, `<iq type='result'/>`);
    assert.deepEqual((await server.sandboxInbox.list(registered.node))?.map((push) => push.payload.messageCount), [1]);
  });

  test('our credentials refused → wait/internal-server-error, registration kept; refused push → modify/not-acceptable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    server.sandboxInbox.failNext(registered.node, 'auth');
    await iqExpect(romeo, publishIq(registered.node, registered.secret), `<iq type='error'>${stanzaErrorPattern('wait', 'internal-server-error')}</iq>`);
    server.sandboxInbox.failNext(registered.node, 'rejected');
    await iqExpect(romeo, publishIq(registered.node, registered.secret), `<iq type='error'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
    assert.equal((await listRegistrations(romeo)).length, 1);
    assertMatches(await romeo.iq(publishIq(registered.node, registered.secret)), `<iq type='result'/>`);
  });

  test('a publish with the wrong secret reaches no one', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    await iqExpect(romeo, publishIq(registered.node, 'wrong'), `<iq type='error'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    assert.deepEqual(await server.sandboxInbox.list(registered.node), []);
  });
});

describe('appserver: herald push inbox', () => {
  test('NODE → the pushes of that node; no NODE → every sandbox node; an unknown node → exit 1', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const registered = await registerDevice(romeo);
    await romeo.iq(publishIq(registered.node, registered.secret, { 'message-count': '7' }));
    const dir = mkdtempSync(join(tmpdir(), 'herald-push-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'herald.yml');
    writeFileSync(config, `domain: localhost\ndata_dir: ./data\nlisten:\n  http: ${server.server.ports.http}\n  http_interfaces: ['127.0.0.1']\n`);
    const one = await runCli(['push', 'inbox', registered.node, '--config', config]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^${registered.node}: 1 push\\n  \\d{4}-\\d\\d-\\d\\dT\\S+Z  \\{"node":"${registered.node}","priority":"high","messageCount":7\\}\\n$`));
    const all = await runCli(['push', 'inbox', '--json', '--config', config]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal((JSON.parse(all.stdout) as Record<string, unknown[]>)[registered.node]?.length, 1);
    const unknown = await runCli(['push', 'inbox', 'nope', '--config', config]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no sandbox registration has the node nope/);
  });
});

/** Waits until the server noticed the dead socket and the session hibernates. */
async function hibernated(server: TestServer, bare: string, resource: string): Promise<void> {
  for (let waited = 0; server.server.sessions.get(bare, resource)?.state !== 'hibernated'; waited += 10) {
    assert.ok(waited < 5000, 'the session hibernates');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('appserver: end to end with the push module and the sandbox', () => {
  test('register with sandbox, enable push and SM, drop TCP, 3 messages → the sandbox gets a push without body or sender; resume → all 3 once', async (t) => {
    const server = await startServer(t, { moduleList: withPush });
    const romeo = await server.login('romeo', { resource: 'phone' });
    const registered = await registerDevice(romeo);
    await iqExpect(
      romeo,
      `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='${registered.jid}' node='${registered.node}'>` +
        `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
        `<field var='secret'><value>${registered.secret}</value></field></x></enable></iq>`,
      `<iq type='result'/>`,
    );
    romeo.send(`<presence/>`);
    const { id, mark } = await enableSm(romeo);
    romeo.dropTcp();
    await hibernated(server, 'romeo@localhost', 'phone');
    const juliet = await server.login('juliet');
    for (const n of [1, 2, 3]) juliet.send(`<message to='romeo@localhost' type='chat' id='m${n}'><body>secret ${n}</body></message>`);
    const pushed = await server.sandboxInbox.next(registered.node);
    assert.equal(pushed.backend, 'sandbox');
    assert.ok((pushed.payload.messageCount ?? 0) >= 1, JSON.stringify(pushed.payload));
    assert.equal(pushed.payload.lastMessageBody, undefined, 'no body by default');
    assert.equal(pushed.payload.lastMessageSender, undefined, 'no sender by default');
    const resumed = await server.connect();
    await resumed.startTls();
    await resumed.authenticate('romeo', 'password');
    resumed.send(`<resume xmlns='${SM}' previd='${id}' h='${handled(romeo, mark)}'/>`);
    await resumed.waitFor(`<resumed xmlns='${SM}' previd='${id}'/>`);
    const bodies: string[] = [];
    while (bodies.length < 3) {
      const el = await resumed.next();
      if (el.name === 'message') bodies.push(el.getChildText('body') ?? '');
    }
    assert.deepEqual(bodies, ['secret 1', 'secret 2', 'secret 3']);
    resumed.send(`<r xmlns='${SM}'/>`);
    await resumed.waitFor(`<a xmlns='${SM}'/>`);
    assert.equal(resumed.received.filter((el) => el.name === 'message').length, 3, 'each message exactly once');
  });
});
