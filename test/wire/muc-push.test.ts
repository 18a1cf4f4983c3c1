// Pushes for group chat (modules/muc/push.ts through the push module's `notify`): members with push
// enabled who are not in the room get a push for messages that mention them (or for every message
// with push_all_messages); a member in the room with a live session gets none; one whose session in
// the room hibernates is pushed from its queue. Summaries follow the account's push options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { assertMatches } from './module-helpers.js';
import { FakePushService, enableSm, enablePush, optionsForm, sleep } from './push-helpers.js';
import { adminSet, available, createRoom, enter, say, users } from './muc-helpers.js';

/** A server with the fake push service at push.localhost (as push-helpers' pushServer) and these MUC settings. */
async function pushServer(t: { after(fn: () => unknown): void }, muc: Record<string, unknown> = {}): Promise<{ server: TestServer; fake: FakePushService }> {
  const fake = new FakePushService();
  const moduleList = [...builtinModules.filter((m) => m.name !== 'pubsub' && m.name !== 'appserver'), fake.module];
  const server = await startServer(t, { moduleList, config: { modules: { push: { coalesce_window: '300ms' }, muc } } });
  return { server, fake };
}

/** Juliet (member of the room, reserved nick Jules) enables push on 'phone' and goes offline. */
async function offlineMember(server: TestServer, room: string, extraForms = '') {
  const juliet = await server.login('juliet', { resource: 'phone' });
  await enablePush(juliet, 'N1', 'S', extraForms);
  await juliet.close();
  const [romeo] = await users(server, 'romeo');
  await createRoom(romeo!, room, 'Romeo', { persistentroom: '1' });
  assertMatches(await adminSet(romeo!, room, `affiliation='member' jid='juliet@localhost' nick='Jules'`), `<iq type='result'/>`);
  return romeo!;
}

test('a member not in the room gets a push for a message that mentions her nick, none for others; no body by default', async (t) => {
  const { server, fake } = await pushServer(t);
  const romeo = await offlineMember(server, 'balcony');
  say(romeo, 'balcony', 'good night, everyone');
  await romeo.waitFor(`<message><body>good night, everyone</body></message>`);
  await fake.expectNone(300);
  say(romeo, 'balcony', 'jules, are you there?');
  const push = await fake.next();
  assert.equal(push.node, 'N1');
  assert.equal(push.summary['message-count'], '1');
  assert.equal(push.summary['last-message-priority'], 'high');
  assert.equal(push.summary['last-message-body'], undefined, 'no body unless the account allowed it');
  assert.equal(push.summary['last-message-sender'], undefined, 'no sender unless the account allowed it');
});

test("a mention by username works too; with the account's options the push carries sender and body", async (t) => {
  const { server, fake } = await pushServer(t);
  const romeo = await offlineMember(server, 'orchard', optionsForm({ 'include-senders': true, 'include-message-bodies': true }));
  say(romeo, 'orchard', 'Has anyone seen Juliet?');
  const push = await fake.next();
  assert.equal(push.summary['last-message-body'], 'Has anyone seen Juliet?');
  assert.equal(push.summary['last-message-sender'], 'orchard@conference.localhost/Romeo');
});

test('push_all_messages on: a message that mentions nobody still pushes; a member with a live session in the room gets none', async (t) => {
  const { server, fake } = await pushServer(t, { push_all_messages: true });
  const romeo = await offlineMember(server, 'square');
  say(romeo, 'square', 'fresh fish');
  assert.equal((await fake.next()).node, 'N1');
  // Now Juliet is in the room from a live session: she reads it there, no push.
  const juliet = await available(server, 'juliet', 'desk');
  await enter(juliet, 'square', 'Jules');
  await sleep(350); // past the coalescing window
  say(romeo, 'square', 'more fish');
  await juliet.waitFor(`<message><body>more fish</body></message>`);
  await fake.expectNone(300);
});

test('a member whose session in the room hibernates is pushed from its queue', async (t) => {
  const { server, fake } = await pushServer(t);
  const [romeo] = await users(server, 'romeo');
  await createRoom(romeo!, 'garden', 'Romeo');
  const juliet = await available(server, 'juliet', 'phone');
  await enablePush(juliet, 'N1');
  await enter(juliet, 'garden', 'Juliet');
  await enableSm(juliet);
  juliet.dropTcp();
  await sleep(100); // the session hibernates (its presence in the room stays)
  say(romeo!, 'garden', 'a rose by any other name');
  const push = await fake.next();
  assert.equal(push.node, 'N1');
  assert.equal(push.summary['message-count'], '1');
});

test('a mentioned member whose session in the room hibernates gets one push (from its queue), not a second for the mention', async (t) => {
  const { server, fake } = await pushServer(t);
  const [romeo] = await users(server, 'romeo');
  await createRoom(romeo!, 'arbour', 'Romeo');
  assertMatches(await adminSet(romeo!, 'arbour', `affiliation='member' jid='juliet@localhost'`), `<iq type='result'/>`);
  const juliet = await available(server, 'juliet', 'phone');
  await enablePush(juliet, 'N1');
  await enter(juliet, 'arbour', 'Juliet');
  await enableSm(juliet);
  juliet.dropTcp();
  await sleep(100);
  say(romeo!, 'arbour', 'Juliet, wake up');
  assert.equal((await fake.next()).summary['message-count'], '1');
  await fake.expectNone(600); // past the coalescing window: no second push for the same message
});
