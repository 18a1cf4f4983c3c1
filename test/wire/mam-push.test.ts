// Archived messages and push (XEP-0357 with XEP-0313): a device with push enabled and no session
// hears of a message the archive kept while another of the account's sessions took it; every
// device is pushed once per message, whichever way (offline storage, a hibernated session's queue,
// the archive) it learns of it. Against the fake push service of the push tests.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestServer, XmppClient } from '../../bin/testing.js';
import { enablePush, enableSm, pushServer, sleep } from './push-helpers.js';
import { HINTS, nextMessage, stanzaIds } from './mam-helpers.js';

/** romeo's phone enables push (node N1) and logs out cleanly: the enable stays, no session is left. */
async function phoneGone(server: TestServer): Promise<void> {
  const phone = await server.login('romeo', { resource: 'phone' });
  await enablePush(phone, 'N1');
  await phone.close();
  await sleep(50);
}

async function availableDesktop(server: TestServer): Promise<XmppClient> {
  const desktop = await server.login('romeo', { resource: 'desktop' });
  desktop.send('<presence/>');
  await sleep(100);
  return desktop;
}

describe('mam: push for archived messages', () => {
  test('an archived message delivered to the desktop → the phone without a session is pushed once', async (t) => {
    const { server, fake } = await pushServer(t, { include_message_bodies: true, allow_message_bodies: true });
    await phoneGone(server);
    const desktop = await availableDesktop(server);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Wake up</body></message>`);
    const got = await nextMessage(desktop);
    assert.equal(stanzaIds(got).length, 1, 'archived');
    const push = await fake.next();
    assert.equal(push.node, 'N1');
    assert.equal(push.summary['message-count'], '1');
    await fake.expectNone(400);
  });

  test('a message that is not archived (no-store) → no push for the phone while the desktop took it', async (t) => {
    const { server, fake } = await pushServer(t);
    await phoneGone(server);
    const desktop = await availableDesktop(server);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Private</body><no-store xmlns='${HINTS}'/></message>`);
    const got = await nextMessage(desktop);
    assert.deepEqual(stanzaIds(got), []);
    await fake.expectNone(400);
  });

  test('preferences that keep a contact out of the archive → no push from the archive either', async (t) => {
    const { server, fake } = await pushServer(t);
    await phoneGone(server);
    const desktop = await availableDesktop(server);
    await desktop.iq(`<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>juliet@localhost</jid></never></prefs></iq>`);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Unrecorded</body></message>`);
    await nextMessage(desktop);
    await fake.expectNone(400);
  });

  test('no session at all → one push (offline storage), not a second one from the archive', async (t) => {
    const { server, fake } = await pushServer(t);
    await phoneGone(server);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Offline</body></message>`);
    const push = await fake.next();
    assert.equal(push.node, 'N1');
    await fake.expectNone(400);
  });

  test('the phone hibernating with push (available) and the desktop live → one push, from the phone\'s queue', async (t) => {
    const { server, fake } = await pushServer(t);
    const phone = await server.login('romeo', { resource: 'phone' });
    await enablePush(phone, 'N1');
    phone.send('<presence/>');
    await enableSm(phone);
    await sleep(50);
    phone.dropTcp();
    await sleep(100);
    const desktop = await availableDesktop(server);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Both</body></message>`);
    await nextMessage(desktop);
    const push = await fake.next();
    assert.equal(push.node, 'N1');
    await fake.expectNone(400);
  });

  test('no live session (the desktop hibernated without push, the phone gone) → the phone is pushed once, from the archive', async (t) => {
    const { server, fake } = await pushServer(t);
    await phoneGone(server);
    const desktop = await availableDesktop(server);
    await enableSm(desktop);
    desktop.dropTcp();
    await sleep(100);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Nobody awake</body></message>`);
    const push = await fake.next();
    assert.equal(push.node, 'N1');
    await fake.expectNone(400);
    const [session] = server.server.sessions.resourcesOf('romeo@localhost');
    assert.equal(session?.state, 'hibernated', 'the message went to the hibernated session, not offline storage');
  });

  test('the phone live → no push for it', async (t) => {
    const { server, fake } = await pushServer(t);
    const phone = await server.login('romeo', { resource: 'phone' });
    await enablePush(phone, 'N1');
    phone.send('<presence/>');
    await sleep(50);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Awake</body></message>`);
    await nextMessage(phone);
    await fake.expectNone(400);
  });

  test('without the archive (mam disabled) → a phone without a session is not pushed while the desktop takes messages', async (t) => {
    const { server, fake } = await pushServer(t, {}, { modules_disabled: ['mam'] });
    await phoneGone(server);
    const desktop = await availableDesktop(server);
    const juliet = await server.login('juliet');
    juliet.send(`<message to='romeo@localhost' type='chat'><body>Unarchived</body></message>`);
    const got = await nextMessage(desktop);
    assert.deepEqual(stanzaIds(got), []);
    await fake.expectNone(400);
  });
});
