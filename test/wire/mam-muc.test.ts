// XEP-0313 room archives (§5.1.2) through the contract with the MUC module (modules/mam/rooms.ts):
// the 'muc:message' hook before a broadcast, and the 'mam' service answering IQs to a room. A small
// fake MUC service at rooms.localhost plays the MUC module's part, so most tests pin MAM's side
// alone; the last ones run with the real MUC module at conference.localhost.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { defineModule, parseJid, x, type Jid, type XmlElement } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { MAM, SID, forwardedOf, ok, query, sleep, stanzaIds } from './mam-helpers.js';
import { createRoom, enter, roomJid, say as mucSay, users } from './muc-helpers.js';

const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const MUC_USER = 'http://jabber.org/protocol/muc#user';

interface FakeRoom {
  logging: boolean;
  /** Real JIDs visible to everyone (a non-anonymous room). */
  nonAnonymous: boolean;
  /** Members-only: bare JIDs that may read the archive. */
  members?: string[];
}

const ROOMS: Record<string, FakeRoom> = {
  open: { logging: true, nonAnonymous: false },
  team: { logging: true, nonAnonymous: true, members: ['romeo@localhost', 'juliet@localhost'] },
  quiet: { logging: false, nonAnonymous: false },
};

/** Joins by presence to room/nick, reflects groupchat messages to the occupants, forwards MAM IQs. */
const fakeMuc = defineModule({
  name: 'fake-muc',
  setup(m) {
    const service = m.component('rooms');
    const occupants = new Map<string, Map<string, Jid>>(); // room → nick → real JID
    service.onPresence(({ from, to }) => {
      const room = occupants.get(to.local) ?? new Map<string, Jid>();
      occupants.set(to.local, room.set(to.resource, from));
    });
    service.onMessage(async ({ stanza, from, to }) => {
      const room = ROOMS[to.local];
      const present = occupants.get(to.local);
      const nick = [...(present ?? [])].find(([, real]) => real.equals(from))?.[0];
      if (!room || !present || nick === undefined || stanza.attrs.type !== 'groupchat') throw stanzaError.notAcceptable();
      const out = stanza.clone();
      delete out.attrs.to;
      out.attrs.from = `${to.bareString}/${nick}`;
      await m.fire('muc:message', { room: to.bare, stanza: out, nick, senderJid: from, logging: room.logging });
      for (const real of present.values()) m.route(out.withAttrs({ to: real.toString() }));
    });
    service.entityIq = async ({ stanza, payload, from, to }) => {
      const room = ROOMS[to.local];
      if (!room) throw stanzaError.itemNotFound();
      if (payload.attrs.xmlns === DISCO_INFO) {
        return x('query', { xmlns: DISCO_INFO }, ...(room.logging ? m.service('mam').roomFeatures : []).map((f) => x('feature', { var: f })));
      }
      // §5.1.2: "In a members-only chat room, only owners, admins or members can query a room archive".
      if (room.members && !room.members.includes(from.bareString)) throw stanzaError.forbidden();
      return m.service('mam').roomIq({ room: to.bare, requester: from, stanza, payload, revealRealJids: room.nonAnonymous });
    };
  },
});

async function roomServer(t: Parameters<typeof startServer>[0], mam: Record<string, unknown> = {}): Promise<TestServer> {
  return startServer(t, { moduleList: [...builtinModules, fakeMuc], modules: { mam } });
}

async function join(client: XmppClient, room: string, nick: string): Promise<void> {
  client.send(`<presence to='${room}@rooms.localhost/${nick}'/>`);
  await sleep(50);
}

/** Sends a groupchat message; returns the reflection the sender gets back once `others` got theirs too. */
async function say(client: XmppClient, room: string, body: string, extra = '', ...others: XmppClient[]): Promise<XmlElement> {
  client.send(`<message to='${room}@rooms.localhost' type='groupchat'><body>${body}</body>${extra}</message>`);
  for (const other of others) await groupchat(other, body);
  return groupchat(client, body);
}

async function groupchat(client: XmppClient, body: string): Promise<XmlElement> {
  for (;;) {
    const el = await client.next();
    if (el.name === 'message' && el.attrs.type === 'groupchat' && el.getChildText('body') === body) return el;
  }
}

describe('mam: room archives', () => {
  test('a groupchat message in a logged room → reflected with the room\'s stanza-id (a forged one removed); the room archive returns it from the occupant JID, without to', async (t) => {
    const server = await roomServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet')]);
    await join(romeo, 'open', 'Romeo');
    await join(juliet, 'open', 'Juliet');
    const reflected = await say(romeo, 'open', 'Hello room', `<stanza-id xmlns='${SID}' by='open@rooms.localhost' id='forged'/>`, juliet);
    const ids = stanzaIds(reflected);
    assert.equal(ids.length, 1, reflected.toString());
    assert.equal(ids[0]!.by, 'open@rooms.localhost');
    assert.notEqual(ids[0]!.id, 'forged');

    const archive = await query(juliet, { to: 'open@rooms.localhost' });
    assert.deepEqual(archive.ids, [ids[0]!.id]);
    assert.equal(archive.results[0]!.attrs.from, 'open@rooms.localhost');
    const forwarded = forwardedOf(archive.results[0]!);
    assert.equal(forwarded.attrs.from, 'open@rooms.localhost/Romeo');
    assert.equal(forwarded.attrs.to, undefined);
    assert.equal(forwarded.attrs.type, 'groupchat');
    assert.equal(forwarded.getChild('x', MUC_USER), undefined, 'semi-anonymous: no real JID');
    assert.equal(stanzaIds(forwarded).length, 0);
    assert.equal(archive.complete, 'true');
  });

  test('a non-anonymous room → results name the real JID; an occupant-planted muc#user <x/> is not archived (§8.4)', async (t) => {
    const server = await roomServer(t);
    const romeo = await server.login('romeo', { resource: 'orchard' });
    await join(romeo, 'team', 'Romeo');
    await say(romeo, 'team', 'Trust me', `<x xmlns='${MUC_USER}'><item jid='mallory@evil.example'/></x>`);
    const archive = await query(romeo, { to: 'team@rooms.localhost' });
    const items = forwardedOf(archive.results[0]!).getChildren('x', MUC_USER);
    assert.equal(items.length, 1);
    assert.equal(items[0]!.getChild('item')!.attrs.jid, 'romeo@localhost/orchard');
  });

  test("'with' in a room → the publisher's messages where real JIDs are visible; forbidden where they are not (§4.1.1)", async (t) => {
    const server = await roomServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet')]);
    for (const room of ['team', 'open']) {
      await join(romeo, room, 'Romeo');
      await join(juliet, room, 'Juliet');
      await say(romeo, room, `${room} r`, '', juliet);
      await say(juliet, room, `${room} j`, '', romeo);
    }
    assert.deepEqual((await query(juliet, { to: 'team@rooms.localhost', fields: { with: 'romeo@localhost' } })).bodies, ['team r']);
    const anonymous = await query(juliet, { to: 'open@rooms.localhost', fields: { with: 'romeo@localhost' } });
    assert.equal(anonymous.iq.attrs.type, 'error');
    assert.ok(anonymous.iq.getChild('error')!.getChild('forbidden'));
  });

  test('paging a room archive: the last page, then the one before, with counts', async (t) => {
    const server = await roomServer(t);
    const romeo = await server.login('romeo');
    await join(romeo, 'open', 'Romeo');
    for (const body of ['r1', 'r2', 'r3']) await say(romeo, 'open', body);
    const last = await query(romeo, { to: 'open@rooms.localhost', rsm: '<max>2</max><before/>' });
    assert.deepEqual([last.bodies, last.count, last.firstIndex, last.complete], [['r2', 'r3'], '3', '1', 'false']);
    const before = await query(romeo, { to: 'open@rooms.localhost', rsm: `<max>2</max><before>${last.first}</before>` });
    assert.deepEqual([before.bodies, before.complete], [['r1'], 'true']);
    const unknown = await query(romeo, { to: 'open@rooms.localhost', rsm: '<after>nope</after>' });
    assert.ok(unknown.iq.getChild('error')!.getChild('item-not-found'));
  });

  test('room queries by after-id, before-id, ids, start and end → the same filters as user archives; an unknown id → item-not-found, a malformed form → bad-request', async (t) => {
    const server = await roomServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet')]);
    await join(romeo, 'open', 'Romeo');
    await join(juliet, 'open', 'Juliet');
    const ids: string[] = [];
    for (const body of ['r1', 'r2', 'r3', 'r4']) ids.push(stanzaIds(await say(romeo, 'open', body, '', juliet))[0]!.id);
    const to = 'open@rooms.localhost';
    assert.deepEqual((await query(juliet, { to, fields: { 'after-id': ids[0]!, 'before-id': ids[3]! } })).bodies, ['r2', 'r3']);
    assert.deepEqual((await query(juliet, { to, fields: { ids: [ids[3]!, ids[1]!] } })).bodies, ['r2', 'r4']);
    const paged = await query(juliet, { to, fields: { 'after-id': ids[0]! }, rsm: '<max>2</max>' });
    assert.deepEqual([paged.bodies, paged.count, paged.complete], [['r2', 'r3'], '3', 'false']);
    const past = new Date(Date.now() - 3_600_000).toISOString();
    assert.deepEqual((await query(juliet, { to, fields: { start: past } })).bodies, ['r1', 'r2', 'r3', 'r4']);
    assert.deepEqual((await query(juliet, { to, fields: { end: past } })).bodies, []);

    const unknown = await query(juliet, { to, fields: { 'before-id': 'nope' } });
    assert.ok(unknown.iq.getChild('error')!.getChild('item-not-found'), unknown.iq.toString());
    const badStart = await query(juliet, { to, fields: { start: 'yesterday' } });
    assert.ok(badStart.iq.getChild('error')!.getChild('bad-request'), badStart.iq.toString());
    juliet.send(`<iq type='set' id='ft' to='${to}'><query xmlns='${MAM}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query></iq>`);
    await juliet.expect(`<iq type='error' id='ft'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    assert.deepEqual(unknown.results.concat(badStart.results), [], 'no results before an error');
  });

  test('a room without logging → no stanza-id, an empty archive', async (t) => {
    const server = await roomServer(t);
    const romeo = await server.login('romeo');
    await join(romeo, 'quiet', 'Romeo');
    const reflected = await say(romeo, 'quiet', 'Off the record');
    assert.deepEqual(stanzaIds(reflected), []);
    assert.deepEqual((await query(romeo, { to: 'quiet@rooms.localhost' })).bodies, []);
  });

  test('a subject change is archived; a message with no-store is not', async (t) => {
    const server = await roomServer(t);
    const romeo = await server.login('romeo');
    await join(romeo, 'open', 'Romeo');
    romeo.send(`<message to='open@rooms.localhost' type='groupchat'><subject>Verona</subject></message>`);
    await sleep(50);
    await say(romeo, 'open', 'not kept', `<no-store xmlns='urn:xmpp:hints'/>`);
    const archive = await query(romeo, { to: 'open@rooms.localhost' });
    assert.equal(archive.results.length, 1);
    assert.equal(forwardedOf(archive.results[0]!).getChildText('subject'), 'Verona');
  });

  test('groupchat messages stay out of the occupants\' own archives', async (t) => {
    const server = await roomServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet')]);
    await join(romeo, 'open', 'Romeo');
    await join(juliet, 'open', 'Juliet');
    await say(romeo, 'open', 'In the room', '', juliet);
    assert.deepEqual((await query(romeo)).bodies, []);
    assert.deepEqual((await query(juliet)).bodies, []);
  });

  test('members-only room: the MUC module refuses a non-member (forbidden); the form and metadata answer for members', async (t) => {
    const server = await roomServer(t);
    const [romeo, tybalt] = await Promise.all([server.login('romeo'), server.login('tybalt')]);
    await join(romeo, 'team', 'Romeo');
    const reflected = await say(romeo, 'team', 'Members only');
    await iqExpect(tybalt, `<iq type='set' id='t1' to='team@rooms.localhost'><query xmlns='${MAM}'/></iq>`, `<iq type='error' id='t1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    const form = await ok(romeo, `<iq type='get' to='team@rooms.localhost'><query xmlns='${MAM}'/></iq>`);
    assert.ok(form.getChild('query', MAM)!.getChild('x', 'jabber:x:data'));
    const metadata = await ok(romeo, `<iq type='get' to='team@rooms.localhost'><metadata xmlns='${MAM}'/></iq>`);
    assert.equal(metadata.getChild('metadata', MAM)!.getChild('end')!.attrs.id, stanzaIds(reflected)[0]!.id);
  });

  test('room disco lists urn:xmpp:mam:2 and #extended from the service; a room without logging does not', async (t) => {
    const server = await roomServer(t);
    const romeo = await server.login('romeo');
    const logged = await ok(romeo, `<iq type='get' to='open@rooms.localhost'><query xmlns='${DISCO_INFO}'/></iq>`);
    assert.deepEqual(logged.getChild('query')!.getChildren('feature').map((f) => f.attrs.var), [MAM, `${MAM}#extended`]);
    const quiet = await ok(romeo, `<iq type='get' to='quiet@rooms.localhost'><query xmlns='${DISCO_INFO}'/></iq>`);
    assert.deepEqual(quiet.getChild('query')!.getChildren('feature'), []);
  });

  test('deleteRoomArchive and retention empty room archives; room archives survive a restart', async (t) => {
    const server = await roomServer(t, { retention: '1s', retention_check: 0 });
    const romeo = await server.login('romeo');
    await join(romeo, 'open', 'Romeo');
    await join(romeo, 'team', 'Romeo');
    await say(romeo, 'open', 'kept over a restart');
    await say(romeo, 'team', 'to be deleted');
    await server.restart();
    const again = await server.login('romeo');
    assert.deepEqual((await query(again, { to: 'open@rooms.localhost' })).bodies, ['kept over a restart']);
    const mam = server.server.service('mam')!;
    assert.equal(await mam.deleteRoomArchive(parseJid('team@rooms.localhost')), 1);
    assert.deepEqual((await query(again, { to: 'team@rooms.localhost' })).bodies, []);
    await sleep(1100);
    assert.equal(await mam.expire(), 1);
    assert.deepEqual((await query(again, { to: 'open@rooms.localhost' })).bodies, []);
  });

  test('rooms: false → no room archiving, room IQs answered service-unavailable', async (t) => {
    const server = await roomServer(t, { rooms: false });
    const romeo = await server.login('romeo');
    await join(romeo, 'open', 'Romeo');
    const reflected = await say(romeo, 'open', 'unarchived');
    assert.deepEqual(stanzaIds(reflected), []);
    await iqExpect(romeo, `<iq type='set' id='r' to='open@rooms.localhost'><query xmlns='${MAM}'/></iq>`, `<iq type='error' id='r'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });
});

describe('mam: room archives with the MUC module', () => {
  test('a message in a new room (logging on by default) → both occupants get the same room stanza-id; the archive answers at the room JID', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = (await users(server, 'romeo', 'juliet')) as [XmppClient, XmppClient];
    await createRoom(romeo, 'verona', 'Romeo');
    await enter(juliet, 'verona', 'Juliet');
    mucSay(romeo, 'verona', 'Hello Verona');
    const pattern = `<message type='groupchat' from='${roomJid('verona', 'Romeo')}'><body>Hello Verona</body></message>`;
    const [toJuliet, toRomeo] = await Promise.all([juliet.waitFor(pattern), romeo.waitFor(pattern)]);
    const ids = stanzaIds(toJuliet);
    assert.deepEqual(ids.map((s) => s.by), [roomJid('verona')]);
    assert.deepEqual(stanzaIds(toRomeo), ids);
    const archive = await query(juliet, { to: roomJid('verona') });
    assert.deepEqual(archive.ids, [ids[0]!.id]);
    assert.equal(archive.results[0]!.attrs.from, roomJid('verona'));
    assert.equal(forwardedOf(archive.results[0]!).attrs.from, roomJid('verona', 'Romeo'));
    const info = await ok(juliet, `<iq type='get' to='${roomJid('verona')}'><query xmlns='${DISCO_INFO}'/></iq>`);
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(MAM) && features.includes(`${MAM}#extended`), features.join(' '));
  });

  test('members-only room → a non-member\'s query is forbidden; a room with logging off → no stanza-id, no archive', async (t) => {
    const server = await startServer(t);
    const [romeo, tybalt] = (await users(server, 'romeo', 'tybalt')) as [XmppClient, XmppClient];
    await createRoom(romeo, 'crypt', 'Romeo', { membersonly: '1' });
    await iqExpect(tybalt, `<iq type='set' id='c1' to='${roomJid('crypt')}'><query xmlns='${MAM}'/></iq>`, `<iq type='error' id='c1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await createRoom(romeo, 'quiet', 'Romeo', { enablelogging: '0' });
    mucSay(romeo, 'quiet', 'unlogged');
    const reflected = await romeo.waitFor(`<message type='groupchat' from='${roomJid('quiet', 'Romeo')}'><body>unlogged</body></message>`);
    assert.deepEqual(stanzaIds(reflected), []);
    assert.deepEqual((await query(romeo, { to: roomJid('quiet') })).bodies, []);
  });
});
