// MUC (modules/muc) rooms: the service in disco, creating instant and reserved rooms (locked until
// configured), the configuration form and its errors, configuration change notices, room disco
// with muc#roominfo, destroying, temporary rooms vanishing, persistence across a restart, and the
// creation limits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import {
  DISCO_INFO,
  DISCO_ITEMS,
  MUC,
  MUC_OWNER,
  MUC_USER,
  SERVICE,
  adminSet,
  configure,
  createRoom,
  enter,
  enterStanza,
  err,
  presenceFrom,
  roomJid,
  say,
  statusCodes,
  users,
} from './muc-helpers.js';
import { formValue, parseForm } from '../../server/protocol/xep0004.js';

function discoInfo(room: string): string {
  return `<iq type='get' to='${roomJid(room)}'><query xmlns='${DISCO_INFO}'/></iq>`;
}

async function features(client: Parameters<typeof enter>[0], room: string): Promise<string[]> {
  const answer = await client.iq(discoInfo(room));
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer.getChild('query')!.getChildren('feature').map((f) => f.attrs.var ?? '');
}

describe('muc: the service', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('the server lists conference.localhost in its disco#items; the service is conference/text with the MUC feature', async () => {
    const [romeo] = await users(server, 'svc1');
    await iqExpect(romeo!, `<iq type='get' to='localhost'><query xmlns='${DISCO_ITEMS}'/></iq>`, `<iq type='result'><query><item jid='${SERVICE}' name='Chatrooms'/></query></iq>`);
    await iqExpect(
      romeo!,
      `<iq type='get' to='${SERVICE}'><query xmlns='${DISCO_INFO}'/></iq>`,
      `<iq type='result' from='${SERVICE}'><query><identity category='conference' type='text' name='Chatrooms'/><feature var='http://jabber.org/protocol/muc'/></query></iq>`,
    );
  });

  test('the service lists public rooms, not hidden or locked ones', async () => {
    const [romeo] = await users(server, 'svc2');
    await createRoom(romeo!, 'listed', 'R', { roomname: 'A listed room' });
    await createRoom(romeo!, 'unlisted', 'R', { publicroom: '0' });
    await enter(romeo!, 'stilllocked', 'R');
    const items = await romeo!.iq(`<iq type='get' to='${SERVICE}'><query xmlns='${DISCO_ITEMS}'/></iq>`);
    const jids = items.getChild('query')!.getChildren('item').map((i) => `${i.attrs.jid}|${i.attrs.name}`);
    assert.ok(jids.includes(`${roomJid('listed')}|A listed room`), jids.join(', '));
    assert.ok(!jids.some((j) => j.startsWith(roomJid('unlisted'))), jids.join(', '));
    assert.ok(!jids.some((j) => j.startsWith(roomJid('stilllocked'))), jids.join(', '));
  });

  test('a message to the service itself → service-unavailable; disco#info of an unknown room → item-not-found', async () => {
    const [romeo] = await users(server, 'svc3');
    romeo!.send(`<message to='${SERVICE}' id='s1'><body>hi</body></message>`);
    await romeo!.expect(`<message type='error' id='s1' from='${SERVICE}'>${err('cancel', 'service-unavailable')}</message>`);
    await iqExpect(romeo!, discoInfo('nosuchroom'), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
  });
});

describe('muc: creating rooms', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('entering a new room creates it: owner/moderator with 110 and 201, then an empty subject', async () => {
    const [romeo] = await users(server, 'cr1');
    romeo!.send(enterStanza('fresh', 'Romeo'));
    await romeo!.expect(
      `<presence from='${roomJid('fresh', 'Romeo')}'><x xmlns='${MUC_USER}'><item affiliation='owner' role='moderator' jid='cr1@localhost/r1'/><status code='110'/><status code='170'/><status code='201'/></x></presence>`,
      { strict: false },
    );
    await romeo!.expect(`<message type='groupchat' from='${roomJid('fresh')}'><subject/></message>`);
  });

  test('a new room is locked: others get item-not-found until the owner accepts the instant configuration', async () => {
    const [romeo, juliet] = await users(server, 'cr2', 'cr2j');
    await enter(romeo!, 'locked', 'Romeo');
    juliet!.send(enterStanza('locked', 'Juliet'));
    await juliet!.expect(`<presence type='error' from='${roomJid('locked', 'Juliet')}'><x xmlns='${MUC}'/>${err('cancel', 'item-not-found')}</presence>`);
    await iqExpect(romeo!, `<iq type='set' to='${roomJid('locked')}'><query xmlns='${MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query></iq>`, `<iq type='result'/>`);
    const { self } = await enter(juliet!, 'locked', 'Juliet');
    assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item affiliation='none' role='participant'/></x></presence>`);
  });

  test('reserved room: the owner gets the muc#roomconfig form and configures the room before anyone enters', async () => {
    const [romeo] = await users(server, 'cr3');
    await enter(romeo!, 'reserved', 'Romeo');
    const answer = await romeo!.iq(`<iq type='get' to='${roomJid('reserved')}'><query xmlns='${MUC_OWNER}'/></iq>`);
    const form = parseForm(answer.getChild('query', MUC_OWNER)!.getChild('x', 'jabber:x:data')!);
    assert.equal(form.type, 'form');
    assert.equal(formValue(form, 'FORM_TYPE'), 'http://jabber.org/protocol/muc#roomconfig');
    for (const name of ['roomname', 'roomdesc', 'persistentroom', 'publicroom', 'membersonly', 'moderatedroom', 'passwordprotectedroom', 'roomsecret', 'whois', 'maxusers', 'changesubject', 'allowinvites', 'allowpm', 'presencebroadcast', 'getmemberlist', 'enablelogging', 'allowvoicerequests', 'roomadmins', 'roomowners']) {
      assert.ok(form.fields.some((f) => f.var === `muc#roomconfig_${name}`), `field ${name}`);
    }
    assert.equal(formValue(form, 'muc#roomconfig_roomowners'), 'cr3@localhost');
    const result = await configure(romeo!, 'reserved', { roomname: 'The Reserve', roomdesc: 'Quiet please', persistentroom: '1', moderatedroom: '1', whois: 'anyone' });
    assert.equal(result.attrs.type, 'result', result.toString());
    const list = await features(romeo!, 'reserved');
    for (const f of ['muc_persistent', 'muc_moderated', 'muc_nonanonymous', 'muc_public', 'muc_open', 'muc_unsecured']) assert.ok(list.includes(f), `${f} in ${list.join(' ')}`);
  });

  test('the configuration form is for owners only → forbidden for others (get and set)', async () => {
    const [romeo, juliet] = await users(server, 'cr4', 'cr4j');
    await createRoom(romeo!, 'ownersonly', 'Romeo');
    await enter(juliet!, 'ownersonly', 'Juliet');
    await iqExpect(juliet!, `<iq type='get' to='${roomJid('ownersonly')}'><query xmlns='${MUC_OWNER}'/></iq>`, `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    const set = await configure(juliet!, 'ownersonly', { roomname: 'mine now' });
    assertMatches(set, `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
  });

  test('configuration errors: password protection without a password → not-acceptable; a bad boolean → bad-request; maxusers above max_occupants → not-acceptable', async () => {
    const [romeo] = await users(server, 'cr5');
    await createRoom(romeo!, 'badconf', 'Romeo');
    assertMatches(await configure(romeo!, 'badconf', { passwordprotectedroom: '1' }), `<iq type='error'>${err('modify', 'not-acceptable')}</iq>`);
    assertMatches(await configure(romeo!, 'badconf', { persistentroom: 'maybe' }), `<iq type='error'>${err('modify', 'bad-request')}</iq>`);
    assertMatches(await configure(romeo!, 'badconf', { maxusers: '100000' }), `<iq type='error'>${err('modify', 'not-acceptable')}</iq>`);
    assertMatches(await configure(romeo!, 'badconf', { roomowners: [] }), `<iq type='error'>${err('modify', 'not-acceptable')}</iq>`);
    assert.ok((await features(romeo!, 'badconf')).includes('muc_unsecured'), 'nothing changed');
  });

  test('cancelling the initial configuration destroys the room (unavailable with <destroy/>)', async () => {
    const [romeo] = await users(server, 'cr6');
    await enter(romeo!, 'cancelled', 'Romeo');
    romeo!.send(`<iq type='set' id='c1' to='${roomJid('cancelled')}'><query xmlns='${MUC_OWNER}'><x xmlns='jabber:x:data' type='cancel'/></query></iq>`);
    await romeo!.expect(`<presence type='unavailable' from='${roomJid('cancelled', 'Romeo')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/><destroy/></x></presence>`);
    await romeo!.expect(`<iq type='result' id='c1'/>`);
    await iqExpect(romeo!, discoInfo('cancelled'), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
  });

  test('the creator leaving a room it never configured removes it', async () => {
    const [romeo] = await users(server, 'cr7');
    await enter(romeo!, 'abandoned', 'Romeo');
    romeo!.send(`<presence type='unavailable' to='${roomJid('abandoned', 'Romeo')}'/>`);
    await presenceFrom(romeo!, 'abandoned', 'Romeo', 'unavailable');
    await iqExpect(romeo!, discoInfo('abandoned'), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
  });

  test('a temporary room vanishes with its last occupant; a persistent one stays', async () => {
    const [romeo] = await users(server, 'cr8');
    await createRoom(romeo!, 'fleeting', 'Romeo');
    await createRoom(romeo!, 'lasting', 'Romeo', { persistentroom: '1' });
    for (const room of ['fleeting', 'lasting']) {
      romeo!.send(`<presence type='unavailable' to='${roomJid(room, 'Romeo')}'/>`);
      await presenceFrom(romeo!, room, 'Romeo', 'unavailable');
    }
    await iqExpect(romeo!, discoInfo('fleeting'), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
    await iqExpect(romeo!, discoInfo('lasting'), `<iq type='result'><query><feature var='muc_persistent'/></query></iq>`);
  });

  test('room disco#info: identity, room-type features and the muc#roominfo form (description, subject, occupants)', async () => {
    const [romeo] = await users(server, 'cr9');
    await createRoom(romeo!, 'described', 'Romeo', { roomname: 'Described', roomdesc: 'A room with a view', lang: 'en' });
    romeo!.send(`<message type='groupchat' to='${roomJid('described')}'><subject>Views</subject></message>`);
    await romeo!.waitFor(`<message from='${roomJid('described', 'Romeo')}'><subject>Views</subject></message>`);
    const answer = await romeo!.iq(discoInfo('described'));
    assertMatches(answer, `<iq type='result'><query><identity category='conference' type='text' name='Described'/></query></iq>`);
    const list = answer.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['http://jabber.org/protocol/muc', 'http://jabber.org/protocol/muc#stable_id', 'http://jabber.org/protocol/muc#self-ping-optimization', 'muc_temporary', 'muc_public', 'muc_open', 'muc_unmoderated', 'muc_unsecured', 'muc_semianonymous']) {
      assert.ok(list.includes(f), `${f} in ${list.join(' ')}`);
    }
    const form = parseForm(answer.getChild('query')!.getChild('x', 'jabber:x:data')!);
    assert.equal(formValue(form, 'FORM_TYPE'), 'http://jabber.org/protocol/muc#roominfo');
    assert.equal(formValue(form, 'muc#roominfo_description'), 'A room with a view');
    assert.equal(formValue(form, 'muc#roominfo_subject'), 'Views');
    assert.equal(formValue(form, 'muc#roominfo_occupants'), '1');
    assert.equal(formValue(form, 'muc#roominfo_lang'), 'en');
  });

  test('x-roomuser-item: a member with a reserved nick gets it, others an empty query; another node → item-not-found', async () => {
    const [romeo, juliet] = await users(server, 'cr10', 'cr10j');
    await createRoom(romeo!, 'nicks', 'Romeo');
    assertMatches(await adminSet(romeo!, 'nicks', `affiliation='member' jid='cr10j@localhost' nick='Jules'`), `<iq type='result'/>`);
    const node = `<iq type='get' to='${roomJid('nicks')}'><query xmlns='${DISCO_INFO}' node='x-roomuser-item'/></iq>`;
    await iqExpect(juliet!, node, `<iq type='result'><query node='x-roomuser-item'><identity category='conference' type='text' name='Jules'/></query></iq>`);
    const none = await iqExpect(romeo!, node, `<iq type='result'><query node='x-roomuser-item'/></iq>`);
    assert.equal(none.getChild('query')!.elements().length, 0, none.toString());
    await iqExpect(romeo!, `<iq type='get' to='${roomJid('nicks')}'><query xmlns='${DISCO_INFO}' node='other'/></iq>`, `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
    // The reserved nick is Juliet's: someone else entering with it gets a conflict.
    const [mallory] = await users(server, 'cr10m');
    mallory!.send(enterStanza('nicks', 'Jules'));
    await mallory!.expect(`<presence type='error'>${err('cancel', 'conflict')}</presence>`);
  });
});

describe('muc: configuration changes and destruction', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('occupants are told of configuration changes: 172 when the room turns non-anonymous, 104 for others', async () => {
    const [romeo, juliet] = await users(server, 'cc1', 'cc1j');
    await createRoom(romeo!, 'changing', 'Romeo');
    await enter(juliet!, 'changing', 'Juliet');
    assertMatches(await configure(romeo!, 'changing', { whois: 'anyone' }), `<iq type='result'/>`);
    await juliet!.waitFor(`<message type='groupchat' from='${roomJid('changing')}'><x xmlns='${MUC_USER}'><status code='172'/></x></message>`);
    assertMatches(await configure(romeo!, 'changing', { roomdesc: 'new' }), `<iq type='result'/>`);
    await juliet!.waitFor(`<message type='groupchat' from='${roomJid('changing')}'><x xmlns='${MUC_USER}'><status code='104'/></x></message>`);
    assertMatches(await configure(romeo!, 'changing', { enablelogging: '0' }), `<iq type='result'/>`);
    await juliet!.waitFor(`<message type='groupchat' from='${roomJid('changing')}'><x xmlns='${MUC_USER}'><status code='171'/></x></message>`);
  });

  test('173 when the room turns semi-anonymous again, 170 when logging is turned back on; a form that changes nothing says nothing', async () => {
    const [romeo, juliet] = await users(server, 'cc6', 'cc6j');
    await createRoom(romeo!, 'turning', 'Romeo', { whois: 'anyone', enablelogging: '0' });
    await enter(juliet!, 'turning', 'Juliet');
    assertMatches(await configure(romeo!, 'turning', { whois: 'moderators' }), `<iq type='result'/>`);
    const semi = await juliet!.waitFor(`<message type='groupchat' from='${roomJid('turning')}'><x xmlns='${MUC_USER}'/></message>`);
    assert.deepEqual(statusCodes(semi), ['173']);
    assertMatches(await configure(romeo!, 'turning', { enablelogging: '1' }), `<iq type='result'/>`);
    const logged = await juliet!.waitFor(`<message type='groupchat' from='${roomJid('turning')}'><x xmlns='${MUC_USER}'/></message>`);
    assert.deepEqual(statusCodes(logged), ['170']);
    assertMatches(await configure(romeo!, 'turning', { enablelogging: '1' }), `<iq type='result'/>`);
    await juliet!.expectNothing(150);
    // A newcomer to the room, now logged and semi-anonymous, gets 170 and no 100.
    const [nurse] = await users(server, 'cc6n');
    const { self } = await enter(nurse!, 'turning', 'Nurse');
    assert.deepEqual(statusCodes(self), ['110', '170']);
  });

  test('a hidden, password-protected, members-only room says so in disco#info; the owner may turn it public again', async () => {
    const [romeo, juliet] = await users(server, 'cc7', 'cc7j');
    await createRoom(romeo!, 'secretive', 'Romeo', { publicroom: '0', roomsecret: 'tybalt', membersonly: '1' });
    const list = await features(juliet!, 'secretive');
    for (const f of ['muc_hidden', 'muc_passwordprotected', 'muc_membersonly', 'muc_temporary', 'muc_semianonymous']) assert.ok(list.includes(f), `${f} in ${list.join(' ')}`);
    // A member still needs the password.
    assertMatches(await adminSet(romeo!, 'secretive', `affiliation='member' jid='cc7j@localhost'`), `<iq type='result'/>`);
    juliet!.send(enterStanza('secretive', 'Juliet'));
    await juliet!.expect(`<presence type='error' from='${roomJid('secretive', 'Juliet')}'>${err('auth', 'not-authorized')}</presence>`);
    await enter(juliet!, 'secretive', 'Juliet', { password: 'tybalt' });
    assertMatches(await configure(romeo!, 'secretive', { publicroom: '1', passwordprotectedroom: '0' }), `<iq type='result'/>`);
    const now = await features(juliet!, 'secretive');
    for (const f of ['muc_public', 'muc_unsecured']) assert.ok(now.includes(f), `${f} in ${now.join(' ')}`);
    const items = await juliet!.iq(`<iq type='get' to='${SERVICE}'><query xmlns='${DISCO_ITEMS}'/></iq>`);
    assert.ok(items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === roomJid('secretive')), items.toString());
  });

  test('a room turned members-only removes non-members with status 322', async () => {
    const [romeo, juliet] = await users(server, 'cc2', 'cc2j');
    await createRoom(romeo!, 'closing', 'Romeo');
    await enter(juliet!, 'closing', 'Juliet');
    assertMatches(await configure(romeo!, 'closing', { membersonly: '1' }), `<iq type='result'/>`);
    const kicked = await presenceFrom(juliet!, 'closing', 'Juliet', 'unavailable');
    assertMatches(kicked, `<presence><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/><status code='110'/><status code='322'/></x></presence>`);
    const seen = await presenceFrom(romeo!, 'closing', 'Juliet', 'unavailable');
    assert.deepEqual(statusCodes(seen), ['322']);
  });

  test('destroy with reason and alternate venue: every occupant gets unavailable with <destroy/>; the room is gone', async () => {
    const [romeo, juliet] = await users(server, 'cc3', 'cc3j');
    await createRoom(romeo!, 'doomed', 'Romeo', { persistentroom: '1' });
    await enter(juliet!, 'doomed', 'Juliet');
    const answer = await romeo!.iq(`<iq type='set' to='${roomJid('doomed')}'><query xmlns='${MUC_OWNER}'><destroy jid='${roomJid('elsewhere')}'><reason>Moving on</reason></destroy></query></iq>`);
    assert.equal(answer.attrs.type, 'result', answer.toString());
    await juliet!.waitFor(
      `<presence type='unavailable' from='${roomJid('doomed', 'Juliet')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/><destroy jid='${roomJid('elsewhere')}'><reason>Moving on</reason></destroy></x></presence>`,
    );
    await iqExpect(juliet!, discoInfo('doomed'), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
  });

  test('destroy by a non-owner → forbidden, and the room stays', async () => {
    const [romeo, juliet] = await users(server, 'cc4', 'cc4j');
    await createRoom(romeo!, 'sturdy', 'Romeo');
    await enter(juliet!, 'sturdy', 'Juliet');
    await iqExpect(juliet!, `<iq type='set' to='${roomJid('sturdy')}'><query xmlns='${MUC_OWNER}'><destroy/></query></iq>`, `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    await iqExpect(juliet!, discoInfo('sturdy'), `<iq type='result'/>`);
  });

  test('roomowners and roomadmins in the form replace the owner and admin lists (occupants see their new affiliation)', async () => {
    const [romeo, juliet] = await users(server, 'cc5', 'cc5j');
    await createRoom(romeo!, 'shared', 'Romeo');
    await enter(juliet!, 'shared', 'Juliet');
    assertMatches(await configure(romeo!, 'shared', { roomadmins: 'cc5j@localhost' }), `<iq type='result'/>`);
    const promoted = await presenceFrom(juliet!, 'shared', 'Juliet');
    assertMatches(promoted, `<presence><x xmlns='${MUC_USER}'><item affiliation='admin' role='moderator'/><status code='110'/></x></presence>`);
    assertMatches(await configure(romeo!, 'shared', { roomowners: 'cc5j@localhost' }), `<iq type='result'/>`);
    // Romeo is no owner now: the form is Juliet's.
    await iqExpect(romeo!, `<iq type='get' to='${roomJid('shared')}'><query xmlns='${MUC_OWNER}'/></iq>`, `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
  });
});

describe('muc: persistence and creation limits', () => {
  test('a persistent room survives a restart with its configuration, affiliations, subject and history', async (t) => {
    const server = await startServer(t);
    const [romeo] = await users(server, 'ps1');
    await createRoom(romeo!, 'keep', 'Romeo', { persistentroom: '1', roomname: 'Kept', membersonly: '1' });
    assertMatches(await adminSet(romeo!, 'keep', `affiliation='member' jid='ps1j@localhost'`), `<iq type='result'/>`);
    romeo!.send(`<message type='groupchat' to='${roomJid('keep')}'><subject>Still here</subject></message>`);
    say(romeo!, 'keep', 'remember me');
    await romeo!.waitFor(`<message from='${roomJid('keep', 'Romeo')}'><body>remember me</body></message>`);
    await server.restart();
    const juliet = await server.login('ps1j', { resource: 'r1' });
    const { self, history, subject } = await enter(juliet, 'keep', 'Juliet');
    assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>`);
    assert.deepEqual(history.map((m) => m.getChildText('body')), ['remember me']);
    assertMatches(history[0]!, `<message from='${roomJid('keep', 'Romeo')}'><delay xmlns='urn:xmpp:delay' from='${roomJid('keep')}'/></message>`);
    assertMatches(subject, `<message from='${roomJid('keep', 'Romeo')}'><subject>Still here</subject><delay xmlns='urn:xmpp:delay' from='${roomJid('keep')}'/></message>`);
    await iqExpect(juliet, discoInfo('keep'), `<iq type='result'><query><identity name='Kept'/><feature var='muc_membersonly'/></query></iq>`);
    // Someone without membership is still kept out.
    const mallory = await server.login('ps1m', { resource: 'r1' });
    mallory.send(enterStanza('keep', 'Mallory'));
    await mallory.expect(`<presence type='error'>${err('auth', 'registration-required')}</presence>`);
  });

  test('the server stopping tells each occupant with 110 and 332', async (t) => {
    const server = await startServer(t);
    const [romeo] = await users(server, 'ps2');
    await createRoom(romeo!, 'closingtime', 'Romeo');
    const stopping = server.server.stop(); // the HeraldServer itself: the test server would drop the clients first
    await romeo!.expect(`<presence type='unavailable' from='${roomJid('closingtime', 'Romeo')}'><x xmlns='${MUC_USER}'><item role='none'/><status code='110'/><status code='332'/></x></presence>`);
    await stopping;
  });

  test("restrict_room_creation: 'admins' → others get not-allowed; a server admin creates rooms", async (t) => {
    const server = await startServer(t, { config: { admins: ['boss@localhost'] }, modules: { muc: { restrict_room_creation: 'admins' } } });
    const [user, boss] = await users(server, 'pleb', 'boss');
    user!.send(enterStanza('noroom', 'Pleb'));
    await user!.expect(`<presence type='error' from='${roomJid('noroom', 'Pleb')}'>${err('cancel', 'not-allowed')}</presence>`);
    const { self } = await enter(boss!, 'bossroom', 'Boss');
    assert.ok(statusCodes(self).includes('201'));
  });

  test('max_rooms_per_user: creating one room more → not-allowed', async (t) => {
    const server = await startServer(t, { modules: { muc: { max_rooms_per_user: 1 } } });
    const [romeo] = await users(server, 'ps4');
    await createRoom(romeo!, 'first', 'Romeo');
    romeo!.send(enterStanza('second', 'Romeo'));
    await romeo!.expect(`<presence type='error'>${err('cancel', 'not-allowed')}</presence>`);
  });
});
