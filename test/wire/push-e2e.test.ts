// End to end through every vendor backend: a client registers with the app server
// (register-push-<backend>), enables XEP-0357 push with the returned jid/node/secret, its
// connection dies; messages for it make the server publish a summary to the embedded push service,
// the app server hands it to the backend, and the mock vendor (test/mocks/) receives the push
// with the right token and auth. Then: the client resumes and gets each message once; or the
// server restarts first; or the vendor says the token is gone (registration and enable removed,
// no more pushes); or the client never resumes and finds its messages in offline storage.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { formValue } from '../../server/protocol/xep0004.js';
import { CMD, SM, commandForm, commandIq, enableSm, handled, registerDevice, type Registered } from './appserver-helpers.js';
import { createApnsKey, startApnsMock } from '../mocks/apns.js';
import { createServiceAccount, startFcmMock } from '../mocks/fcm.js';
import { startWebPushMock } from '../mocks/webpush.js';
import { startUbportsMock } from '../mocks/ubports.js';
import { startWnsMock } from '../mocks/wns.js';
import { startUnifiedPushMock } from '../mocks/unifiedpush.js';

/** What a vendor push said, whatever the vendor's format. */
interface ReceivedPush {
  /** The device address it went to: token, endpoint or channel URI. */
  target: string;
  summary: Record<string, unknown>;
  /** The mock's answer (2xx delivered). */
  status: number;
}

/** One vendor: its mock, the app server config pointing at it, and a device registered with it. */
interface Vendor {
  /** app server section (`modules.appserver.<backend>`); register-push-<backend>. */
  backend: string;
  config: Record<string, unknown>;
  /** Fields of the register command; may look at the command's form first (Web Push reads the VAPID key). */
  registerFields(client: XmppClient): Promise<Record<string, string>>;
  /** The device address the pushes must go to. */
  target: string;
  nextPush(): Promise<ReceivedPush>;
  /** Requests the vendor got so far. */
  count(): number;
  /** From now on the vendor says the device's token/endpoint is gone. */
  makeGone(): void;
}

type VendorFactory = (t: TestContext, dir: string) => Promise<Vendor>;

const APNS_TOKEN = 'c0ffee'.repeat(10) + 'c0ffee00';
const TOPIC = 'org.example.chat';

const VENDORS: Record<string, VendorFactory> = {
  async apns(t, dir) {
    const key = createApnsKey(dir);
    const mock = await startApnsMock({ teamId: 'TEAM123456', keyId: key.keyId, publicKey: key.publicKey, topics: [TOPIC] });
    t.after(() => mock.close());
    return {
      backend: 'apns',
      config: { endpoint: mock.url, sandbox_endpoint: mock.url, topic: TOPIC, team_id: 'TEAM123456', key_id: key.keyId, key_file: key.keyFile, ca_file: mock.caFile },
      registerFields: async () => ({ token: APNS_TOKEN, sandbox: '0' }),
      target: APNS_TOKEN,
      nextPush: async () => {
        const request = await mock.next();
        if (request.status === 200) assert.ok(request.jwt, 'a verified provider token');
        const { aps, ...summary } = request.payload;
        assert.ok(aps);
        return { target: request.token, summary, status: request.status };
      },
      count: () => mock.received.length,
      makeGone: () => void mock.goneTokens.add(APNS_TOKEN),
    };
  },

  async fcm(t, dir) {
    const mock = await startFcmMock();
    t.after(() => mock.close());
    const account = createServiceAccount(dir, mock.tokenUrl);
    mock.trust({ publicKey: account.publicKey, clientEmail: account.json.client_email!, projectId: account.json.project_id! });
    const token = 'dK3xv:APA91bE2e-Token_for_the_e2e.test';
    return {
      backend: 'fcm',
      config: { service_account_file: account.file, endpoint: mock.url },
      registerFields: async () => ({ token }),
      target: token,
      nextPush: async () => {
        const request = await mock.next();
        return { target: request.message.token ?? '', summary: request.message.data ?? {}, status: request.status };
      },
      count: () => mock.received.length,
      makeGone: () => void mock.unregistered.add(token),
    };
  },

  async webpush(t) {
    const mock = await startWebPushMock();
    t.after(() => mock.close());
    let subscription: ReturnType<typeof mock.subscribe> | undefined;
    return {
      backend: 'webpush',
      config: { subject: 'mailto:admin@example.org', allow_insecure_endpoints: true },
      registerFields: async (client) => {
        // As a browser client: read the server's VAPID key from the form, subscribe with it, register.
        const form = commandForm(await client.iq(commandIq('register-push-webpush')));
        const applicationServerKey = formValue(form, 'vapid-public-key');
        assert.ok(applicationServerKey, 'the form shows the VAPID public key');
        subscription = mock.subscribe({ applicationServerKey });
        return { endpoint: subscription.endpoint, p256dh: subscription.p256dh!, auth: subscription.auth! };
      },
      get target() {
        return subscription?.endpoint ?? '';
      },
      nextPush: async () => {
        const request = await mock.next();
        if (request.status === 201) assert.ok(request.vapid, 'a verified VAPID token');
        return { target: `${mock.url}/wpush/${request.subscription}`, summary: request.payload as Record<string, unknown>, status: request.status };
      },
      count: () => mock.received.length,
      makeGone: () => mock.unsubscribe(subscription!.id),
    };
  },

  async ubuntu(t) {
    const mock = await startUbportsMock();
    t.after(() => mock.close());
    const appId = 'chat.example_chat';
    const token = Buffer.from(`${appId}:e2e-device`).toString('base64');
    mock.tokens.set(token, appId);
    return {
      backend: 'ubuntu',
      config: { endpoint: mock.url },
      registerFields: async () => ({ token, 'application-id': appId }),
      target: token,
      nextPush: async () => {
        const request = await mock.next();
        assert.equal(request.body.appid, appId);
        return { target: request.body.token ?? '', summary: request.body.data as Record<string, unknown>, status: request.status };
      },
      count: () => mock.received.length,
      makeGone: () => void mock.tokens.delete(token),
    };
  },

  async wns(t) {
    const credentials = { clientId: 'ms-app://s-1-15-2-e2e', clientSecret: 'e2e-secret' };
    const mock = await startWnsMock(credentials);
    t.after(() => mock.close());
    const channel = mock.channel();
    return {
      backend: 'wns',
      config: {
        client_id: credentials.clientId, client_secret: credentials.clientSecret, token_endpoint: mock.tokenUrl,
        channel_hosts: ['127.0.0.1'], allow_insecure_endpoints: true,
      },
      registerFields: async () => ({ 'channel-uri': channel }),
      target: channel,
      nextPush: async () => {
        const request = await mock.next();
        return { target: `${mock.url}/w/?token=${request.channel}`, summary: request.payload as Record<string, unknown>, status: request.status };
      },
      count: () => mock.received.length,
      makeGone: () => mock.expire(channel),
    };
  },

  async unifiedpush(t) {
    const mock = await startUnifiedPushMock();
    t.after(() => mock.close());
    const subscription = mock.subscribe({ keys: false });
    return {
      backend: 'unifiedpush',
      config: { allow_insecure_endpoints: true },
      registerFields: async () => ({ endpoint: subscription.endpoint }),
      target: subscription.endpoint,
      nextPush: async () => {
        const request = await mock.next();
        return { target: `${mock.url}/up/${request.subscription}`, summary: request.payload as Record<string, unknown>, status: request.status };
      },
      count: () => mock.received.length,
      makeGone: () => mock.unsubscribe(subscription.id),
    };
  },
};

interface Story {
  server: TestServer;
  vendor: Vendor;
  registered: Registered;
}

/** A server whose app server offers only `name`'s backend, pointed at its mock. */
async function begin(t: TestContext, name: string): Promise<Story & { romeo: XmppClient }> {
  const dir = mkdtempSync(join(tmpdir(), 'push-e2e-'));
  let server: TestServer | undefined;
  // The server's data directory is inside: stop it first (after-hooks run in the order they were
  // added, and a running server may still write its database files while they are removed).
  t.after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const vendor = await VENDORS[name]!(t, dir);
  server = await startServer(t, {
    dataDir: join(dir, 'data'),
    modules: {
      appserver: { [vendor.backend]: vendor.config, retry_delay: '10ms', retry_max_delay: '50ms' },
      push: { coalesce_window: '100ms', retry_delay: '50ms' },
    },
  });
  const romeo = await server.login('romeo', { resource: 'phone' });
  const registered = await registerDevice(romeo, await vendor.registerFields(romeo), vendor.backend);
  await enablePush(romeo, registered);
  return { server, vendor, registered, romeo };
}

async function enablePush(client: XmppClient, registered: Registered): Promise<void> {
  const answer = await client.iq(
    `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='${registered.jid}' node='${registered.node}'>` +
      `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
      `<field var='secret'><value>${registered.secret}</value></field></x></enable></iq>`,
  );
  assert.equal(answer.attrs.type, 'result', answer.toString());
}

/** The push went to the device, was accepted, and says messages wait — without body or sender. */
function assertPrivatePush(push: ReceivedPush, story: Story): void {
  assert.equal(push.target, story.vendor.target);
  assert.ok(push.status >= 200 && push.status < 300, `the vendor accepted it (${push.status})`);
  assert.equal(push.summary.node, story.registered.node);
  assert.ok(Number(push.summary['message-count']) >= 1, JSON.stringify(push.summary));
  assert.equal(push.summary['last-message-body'], undefined, 'no body by default');
  assert.equal(push.summary['last-message-sender'], undefined, 'no sender by default');
}

async function sendMessages(server: TestServer, texts: string[]): Promise<XmppClient> {
  const juliet = await server.login('juliet');
  for (const [i, text] of texts.entries()) juliet.send(`<message to='romeo@localhost' type='chat' id='m${i}'><body>${text}</body></message>`);
  return juliet;
}

/** Waits until the server noticed the dead socket and the session hibernates. */
async function hibernated(server: TestServer): Promise<void> {
  for (let waited = 0; server.server.sessions.get('romeo@localhost', 'phone')?.state !== 'hibernated'; waited += 10) {
    assert.ok(waited < 5000, 'the session hibernates');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function bodiesOf(client: XmppClient, count: number): Promise<string[]> {
  const bodies: string[] = [];
  while (bodies.length < count) {
    const el = await client.next();
    if (el.name === 'message' && el.getChild('body')) bodies.push(el.getChildText('body') ?? '');
  }
  return bodies;
}

async function registrationsOf(client: XmppClient): Promise<string[]> {
  const answer = await client.iq(commandIq('list-push-registrations'));
  assert.equal(answer.getChild('command', CMD)?.attrs.status, 'completed', answer.toString());
  return (commandForm(answer).items ?? []).map((row) => row.find((f) => f.var === 'node')?.values[0] ?? '');
}

for (const name of Object.keys(VENDORS)) {
  describe(`push end to end: ${name}`, () => {
    test('register, enable push and SM, drop TCP, 3 messages → the vendor gets a push without body or sender; resume → all 3 once', async (t) => {
      const story = await begin(t, name);
      const { server, romeo } = story;
      romeo.send(`<presence/>`);
      const { id, mark } = await enableSm(romeo);
      romeo.dropTcp();
      await hibernated(server);
      await sendMessages(server, ['one', 'two', 'three']);
      assertPrivatePush(await story.vendor.nextPush(), story);
      const resumed = await server.connect();
      await resumed.startTls();
      await resumed.authenticate('romeo', 'password');
      resumed.send(`<resume xmlns='${SM}' previd='${id}' h='${handled(romeo, mark)}'/>`);
      await resumed.waitFor(`<resumed xmlns='${SM}' previd='${id}'/>`);
      assert.deepEqual(await bodiesOf(resumed, 3), ['one', 'two', 'three']);
      resumed.send(`<r xmlns='${SM}'/>`);
      await resumed.waitFor(`<a xmlns='${SM}'/>`);
      assert.equal(resumed.received.filter((el) => el.name === 'message').length, 3, 'each message exactly once');
    });

    test('server restarts between enable and the messages → the push still arrives; then token gone → registration and enable removed, no further pushes', async (t) => {
      const story = await begin(t, name);
      const { server, romeo, vendor } = story;
      await romeo.close();
      await server.restart();
      const juliet = await sendMessages(server, ['after restart']);
      assertPrivatePush(await vendor.nextPush(), story);
      vendor.makeGone();
      await new Promise((resolve) => setTimeout(resolve, 150));  // past the coalescing window
      juliet.send(`<message to='romeo@localhost' type='chat' id='g1'><body>gone?</body></message>`);
      const refused = await vendor.nextPush();
      assert.ok(refused.status === 404 || refused.status === 410 || refused.status === 400, `the vendor said gone (${refused.status})`);
      for (let waited = 0; ((await server.server.service('push')?.enables('romeo')) ?? []).length > 0; waited += 20) {
        assert.ok(waited < 3000, 'the enable is removed');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const before = vendor.count();
      juliet.send(`<message to='romeo@localhost' type='chat' id='g2'><body>anyone?</body></message>`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(vendor.count(), before, 'no further pushes');
      const back = await server.login('romeo', { resource: 'phone' });
      assert.deepEqual(await registrationsOf(back), [], 'the registration is gone');
    });

    test('client never resumes → after the push its session ends, and the messages wait in offline storage for the next login', async (t) => {
      const story = await begin(t, name);
      const { server, romeo } = story;
      romeo.send(`<presence/>`);
      romeo.send(`<enable xmlns='${SM}' resume='true' max='1'/>`);
      await romeo.waitFor(`<enabled xmlns='${SM}'/>`);
      romeo.dropTcp();
      await hibernated(server);
      await sendMessages(server, ['first', 'second', 'third']);
      assertPrivatePush(await story.vendor.nextPush(), story);
      // After the first push the session falls back to its own 1-second window, then closes.
      for (let waited = 0; server.server.sessions.get('romeo@localhost', 'phone') !== undefined; waited += 50) {
        assert.ok(waited < 5000, 'the hibernated session ends');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const later = await server.login('romeo', { resource: 'laptop' });
      later.send(`<presence/>`);
      assert.deepEqual(await bodiesOf(later, 3), ['first', 'second', 'third']);
    });
  });
}
