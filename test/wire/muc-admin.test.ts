// MUC (modules/muc) moderation and administration (muc#admin): kicking, voice, moderator status,
// bans, membership, admins and owners, the lists, and the permission matrix of XEP-0045 §5 with
// its errors (forbidden for the unprivileged, not-allowed against higher affiliations, conflict
// for banning oneself or leaving a room without owner, all-or-nothing requests).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { assertMatches } from './module-helpers.js';
import { MUC_USER, adminGet, adminSet, createRoom, enter, enterStanza, err, presenceFrom, roomJid, statusCodes, users } from './muc-helpers.js';

describe('muc: moderators (kick, voice)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('kick: the occupant gets 110 and 307 with actor and reason, the others 307; then the moderator gets the result', async () => {
    const [romeo, juliet, nurse] = await users(server, 'kk1', 'kk1j', 'kk1n');
    await createRoom(romeo!, 'kicks', 'Romeo');
    await enter(juliet!, 'kicks', 'Juliet');
    await enter(nurse!, 'kicks', 'Nurse');
    await presenceFrom(juliet!, 'kicks', 'Nurse');
    const answer = await adminSet(romeo!, 'kicks', `<item nick='Nurse' role='none'><reason>Too chatty</reason></item>`);
    assert.equal(answer.attrs.type, 'result', answer.toString());
    await nurse!.waitFor(`<presence type='unavailable' from='${roomJid('kicks', 'Nurse')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='none'><actor nick='Romeo'/><reason>Too chatty</reason></item><status code='110'/><status code='307'/></x></presence>`);
    const seen = await presenceFrom(juliet!, 'kicks', 'Nurse', 'unavailable');
    assert.deepEqual(statusCodes(seen), ['307']);
    nurse!.send(`<message type='groupchat' to='${roomJid('kicks')}' id='after'><body>still here?</body></message>`);
    await nurse!.waitFor(`<message type='error' id='after'>${err('cancel', 'not-acceptable')}</message>`);
  });

  test('kick by a participant → forbidden; of a nick not in the room → item-not-found; of an owner by an admin → not-allowed', async () => {
    const [romeo, juliet, tybalt] = await users(server, 'kk2', 'kk2j', 'kk2t');
    await createRoom(romeo!, 'kicks2', 'Romeo');
    await enter(juliet!, 'kicks2', 'Juliet');
    await enter(tybalt!, 'kicks2', 'Tybalt');
    assertMatches(await adminSet(juliet!, 'kicks2', `nick='Tybalt' role='none'`), `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    assertMatches(await adminSet(romeo!, 'kicks2', `nick='Nobody' role='none'`), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
    assertMatches(await adminSet(romeo!, 'kicks2', `affiliation='admin' jid='kk2t@localhost'`), `<iq type='result'/>`);
    assertMatches(await adminSet(tybalt!, 'kicks2', `nick='Romeo' role='none'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
  });

  test('voice in a moderated room: granting makes a visitor a participant, revoking makes it a visitor again', async () => {
    const [romeo, juliet] = await users(server, 'vo1', 'vo1j');
    await createRoom(romeo!, 'voices', 'Romeo', { moderatedroom: '1' });
    await enter(juliet!, 'voices', 'Juliet');
    assertMatches(await adminSet(romeo!, 'voices', `nick='Juliet' role='participant'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(juliet!, 'voices', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item role='participant'/><status code='110'/></x></presence>`);
    const list = await adminGet(romeo!, 'voices', `role='participant'`);
    assertMatches(list, `<iq type='result'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Juliet' role='participant' affiliation='none' jid='vo1j@localhost/r1'/></query></iq>`);
    assertMatches(await adminSet(romeo!, 'voices', `nick='Juliet' role='visitor'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(juliet!, 'voices', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item role='visitor'/><status code='110'/></x></presence>`);
  });

  test('revoking voice from an admin → not-allowed; granting moderator status needs an admin (not-allowed for a member moderator)', async () => {
    const [romeo, juliet, tybalt, nurse] = await users(server, 'vo2', 'vo2j', 'vo2t', 'vo2n');
    await createRoom(romeo!, 'voices2', 'Romeo');
    assertMatches(await adminSet(romeo!, 'voices2', `affiliation='admin' jid='vo2j@localhost'`, `affiliation='member' jid='vo2t@localhost'`), `<iq type='result'/>`);
    await enter(juliet!, 'voices2', 'Juliet');
    await enter(tybalt!, 'voices2', 'Tybalt');
    await enter(nurse!, 'voices2', 'Nurse');
    // The admin makes the member a moderator; that moderator may not touch the admin, nor make moderators.
    assertMatches(await adminSet(juliet!, 'voices2', `nick='Tybalt' role='moderator'`), `<iq type='result'/>`);
    assertMatches(await adminSet(tybalt!, 'voices2', `nick='Juliet' role='visitor'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
    assertMatches(await adminSet(tybalt!, 'voices2', `nick='Nurse' role='moderator'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
    // An admin may not take moderator status from another admin either.
    assertMatches(await adminSet(romeo!, 'voices2', `affiliation='admin' jid='vo2n@localhost'`), `<iq type='result'/>`);
    assertMatches(await adminSet(juliet!, 'voices2', `nick='Nurse' role='participant'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
  });

  test('role lists are for moderators: a participant asking → forbidden; a bad role → bad-request', async () => {
    const [romeo, juliet] = await users(server, 'vo3', 'vo3j');
    await createRoom(romeo!, 'lists', 'Romeo');
    await enter(juliet!, 'lists', 'Juliet');
    assertMatches(await adminGet(juliet!, 'lists', `role='moderator'`), `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    assertMatches(await adminGet(romeo!, 'lists', `role='moderator'`), `<iq type='result'><query><item nick='Romeo' role='moderator' affiliation='owner'/></query></iq>`);
    assertMatches(await adminGet(romeo!, 'lists', `role='king'`), `<iq type='error'>${err('modify', 'bad-request')}</iq>`);
  });
});

describe('muc: admins and owners (affiliations)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('ban: the occupant is removed with 301 (actor, reason), is on the ban list, and cannot come back', async () => {
    const [romeo, juliet, tybalt] = await users(server, 'bn1', 'bn1j', 'bn1t');
    await createRoom(romeo!, 'bans', 'Romeo');
    await enter(juliet!, 'bans', 'Juliet');
    await enter(tybalt!, 'bans', 'Tybalt');
    await presenceFrom(juliet!, 'bans', 'Tybalt');
    assertMatches(await adminSet(romeo!, 'bans', `<item affiliation='outcast' jid='bn1t@localhost'><reason>Murder</reason></item>`), `<iq type='result'/>`);
    await tybalt!.waitFor(`<presence type='unavailable' from='${roomJid('bans', 'Tybalt')}'><x xmlns='${MUC_USER}'><item affiliation='outcast' role='none'><actor nick='Romeo'/><reason>Murder</reason></item><status code='110'/><status code='301'/></x></presence>`);
    assert.deepEqual(statusCodes(await presenceFrom(juliet!, 'bans', 'Tybalt', 'unavailable')), ['301']);
    assertMatches(await adminGet(romeo!, 'bans', `affiliation='outcast'`), `<iq type='result'><query><item affiliation='outcast' jid='bn1t@localhost'><reason>Murder</reason></item></query></iq>`);
    tybalt!.send(enterStanza('bans', 'Tybalt'));
    await tybalt!.waitFor(`<presence type='error'>${err('auth', 'forbidden')}</presence>`);
    // Lifting the ban lets him in again.
    assertMatches(await adminSet(romeo!, 'bans', `affiliation='none' jid='bn1t@localhost'`), `<iq type='result'/>`);
    await enter(tybalt!, 'bans', 'Tybalt');
  });

  test('ban errors: by a member → forbidden; of an owner by an admin → not-allowed; of oneself → conflict', async () => {
    const [romeo, juliet, nurse] = await users(server, 'bn2', 'bn2j', 'bn2n');
    await createRoom(romeo!, 'bans2', 'Romeo');
    assertMatches(await adminSet(romeo!, 'bans2', `affiliation='admin' jid='bn2j@localhost'`, `affiliation='member' jid='bn2n@localhost'`), `<iq type='result'/>`);
    assertMatches(await adminSet(nurse!, 'bans2', `affiliation='outcast' jid='bn2x@localhost'`), `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    assertMatches(await adminSet(juliet!, 'bans2', `affiliation='outcast' jid='bn2@localhost'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
    assertMatches(await adminSet(juliet!, 'bans2', `affiliation='outcast' jid='bn2j@localhost'`), `<iq type='error'>${err('cancel', 'conflict')}</iq>`);
    assertMatches(await adminSet(romeo!, 'bans2', `affiliation='outcast' jid='bn2@localhost'`), `<iq type='error'>${err('cancel', 'conflict')}</iq>`);
  });

  test('membership: granting shows the new affiliation to the room; the member list; revoking it in a members-only room removes with 321', async () => {
    const [romeo, juliet] = await users(server, 'mb1', 'mb1j');
    await createRoom(romeo!, 'guild', 'Romeo');
    await enter(juliet!, 'guild', 'Juliet');
    await presenceFrom(romeo!, 'guild', 'Juliet');
    assertMatches(await adminSet(romeo!, 'guild', `affiliation='member' jid='mb1j@localhost'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(romeo!, 'guild', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>`);
    assertMatches(await adminGet(romeo!, 'guild', `affiliation='member'`), `<iq type='result'><query><item affiliation='member' jid='mb1j@localhost'/></query></iq>`);
    assertMatches(await adminSet(romeo!, 'guild', `<item affiliation='none' jid='mb1j@localhost'/>`), `<iq type='result'/>`);
    // Open room: still in, with affiliation none.
    await juliet!.waitFor(`<presence from='${roomJid('guild', 'Juliet')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='participant'/><status code='110'/></x></presence>`);
    assertMatches(await adminSet(romeo!, 'guild', `affiliation='member' jid='mb1j@localhost'`), `<iq type='result'/>`);
    romeo!.send(`<iq type='set' to='${roomJid('guild')}' id='mo'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_membersonly'><value>1</value></field></x></query></iq>`);
    await romeo!.waitFor(`<iq type='result' id='mo'/>`);
    assertMatches(await adminSet(romeo!, 'guild', `affiliation='none' jid='mb1j@localhost'`), `<iq type='result'/>`);
    const removed = await presenceFrom(juliet!, 'guild', 'Juliet', 'unavailable');
    assertMatches(removed, `<presence><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/><status code='110'/><status code='321'/></x></presence>`);
  });

  test('the member list in a semi-anonymous room is for admins (forbidden for a member); in a non-anonymous one the roles of getmemberlist may read it', async () => {
    const [romeo, juliet] = await users(server, 'mb2', 'mb2j');
    await createRoom(romeo!, 'roster', 'Romeo');
    assertMatches(await adminSet(romeo!, 'roster', `affiliation='member' jid='mb2j@localhost'`), `<iq type='result'/>`);
    await enter(juliet!, 'roster', 'Juliet');
    assertMatches(await adminGet(juliet!, 'roster', `affiliation='member'`), `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    romeo!.send(`<iq type='set' to='${roomJid('roster')}' id='na'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_whois'><value>anyone</value></field></x></query></iq>`);
    await romeo!.waitFor(`<iq type='result' id='na'/>`);
    assertMatches(await adminGet(juliet!, 'roster', `affiliation='member'`), `<iq type='result'><query><item affiliation='member' jid='mb2j@localhost'/></query></iq>`);
    // Admin and owner lists stay with admins and owners.
    assertMatches(await adminGet(juliet!, 'roster', `affiliation='owner'`), `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
  });

  test('owners grant admin and owner status (the room sees moderator and the new affiliation); an admin may not (not-allowed)', async () => {
    const [romeo, juliet] = await users(server, 'ad1', 'ad1j');
    await createRoom(romeo!, 'court', 'Romeo');
    await enter(juliet!, 'court', 'Juliet');
    await presenceFrom(romeo!, 'court', 'Juliet');
    assertMatches(await adminSet(romeo!, 'court', `affiliation='admin' jid='ad1j@localhost'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(romeo!, 'court', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item affiliation='admin' role='moderator'/></x></presence>`);
    assertMatches(await adminSet(juliet!, 'court', `affiliation='admin' jid='ad1n@localhost'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
    assertMatches(await adminSet(juliet!, 'court', `affiliation='owner' jid='ad1j@localhost'`), `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
    assertMatches(await adminSet(romeo!, 'court', `affiliation='owner' jid='ad1j@localhost'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(romeo!, 'court', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item affiliation='owner' role='moderator'/></x></presence>`);
    assertMatches(await adminGet(juliet!, 'court', `affiliation='owner'`), `<iq type='result'><query><item affiliation='owner' jid='ad1@localhost'/><item affiliation='owner' jid='ad1j@localhost'/></query></iq>`);
  });

  test('the last owner stepping down → conflict; with a second owner it may; demoting an admin takes moderator status', async () => {
    const [romeo, juliet] = await users(server, 'ad2', 'ad2j');
    await createRoom(romeo!, 'throne', 'Romeo');
    assertMatches(await adminSet(romeo!, 'throne', `affiliation='admin' jid='ad2@localhost'`), `<iq type='error'>${err('cancel', 'conflict')}</iq>`);
    await enter(juliet!, 'throne', 'Juliet');
    assertMatches(await adminSet(romeo!, 'throne', `affiliation='admin' jid='ad2j@localhost'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(juliet!, 'throne', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item affiliation='admin' role='moderator'/></x></presence>`);
    assertMatches(await adminSet(romeo!, 'throne', `affiliation='member' jid='ad2j@localhost'`), `<iq type='result'/>`);
    assertMatches(await presenceFrom(juliet!, 'throne', 'Juliet'), `<presence><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>`);
    assertMatches(await adminSet(romeo!, 'throne', `affiliation='owner' jid='ad2j@localhost'`), `<iq type='result'/>`);
    assertMatches(await adminSet(romeo!, 'throne', `affiliation='none' jid='ad2@localhost'`), `<iq type='result'/>`);
  });

  test('a request with one forbidden item changes nothing (all or nothing)', async () => {
    const [romeo, juliet] = await users(server, 'ad3', 'ad3j');
    await createRoom(romeo!, 'atomic', 'Romeo');
    assertMatches(await adminSet(romeo!, 'atomic', `affiliation='admin' jid='ad3j@localhost'`), `<iq type='result'/>`);
    const answer = await adminSet(juliet!, 'atomic', `affiliation='member' jid='ad3x@localhost'`, `affiliation='outcast' jid='ad3@localhost'`);
    assertMatches(answer, `<iq type='error'>${err('cancel', 'not-allowed')}</iq>`);
    const members = await adminGet(romeo!, 'atomic', `affiliation='member'`);
    assert.equal(members.getChild('query')!.elements().length, 0, members.toString());
  });

  test('malformed requests: no item → bad-request; an unknown affiliation → bad-request; a bad JID → jid-malformed', async () => {
    const [romeo] = await users(server, 'ad4');
    await createRoom(romeo!, 'malformed', 'Romeo');
    assertMatches(await adminSet(romeo!, 'malformed'), `<iq type='error'>${err('modify', 'bad-request')}</iq>`);
    assertMatches(await adminSet(romeo!, 'malformed', `affiliation='king' jid='x@localhost'`), `<iq type='error'>${err('modify', 'bad-request')}</iq>`);
    assertMatches(await adminSet(romeo!, 'malformed', `affiliation='member' jid='@bad@'`), `<iq type='error'>${err('modify', 'jid-malformed')}</iq>`);
  });
});
