// XEP-0313 user archives: what is archived (both directions, once per account whatever the
// resources and carbons), the XEP-0359 stanza ids on delivered messages, and persistence.
// Queries and paging: mam-query.test.ts; preferences and retention: mam-prefs.test.ts; rooms:
// mam-muc.test.ts; push: mam-push.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { CARBONS, FORWARD, HINTS, MAM, SID, forwardedOf, nextMessage, ok, query, sleep, stanzaIds } from './mam-helpers.js';
import { enableSm, handled, resumeOn } from './push-helpers.js';

const DISCO_INFO = 'http://jabber.org/protocol/disco#info';

describe('mam: discovery', () => {
  test('disco#info of the own bare JID → urn:xmpp:mam:2, #extended and urn:xmpp:sid:0; of the server → urn:xmpp:sid:0', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const account = await ok(romeo, `<iq type='get' to='romeo@localhost'><query xmlns='${DISCO_INFO}'/></iq>`);
    const features = account.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    for (const feature of [MAM, `${MAM}#extended`, SID]) assert.ok(features.includes(feature), `${feature} missing: ${features.join(' ')}`);
    const host = await ok(romeo, `<iq type='get' to='localhost'><query xmlns='${DISCO_INFO}'/></iq>`);
    assert.ok(host.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === SID));
  });
});

describe('mam: archiving', () => {
  test('a chat message between two accounts → the recipient gets it with a stanza-id; each archive holds it once with its own id', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo', { resource: 'orchard' }), server.login('juliet', { resource: 'balcony' })]);
    romeo.send(`<message to='juliet@localhost/balcony' type='chat' id='m1'><body>Hello</body></message>`);
    const received = await nextMessage(juliet);
    const ids = stanzaIds(received);
    assert.equal(ids.length, 1, received.toString());
    assert.equal(ids[0]!.by, 'juliet@localhost');

    const julietArchive = await query(juliet);
    assert.deepEqual(julietArchive.ids, [ids[0]!.id]);
    const forwarded = forwardedOf(julietArchive.results[0]!);
    assert.equal(forwarded.attrs.xmlns, 'jabber:client');
    assert.equal(forwarded.attrs.from, 'romeo@localhost/orchard');
    assert.equal(forwarded.attrs.to, 'juliet@localhost/balcony');
    assert.equal(forwarded.attrs.id, 'm1');
    assert.equal(forwarded.getChildText('body'), 'Hello');
    assert.equal(stanzaIds(forwarded).length, 0, 'the archived copy carries no stanza-id of ours');
    const delay = julietArchive.results[0]!.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('delay', 'urn:xmpp:delay');
    assert.match(delay?.attrs.stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(julietArchive.complete, 'true');
    assert.equal(julietArchive.fin?.attrs.stable, 'true');

    const romeoArchive = await query(romeo);
    assert.equal(romeoArchive.ids.length, 1);
    assert.notEqual(romeoArchive.ids[0], ids[0]!.id, 'each archive has its own ids');
    assert.equal(forwardedOf(romeoArchive.results[0]!).attrs.to, 'juliet@localhost/balcony');
  });

  test('the sender\'s own message to a contact carries no stanza-id of the sender\'s archive (§3.5)', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    romeo.send(`<message to='juliet@localhost/balcony' type='chat'><body>Hi</body></message>`);
    const received = await nextMessage(juliet);
    assert.deepEqual(stanzaIds(received).map((s) => s.by), ['juliet@localhost']);
  });

  test('a message to the bare JID delivered to two resources, with carbons on both → archived once, both copies carry the same stanza-id', async (t) => {
    const server = await startServer(t);
    const [romeo, balcony, chamber] = await Promise.all([
      server.login('romeo', { resource: 'orchard' }),
      server.login('juliet', { resource: 'balcony' }),
      server.login('juliet', { resource: 'chamber' }),
    ]);
    for (const c of [balcony, chamber]) await ok(c, `<iq type='set'><enable xmlns='${CARBONS}'/></iq>`);
    balcony.send('<presence/>');
    chamber.send('<presence/>');
    await sleep(150); // both available (equal priority: both get messages to the bare JID)
    romeo.send(`<message to='juliet@localhost' type='chat'><body>To both</body></message>`);
    const [a, b] = await Promise.all([nextMessage(balcony), nextMessage(chamber)]);
    assert.equal(a.getChild('received', CARBONS), undefined, 'the original, not a carbon');
    assert.equal(b.getChild('received', CARBONS), undefined, 'the original, not a carbon');
    assert.deepEqual(stanzaIds(a), stanzaIds(b));
    assert.equal(stanzaIds(a).length, 1);
    const archive = await query(balcony);
    assert.deepEqual(archive.bodies, ['To both']);
    assert.deepEqual(archive.ids, [stanzaIds(a)[0]!.id]);
  });

  test('carbons: a received copy carries the stanza-id, a sent copy carries the sender archive\'s; each message archived once per account', async (t) => {
    const server = await startServer(t);
    const [r1, r2, juliet] = await Promise.all([
      server.login('romeo', { resource: 'r1' }),
      server.login('romeo', { resource: 'r2' }),
      server.login('juliet', { resource: 'balcony' }),
    ]);
    await ok(r2, `<iq type='set'><enable xmlns='${CARBONS}'/></iq>`);
    // r1 writes: juliet gets the message, r2 a 'sent' carbon naming romeo's archive id.
    r1.send(`<message to='juliet@localhost/balcony' type='chat'><body>From r1</body></message>`);
    const toJuliet = await nextMessage(juliet);
    assert.deepEqual(stanzaIds(toJuliet).map((s) => s.by), ['juliet@localhost']);
    const sent = await nextMessage(r2);
    const sentInner = sent.getChild('sent', CARBONS)!.getChild('forwarded', FORWARD)!.getChild('message')!;
    const sentIds = stanzaIds(sentInner);
    assert.equal(sentIds.length, 1, sent.toString());
    assert.equal(sentIds[0]!.by, 'romeo@localhost');

    // juliet answers r1's full JID: r1 gets it, r2 a 'received' carbon with the same stanza-id.
    juliet.send(`<message to='romeo@localhost/r1' type='chat'><body>To r1</body></message>`);
    const original = await nextMessage(r1);
    const received = await nextMessage(r2);
    const receivedInner = received.getChild('received', CARBONS)!.getChild('forwarded', FORWARD)!.getChild('message')!;
    assert.deepEqual(stanzaIds(receivedInner), stanzaIds(original));

    const archive = await query(r2);
    assert.deepEqual(archive.bodies, ['From r1', 'To r1']);
    assert.deepEqual(archive.ids, [sentIds[0]!.id, stanzaIds(original)[0]!.id]);
  });

  test('a message to the own account → archived once, as received', async (t) => {
    const server = await startServer(t);
    const [r1, r2] = await Promise.all([server.login('romeo', { resource: 'r1' }), server.login('romeo', { resource: 'r2' })]);
    r1.send(`<message to='romeo@localhost/r2' type='chat'><body>Note to self</body></message>`);
    const received = await nextMessage(r2);
    assert.deepEqual(stanzaIds(received).map((s) => s.by), ['romeo@localhost']);
    const archive = await query(r1);
    assert.deepEqual(archive.bodies, ['Note to self']);
  });

  test('a stanza-id claiming the recipient\'s archive is removed; the message gets a real one (XEP-0359 §4)', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    romeo.send(
      `<message to='juliet@localhost/balcony' type='chat'><body>Forged</body>` +
        `<stanza-id xmlns='${SID}' by='juliet@localhost' id='forged-1'/><stanza-id xmlns='${SID}' by='Juliet@LOCALHOST' id='forged-2'/>` +
        `<stanza-id xmlns='${SID}' by='elsewhere@example.org' id='kept'/></message>`,
    );
    const received = await nextMessage(juliet);
    const ids = stanzaIds(received);
    assert.deepEqual(ids.map((s) => s.by).sort(), ['elsewhere@example.org', 'juliet@localhost']);
    const ours = ids.find((s) => s.by === 'juliet@localhost')!;
    assert.ok(!ours.id.startsWith('forged'));
    const archive = await query(juliet);
    assert.deepEqual(archive.ids, [ours.id]);
    const forged = await query(juliet, { fields: { 'after-id': 'forged-1' } });
    assert.equal(forged.iq.attrs.type, 'error');
    assert.ok(forged.iq.getChild('error')!.getChild('item-not-found'));
  });

  test('a stanza-id claiming the sender\'s own archive is removed from its carbons', async (t) => {
    const server = await startServer(t);
    const [r1, r2] = await Promise.all([server.login('romeo', { resource: 'r1' }), server.login('romeo', { resource: 'r2' })]);
    await server.createUser('juliet');
    await ok(r2, `<iq type='set'><enable xmlns='${CARBONS}'/></iq>`);
    r1.send(`<message to='juliet@localhost' type='chat'><body>x</body><stanza-id xmlns='${SID}' by='romeo@localhost' id='forged'/></message>`);
    const sent = await nextMessage(r2);
    const inner = sent.getChild('sent', CARBONS)!.getChild('forwarded', FORWARD)!.getChild('message')!;
    const ids = stanzaIds(inner);
    assert.equal(ids.length, 1, inner.toString());
    assert.notEqual(ids[0]!.id, 'forged');
  });

  test('hints: no-store and no-permanent-store are not archived (no stanza-id); store archives even a chat state; chat states and headlines alone are not', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    const to = `to='juliet@localhost/balcony'`;
    const states = `<active xmlns='http://jabber.org/protocol/chatstates'/>`;
    romeo.send(`<message ${to} type='chat'><body>secret</body><no-store xmlns='${HINTS}'/></message>`);
    romeo.send(`<message ${to} type='chat'><body>ephemeral</body><no-permanent-store xmlns='${HINTS}'/></message>`);
    romeo.send(`<message ${to} type='chat'>${states}</message>`);
    romeo.send(`<message ${to} type='headline'><body>news</body></message>`);
    romeo.send(`<message ${to} type='chat'>${states}<store xmlns='${HINTS}'/></message>`);
    romeo.send(`<message ${to} type='chat'><body>plain</body></message>`);
    const got = [];
    for (let i = 0; i < 6; i++) got.push(await juliet.next());
    assert.deepEqual(
      got.map((m) => stanzaIds(m).length),
      [0, 0, 0, 0, 1, 1],
      got.map((m) => m.toString()).join('\n'),
    );
    const julietArchive = await query(juliet);
    assert.equal(julietArchive.ids.length, 2);
    assert.ok(forwardedOf(julietArchive.results[0]!).getChild('store', HINTS));
    assert.deepEqual(julietArchive.bodies, ['', 'plain']);
    const romeoArchive = await query(romeo);
    assert.deepEqual(romeoArchive.bodies, ['', 'plain'], 'the sender applies the same rules');
  });

  test('error, headline and groupchat messages sent straight to an account → delivered without stanza-id and in neither archive; a chat after them is archived', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    const to = `to='juliet@localhost/balcony'`;
    const error = `<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`;
    romeo.send(`<message ${to} type='error' id='e1'><body>bounced</body>${error}</message>`);
    romeo.send(`<message ${to} type='headline'><body>news</body></message>`);
    romeo.send(`<message ${to} type='groupchat'><body>not from a room</body></message>`);
    romeo.send(`<message ${to} type='chat'><body>kept</body></message>`);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await juliet.next());
    assert.deepEqual(
      got.map((m) => [m.attrs.type, stanzaIds(m).length]),
      [['error', 0], ['headline', 0], ['groupchat', 0], ['chat', 1]],
      got.map((m) => m.toString()).join('\n'),
    );
    assert.deepEqual((await query(juliet)).bodies, ['kept']);
    assert.deepEqual((await query(romeo)).bodies, ['kept']);
  });

  test('a message for an account with nothing online → stored offline with its stanza-id and archived; the offline copy and the archive agree', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    romeo.send(`<message to='juliet@localhost' type='chat'><body>While you were away</body></message>`);
    await sleep(100);
    const juliet = await server.login('juliet');
    juliet.send('<presence/>');
    const offline = await nextMessage(juliet);
    assert.equal(offline.getChildText('body'), 'While you were away');
    const ids = stanzaIds(offline);
    assert.equal(ids.length, 1);
    const archive = await query(juliet);
    assert.deepEqual(archive.ids, [ids[0]!.id]);
  });

  test('a message for an account that does not exist → no archive, service-unavailable for the sender', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<message to='nobody@localhost' type='chat' id='x'><body>Anyone?</body></message>`);
    const error = await romeo.next();
    assert.equal(error.attrs.type, 'error');
    const archive = await server.server.store.archive(server.domain, 'mam', 'messages').count('nobody');
    assert.equal(archive, 0);
  });

  test('a message queued for a hibernated session → archived; the stanza-id is in the replay after resumption', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    juliet.send('<presence/>');
    const { id, mark } = await enableSm(juliet);
    await sleep(50);
    const h = handled(juliet, mark);
    juliet.dropTcp();
    await sleep(100);
    const romeo = await server.login('romeo');
    romeo.send(`<message to='juliet@localhost' type='chat'><body>Are you there?</body></message>`);
    await sleep(100);
    const { client, answer } = await resumeOn(server, 'juliet', id, h);
    assert.equal(answer.name, 'resumed', answer.toString());
    const replayed = await nextMessage(client);
    const ids = stanzaIds(replayed);
    assert.equal(ids.length, 1, replayed.toString());
    const archive = await query(client);
    assert.deepEqual(archive.ids, [ids[0]!.id]);
  });

  test('archives and stanza ids survive a restart', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    romeo.send(`<message to='juliet@localhost/balcony' type='chat'><body>Before the restart</body></message>`);
    const id = stanzaIds(await nextMessage(juliet))[0]!.id;
    await server.restart();
    const again = await server.login('juliet');
    const archive = await query(again, { fields: { ids: id } });
    assert.deepEqual(archive.bodies, ['Before the restart']);
    assert.deepEqual(archive.ids, [id]);
    const romeoAgain = await server.login('romeo');
    assert.deepEqual((await query(romeoAgain)).bodies, ['Before the restart']);
  });

  test('deleting an account deletes its archive', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    romeo.send(`<message to='juliet@localhost/balcony' type='chat'><body>x</body></message>`);
    await nextMessage(juliet);
    const store = server.server.store.archive(server.domain, 'mam', 'messages');
    assert.equal(await store.count('juliet'), 1);
    await juliet.close();
    await server.server.deleteAccount('juliet');
    assert.equal(await store.count('juliet'), 0);
  });

  test('an account removed over the wire (XEP-0077) → a new account of the same name finds an empty archive and the default preferences', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    await ok(juliet, `<iq type='set' id='p2'><prefs xmlns='${MAM}' default='always'><always/><never><jid>nurse@localhost</jid></never></prefs></iq>`);
    romeo.send(`<message to='juliet@localhost/balcony' type='chat'><body>Before</body></message>`);
    await nextMessage(juliet);
    assert.equal((await query(juliet)).ids.length, 1);
    juliet.send(`<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
    await juliet.expect(`<iq type='result' id='rm'/>`);
    await juliet.expectStreamError('not-authorized');

    await server.server.createAccount('juliet', 'password'); // the test server remembers it made juliet once
    const again = await server.login('juliet');
    const archive = await query(again);
    assert.deepEqual(archive.ids, []);
    assert.equal(archive.count, '0');
    const prefs = await ok(again, `<iq type='get' id='p3'><prefs xmlns='${MAM}'/></iq>`);
    assert.equal(prefs.getChild('prefs', MAM)!.attrs.default, 'always');
    assert.equal(prefs.getChild('prefs', MAM)!.getChild('never')!.getChildren('jid').length, 0);
    assert.deepEqual((await query(romeo)).bodies, ['Before'], "the other party's archive keeps its copy");
  });
});
