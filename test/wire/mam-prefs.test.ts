// XEP-0441 archive preferences (get, set, persisted, applied to both directions) and retention.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type XmppClient } from '../../bin/testing.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { MAM, nextMessage, ok, query, sleep, stanzaIds } from './mam-helpers.js';

function prefsXml(policy: string, always: string[] = [], never: string[] = [], id = 'p1'): string {
  const list = (name: string, jids: string[]) => `<${name}>${jids.map((j) => `<jid>${j}</jid>`).join('')}</${name}>`;
  return `<iq type='set' id='${id}'><prefs xmlns='${MAM}' default='${policy}'>${list('always', always)}${list('never', never)}</prefs></iq>`;
}

/** Whether juliet's copy of a message from `from` (body `body`) carried a stanza-id, i.e. was archived. */
async function archivedFor(from: XmppClient, juliet: XmppClient, body: string): Promise<boolean> {
  from.send(`<message to='juliet@localhost/balcony' type='chat'><body>${body}</body></message>`);
  const received = await nextMessage(juliet);
  assert.equal(received.getChildText('body'), body);
  return stanzaIds(received).length > 0;
}

describe('mam: preferences (XEP-0441)', () => {
  test('get without preferences set → default always, empty always and never lists', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='get' id='g'><prefs xmlns='${MAM}'/></iq>`, `<iq type='result' id='g' to='{any}'><prefs xmlns='${MAM}' default='always'><always/><never/></prefs></iq>`, { strict: true });
  });

  test('set → answered with the applied preferences (JIDs normalised), kept across a restart', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(
      juliet,
      prefsXml('roster', ['Romeo@Localhost'], ['nurse@localhost/Kitchen']),
      `<iq type='result' id='p1' to='{any}'><prefs xmlns='${MAM}' default='roster'><always><jid>romeo@localhost</jid></always><never><jid>nurse@localhost/Kitchen</jid></never></prefs></iq>`,
      { strict: true },
    );
    await server.restart();
    const again = await server.login('juliet');
    await iqExpect(
      again,
      `<iq type='get' id='g'><prefs xmlns='${MAM}'/></iq>`,
      `<iq type='result' id='g' to='{any}'><prefs xmlns='${MAM}' default='roster'><always><jid>romeo@localhost</jid></always><never><jid>nurse@localhost/Kitchen</jid></never></prefs></iq>`,
      { strict: true },
    );
  });

  test('set with a missing or unknown default, or a bad JID → bad-request; nothing changes', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='set' id='b1'><prefs xmlns='${MAM}'><always/><never/></prefs></iq>`, `<iq type='error' id='b1'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    await iqExpect(juliet, prefsXml('sometimes', [], [], 'b2'), `<iq type='error' id='b2'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    await iqExpect(juliet, prefsXml('never', ['@bad@'], [], 'b3'), `<iq type='error' id='b3'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    await iqExpect(juliet, `<iq type='get' id='g'><prefs xmlns='${MAM}'/></iq>`, `<iq type='result' id='g'><prefs xmlns='${MAM}' default='always'/></iq>`);
  });

  test("someone else's preferences → forbidden", async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' id='x' to='juliet@localhost'><prefs xmlns='${MAM}'/></iq>`, `<iq type='error' id='x'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
  });

  test('never list → messages from that JID are not archived (no stanza-id), others are', async (t) => {
    const server = await startServer(t);
    const [romeo, nurse, juliet] = await Promise.all([server.login('romeo'), server.login('nurse'), server.login('juliet', { resource: 'balcony' })]);
    await ok(juliet, prefsXml('always', [], ['romeo@localhost']));
    assert.equal(await archivedFor(romeo, juliet, 'from romeo'), false);
    assert.equal(await archivedFor(nurse, juliet, 'from nurse'), true);
    assert.deepEqual((await query(juliet)).bodies, ['from nurse']);
  });

  test('default never with an always list → only the listed JID is archived; a full JID entry matches only that resource', async (t) => {
    const server = await startServer(t);
    const [orchard, garden, nurse, juliet] = await Promise.all([
      server.login('romeo', { resource: 'orchard' }),
      server.login('romeo', { resource: 'garden' }),
      server.login('nurse'),
      server.login('juliet', { resource: 'balcony' }),
    ]);
    await ok(juliet, prefsXml('never', ['romeo@localhost/orchard']));
    assert.equal(await archivedFor(orchard, juliet, 'orchard'), true);
    assert.equal(await archivedFor(garden, juliet, 'garden'), false);
    assert.equal(await archivedFor(nurse, juliet, 'nurse'), false);
  });

  test('default roster → messages with roster contacts archived, with strangers not; outgoing ones alike', async (t) => {
    const server = await startServer(t);
    const [romeo, tybalt, juliet] = await Promise.all([server.login('romeo', { resource: 'r' }), server.login('tybalt', { resource: 't' }), server.login('juliet', { resource: 'balcony' })]);
    await ok(juliet, `<iq type='set'><query xmlns='jabber:iq:roster'><item jid='romeo@localhost'/></query></iq>`);
    await ok(juliet, prefsXml('roster'));
    assert.equal(await archivedFor(romeo, juliet, 'contact'), true);
    assert.equal(await archivedFor(tybalt, juliet, 'stranger'), false);
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>to contact</body></message>`);
    juliet.send(`<message to='tybalt@localhost/t' type='chat'><body>to stranger</body></message>`);
    await nextMessage(romeo);
    await nextMessage(tybalt);
    assert.deepEqual((await query(juliet)).bodies, ['contact', 'to contact']);
  });

  test('never on the sender side → the sent message is not in the sender\'s archive, but is in the recipient\'s', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    await ok(romeo, prefsXml('never'));
    assert.equal(await archivedFor(romeo, juliet, 'unrecorded'), true);
    assert.deepEqual((await query(romeo)).bodies, []);
  });

  test('config default_policy never → nothing archived for accounts without preferences; prefs get says never', async (t) => {
    const server = await startServer(t, { modules: { mam: { default_policy: 'never' } } });
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    assert.equal(await archivedFor(romeo, juliet, 'x'), false);
    await iqExpect(juliet, `<iq type='get' id='g'><prefs xmlns='${MAM}'/></iq>`, `<iq type='result' id='g'><prefs xmlns='${MAM}' default='never'/></iq>`);
    await ok(juliet, prefsXml('always'));
    assert.equal(await archivedFor(romeo, juliet, 'y'), true);
  });
});

describe('mam: retention', () => {
  test('messages older than the retention are deleted periodically; newer ones stay', async (t) => {
    const server = await startServer(t, { modules: { mam: { retention: '1s', retention_check: '100ms' } } });
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    assert.equal(await archivedFor(romeo, juliet, 'old'), true);
    await sleep(1300);
    assert.equal(await archivedFor(romeo, juliet, 'new'), true);
    assert.deepEqual((await query(juliet)).bodies, ['new']);
    assert.deepEqual((await query(romeo)).bodies, ['new']);
  });

  test('retention 0 → nothing is ever deleted', async (t) => {
    const server = await startServer(t, { modules: { mam: { retention: 0 } } });
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    assert.equal(await archivedFor(romeo, juliet, 'kept'), true);
    assert.equal(await server.server.service('mam')!.expire(), 0);
    assert.deepEqual((await query(juliet)).bodies, ['kept']);
  });

  test('expire() with the default retention → messages younger than it stay', async (t) => {
    const server = await startServer(t);
    const [romeo, juliet] = await Promise.all([server.login('romeo'), server.login('juliet', { resource: 'balcony' })]);
    assert.equal(await archivedFor(romeo, juliet, 'recent'), true);
    assert.equal(await server.server.service('mam')!.expire(), 0);
    assert.deepEqual((await query(juliet)).bodies, ['recent']);
  });

  test('an invalid retention → the server does not start', async () => {
    await assert.rejects(startServer({ modules: { mam: { retention: 'forever' } } }), /retention/);
  });
});
