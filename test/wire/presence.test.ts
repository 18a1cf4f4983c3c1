import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { defineModule } from '../../server/module-api.js';
import { befriend, expectPush, expectUnordered, getRoster, online, waitForSubscription } from './presence-helpers.js';

/** Romeo and Juliet subscribed to each other, both available, with the login traffic read. */
async function lovers(server: TestServer): Promise<[XmppClient, XmppClient]> {
  await befriend(server, 'romeo', 'juliet');
  const romeo = await online(server, 'romeo', 'orchard');
  // His probe finds her offline: unavailable from her bare JID (RFC 6121 §4.3.2).
  await romeo.expect(`<presence from='juliet@localhost' to='romeo@localhost' type='unavailable'/>`);
  const juliet = await online(server, 'juliet', 'balcony');
  await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`);
  await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost'/>`);
  return [romeo, juliet];
}

describe('presence: initial presence (RFC 6121 §4.2)', () => {
  test('initial presence → reflected to the sender, sent to the other available resources, which send theirs back', async (t) => {
    const server = await startServer(t);
    const r1 = await online(server, 'romeo', 'r1');
    const idle = await server.login('romeo', { resource: 'idle' }); // connected, never available
    const r2 = await server.login('romeo', { resource: 'r2' });
    r2.send(`<presence><show>chat</show><status>here</status></presence>`);
    await r2.expect(`<presence from='romeo@localhost/r2' to='romeo@localhost/r2'><show>chat</show><status>here</status></presence>`);
    await r2.expect(`<presence from='romeo@localhost/r1' to='romeo@localhost/r2'/>`);
    await r1.expect(`<presence from='romeo@localhost/r2' to='romeo@localhost/r1'><show>chat</show><status>here</status></presence>`);
    await idle.expectNothing(100);
    await r1.expectNothing(50);
  });

  test('juliet comes online after romeo → she gets his presence (probe), he gets hers (broadcast)', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await online(server, 'romeo', 'orchard', `<presence><status>waiting</status></presence>`);
    await romeo.expect(`<presence from='juliet@localhost' to='romeo@localhost' type='unavailable'/>`);
    const mercutio = await online(server, 'mercutio', 'street');
    const juliet = await online(server, 'juliet', 'balcony');
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost'><status>waiting</status></presence>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`);
    await mercutio.expectNothing(150);
    await juliet.expectNothing(50);
  });

  test("a one-way subscription: the 'from' side broadcasts, only the 'to' side probes", async (t) => {
    const server = await startServer(t);
    // Romeo subscribes to juliet's presence; she does not subscribe back.
    const setup = await server.login('romeo', { resource: 'setup' });
    const setupJ = await server.login('juliet', { resource: 'setup' });
    setup.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await waitForPending(setup);
    setupJ.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await waitForSubscription(setup, 'juliet@localhost', 'to');
    await setup.close();
    await setupJ.close();

    const juliet = await online(server, 'juliet', 'balcony');
    const romeo = await online(server, 'romeo', 'orchard');
    // His probe ('to') is answered; his own presence does not go to her: she has 'from' only.
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`);
    await juliet.expectNothing(150);
    juliet.send(`<presence><show>away</show></presence>`);
    await juliet.expect(`<presence from='juliet@localhost/balcony'><show>away</show></presence>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'><show>away</show></presence>`);
    romeo.send(`<presence><show>dnd</show></presence>`);
    await romeo.expect(`<presence from='romeo@localhost/orchard'><show>dnd</show></presence>`);
    await juliet.expectNothing(150);
  });
});

describe('presence: hooks for other modules', () => {
  test("'session:available' after each broadcast (initial first), 'session:unavailable' after unavailable", async (t) => {
    const events: string[] = [];
    const recorder = defineModule({
      name: 'recorder',
      depends: ['presence'],
      setup(m) {
        m.on('session:available', ({ session, initial }) => void events.push(`available ${session.resource} initial=${initial} priority=${session.priority}`));
        m.on('session:unavailable', ({ session }) => void events.push(`unavailable ${session.resource} available=${session.available}`));
      },
    });
    const server = await startServer(t, { moduleList: [...builtinModules, recorder] });
    const romeo = await online(server, 'romeo', 'r1', `<presence><priority>3</priority></presence>`);
    romeo.send(`<presence><show>away</show></presence>`);
    await romeo.expect(`<presence><show>away</show></presence>`);
    romeo.send(`<presence type='unavailable'/>`);
    await romeo.expect(`<presence type='unavailable'/>`);
    romeo.send(`<presence type='unavailable'/>`); // not available any more: no second event
    await getRoster(romeo); // the stream handles stanzas in order: the presence handling is over
    assert.deepEqual(events, ['available r1 initial=true priority=3', 'available r1 initial=false priority=0', 'unavailable r1 available=false']);
  });
});

describe('presence: updates and unavailable (RFC 6121 §4.4, §4.5)', () => {
  test('a presence update → subscribers and own resources; no new probes', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    const r2 = await online(server, 'romeo', 'r2');
    await r2.expect(`<presence from='romeo@localhost/orchard' to='romeo@localhost/r2'/>`);
    await romeo.expect(`<presence from='romeo@localhost/r2' to='romeo@localhost/orchard'/>`);
    await r2.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`); // its probe, answered
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`); // to the bare JID: all resources
    await juliet.expect(`<presence from='romeo@localhost/r2' to='juliet@localhost'/>`);

    romeo.send(`<presence><show>away</show><status>gone fishing</status></presence>`);
    const update = `<show>away</show><status>gone fishing</status>`;
    await romeo.expect(`<presence from='romeo@localhost/orchard' to='romeo@localhost/orchard'>${update}</presence>`);
    await r2.expect(`<presence from='romeo@localhost/orchard' to='romeo@localhost/r2'>${update}</presence>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost'>${update}</presence>`);
    await juliet.expectNothing(100);
    await romeo.expectNothing(50);
  });

  test('unavailable from a client → subscribers and own resources; the resource then gets no bare-JID messages', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    const r2 = await online(server, 'romeo', 'r2');
    await expectUnordered(r2, [`<presence from='romeo@localhost/orchard'/>`, `<presence from='juliet@localhost/balcony'/>`]);
    await expectUnordered(romeo, [`<presence from='romeo@localhost/r2'/>`, `<presence from='juliet@localhost/balcony'/>`]);
    await juliet.expect(`<presence from='romeo@localhost/r2'/>`);

    romeo.send(`<presence type='unavailable'><status>sleeping</status></presence>`);
    await romeo.expect(`<presence from='romeo@localhost/orchard' type='unavailable'><status>sleeping</status></presence>`);
    await r2.expect(`<presence from='romeo@localhost/orchard' to='romeo@localhost/r2' type='unavailable'><status>sleeping</status></presence>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost' type='unavailable'><status>sleeping</status></presence>`);
    juliet.send(`<message to='romeo@localhost' type='chat' id='m1'><body>wake up</body></message>`);
    await r2.expect(`<message from='juliet@localhost/balcony' id='m1'/>`);
    await romeo.expectNothing(100);

    // A second unavailable changes nothing and is not broadcast again.
    romeo.send(`<presence type='unavailable'/>`);
    await juliet.expectNothing(100);
    await r2.expectNothing(50);
  });

  test('clean close while available → unavailable from the full JID to subscribers and own resources', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    const r2 = await online(server, 'romeo', 'r2');
    await expectUnordered(r2, [`<presence from='romeo@localhost/orchard'/>`, `<presence from='juliet@localhost/balcony'/>`]);
    await juliet.expect(`<presence from='romeo@localhost/r2'/>`);
    await romeo.close();
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost' type='unavailable'/>`, { strict: true });
    await r2.expect(`<presence from='romeo@localhost/orchard' to='romeo@localhost/r2' type='unavailable'/>`, { strict: true });
  });

  test('dropped TCP while available → unavailable to subscribers', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    romeo.dropTcp();
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost' type='unavailable'/>`);
  });

  test('closing a session that never sent presence broadcasts nothing', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const juliet = await online(server, 'juliet', 'balcony');
    await juliet.expect(`<presence from='romeo@localhost' type='unavailable'/>`);
    const romeo = await server.login('romeo', { resource: 'quiet' });
    await romeo.close();
    await juliet.expectNothing(150);
  });
});

describe('presence: directed presence (RFC 6121 §4.6)', () => {
  test('directed presence to a non-subscriber → delivered; at disconnect it gets unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'orchard');
    const nurse = await online(server, 'nurse', 'kitchen');
    romeo.send(`<presence to='nurse@localhost'><status>a word</status></presence>`);
    await nurse.expect(`<presence from='romeo@localhost/orchard' to='nurse@localhost'><status>a word</status></presence>`);
    romeo.dropTcp();
    await nurse.expect(`<presence from='romeo@localhost/orchard' to='nurse@localhost' type='unavailable'/>`);
  });

  test('directed presence before initial presence still earns an unavailable at the end', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'orchard' });
    const nurse = await online(server, 'nurse', 'kitchen');
    romeo.send(`<presence to='nurse@localhost/kitchen'/>`);
    await nurse.expect(`<presence from='romeo@localhost/orchard' to='nurse@localhost/kitchen'/>`);
    await romeo.close();
    await nurse.expect(`<presence from='romeo@localhost/orchard' to='nurse@localhost/kitchen' type='unavailable'/>`);
  });

  test('directed unavailable presence ends it: nothing more at disconnect', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'orchard');
    const nurse = await online(server, 'nurse', 'kitchen');
    romeo.send(`<presence to='nurse@localhost'/>`);
    await nurse.expect(`<presence from='romeo@localhost/orchard'/>`);
    romeo.send(`<presence to='nurse@localhost' type='unavailable'/>`);
    await nurse.expect(`<presence from='romeo@localhost/orchard' type='unavailable'/>`);
    await romeo.close();
    await nurse.expectNothing(150);
  });

  test('broadcast unavailable reaches directed recipients too, once', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    const nurse = await online(server, 'nurse', 'kitchen');
    romeo.send(`<presence to='nurse@localhost'/>`);
    romeo.send(`<presence to='juliet@localhost'><show>chat</show></presence>`); // a subscriber: no extra tracking
    await nurse.expect(`<presence from='romeo@localhost/orchard'/>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard'><show>chat</show></presence>`);
    romeo.send(`<presence type='unavailable'/>`);
    await nurse.expect(`<presence from='romeo@localhost/orchard' to='nurse@localhost' type='unavailable'/>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost' type='unavailable'/>`);
    await romeo.close();
    await nurse.expectNothing(150);
    await juliet.expectNothing(50);
  });
});

describe('presence: priority (RFC 6121 §4.7.2.3)', () => {
  test('negative priority: presence is broadcast, but messages to the bare JID skip that resource', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    const r2 = await online(server, 'romeo', 'r2', `<presence><priority>-5</priority></presence>`);
    await juliet.waitFor(`<presence from='romeo@localhost/r2'><priority>-5</priority></presence>`);
    await romeo.waitFor(`<presence from='romeo@localhost/r2'><priority>-5</priority></presence>`);
    juliet.send(`<message to='romeo@localhost' type='chat' id='m1'><body>bare</body></message>`);
    await romeo.waitFor(`<message id='m1'/>`);
    juliet.send(`<message to='romeo@localhost/r2' type='chat' id='m2'><body>full</body></message>`);
    await r2.waitFor(`<message id='m2'/>`);
    assert.ok(!r2.received.some((el) => el.name === 'message' && el.attrs.id === 'm1'), 'the negative-priority resource got the bare-JID message');
  });

  for (const [what, presence] of [
    ['a word', `<presence><priority>high</priority></presence>`],
    ['128', `<presence><priority>128</priority></presence>`],
    ['-129', `<presence><priority>-129</priority></presence>`],
    ['a fraction', `<presence><priority>1.5</priority></presence>`],
    ['two priorities', `<presence><priority>1</priority><priority>2</priority></presence>`],
  ] as const) {
    test(`priority ${what} → bad-request; the resource stays unavailable and nothing is broadcast`, async (t) => {
      const server = await startServer(t);
      const [romeo, juliet] = await lovers(server);
      const r2 = await server.login('romeo', { resource: 'r2' });
      await getRoster(r2);
      r2.send(presence);
      await r2.expect(`<presence type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
      await juliet.expectNothing(150);
      await romeo.expectNothing(50);
      // Still not available: a broadcast from romeo's other resource does not reach it.
      romeo.send(`<presence><show>away</show></presence>`);
      await juliet.expect(`<presence from='romeo@localhost/orchard'><show>away</show></presence>`);
      await r2.expectNothing(100);
    });
  }

  test('priority 127 and -128 are accepted', async (t) => {
    const server = await startServer(t);
    const r1 = await online(server, 'romeo', 'r1', `<presence><priority>127</priority></presence>`);
    const r2 = await online(server, 'romeo', 'r2', `<presence><priority>-128</priority></presence>`);
    await r1.expect(`<presence from='romeo@localhost/r2'><priority>-128</priority></presence>`);
    await r2.expect(`<presence from='romeo@localhost/r1'><priority>127</priority></presence>`);
  });
});

describe('presence: probes (RFC 6121 §4.3)', () => {
  test("a subscriber's probe → the last presence of each available resource", async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const balcony = await online(server, 'juliet', 'balcony', `<presence><show>away</show></presence>`);
    const chamber = await online(server, 'juliet', 'chamber');
    await balcony.waitFor(`<presence from='juliet@localhost/chamber'/>`);
    await chamber.waitFor(`<presence from='juliet@localhost/balcony'/>`);
    const romeo = await server.login('romeo', { resource: 'orchard' });
    romeo.send(`<presence type='probe' to='juliet@localhost'/>`);
    await expectUnordered(romeo, [
      `<presence from='juliet@localhost/balcony' to='romeo@localhost/orchard'><show>away</show></presence>`,
      `<presence from='juliet@localhost/chamber' to='romeo@localhost/orchard'/>`,
    ]);
    await romeo.expectNothing(100);
  });

  test("a non-subscriber's probe → no presence leaked (the unsubscribed answer is for its server)", async (t) => {
    const server = await startServer(t);
    await online(server, 'juliet', 'balcony');
    const tybalt = await server.login('tybalt', { resource: 'street' });
    await getRoster(tybalt);
    tybalt.send(`<presence type='probe' to='juliet@localhost'/>`);
    // The answer is an unsubscribed to his bare JID, which cancels nothing he has: nothing to deliver.
    await tybalt.expectNothing(200);
  });

  for (const [what, contact] of [
    ['who is not subscribed', 'juliet'],
    ['that does not exist', 'nobody'],
  ] as const) {
    test(`a stale 'to' subscription to an account ${what} → the probe's unsubscribed answer cancels it`, async (t) => {
      const server = await startServer(t);
      if (contact === 'juliet') await online(server, 'juliet', 'balcony');
      await server.createUser('tybalt');
      // Tybalt's server believes he is subscribed; the contact's side knows nothing of it.
      await server.server.store.map('localhost', 'roster', 'items').set('tybalt', `${contact}@localhost`, { jid: `${contact}@localhost`, subscription: 'to', groups: [] });
      const tybalt = await online(server, 'tybalt', 'street');
      await tybalt.expect(`<presence from='${contact}@localhost' to='tybalt@localhost' type='unsubscribed'/>`);
      await expectPush(tybalt, `<item jid='${contact}@localhost' subscription='none'/>`);
      await tybalt.expectNothing(100);
    });
  }
});

describe('presence: delivery to a local account (RFC 6121 §8.5)', () => {
  test('to the bare JID → every available resource, not the connected-but-unavailable ones', async (t) => {
    const server = await startServer(t);
    const balcony = await online(server, 'juliet', 'balcony');
    const chamber = await online(server, 'juliet', 'chamber');
    await balcony.expect(`<presence from='juliet@localhost/chamber'/>`);
    await chamber.expect(`<presence from='juliet@localhost/balcony'/>`);
    const hidden = await server.login('juliet', { resource: 'hidden' });
    const nurse = await server.login('nurse', { resource: 'kitchen' });
    nurse.send(`<presence to='juliet@localhost'><status>news</status></presence>`);
    await balcony.expect(`<presence from='nurse@localhost/kitchen' to='juliet@localhost'><status>news</status></presence>`);
    await chamber.expect(`<presence from='nurse@localhost/kitchen' to='juliet@localhost'><status>news</status></presence>`);
    await hidden.expectNothing(100);
  });

  test('to a full JID → that resource if connected; to a resource that is not there → dropped', async (t) => {
    const server = await startServer(t);
    const hidden = await server.login('juliet', { resource: 'hidden' });
    const nurse = await server.login('nurse', { resource: 'kitchen' });
    nurse.send(`<presence to='juliet@localhost/hidden'/>`);
    await hidden.expect(`<presence from='nurse@localhost/kitchen' to='juliet@localhost/hidden'/>`);
    nurse.send(`<presence to='juliet@localhost/gone'/>`);
    await nurse.expectNothing(150);
    await hidden.expectNothing(50);
  });
});

/** Waits until the setup client's roster shows a pending request to juliet. */
async function waitForPending(client: XmppClient): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const roster = await client.iq(`<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`);
    if (roster.toString().includes("ask='subscribe'")) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail('no pending request');
}
