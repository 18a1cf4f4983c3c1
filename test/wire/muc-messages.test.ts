// MUC (modules/muc) messages: groupchat reflection (stable ids, who may speak), the 'muc:message'
// hook archiving relies on, subject changes, private messages, mediated invitations and declines,
// XEP-0249 direct invitations, and voice requests in moderated rooms.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { defineModule, x, type XmlElement } from '../../server/module-api.js';
import type { Jid } from '../../server/jid.js';
import { formValue, parseForm } from '../../server/protocol/xep0004.js';
import { assertMatches } from './module-helpers.js';
import { MUC_USER, adminSet, configure, createRoom, enter, err, presenceFrom, roomJid, say, users } from './muc-helpers.js';

interface Heard {
  room: Jid;
  nick: string;
  senderJid: Jid;
  logging: boolean;
  stanza: XmlElement;
}

describe('muc: groupchat messages', () => {
  let server: TestServer;
  const heard: Heard[] = [];
  before(async () => {
    // A listener like the archive: it sees each message before the broadcast and adds to it.
    const listener = defineModule({
      name: 'muc-listener',
      setup(m) {
        m.on('muc:message', (event) => {
          heard.push({ ...event, stanza: event.stanza.clone() });
          event.stanza.append(x('marker', { xmlns: 'urn:test:muc' }));
        });
      },
    });
    server = await startServer({ moduleList: [...builtinModules, listener] });
  });
  after(() => server.stop());

  test("a groupchat message goes to every occupant, the sender too, from the sender's occupant JID with the sender's id", async () => {
    const [romeo, juliet] = await users(server, 'gc1', 'gc1j');
    await createRoom(romeo!, 'talk', 'Romeo');
    await enter(juliet!, 'talk', 'Juliet');
    say(juliet!, 'talk', 'Wherefore art thou', 'msg-1');
    for (const client of [romeo!, juliet!]) {
      await client.waitFor(`<message type='groupchat' id='msg-1' from='${roomJid('talk', 'Juliet')}'><body>Wherefore art thou</body></message>`);
    }
  });

  test("'muc:message' fires before the broadcast with the room, nick, real sender and logging, and what handlers add is broadcast", async () => {
    const [romeo] = await users(server, 'gc2');
    await createRoom(romeo!, 'hooked', 'Romeo', { enablelogging: '0' });
    heard.length = 0;
    say(romeo!, 'hooked', 'archive me?', 'h1');
    await romeo!.waitFor(`<message id='h1' from='${roomJid('hooked', 'Romeo')}'><body>archive me?</body><marker xmlns='urn:test:muc'/></message>`);
    assert.equal(heard.length, 1);
    const event = heard[0]!;
    assert.equal(event.room.toString(), roomJid('hooked'));
    assert.equal(event.nick, 'Romeo');
    assert.equal(event.senderJid.toString(), 'gc2@localhost/r1');
    assert.equal(event.logging, false);
    assertMatches(event.stanza, `<message type='groupchat' id='h1' from='${roomJid('hooked', 'Romeo')}'><body>archive me?</body></message>`);
    assert.equal(event.stanza.attrs.to, undefined);
  });

  test('stanza-ids and delays claiming to come from the room are removed from what an occupant sends', async () => {
    const [romeo] = await users(server, 'gc3');
    await createRoom(romeo!, 'forgery', 'Romeo', { enablelogging: '0' });
    romeo!.send(`<message type='groupchat' to='${roomJid('forgery')}' id='f1'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='${roomJid('forgery')}' id='fake'/><delay xmlns='urn:xmpp:delay' from='${roomJid('forgery')}' stamp='2000-01-01T00:00:00Z'/></message>`);
    const got = await romeo!.waitFor(`<message id='f1'/>`);
    assert.equal(got.getChild('stanza-id', 'urn:xmpp:sid:0'), undefined, got.toString());
    assert.equal(got.getChild('delay', 'urn:xmpp:delay'), undefined, got.toString());
  });

  test('a groupchat message from a non-occupant → not-acceptable; to a room that does not exist → item-not-found', async () => {
    const [romeo, juliet] = await users(server, 'gc4', 'gc4j');
    await createRoom(romeo!, 'members', 'Romeo');
    say(juliet!, 'members', 'let me in', 'n1');
    await juliet!.expect(`<message type='error' id='n1' from='${roomJid('members')}'><error type='cancel' by='${roomJid('members')}'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    await romeo!.expectNothing(100);
    say(juliet!, 'nosuchroom', 'hello?', 'n2');
    await juliet!.expect(`<message type='error' id='n2'>${err('cancel', 'item-not-found')}</message>`);
  });

  test('a visitor in a moderated room → forbidden, and nothing is reflected', async () => {
    const [romeo, juliet] = await users(server, 'gc5', 'gc5j');
    await createRoom(romeo!, 'hushed', 'Romeo', { moderatedroom: '1' });
    const { self } = await enter(juliet!, 'hushed', 'Juliet');
    assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item role='visitor'/></x></presence>`);
    await presenceFrom(romeo!, 'hushed', 'Juliet');
    say(juliet!, 'hushed', 'may I speak?', 'v1');
    await juliet!.expect(`<message type='error' id='v1'>${err('auth', 'forbidden')}</message>`);
    await romeo!.expectNothing(100);
  });

  test('a chat message to the room JID → bad-request', async () => {
    const [romeo] = await users(server, 'gc6');
    await createRoom(romeo!, 'types', 'Romeo');
    romeo!.send(`<message type='chat' to='${roomJid('types')}' id='c1'><body>hi</body></message>`);
    await romeo!.expect(`<message type='error' id='c1'>${err('modify', 'bad-request')}</message>`);
  });
});

describe('muc: subject', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ modules: { muc: { max_subject_length: 20 } } });
  });
  after(() => server.stop());

  test('a moderator sets the subject: everyone gets it from the occupant JID; newcomers get it after the history, stamped', async () => {
    const [romeo, juliet, nurse] = await users(server, 'sb1', 'sb1j', 'sb1n');
    await createRoom(romeo!, 'topics', 'Romeo');
    await enter(juliet!, 'topics', 'Juliet');
    romeo!.send(`<message type='groupchat' to='${roomJid('topics')}'><subject>Love</subject></message>`);
    await juliet!.waitFor(`<message type='groupchat' from='${roomJid('topics', 'Romeo')}'><subject>Love</subject></message>`);
    const { subject, history } = await enter(nurse!, 'topics', 'Nurse');
    assert.deepEqual(history, []); // a subject change is not history
    assertMatches(subject, `<message type='groupchat' from='${roomJid('topics', 'Romeo')}'><subject>Love</subject><delay xmlns='urn:xmpp:delay' from='${roomJid('topics')}'/></message>`);
  });

  test('a participant may not change the subject → forbidden; with changesubject on, they may', async () => {
    const [romeo, juliet] = await users(server, 'sb2', 'sb2j');
    await createRoom(romeo!, 'topics2', 'Romeo');
    await enter(juliet!, 'topics2', 'Juliet');
    juliet!.send(`<message type='groupchat' to='${roomJid('topics2')}' id='s1'><subject>Mine</subject></message>`);
    await juliet!.expect(`<message type='error' id='s1'>${err('auth', 'forbidden')}</message>`);
    assertMatches(await configure(romeo!, 'topics2', { changesubject: '1' }), `<iq type='result'/>`);
    juliet!.send(`<message type='groupchat' to='${roomJid('topics2')}' id='s2'><subject>Ours</subject></message>`);
    await romeo!.waitFor(`<message from='${roomJid('topics2', 'Juliet')}' id='s2'><subject>Ours</subject></message>`);
  });

  test('a subject with a body is an ordinary message; an overlong subject → not-acceptable', async () => {
    const [romeo] = await users(server, 'sb3');
    await createRoom(romeo!, 'topics3', 'Romeo');
    romeo!.send(`<message type='groupchat' to='${roomJid('topics3')}' id='b1'><subject>Not a topic</subject><body>just talking</body></message>`);
    await romeo!.waitFor(`<message id='b1'><body>just talking</body></message>`);
    const { subject } = await enter(romeo!, 'topics3', 'Romeo'); // resync shows the subject is still empty
    assertMatches(subject, `<message><subject/></message>`);
    romeo!.send(`<message type='groupchat' to='${roomJid('topics3')}' id='b2'><subject>This subject is far too long</subject></message>`);
    await romeo!.waitFor(`<message type='error' id='b2'>${err('modify', 'not-acceptable')}</message>`);
  });
});

describe('muc: private messages', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test("a private message reaches the occupant from the sender's occupant JID, marked with muc#user", async () => {
    const [romeo, juliet] = await users(server, 'pm1', 'pm1j');
    await createRoom(romeo!, 'whispers', 'Romeo');
    await enter(juliet!, 'whispers', 'Juliet');
    romeo!.send(`<message type='chat' id='p1' to='${roomJid('whispers', 'Juliet')}'><body>psst</body></message>`);
    const got = await juliet!.waitFor(`<message type='chat' id='p1' from='${roomJid('whispers', 'Romeo')}'><body>psst</body><x xmlns='${MUC_USER}'/></message>`);
    assert.equal(got.attrs.to, 'pm1j@localhost/r1');
  });

  test('private message errors: to a nick not in the room → item-not-found; of type groupchat → bad-request; from a non-occupant → not-acceptable', async () => {
    const [romeo, juliet] = await users(server, 'pm2', 'pm2j');
    await createRoom(romeo!, 'whispers2', 'Romeo');
    romeo!.send(`<message type='chat' id='e1' to='${roomJid('whispers2', 'Nobody')}'><body>?</body></message>`);
    await romeo!.expect(`<message type='error' id='e1'>${err('cancel', 'item-not-found')}</message>`);
    romeo!.send(`<message type='groupchat' id='e2' to='${roomJid('whispers2', 'Romeo')}'><body>?</body></message>`);
    await romeo!.expect(`<message type='error' id='e2'>${err('modify', 'bad-request')}</message>`);
    juliet!.send(`<message type='chat' id='e3' to='${roomJid('whispers2', 'Romeo')}'><body>?</body></message>`);
    await juliet!.expect(`<message type='error' id='e3'>${err('cancel', 'not-acceptable')}</message>`);
  });

  test("allowpm 'none' → forbidden; 'moderators' lets only moderators write", async () => {
    const [romeo, juliet] = await users(server, 'pm3', 'pm3j');
    await createRoom(romeo!, 'nopm', 'Romeo', { allowpm: 'moderators' });
    await enter(juliet!, 'nopm', 'Juliet');
    juliet!.send(`<message type='chat' id='q1' to='${roomJid('nopm', 'Romeo')}'><body>hi</body></message>`);
    await juliet!.expect(`<message type='error' id='q1'>${err('auth', 'forbidden')}</message>`);
    romeo!.send(`<message type='chat' id='q2' to='${roomJid('nopm', 'Juliet')}'><body>I may</body></message>`);
    await juliet!.expect(`<message id='q2' from='${roomJid('nopm', 'Romeo')}'><body>I may</body></message>`);
    assertMatches(await configure(romeo!, 'nopm', { allowpm: 'none' }), `<iq type='result'/>`);
    romeo!.send(`<message type='chat' id='q3' to='${roomJid('nopm', 'Juliet')}'><body>not even me</body></message>`);
    await romeo!.waitFor(`<message type='error' id='q3'>${err('auth', 'forbidden')}</message>`);
  });
});

describe('muc: invitations', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('mediated invitation: the invitee gets it from the room with the inviter, reason and password; a decline goes back', async () => {
    const [romeo, juliet] = await users(server, 'in1', 'in1j');
    await createRoom(romeo!, 'party', 'Romeo', { passwordprotectedroom: '1', roomsecret: 'masks' });
    romeo!.send(`<message to='${roomJid('party')}' id='i1'><x xmlns='${MUC_USER}'><invite to='in1j@localhost'><reason>Come to the ball</reason></invite></x></message>`);
    const invite = await juliet!.waitFor(`<message from='${roomJid('party')}' id='i1'/>`);
    assertMatches(invite, `<message><x xmlns='${MUC_USER}'><invite from='in1@localhost'><reason>Come to the ball</reason></invite><password>masks</password></x><x xmlns='jabber:x:conference' jid='${roomJid('party')}'/><body>{any}</body></message>`);
    juliet!.send(`<message to='${roomJid('party')}' id='d1'><x xmlns='${MUC_USER}'><decline to='in1@localhost'><reason>Not tonight</reason></decline></x></message>`);
    await romeo!.waitFor(`<message from='${roomJid('party')}' id='d1'><x xmlns='${MUC_USER}'><decline from='in1j@localhost'><reason>Not tonight</reason></decline></x></message>`);
  });

  test('invitation errors: a malformed invitee → jid-malformed; an unknown local user → item-not-found; <x/> with neither → bad-request', async () => {
    const [romeo] = await users(server, 'in2');
    await createRoom(romeo!, 'party2', 'Romeo');
    romeo!.send(`<message to='${roomJid('party2')}' id='j1'><x xmlns='${MUC_USER}'><invite to='@@'/></x></message>`);
    await romeo!.expect(`<message type='error' id='j1'>${err('modify', 'jid-malformed')}</message>`);
    romeo!.send(`<message to='${roomJid('party2')}' id='j2'><x xmlns='${MUC_USER}'><invite to='nobody-here@localhost'/></x></message>`);
    await romeo!.expect(`<message type='error' id='j2'>${err('cancel', 'item-not-found')}</message>`);
    romeo!.send(`<message to='${roomJid('party2')}' id='j3'><x xmlns='${MUC_USER}'/></message>`);
    await romeo!.expect(`<message type='error' id='j3'>${err('modify', 'bad-request')}</message>`);
  });

  test('members-only room: a member may not invite (forbidden) unless allowinvites; an invitation by an admin makes the invitee a member', async () => {
    const [romeo, juliet, nurse] = await users(server, 'in3', 'in3j', 'in3n');
    await createRoom(romeo!, 'private', 'Romeo', { membersonly: '1' });
    assertMatches(await adminSet(romeo!, 'private', `affiliation='member' jid='in3j@localhost'`), `<iq type='result'/>`);
    await enter(juliet!, 'private', 'Juliet');
    juliet!.send(`<message to='${roomJid('private')}' id='k1'><x xmlns='${MUC_USER}'><invite to='in3n@localhost'/></x></message>`);
    await juliet!.waitFor(`<message type='error' id='k1'>${err('auth', 'forbidden')}</message>`);
    romeo!.send(`<message to='${roomJid('private')}' id='k2'><x xmlns='${MUC_USER}'><invite to='in3n@localhost'/></x></message>`);
    await nurse!.waitFor(`<message from='${roomJid('private')}' id='k2'><x xmlns='${MUC_USER}'><invite from='in3@localhost'/></x></message>`);
    const { self } = await enter(nurse!, 'private', 'Nurse');
    assertMatches(self, `<presence><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>`);
  });

  test('XEP-0249 direct invitation: passes from client to client untouched', async () => {
    const [romeo, juliet] = await users(server, 'in4', 'in4j');
    romeo!.send(`<message to='in4j@localhost' id='di1'><x xmlns='jabber:x:conference' jid='${roomJid('direct')}' password='pw' reason='join us'/></message>`);
    await juliet!.waitFor(`<message from='in4@localhost/r1' id='di1'><x xmlns='jabber:x:conference' jid='${roomJid('direct')}' password='pw' reason='join us'/></message>`);
  });
});

describe('muc: voice requests', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  const request = (room: string, id: string) =>
    `<message to='${roomJid(room)}' id='${id}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role' type='list-single'><value>participant</value></field></x></message>`;

  test('a visitor asks for voice: moderators get the approval form; approving makes the visitor a participant', async () => {
    const [romeo, juliet] = await users(server, 'vr1', 'vr1j');
    await createRoom(romeo!, 'stage', 'Romeo', { moderatedroom: '1' });
    await enter(juliet!, 'stage', 'Juliet');
    await presenceFrom(romeo!, 'stage', 'Juliet');
    juliet!.send(request('stage', 'r1'));
    const ask = await romeo!.waitFor(`<message from='${roomJid('stage')}'><x xmlns='jabber:x:data' type='form'><title>Voice request</title></x></message>`);
    const form = parseForm(ask.getChild('x', 'jabber:x:data')!);
    assert.equal(formValue(form, 'FORM_TYPE'), 'http://jabber.org/protocol/muc#request');
    assert.equal(formValue(form, 'muc#jid'), 'vr1j@localhost/r1');
    assert.equal(formValue(form, 'muc#roomnick'), 'Juliet');
    assert.equal(formValue(form, 'muc#request_allow'), '0');
    romeo!.send(
      `<message to='${roomJid('stage')}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role'><value>participant</value></field><field var='muc#jid'><value>vr1j@localhost/r1</value></field><field var='muc#roomnick'><value>Juliet</value></field><field var='muc#request_allow'><value>true</value></field></x></message>`,
    );
    const voiced = await presenceFrom(juliet!, 'stage', 'Juliet');
    assertMatches(voiced, `<presence><x xmlns='${MUC_USER}'><item role='participant'><actor nick='Romeo'/></item><status code='110'/></x></presence>`);
    say(juliet!, 'stage', 'thank you');
    await romeo!.waitFor(`<message from='${roomJid('stage', 'Juliet')}'><body>thank you</body></message>`);
  });

  test('voice requests disabled → forbidden; a participant asking → not-allowed; a non-occupant → not-acceptable', async () => {
    const [romeo, juliet, nurse] = await users(server, 'vr2', 'vr2j', 'vr2n');
    await createRoom(romeo!, 'stage2', 'Romeo', { moderatedroom: '1', allowvoicerequests: '0' });
    await enter(juliet!, 'stage2', 'Juliet');
    juliet!.send(request('stage2', 'r2'));
    await juliet!.waitFor(`<message type='error' id='r2'>${err('auth', 'forbidden')}</message>`);
    await createRoom(romeo!, 'stage3', 'Romeo');
    await enter(nurse!, 'stage3', 'Nurse');
    nurse!.send(request('stage3', 'r3'));
    await nurse!.waitFor(`<message type='error' id='r3'>${err('cancel', 'not-allowed')}</message>`);
    juliet!.send(request('stage3', 'r4'));
    await juliet!.waitFor(`<message type='error' id='r4'>${err('cancel', 'not-acceptable')}</message>`);
  });
});

describe('muc: room archive (through modules/mam)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  /** A MAM query to the room: the result messages' bodies, and the IQ answer. */
  async function archive(client: Awaited<ReturnType<typeof users>>[number], room: string): Promise<{ bodies: string[]; answer: XmlElement }> {
    client.send(`<iq type='set' id='arch' to='${roomJid(room)}'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>`);
    const bodies: string[] = [];
    for (;;) {
      const el = await client.next();
      if (el.name === 'iq' && el.attrs.id === 'arch') return { bodies, answer: el };
      const forwarded = el.getChild('result', 'urn:xmpp:mam:2')?.getChild('forwarded', 'urn:xmpp:forward:0')?.getChild('message');
      if (forwarded) bodies.push(forwarded.getChildText('body') ?? '');
    }
  }

  test('a logged room lists MAM in its disco#info and answers archive queries with its messages', async () => {
    const [romeo, juliet] = await users(server, 'ar1', 'ar1j');
    await createRoom(romeo!, 'chronicle', 'Romeo');
    say(romeo!, 'chronicle', 'first');
    say(romeo!, 'chronicle', 'second');
    const reflected = await romeo!.waitFor(`<message><body>second</body></message>`);
    assert.equal(reflected.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by, roomJid('chronicle'));
    const info = await romeo!.iq(`<iq type='get' to='${roomJid('chronicle')}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'urn:xmpp:mam:2'), info.toString());
    const { bodies, answer } = await archive(juliet!, 'chronicle'); // an open room: anyone not banned may read
    assert.equal(answer.attrs.type, 'result', answer.toString());
    assert.deepEqual(bodies, ['first', 'second']);
  });

  test('the archive of a members-only room is closed to non-members (forbidden); a room without logging does not list MAM', async () => {
    const [romeo, juliet] = await users(server, 'ar2', 'ar2j');
    await createRoom(romeo!, 'secrets', 'Romeo', { membersonly: '1', enablelogging: '0' });
    const { answer } = await archive(juliet!, 'secrets');
    assertMatches(answer, `<iq type='error'>${err('auth', 'forbidden')}</iq>`);
    const info = await romeo!.iq(`<iq type='get' to='${roomJid('secrets')}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(!info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'urn:xmpp:mam:2'), info.toString());
  });
});
