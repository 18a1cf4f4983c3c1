import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type XmppClient } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { defineModule } from '../../server/module-api.js';
import { stanzaErrorPattern } from './module-helpers.js';

const DELAY = `<delay xmlns='urn:xmpp:delay' from='localhost' stamp='{any}'>Offline Storage</delay>`;

/** romeo's message to juliet's bare JID, as juliet receives it from storage. */
function stored(id: string, body: string): string {
  return `<message from='romeo@localhost/r1' to='juliet@localhost' type='chat' id='${id}'><body>${body}</body>${DELAY}</message>`;
}

function sendChat(romeo: XmppClient, id: string, body: string): void {
  romeo.send(`<message to='juliet@localhost' type='chat' id='${id}'><body>${body}</body></message>`);
}

/** Sends initial presence and waits for its echo (RFC 6121 §4.2.2: the server sends it back). */
async function goOnline(client: XmppClient, resource: string, presence = '<presence/>'): Promise<void> {
  client.send(presence);
  await client.waitFor(`<presence from='juliet@localhost/${resource}'/>`);
}

/** Waits until the server has taken the messages (a ping answered after them means they are routed). */
async function settle(client: XmppClient): Promise<void> {
  await client.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
}

describe('offline: storage and delivery', () => {
  test('chat to an offline account → stored, delivered with a delay stamp after initial presence (not before), in order', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    for (const [id, body] of [['m1', 'one'], ['m2', 'two'], ['m3', 'three']] as const) sendChat(romeo, id, body);
    await settle(romeo);
    await romeo.expectNothing(100); // stored: no error back
    const juliet = await server.login('juliet', { resource: 'balcony' });
    await juliet.expectNothing(200); // XEP-0160: only once presence is sent
    juliet.send('<presence/>');
    await juliet.waitFor(stored('m1', 'one'));
    await juliet.expect(stored('m2', 'two'));
    await juliet.expect(stored('m3', 'three'));
    // Delivered means deleted: the next login gets nothing.
    await juliet.close();
    const again = await server.login('juliet', { resource: 'r2' });
    await goOnline(again, 'r2');
    await again.expectNothing(200);
  });

  test('stored messages survive a restart', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    sendChat(romeo, 'p1', 'still there?');
    await settle(romeo);
    await server.restart();
    const juliet = await server.login('juliet', { resource: 'r1' });
    juliet.send('<presence/>');
    await juliet.waitFor(stored('p1', 'still there?'));
  });

  test('queue at max_messages → resource-constraint to the sender, with the message id', async (t) => {
    const server = await startServer(t, { modules: { offline: { max_messages: 2 } } });
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    sendChat(romeo, 'c1', 'one');
    sendChat(romeo, 'c2', 'two');
    await settle(romeo);
    sendChat(romeo, 'c3', 'three');
    await romeo.expect(`<message type='error' id='c3' from='juliet@localhost' to='romeo@localhost/r1'>${stanzaErrorPattern('wait', 'resource-constraint')}</message>`);
    const juliet = await server.login('juliet', { resource: 'r1' });
    juliet.send('<presence/>');
    await juliet.waitFor(stored('c1', 'one'));
    await juliet.expect(stored('c2', 'two'));
    await juliet.expectNothing(200);
  });

  test('a negative-priority resource gets nothing; a resource with priority ≥ 0 then gets it all', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const hidden = await server.login('juliet', { resource: 'hidden' });
    await goOnline(hidden, 'hidden', '<presence><priority>-1</priority></presence>');
    const romeo = await server.login('romeo', { resource: 'r1' });
    sendChat(romeo, 'n1', 'for later'); // RFC 6121 §8.5.2.1.1: not for negative priority: stored
    await settle(romeo);
    await hidden.expectNothing(200);
    const main = await server.login('juliet', { resource: 'main' });
    main.send('<presence/>');
    await main.waitFor(stored('n1', 'for later'));
    await hidden.expect(`<presence from='juliet@localhost/main'/>`); // §4.2.2: own resources hear it
    await hidden.expectNothing(100);
  });

  test('a resource that raises its priority to ≥ 0 later → gets the stored messages then', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const juliet = await server.login('juliet', { resource: 'r1' });
    await goOnline(juliet, 'r1', '<presence><priority>-5</priority></presence>');
    const romeo = await server.login('romeo', { resource: 'r1' });
    sendChat(romeo, 'q1', 'now?');
    await settle(romeo);
    await juliet.expectNothing(200);
    juliet.send('<presence><priority>1</priority></presence>');
    await juliet.waitFor(stored('q1', 'now?'));
  });

  test('headline, chat states alone and <no-store/> → not stored (the last two bounce service-unavailable)', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<message to='juliet@localhost' type='headline' id='h1'><body>news</body></message>`);
    romeo.send(`<message to='juliet@localhost' type='chat' id='h2'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    await romeo.expect(`<message type='error' id='h2'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`);
    romeo.send(`<message to='juliet@localhost' type='chat' id='h3'><body>off the record</body><no-store xmlns='urn:xmpp:hints'/></message>`);
    await romeo.expect(`<message type='error' id='h3'>${stanzaErrorPattern('cancel', 'service-unavailable')}</message>`);
    // <store/> keeps what would not be kept otherwise (XEP-0334 §4.4).
    romeo.send(`<message to='juliet@localhost' type='chat' id='h4'><encrypted xmlns='urn:example:e2e'/><store xmlns='urn:xmpp:hints'/></message>`);
    await settle(romeo);
    await romeo.expectNothing(100);
    const juliet = await server.login('juliet', { resource: 'r1' });
    juliet.send('<presence/>');
    await juliet.waitFor(`<message id='h4'><encrypted xmlns='urn:example:e2e'/>${DELAY}</message>`);
    await juliet.expectNothing(200);
  });

  test('receiving connection closed before the messages were written out → they stay stored for the next login', async (t) => {
    let cut = false;
    let seen = 0;
    // Ends juliet's stream while the second stored message is on its way: the first was handed to
    // the connection, but the connection never confirms the flush.
    const cutter = defineModule({
      name: 'offline-test-cutter',
      setup(m) {
        m.on('stanza:out', ({ stanza, session }) => {
          if (cut || stanza.name !== 'message' || !stanza.getChild('delay', 'urn:xmpp:delay')) return;
          if (++seen === 2) {
            cut = true;
            session.close();
          }
        });
      },
    });
    const server = await startServer(t, { moduleList: [...builtinModules, cutter] });
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    sendChat(romeo, 'd1', 'first');
    sendChat(romeo, 'd2', 'second');
    await settle(romeo);
    const first = await server.login('juliet', { resource: 'r1' });
    first.send('<presence/>');
    await first.waitClosed();
    assert.ok(cut, 'the connection was not cut during delivery');
    const second = await server.login('juliet', { resource: 'r2' });
    second.send('<presence/>');
    await second.waitFor(stored('d1', 'first'));
    await second.expect(stored('d2', 'second'));
  });

  test('account deleted → its stored messages are gone with it', async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    sendChat(romeo, 'x1', 'lost');
    await settle(romeo);
    assert.ok(await server.server.deleteAccount('juliet'));
    assert.ok(await server.server.createAccount('juliet', 'password'));
    const juliet = await server.login('juliet', { resource: 'r1' });
    await goOnline(juliet, 'r1');
    await juliet.expectNothing(200);
  });
});
