// MUC (modules/muc) occupants: entering (order of events, status codes, who sees real JIDs), the
// entry errors (nick, conflict, password, members-only, ban, full room, locked room), sessions
// sharing a nick, nick changes, presence updates, leaving, discussion history on entry, the
// groupchat 1.0 kick, resynchronisation, XEP-0410 self-ping, and removals: a dropped connection
// and the status 333 removal of sessions that are gone or answer with errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { parseXml } from '../../server/xml/parser.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import {
  MUC_USER,
  adminSet,
  createRoom,
  enter,
  enterStanza,
  err,
  itemOf,
  presenceFrom,
  roomJid,
  say,
  statusCodes,
  users,
} from './muc-helpers.js';

describe('muc: entering a room', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ modules: { muc: { max_nick_length: 10 } } });
  });
  after(() => server.stop());

  test('entry order: the others, the self-presence (110, 170), history, subject; the others see the newcomer', async () => {
    const [romeo, juliet] = await users(server, 'en1', 'en1j');
    await createRoom(romeo!, 'order', 'Romeo');
    say(romeo!, 'order', 'before you came');
    await romeo!.waitFor(`<message><body>before you came</body></message>`);
    juliet!.send(enterStanza('order', 'Juliet'));
    // Semi-anonymous (the default): a participant does not see real JIDs.
    await juliet!.expect(`<presence from='${roomJid('order', 'Romeo')}'><x xmlns='${MUC_USER}'><item affiliation='owner' role='moderator'/></x></presence>`);
    const self = await juliet!.expect(`<presence from='${roomJid('order', 'Juliet')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='participant' jid='en1j@localhost/r1'/><status code='110'/><status code='170'/></x></presence>`);
    assert.deepEqual(statusCodes(self), ['110', '170']);
    await juliet!.expect(`<message type='groupchat' from='${roomJid('order', 'Romeo')}'><body>before you came</body><delay xmlns='urn:xmpp:delay' from='${roomJid('order')}'/></message>`);
    await juliet!.expect(`<message type='groupchat' from='${roomJid('order')}'><subject/></message>`);
    // The moderator sees Juliet's real JID.
    await romeo!.waitFor(`<presence from='${roomJid('order', 'Juliet')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='participant' jid='en1j@localhost/r1'/></x></presence>`);
  });

  test('non-anonymous room: everyone sees real JIDs and the newcomer gets status 100', async () => {
    const [romeo, juliet, nurse] = await users(server, 'en2', 'en2j', 'en2n');
    await createRoom(romeo!, 'open', 'Romeo', { whois: 'anyone' });
    await enter(juliet!, 'open', 'Juliet');
    const { others, self } = await enter(nurse!, 'open', 'Nurse');
    assert.deepEqual(statusCodes(self), ['100', '110', '170']);
    assert.deepEqual(others.map((p) => itemOf(p)?.attrs.jid).sort(), ['en2@localhost/r1', 'en2j@localhost/r1']);
    const seen = await presenceFrom(juliet!, 'open', 'Nurse');
    assert.equal(itemOf(seen)?.attrs.jid, 'en2n@localhost/r1');
  });

  test('presence to the bare room JID (no nick) → jid-malformed; a blank nick → jid-malformed; one above max_nick_length → not-acceptable', async () => {
    const [romeo] = await users(server, 'en3');
    romeo!.send(`<presence to='${roomJid('nonick')}'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    await romeo!.expect(`<presence type='error' from='${roomJid('nonick')}'><error type='modify' by='${roomJid('nonick')}'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
    romeo!.send(enterStanza('nonick', '  '));
    await romeo!.expect(`<presence type='error'>${err('modify', 'jid-malformed')}</presence>`);
    romeo!.send(enterStanza('nonick', 'Supercalifragilistic'));
    await romeo!.expect(`<presence type='error'>${err('modify', 'not-acceptable')}</presence>`);
  });

  test('a nick the service normalises (Unicode NFC) is taken as normalised and the self-presence says 210', async () => {
    const [romeo] = await users(server, 'en11');
    romeo!.send(`<presence to='${roomJid('accents', 'Rene&#x301;')}'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const self = await romeo!.expect(`<presence from='${roomJid('accents', 'Ren\u00e9')}'/>`);
    assert.deepEqual(statusCodes(self), ['110', '170', '201', '210']);
  });

  test('a nick in use by someone else → conflict', async () => {
    const [romeo, juliet] = await users(server, 'en4', 'en4j');
    await createRoom(romeo!, 'taken', 'Romeo');
    juliet!.send(enterStanza('taken', 'Romeo'));
    await juliet!.expect(`<presence type='error' from='${roomJid('taken', 'Romeo')}'><error type='cancel' by='${roomJid('taken')}'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
  });

  test('password-protected room: no or a wrong password → not-authorized; the right one enters', async () => {
    const [romeo, juliet] = await users(server, 'en5', 'en5j');
    await createRoom(romeo!, 'secret', 'Romeo', { passwordprotectedroom: '1', roomsecret: 'sesame' });
    juliet!.send(enterStanza('secret', 'Juliet'));
    await juliet!.expect(`<presence type='error'>${err('auth', 'not-authorized')}</presence>`);
    juliet!.send(enterStanza('secret', 'Juliet', { password: 'wrong' }));
    await juliet!.expect(`<presence type='error'>${err('auth', 'not-authorized')}</presence>`);
    await enter(juliet!, 'secret', 'Juliet', { password: 'sesame' });
  });

  test('members-only room: a non-member → registration-required; a member enters as participant', async () => {
    const [romeo, juliet, mallory] = await users(server, 'en6', 'en6j', 'en6m');
    await createRoom(romeo!, 'club', 'Romeo', { membersonly: '1' });
    mallory!.send(enterStanza('club', 'Mallory'));
    await mallory!.expect(`<presence type='error'>${err('auth', 'registration-required')}</presence>`);
    assertMatches(await adminSet(romeo!, 'club', `affiliation='member' jid='en6j@localhost'`), `<iq type='result'/>`);
    const { self } = await enter(juliet!, 'club', 'Juliet');
    assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>`);
  });

  test('a banned user → forbidden', async () => {
    const [romeo, mallory] = await users(server, 'en7', 'en7m');
    await createRoom(romeo!, 'guarded', 'Romeo');
    assertMatches(await adminSet(romeo!, 'guarded', `affiliation='outcast' jid='en7m@localhost'`), `<iq type='result'/>`);
    mallory!.send(enterStanza('guarded', 'Mallory'));
    await mallory!.expect(`<presence type='error'>${err('auth', 'forbidden')}</presence>`);
  });

  test('a full room (maxusers) → service-unavailable of type wait; its owner still enters', async () => {
    const [romeo, juliet, nurse] = await users(server, 'en8', 'en8j', 'en8n');
    await createRoom(romeo!, 'tiny', 'Romeo', { maxusers: '2' });
    await enter(juliet!, 'tiny', 'Juliet');
    nurse!.send(enterStanza('tiny', 'Nurse'));
    await nurse!.expect(`<presence type='error'>${err('wait', 'service-unavailable')}</presence>`);
    const second = await server.login('en8', { resource: 'r2' });
    await enter(second, 'tiny', 'Romeo2');
  });

  test('presence without <x/> from a non-occupant (groupchat 1.0) is answered with a kick: 110, 307, 333', async () => {
    const [romeo, juliet] = await users(server, 'en9', 'en9j');
    await createRoom(romeo!, 'modern', 'Romeo');
    juliet!.send(`<presence to='${roomJid('modern', 'Juliet')}'/>`);
    await juliet!.expect(`<presence type='unavailable' from='${roomJid('modern', 'Juliet')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/><status code='110'/><status code='307'/><status code='333'/></x></presence>`);
    await romeo!.expectNothing(150);
  });

  test('a join presence from a session already in the room resends the entry sequence (resync)', async () => {
    const [romeo] = await users(server, 'en10');
    await createRoom(romeo!, 'resync', 'Romeo');
    say(romeo!, 'resync', 'one');
    await romeo!.waitFor(`<message><body>one</body></message>`);
    const again = await enter(romeo!, 'resync', 'Romeo');
    assertMatches(again.self, `<presence><x xmlns='${MUC_USER}'><item affiliation='owner' role='moderator'/><status code='110'/></x></presence>`);
    assert.deepEqual(again.history.map((m) => m.getChildText('body')), ['one']);
  });
});

describe('muc: sessions, nicks and presence', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('two sessions of one account share a nick: both get messages; one leaving keeps the occupant', async () => {
    const [romeo, juliet] = await users(server, 'ss1', 'ss1j');
    await createRoom(romeo!, 'shared', 'Romeo');
    await enter(juliet!, 'shared', 'Juliet');
    await presenceFrom(romeo!, 'shared', 'Juliet');
    const phone = await server.login('ss1j', { resource: 'phone' });
    const { others, self } = await enter(phone, 'shared', 'Juliet');
    assert.deepEqual(others.map((p) => p.attrs.from), [roomJid('shared', 'Romeo')]);
    assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item role='participant' jid='ss1j@localhost/phone'/><status code='110'/></x></presence>`);
    await romeo!.expectNothing(100); // the occupant was there already
    say(romeo!, 'shared', 'to both');
    await juliet!.waitFor(`<message from='${roomJid('shared', 'Romeo')}'><body>to both</body></message>`);
    await phone.waitFor(`<message from='${roomJid('shared', 'Romeo')}'><body>to both</body></message>`);
    phone.send(`<presence type='unavailable' to='${roomJid('shared', 'Juliet')}'/>`);
    await phone.expect(`<presence type='unavailable' from='${roomJid('shared', 'Juliet')}'><x xmlns='${MUC_USER}'><item role='none'/><status code='110'/></x></presence>`);
    await romeo!.waitFor(`<message><body>to both</body></message>`);
    await romeo!.expectNothing(100);
    say(romeo!, 'shared', 'still there?');
    await juliet!.waitFor(`<message><body>still there?</body></message>`);
  });

  test('nick change: unavailable with 303 and the new nick, then the new nick (110 to oneself)', async () => {
    const [romeo, juliet] = await users(server, 'ss2', 'ss2j');
    await createRoom(romeo!, 'renames', 'Romeo');
    await enter(juliet!, 'renames', 'Juliet');
    await presenceFrom(romeo!, 'renames', 'Juliet');
    juliet!.send(`<presence to='${roomJid('renames', 'Jules')}'/>`);
    await juliet!.expect(`<presence type='unavailable' from='${roomJid('renames', 'Juliet')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='participant' nick='Jules'/><status code='110'/><status code='303'/></x></presence>`);
    await juliet!.expect(`<presence from='${roomJid('renames', 'Jules')}'><x xmlns='${MUC_USER}'><item affiliation='none' role='participant'/><status code='110'/></x></presence>`);
    await romeo!.expect(`<presence type='unavailable' from='${roomJid('renames', 'Juliet')}'><x xmlns='${MUC_USER}'><item nick='Jules'/><status code='303'/></x></presence>`);
    const renamed = await romeo!.expect(`<presence from='${roomJid('renames', 'Jules')}'/>`);
    assert.equal(renamed.attrs.type, undefined);
    say(romeo!, 'renames', 'hello Jules');
    await juliet!.waitFor(`<message from='${roomJid('renames', 'Romeo')}'><body>hello Jules</body></message>`);
  });

  test('nick change to a nick in use → conflict, and the old nick stays', async () => {
    const [romeo, juliet] = await users(server, 'ss3', 'ss3j');
    await createRoom(romeo!, 'clash', 'Romeo');
    await enter(juliet!, 'clash', 'Juliet');
    juliet!.send(`<presence to='${roomJid('clash', 'Romeo')}'/>`);
    await juliet!.expect(`<presence type='error' from='${roomJid('clash', 'Romeo')}'>${err('cancel', 'conflict')}</presence>`);
    say(juliet!, 'clash', 'still Juliet');
    await juliet!.expect(`<message from='${roomJid('clash', 'Juliet')}'><body>still Juliet</body></message>`);
  });

  test("nick change to a nick another member reserved → conflict; the member who reserved it may take it", async () => {
    const [romeo, juliet, nurse] = await users(server, 'ss9', 'ss9j', 'ss9n');
    await createRoom(romeo!, 'reservations', 'Romeo');
    assertMatches(await adminSet(romeo!, 'reservations', `affiliation='member' jid='ss9j@localhost' nick='Jules'`), `<iq type='result'/>`);
    await enter(nurse!, 'reservations', 'Nurse');
    nurse!.send(`<presence to='${roomJid('reservations', 'Jules')}'/>`);
    await nurse!.expect(`<presence type='error' from='${roomJid('reservations', 'Jules')}'>${err('cancel', 'conflict')}</presence>`);
    await enter(juliet!, 'reservations', 'Juliet');
    juliet!.send(`<presence to='${roomJid('reservations', 'Jules')}'/>`);
    await juliet!.waitFor(`<presence from='${roomJid('reservations', 'Jules')}'><x xmlns='${MUC_USER}'><item affiliation='member'/><status code='110'/></x></presence>`);
    await presenceFrom(nurse!, 'reservations', 'Jules');
  });

  test('a presence update (show, status) reaches every occupant', async () => {
    const [romeo, juliet] = await users(server, 'ss4', 'ss4j');
    await createRoom(romeo!, 'moods', 'Romeo');
    await enter(juliet!, 'moods', 'Juliet');
    await presenceFrom(romeo!, 'moods', 'Juliet');
    juliet!.send(`<presence to='${roomJid('moods', 'Juliet')}'><show>away</show><status>on the balcony</status></presence>`);
    await romeo!.expect(`<presence from='${roomJid('moods', 'Juliet')}'><show>away</show><status>on the balcony</status><x xmlns='${MUC_USER}'><item role='participant'/></x></presence>`);
    await juliet!.expect(`<presence from='${roomJid('moods', 'Juliet')}'><show>away</show><x xmlns='${MUC_USER}'><status code='110'/></x></presence>`);
  });

  test('leaving: the leaver hears it first (110), then the others, with the exit status and role none', async () => {
    const [romeo, juliet] = await users(server, 'ss5', 'ss5j');
    await createRoom(romeo!, 'exits', 'Romeo');
    await enter(juliet!, 'exits', 'Juliet');
    await presenceFrom(romeo!, 'exits', 'Juliet');
    juliet!.send(`<presence type='unavailable' to='${roomJid('exits', 'Juliet')}'><status>parting is such sweet sorrow</status></presence>`);
    await juliet!.expect(`<presence type='unavailable' from='${roomJid('exits', 'Juliet')}'><status>parting is such sweet sorrow</status><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/><status code='110'/></x></presence>`);
    await romeo!.expect(`<presence type='unavailable' from='${roomJid('exits', 'Juliet')}'><status>parting is such sweet sorrow</status><x xmlns='${MUC_USER}'><item affiliation='none' role='none'/></x></presence>`);
    // Gone: a message from her now is refused.
    say(juliet!, 'exits', 'hello?');
    await juliet!.expect(`<message type='error'>${err('cancel', 'not-acceptable')}</message>`);
  });

  test('a client that drops its connection (no stream management) leaves: its server sends the unavailable presence', async () => {
    const [romeo, juliet] = await users(server, 'ss6', 'ss6j');
    await createRoom(romeo!, 'drops', 'Romeo');
    await enter(juliet!, 'drops', 'Juliet');
    await presenceFrom(romeo!, 'drops', 'Juliet');
    juliet!.dropTcp();
    const gone = await presenceFrom(romeo!, 'drops', 'Juliet', 'unavailable');
    assertMatches(gone, `<presence><x xmlns='${MUC_USER}'><item role='none'/></x></presence>`);
  });

  test('a session that is gone without saying so is removed with 333 when the room next sends to it', async () => {
    const [romeo] = await users(server, 'ss7');
    await server.createUser('ss7g');
    await createRoom(romeo!, 'ghosts', 'Romeo');
    // As after a lost link: the room has an occupant whose session no longer exists.
    server.server.router.routeLocal(parseXml(`<presence from='ss7g@localhost/vanished' to='${roomJid('ghosts', 'Ghost')}'><x xmlns='http://jabber.org/protocol/muc'/></presence>`));
    await presenceFrom(romeo!, 'ghosts', 'Ghost');
    say(romeo!, 'ghosts', 'anyone there?');
    const removed = await presenceFrom(romeo!, 'ghosts', 'Ghost', 'unavailable');
    assertMatches(removed, `<presence><x xmlns='${MUC_USER}'><item role='none'/><status code='333'/></x></presence>`);
  });

  test('an occupant whose client answers with a kickable error is removed with 333; a non-kickable one is not', async () => {
    const [romeo, juliet] = await users(server, 'ss8', 'ss8j');
    await createRoom(romeo!, 'bounces', 'Romeo');
    await enter(juliet!, 'bounces', 'Juliet');
    await presenceFrom(romeo!, 'bounces', 'Juliet');
    juliet!.send(`<message type='error' to='${roomJid('bounces')}'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    await romeo!.expectNothing(150);
    juliet!.send(`<message type='error' to='${roomJid('bounces')}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    const removed = await presenceFrom(romeo!, 'bounces', 'Juliet', 'unavailable');
    assert.deepEqual(statusCodes(removed), ['333']);
    await juliet!.expect(`<presence type='unavailable' from='${roomJid('bounces', 'Juliet')}'><x xmlns='${MUC_USER}'><status code='110'/><status code='333'/></x></presence>`);
  });
});

describe('muc: discussion history on entry', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  async function roomWithHistory(room: string, count: number) {
    const [romeo] = await users(server, `h-${room}`);
    await createRoom(romeo!, room, 'Romeo', { 'muc#maxhistoryfetch': '3' });
    for (let i = 1; i <= count; i++) say(romeo!, room, `m${i}`);
    await romeo!.waitFor(`<message><body>m${count}</body></message>`);
    return romeo!;
  }

  test('without <history/>, the room sends its last historylength messages, stamped with delay from the room', async () => {
    await roomWithHistory('hist1', 5);
    const [juliet] = await users(server, 'hi1j');
    const { history } = await enter(juliet!, 'hist1', 'Juliet');
    assert.deepEqual(history.map((m) => m.getChildText('body')), ['m3', 'm4', 'm5']);
    for (const m of history) assertMatches(m, `<message type='groupchat'><delay xmlns='urn:xmpp:delay' from='${roomJid('hist1')}' stamp='{any}'/></message>`);
  });

  test('maxstanzas limits the number; maxchars=0 sends none', async () => {
    await roomWithHistory('hist2', 3);
    const [juliet, nurse] = await users(server, 'hi2j', 'hi2n');
    const some = await enter(juliet!, 'hist2', 'Juliet', { history: `maxstanzas='2'` });
    assert.deepEqual(some.history.map((m) => m.getChildText('body')), ['m2', 'm3']);
    const none = await enter(nurse!, 'hist2', 'Nurse', { history: `maxchars='0'` });
    assert.deepEqual(none.history, []);
  });

  test("seconds and since: only what was sent in that window", async () => {
    const romeo = await roomWithHistory('hist3', 2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const since = new Date().toISOString();
    say(romeo, 'hist3', 'fresh');
    await romeo.waitFor(`<message><body>fresh</body></message>`);
    const [juliet, nurse, tybalt] = await users(server, 'hi3j', 'hi3n', 'hi3t');
    const fromStamp = await enter(juliet!, 'hist3', 'Juliet', { history: `since='${since}'` });
    assert.deepEqual(fromStamp.history.map((m) => m.getChildText('body')), ['fresh']);
    const lastHour = await enter(nurse!, 'hist3', 'Nurse', { history: `seconds='3600'` });
    assert.deepEqual(lastHour.history.map((m) => m.getChildText('body')), ['m1', 'm2', 'fresh']);
    const lastZero = await enter(tybalt!, 'hist3', 'Tybalt', { history: `seconds='0'` });
    assert.deepEqual(lastZero.history, []);
  });

  test('historylength 0 keeps no history', async () => {
    const [romeo, juliet] = await users(server, 'hi4', 'hi4j');
    await createRoom(romeo!, 'hist4', 'Romeo', { 'muc#maxhistoryfetch': '0' });
    say(romeo!, 'hist4', 'forgotten');
    await romeo!.waitFor(`<message><body>forgotten</body></message>`);
    const { history } = await enter(juliet!, 'hist4', 'Juliet');
    assert.deepEqual(history, []);
  });
});

describe('muc: XEP-0410 self-ping and IQs to occupants', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  const ping = (to: string) => `<iq type='get' to='${to}'><ping xmlns='urn:xmpp:ping'/></iq>`;

  test('a self-ping of a joined client is answered by the service', async () => {
    const [romeo] = await users(server, 'sp1');
    await createRoom(romeo!, 'pings', 'Romeo');
    await iqExpect(romeo!, ping(roomJid('pings', 'Romeo')), `<iq type='result' from='${roomJid('pings', 'Romeo')}'/>`);
    await romeo!.expectNothing(100); // not forwarded to the client
  });

  test('a self-ping of a client not joined → not-acceptable (it should rejoin)', async () => {
    const [romeo, juliet] = await users(server, 'sp2', 'sp2j');
    await createRoom(romeo!, 'pings2', 'Romeo');
    await iqExpect(juliet!, ping(roomJid('pings2', 'Juliet')), `<iq type='error'><error type='cancel' by='${roomJid('pings2')}'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    // Not even under someone else's nick.
    await iqExpect(juliet!, ping(roomJid('pings2', 'Romeo')), `<iq type='error'>${err('cancel', 'not-acceptable')}</iq>`);
  });

  test("an IQ to another occupant goes to that occupant's client from the asker's occupant JID, and the answer comes back", async () => {
    const [romeo, juliet] = await users(server, 'sp3', 'sp3j');
    await createRoom(romeo!, 'pings3', 'Romeo');
    await enter(juliet!, 'pings3', 'Juliet');
    const answer = juliet!.iq(`<iq type='get' id='v1' to='${roomJid('pings3', 'Romeo')}'><query xmlns='jabber:iq:version'/></iq>`);
    const forwarded = await romeo!.waitFor(`<iq type='get' from='${roomJid('pings3', 'Juliet')}'><query xmlns='jabber:iq:version'/></iq>`);
    romeo!.send(`<iq type='result' id='${forwarded.attrs.id}' to='${roomJid('pings3', 'Juliet')}'><query xmlns='jabber:iq:version'><name>Romeo's client</name></query></iq>`);
    assertMatches(await answer, `<iq type='result' id='v1' from='${roomJid('pings3', 'Romeo')}'><query xmlns='jabber:iq:version'><name>Romeo's client</name></query></iq>`);
  });

  test('an IQ to a nick not in the room → item-not-found; to a room that does not exist → item-not-found', async () => {
    const [romeo] = await users(server, 'sp4');
    await createRoom(romeo!, 'pings4', 'Romeo');
    await iqExpect(romeo!, ping(roomJid('pings4', 'Nobody')), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
    await iqExpect(romeo!, ping(roomJid('nowhere', 'Romeo')), `<iq type='error'>${err('cancel', 'item-not-found')}</iq>`);
  });
});
