import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { parseXml } from '../../server/xml/parser.js';
import { befriend, expectPush, getRoster, itemsOf, online } from './presence-helpers.js';

const NICK = 'http://jabber.org/protocol/nick';

/** Romeo and Juliet, strangers, both interested and available. */
async function strangers(server: TestServer): Promise<[XmppClient, XmppClient]> {
  return [await online(server, 'romeo', 'orchard'), await online(server, 'juliet', 'balcony')];
}

/** Romeo and Juliet subscribed to each other, both available, with the login traffic read. */
async function lovers(server: TestServer): Promise<[XmppClient, XmppClient]> {
  await befriend(server, 'romeo', 'juliet');
  const romeo = await online(server, 'romeo', 'orchard');
  await romeo.expect(`<presence from='juliet@localhost' type='unavailable'/>`);
  const juliet = await online(server, 'juliet', 'balcony');
  await romeo.expect(`<presence from='juliet@localhost/balcony'/>`);
  await juliet.expect(`<presence from='romeo@localhost/orchard'/>`);
  return [romeo, juliet];
}

async function subscription(client: XmppClient, contact: string): Promise<string | undefined> {
  const item = itemsOf(await getRoster(client)).get(contact);
  return item === undefined ? undefined : `${item.attrs.subscription}${item.attrs.ask ? '+ask' : ''}${item.attrs.approved ? '+approved' : ''}`;
}

describe('subscriptions: the handshake (RFC 6121 §3.1)', () => {
  test('romeo and juliet subscribe to each other: none → to/from → both, with every push and presence', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);

    // §3.1.1-3: the request, stamped with his bare JID; his roster shows it pending.
    romeo.send(`<presence id='sub1' to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await juliet.expect(`<presence id='sub1' from='romeo@localhost' to='juliet@localhost' type='subscribe'/>`, { strict: true });
    assert.equal(await subscription(juliet, 'romeo@localhost'), undefined, 'no roster item for a pending request (A.1)');

    // §3.1.5-6: she approves: her push says 'from'; he gets the approval, then 'to', then her presence.
    juliet.send(`<presence id='sub2' to='romeo@localhost' type='subscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='from'/>`);
    await romeo.expect(`<presence id='sub2' from='juliet@localhost' to='romeo@localhost' type='subscribed'/>`, { strict: true });
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='to'/>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`);

    // And the other way round.
    juliet.send(`<presence id='sub3' to='romeo@localhost' type='subscribe'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='from' ask='subscribe'/>`);
    await romeo.expect(`<presence id='sub3' from='juliet@localhost' to='romeo@localhost' type='subscribe'/>`, { strict: true });
    romeo.send(`<presence id='sub4' to='juliet@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='both'/>`);
    await juliet.expect(`<presence id='sub4' from='romeo@localhost' to='juliet@localhost' type='subscribed'/>`, { strict: true });
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='both'/>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost'/>`);
    await romeo.expectNothing(100);
    await juliet.expectNothing(50);

    // Presence now flows both ways.
    romeo.send(`<presence><show>chat</show></presence>`);
    await romeo.expect(`<presence from='romeo@localhost/orchard'><show>chat</show></presence>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost'><show>chat</show></presence>`);
    juliet.send(`<presence><show>away</show></presence>`);
    await juliet.expect(`<presence from='juliet@localhost/balcony'><show>away</show></presence>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'><show>away</show></presence>`);
    assert.equal(await subscription(romeo, 'juliet@localhost'), 'both');
    assert.equal(await subscription(juliet, 'romeo@localhost'), 'both');
  });

  test('a request to a full JID goes to the bare JID, and every available resource of the contact gets it', async (t) => {
    const server = await startServer(t);
    const [romeo, balcony] = await strangers(server);
    const chamber = await online(server, 'juliet', 'chamber');
    await balcony.expect(`<presence from='juliet@localhost/chamber'/>`);
    await chamber.expect(`<presence from='juliet@localhost/balcony'/>`);
    romeo.send(`<presence to='juliet@localhost/balcony' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await balcony.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='subscribe'/>`);
    await chamber.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='subscribe'/>`);
    // One approves; both resources (interested) see the push.
    chamber.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await expectPush(chamber, `<item jid='romeo@localhost' subscription='from'/>`);
    await expectPush(balcony, `<item jid='romeo@localhost' subscription='from'/>`);
    await romeo.expect(`<presence from='juliet@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='to'/>`);
    const presences = [await romeo.next(), await romeo.next()].map((p) => p.attrs.from).sort();
    assert.deepEqual(presences, ['juliet@localhost/balcony', 'juliet@localhost/chamber']);
  });

  test('a second request while one is pending is not delivered again (A.3.1)', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await juliet.expect(`<presence from='romeo@localhost' type='subscribe'/>`);
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await juliet.expectNothing(150);
    await romeo.expectNothing(50);
  });

  test('a request to an account that does not exist → only the pending push, no error (§8.5.1)', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'orchard');
    romeo.send(`<presence to='nobody@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='nobody@localhost' subscription='none' ask='subscribe'/>`);
    await romeo.expectNothing(150);
  });

  test('subscription stanzas without a to, or to oneself, change nothing and are not answered', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'orchard');
    for (const type of ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']) {
      romeo.send(`<presence type='${type}'/>`);
      romeo.send(`<presence type='${type}' to='romeo@localhost'/>`);
    }
    await romeo.expectNothing(200);
    assert.equal(itemsOf(await getRoster(romeo)).size, 0);
  });

  test('an account already subscribed: a new request is answered by the server, and a lost state is repaired', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    // Romeo's server lost his side of it (say, a restored backup): his roster says none.
    await server.server.store.map('localhost', 'roster', 'items').set('romeo', 'juliet@localhost', { jid: 'juliet@localhost', subscription: 'none', groups: [] });
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    // §3.1.3 (1): juliet's server answers for her, and her presence follows.
    await romeo.expect(`<presence from='juliet@localhost' to='romeo@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='to'/>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`);
    await juliet.expectNothing(150);
  });

  test('an approval nobody asked for is ignored by the receiving server (A.3.3)', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'orchard');
    // As a remote server might send it.
    server.server.router.routeLocal(parseXml(`<presence from='benvolio@example.net' to='romeo@localhost' type='subscribed'/>`));
    server.server.router.routeLocal(parseXml(`<presence from='benvolio@example.net' to='romeo@localhost' type='unsubscribed'/>`));
    server.server.router.routeLocal(parseXml(`<presence from='benvolio@example.net' to='romeo@localhost' type='unsubscribe'/>`));
    await romeo.expectNothing(200);
    assert.equal(itemsOf(await getRoster(romeo)).size, 0);
  });

  test('a request from a remote JID is delivered and kept like a local one', async (t) => {
    const server = await startServer(t);
    const romeo = await online(server, 'romeo', 'orchard');
    server.server.router.routeLocal(parseXml(`<presence from='benvolio@example.net/horse' to='romeo@localhost/orchard' type='subscribe' id='r1'/>`));
    await romeo.expect(`<presence id='r1' from='benvolio@example.net' to='romeo@localhost' type='subscribe'/>`, { strict: true });
  });
});

describe('subscriptions: requests waiting for an answer (RFC 6121 §3.1.3)', () => {
  test('a request to an offline account is kept, with its extensions, and delivered at each initial presence until answered', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await online(server, 'romeo', 'orchard');
    romeo.send(`<presence to='juliet@localhost' type='subscribe'><nick xmlns='${NICK}'>Romeo</nick></presence>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);

    // Connected but not available: not yet.
    const first = await server.login('juliet', { resource: 'balcony' });
    await getRoster(first);
    await first.expectNothing(150);
    first.send('<presence/>');
    await first.expect(`<presence from='juliet@localhost/balcony'/>`);
    await first.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='subscribe'><nick xmlns='${NICK}'>Romeo</nick></presence>`);
    // A second resource becoming available gets it too.
    const second = await online(server, 'juliet', 'chamber');
    await second.expect(`<presence from='juliet@localhost/balcony'/>`);
    await second.expect(`<presence from='romeo@localhost' type='subscribe'/>`);
    await first.close();
    await second.close();

    // Not answered: again after a restart.
    await server.restart();
    const afterRestart = await online(server, 'juliet', 'balcony');
    await afterRestart.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='subscribe'><nick xmlns='${NICK}'>Romeo</nick></presence>`);
    afterRestart.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await expectPush(afterRestart, `<item jid='romeo@localhost' subscription='from'/>`);
    await afterRestart.close();

    // Answered: never again.
    const answered = await online(server, 'juliet', 'balcony');
    await answered.expectNothing(150);
    const romeoAgain = await server.login('romeo', { resource: 'orchard' });
    assert.equal(await subscription(romeoAgain, 'juliet@localhost'), 'to');
  });

  test('a refused request (unsubscribed) is dropped: the requester is told, and it is not delivered again', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await juliet.expect(`<presence from='romeo@localhost' type='subscribe'/>`);
    juliet.send(`<presence to='romeo@localhost' type='unsubscribed'/>`);
    await romeo.expect(`<presence from='juliet@localhost' to='romeo@localhost' type='unsubscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none'/>`);
    await juliet.expectNothing(100);
    await juliet.close();
    const again = await online(server, 'juliet', 'balcony');
    await again.expectNothing(150);
  });

  test('a withdrawn request (unsubscribe while pending) is dropped and the contact is told', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await juliet.expect(`<presence from='romeo@localhost' type='subscribe'/>`);
    romeo.send(`<presence to='juliet@localhost' type='unsubscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none'/>`);
    await juliet.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='unsubscribe'/>`);
    await juliet.close();
    const again = await online(server, 'juliet', 'balcony');
    await again.expectNothing(150);
  });
});

describe('subscriptions: ending them (RFC 6121 §3.2, §3.3)', () => {
  test('unsubscribe from a both subscription → both:from on his side, both:to on hers, and her presence stops', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    romeo.send(`<presence to='juliet@localhost' type='unsubscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='from'/>`);
    await juliet.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='unsubscribe'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='to'/>`);
    // §3.3.3: her server sends him her unavailable presence.
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost' type='unavailable'/>`);
    juliet.send(`<presence><show>away</show></presence>`);
    await juliet.expect(`<presence from='juliet@localhost/balcony'><show>away</show></presence>`);
    await romeo.expectNothing(150);
    romeo.send(`<presence><show>xa</show></presence>`);
    await romeo.expect(`<presence from='romeo@localhost/orchard'><show>xa</show></presence>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost'><show>xa</show></presence>`);
  });

  test('unsubscribed cancels the contact\'s subscription: unavailable first, then the cancellation and pushes', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await lovers(server);
    juliet.send(`<presence to='romeo@localhost' type='unsubscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='to'/>`);
    // §3.2.2: while he is still subscribed, her resources' unavailable presence; then the unsubscribed.
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost' type='unavailable'/>`);
    await romeo.expect(`<presence from='juliet@localhost' to='romeo@localhost' type='unsubscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='from'/>`);
    juliet.send(`<presence><show>away</show></presence>`);
    await juliet.expect(`<presence from='juliet@localhost/balcony'><show>away</show></presence>`);
    await romeo.expectNothing(150);
  });

  test('unsubscribed or unsubscribe with no subscription and nothing pending → no push, nothing delivered', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    romeo.send(`<presence to='juliet@localhost' type='unsubscribed'/>`);
    romeo.send(`<presence to='juliet@localhost' type='unsubscribe'/>`);
    await romeo.expectNothing(150);
    await juliet.expectNothing(50);
  });
});

describe('subscriptions: pre-approval (RFC 6121 §3.4)', () => {
  test('subscribed with no request pending → approved item, not routed; the later request is approved at once', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    juliet.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none' approved='true'/>`);
    await romeo.expectNothing(150);

    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await romeo.expect(`<presence from='juliet@localhost' to='romeo@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='to'/>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony' to='romeo@localhost'/>`);
    // She never sees the request; the approval is used up.
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='from'/>`);
    await juliet.expectNothing(100);
  });

  test('pre-approval survives a restart', async (t) => {
    const server = await startServer(t);
    const juliet = await online(server, 'juliet', 'balcony');
    await server.createUser('romeo');
    juliet.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none' approved='true'/>`);
    await server.restart();
    const romeo = await online(server, 'romeo', 'orchard');
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await romeo.expect(`<presence from='juliet@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='to'/>`);
    // She is offline: no presence follows the approval.
    await romeo.expectNothing(100);
  });

  test('unsubscribed withdraws a pre-approval: the next request waits for her answer', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    juliet.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none' approved='true'/>`);
    juliet.send(`<presence to='romeo@localhost' type='unsubscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none'/>`);
    await romeo.expectNothing(100);
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await juliet.expect(`<presence from='romeo@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none' ask='subscribe'/>`);
    await romeo.expectNothing(100);
  });

  test("pre-approving a contact in 'to' state, and subscribed to one already subscribed is ignored", async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await strangers(server);
    // Juliet subscribes to romeo: her side 'to', his 'from'.
    juliet.send(`<presence to='romeo@localhost' type='subscribe'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none' ask='subscribe'/>`);
    await romeo.expect(`<presence from='juliet@localhost' type='subscribe'/>`);
    romeo.send(`<presence to='juliet@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='from'/>`);
    await juliet.expect(`<presence from='romeo@localhost' type='subscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='to'/>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard'/>`);
    // §3.4 (3): 'to' can be pre-approved.
    juliet.send(`<presence to='romeo@localhost' type='subscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='to' approved='true'/>`);
    // §3.4 (1): romeo is 'from' already: his subscribed is ignored.
    romeo.send(`<presence to='juliet@localhost' type='subscribed'/>`);
    await romeo.expectNothing(150);
    await juliet.expectNothing(50);
    // His request now completes without her: 'both' on both sides.
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='from' ask='subscribe'/>`);
    await romeo.expect(`<presence from='juliet@localhost' type='subscribed'/>`);
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='both'/>`);
    await romeo.expect(`<presence from='juliet@localhost/balcony'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='both'/>`);
  });
});
