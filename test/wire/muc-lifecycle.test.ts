// MUC (modules/muc) and the lives of sessions and accounts: a hibernated occupant (XEP-0198) stays
// in its rooms (and after resuming needs no rejoin) and leaves with unavailable presence when its
// session ends for good; a deleted account loses its affiliations (and reserved nicks) in every
// room, also across a restart, and leaves the rooms it is in; occupants whose deliveries bounce
// with an error are removed with 333 (XEP-0045 §12.1 / Prosody's kickable errors), whether the
// error answers a groupchat message (sent back to the sender's occupant JID) or a presence. Server
// administrators are owners of every room (server_admins_are_owners), so a room whose only owner
// was deleted can still be managed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import type { XmppClient } from '../../server/client.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import { MUC_USER, adminGet, adminSet, createRoom, enter, enterStanza, err, itemOf, presenceFrom, roomJid, say, statusCodes, users } from './muc-helpers.js';

const SM = 'urn:xmpp:sm:3';

/** Enables resumable stream management with a resume window of `seconds`; returns the resumption id. */
async function enableSm(client: XmppClient, seconds: number): Promise<string> {
  client.send(`<enable xmlns='${SM}' resume='true' max='${seconds}'/>`);
  return (await client.waitFor(`<enabled xmlns='${SM}'/>`)).attrs.id!;
}

function jidsIn(list: Awaited<ReturnType<typeof adminGet>>): string[] {
  return list.getChild('query')!.getChildren('item').map((item) => item.attrs.jid ?? '');
}

test('a hibernated occupant stays in the room; when its resume window runs out it leaves with unavailable presence (no 333)', async (t) => {
  const server = await startServer(t);
  const [romeo, juliet] = await users(server, 'romeo', 'juliet');
  await createRoom(romeo!, 'vigil', 'Romeo');
  await enter(juliet!, 'vigil', 'Juliet');
  await presenceFrom(romeo!, 'vigil', 'Juliet');
  await enableSm(juliet!, 1);
  juliet!.dropTcp();
  // Hibernating: nothing is said to the room, and messages still find her (queued).
  await romeo!.expectNothing(300);
  say(romeo!, 'vigil', 'are you asleep?');
  await romeo!.waitFor(`<message from='${roomJid('vigil', 'Romeo')}'><body>are you asleep?</body></message>`);
  await romeo!.expectNothing(200);
  // The window (1 s) runs out: the session is closed and she leaves, as if she had said so.
  const gone = await presenceFrom(romeo!, 'vigil', 'Juliet', 'unavailable');
  assertMatches(gone, `<presence><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/></x></presence>`);
  assert.deepEqual(statusCodes(gone), [], 'a session that ended is no error: no 333');
  await romeo!.expectNothing(200); // one unavailable presence, not a second from the presence module's goodbye
});

test('a hibernated occupant that resumes is still in the room: it gets what was said meanwhile and keeps its nick, without rejoining', async (t) => {
  const server = await startServer(t);
  const [romeo, juliet] = await users(server, 'romeo', 'juliet');
  await createRoom(romeo!, 'balcony', 'Romeo');
  await enter(juliet!, 'balcony', 'Juliet');
  await presenceFrom(romeo!, 'balcony', 'Juliet');
  const previd = await enableSm(juliet!, 30);
  juliet!.dropTcp();
  await romeo!.expectNothing(200);
  say(romeo!, 'balcony', 'wherefore art thou');
  await romeo!.waitFor(`<message from='${roomJid('balcony', 'Romeo')}'><body>wherefore art thou</body></message>`);
  const resumed = await server.connect();
  await resumed.startTls();
  await resumed.authenticate('juliet', 'password');
  resumed.send(`<resume xmlns='${SM}' previd='${previd}' h='0'/>`);
  await resumed.expect(`<resumed xmlns='${SM}'/>`);
  await resumed.waitFor(`<message from='${roomJid('balcony', 'Romeo')}'><body>wherefore art thou</body></message>`);
  say(resumed, 'balcony', 'here I am');
  await romeo!.waitFor(`<message from='${roomJid('balcony', 'Juliet')}'><body>here I am</body></message>`);
  await romeo!.expectNothing(100); // no leave and no rejoin on the way
});

test('an account deleted while in a room leaves it, and its affiliations and reserved nicks are gone from every room, also after a restart', async (t) => {
  const server = await startServer(t);
  const [romeo, juliet] = await users(server, 'romeo', 'juliet');
  await createRoom(romeo!, 'hall', 'Romeo', { persistentroom: '1', membersonly: '1' });
  await createRoom(romeo!, 'court', 'Romeo', { persistentroom: '1' });
  await createRoom(romeo!, 'cellar', 'Romeo', { persistentroom: '1' });
  assertMatches(await adminSet(romeo!, 'hall', `affiliation='member' jid='juliet@localhost' nick='Jules'`), `<iq type='result'/>`);
  assertMatches(await adminSet(romeo!, 'court', `affiliation='admin' jid='juliet@localhost'`), `<iq type='result'/>`);
  assertMatches(await adminSet(romeo!, 'cellar', `affiliation='outcast' jid='juliet@localhost'`), `<iq type='result'/>`);
  await enter(juliet!, 'hall', 'Jules');
  await presenceFrom(romeo!, 'hall', 'Jules');

  assert.equal(await server.server.deleteAccount('juliet'), true);
  const left = await presenceFrom(romeo!, 'hall', 'Jules', 'unavailable');
  assertMatches(left, `<presence><x xmlns='${MUC_USER}'><item role='none'/></x></presence>`);
  let owner = romeo!;
  const lists = async () => ({
    members: jidsIn(await adminGet(owner, 'hall', `affiliation='member'`)),
    admins: jidsIn(await adminGet(owner, 'court', `affiliation='admin'`)),
    outcasts: jidsIn(await adminGet(owner, 'cellar', `affiliation='outcast'`)),
  });
  assert.deepEqual(await lists(), { members: [], admins: [], outcasts: [] });

  await server.restart();
  owner = await server.login('romeo', { resource: 'r2' });
  assert.deepEqual(await lists(), { members: [], admins: [], outcasts: [] }, 'the removal was stored');
  // Someone who registers the name later inherits nothing: the members-only room keeps them out.
  await server.server.createAccount('juliet', 'another password');
  const newcomer = await server.login('juliet', { resource: 'r1', password: 'another password' });
  newcomer.send(enterStanza('hall', 'Jules'));
  await newcomer.expect(`<presence type='error' from='${roomJid('hall', 'Jules')}'>${err('auth', 'registration-required')}</presence>`);
  await iqExpect(newcomer, `<iq type='get' to='${roomJid('hall')}'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>`, `<iq type='result'><query node='x-roomuser-item'/></iq>`);
  // ... and the reserved nick is free for others.
  const mercutio = await server.login('mercutio', { resource: 'r1' });
  assertMatches(await adminSet(owner, 'hall', `affiliation='member' jid='mercutio@localhost'`), `<iq type='result'/>`);
  const { self } = await enter(mercutio, 'hall', 'Jules');
  assert.equal(itemOf(self)?.attrs.affiliation, 'member');
});

test('deleting the only owner of a room leaves the room in place with its admins; a server administrator, owner of every room, may still configure and destroy it', async (t) => {
  const server = await startServer(t, { config: { admins: ['boss@localhost'] } });
  const [romeo, nurse, boss] = await users(server, 'romeo', 'nurse', 'boss');
  await createRoom(romeo!, 'orphan', 'Romeo', { persistentroom: '1', membersonly: '1', roomadmins: 'nurse@localhost' });
  await enter(nurse!, 'orphan', 'Nurse');
  await presenceFrom(romeo!, 'orphan', 'Nurse');
  assert.equal(await server.server.deleteAccount('romeo'), true);
  const gone = await presenceFrom(nurse!, 'orphan', 'Romeo', 'unavailable');
  assertMatches(gone, `<presence><x xmlns='${MUC_USER}'><item role='none'/></x></presence>`);
  assert.deepEqual(jidsIn(await adminGet(nurse!, 'orphan', `affiliation='admin'`)), ['nurse@localhost']);
  say(nurse!, 'orphan', 'still here');
  await nurse!.waitFor(`<message from='${roomJid('orphan', 'Nurse')}'><body>still here</body></message>`);
  // The server administrator enters the members-only room as its owner and may not be made anything less.
  const { self } = await enter(boss!, 'orphan', 'Boss');
  assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item affiliation='owner' role='moderator'/></x></presence>`);
  await iqExpect(nurse!, `<iq type='set' to='${roomJid('orphan')}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='boss@localhost'/></query></iq>`, `<iq type='error'>${err('modify', 'not-acceptable')}</iq>`);
  await iqExpect(boss!, `<iq type='get' to='${roomJid('orphan')}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`, `<iq type='result'><query><x xmlns='jabber:x:data' type='form'/></query></iq>`);
  await iqExpect(boss!, `<iq type='set' to='${roomJid('orphan')}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>Abandoned</reason></destroy></query></iq>`, `<iq type='result'/>`);
  await nurse!.waitFor(`<presence type='unavailable' from='${roomJid('orphan', 'Nurse')}'><x xmlns='${MUC_USER}'><destroy><reason>Abandoned</reason></destroy></x></presence>`);
});

test('server_admins_are_owners off: a server administrator is an ordinary user of other people\'s rooms (registration-required, forbidden)', async (t) => {
  const server = await startServer(t, { config: { admins: ['boss@localhost'] }, modules: { muc: { server_admins_are_owners: false } } });
  const [romeo, boss] = await users(server, 'romeo', 'boss');
  await createRoom(romeo!, 'private', 'Romeo', { membersonly: '1' });
  boss!.send(enterStanza('private', 'Boss'));
  await boss!.expect(`<presence type='error' from='${roomJid('private', 'Boss')}'>${err('auth', 'registration-required')}</presence>`);
  await iqExpect(boss!, `<iq type='get' to='${roomJid('private')}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`, `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
});

test('a groupchat message bounced with a kickable error to the sender occupant JID removes the failing occupant with 333', async (t) => {
  const server = await startServer(t);
  const [romeo, juliet] = await users(server, 'romeo', 'juliet');
  await createRoom(romeo!, 'echoes', 'Romeo');
  await enter(juliet!, 'echoes', 'Juliet');
  await presenceFrom(romeo!, 'echoes', 'Juliet');
  say(romeo!, 'echoes', 'hello', 'm1');
  await juliet!.waitFor(`<message id='m1'/>`);
  // As a remote server or a failing client answers a delivery: to the 'from' it had (room/Romeo).
  juliet!.send(`<message type='error' id='m1' to='${roomJid('echoes', 'Romeo')}'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
  const removed = await presenceFrom(romeo!, 'echoes', 'Juliet', 'unavailable');
  assert.deepEqual(statusCodes(removed), ['333']);
  assertMatches(removed, `<presence><x xmlns='${MUC_USER}'><item role='none'/></x></presence>`);
  await juliet!.waitFor(`<presence type='unavailable' from='${roomJid('echoes', 'Juliet')}'><x xmlns='${MUC_USER}'><status code='110'/><status code='333'/></x></presence>`);
  // The error never reached Romeo as a private message.
  await romeo!.expectNothing(150);
});

test('a message error that is not kickable (forbidden) goes back to the sender as a private error and keeps the occupant; a presence error removes it with 333', async (t) => {
  const server = await startServer(t);
  const [romeo, juliet] = await users(server, 'romeo', 'juliet');
  await createRoom(romeo!, 'mirrors', 'Romeo');
  await enter(juliet!, 'mirrors', 'Juliet');
  await presenceFrom(romeo!, 'mirrors', 'Juliet');
  juliet!.send(`<message type='error' to='${roomJid('mirrors', 'Romeo')}'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
  await romeo!.expect(`<message type='error' from='${roomJid('mirrors', 'Juliet')}'>${err('auth', 'forbidden')}</message>`);
  await romeo!.expectNothing(150);
  juliet!.send(`<presence type='error' to='${roomJid('mirrors', 'Romeo')}'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
  const removed = await presenceFrom(romeo!, 'mirrors', 'Juliet', 'unavailable');
  assert.deepEqual(statusCodes(removed), ['333']);
});
