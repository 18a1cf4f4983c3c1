import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { ROSTER_GET, befriend, expectPush, getRoster, itemsOf, online, push } from './presence-helpers.js';

const NS_ROSTER = 'jabber:iq:roster';
const set = (item: string) => `<iq type='set'><query xmlns='${NS_ROSTER}'>${item}</query></iq>`;

describe('roster: get and set (RFC 6121 §2.2, §2.3)', () => {
  test('roster get on an empty roster → result with an empty query and a version', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const result = await romeo.iq(ROSTER_GET);
    const query = result.getChild('query', NS_ROSTER);
    assert.equal(result.attrs.type, 'result');
    assert.ok(query, 'a query element');
    assert.equal(query.elements().length, 0);
    assert.ok(query.attrs.ver, 'a ver attribute');
  });

  test('roster set → push to every interested resource (the sender too), then the result; others get nothing', async (t) => {
    const server = await startServer(t);
    const r1 = await server.login('romeo', { resource: 'r1' });
    const r2 = await server.login('romeo', { resource: 'r2' });
    const r3 = await server.login('romeo', { resource: 'r3' }); // never asks for the roster: not interested
    await getRoster(r1);
    await getRoster(r2);
    r1.send(`<iq type='set' id='add1'><query xmlns='${NS_ROSTER}'><item jid='juliet@localhost' name='Juliet'><group>Friends</group><group>Verona</group></item></query></iq>`);
    const item = `<item jid='juliet@localhost' name='Juliet' subscription='none'><group>Friends</group><group>Verona</group></item>`;
    const pushed = await r1.expect(push('romeo', 'r1', item), { strict: true });
    await r1.expect(`<iq type='result' id='add1'/>`);
    await r2.expect(push('romeo', 'r2', item), { strict: true });
    await r3.expectNothing(150);
    const roster = await getRoster(r3);
    const stored = itemsOf(roster).get('juliet@localhost');
    assert.equal(stored?.attrs.name, 'Juliet');
    assert.deepEqual(stored?.getChildren('group').map((g) => g.text()), ['Friends', 'Verona']);
    assert.equal(roster.getChild('query', NS_ROSTER)?.attrs.ver, pushed.getChild('query', NS_ROSTER)?.attrs.ver, 'the push carries the new version');
  });

  test('roster set of an existing item replaces name and groups and keeps the subscription state', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    await getRoster(romeo);
    const result = await romeo.iq(set(`<item jid='juliet@localhost' name='J'><group>Capulets</group></item>`));
    assert.equal(result.attrs.type, 'result');
    await expectPush(romeo, `<item jid='juliet@localhost' name='J' subscription='both'><group>Capulets</group></item>`);
  });

  test("a client's 'subscription', 'ask' and 'approved' are ignored (§2.1.2)", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    await getRoster(romeo);
    const result = await romeo.iq(set(`<item jid='juliet@localhost' subscription='both' ask='subscribe' approved='true'/>`));
    assert.equal(result.attrs.type, 'result');
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none'/>`);
  });

  test('an empty name is no name', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    await getRoster(romeo);
    await romeo.iq(set(`<item jid='juliet@localhost' name=''/>`));
    await expectPush(romeo, `<item jid='juliet@localhost' subscription='none'/>`);
  });

  test("the roster of someone else → forbidden, for get and set", async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo', { resource: 'r1' });
    for (const type of ['get', 'set']) {
      const answer = await romeo.iq(`<iq type='${type}' to='juliet@localhost'><query xmlns='${NS_ROSTER}'>${type === 'set' ? "<item jid='tybalt@localhost'/>" : ''}</query></iq>`);
      assert.equal(answer.attrs.type, 'error');
      assert.ok(answer.getChild('error')?.getChild('forbidden'), answer.toString());
    }
  });
});

describe('roster: set errors (RFC 6121 §2.3.3)', () => {
  const cases: [string, string, string, string][] = [
    ['two items', `<item jid='juliet@localhost'/><item jid='nurse@localhost'/>`, 'modify', 'bad-request'],
    ['no item', ``, 'modify', 'bad-request'],
    ['an item without jid', `<item name='Juliet'/>`, 'modify', 'bad-request'],
    ['a malformed jid', `<item jid='juliet@@localhost'/>`, 'modify', 'jid-malformed'],
    ['a full JID', `<item jid='juliet@localhost/balcony'/>`, 'modify', 'bad-request'],
    ["the user's own JID", `<item jid='romeo@localhost'/>`, 'cancel', 'not-allowed'],
    ['two groups of the same name', `<item jid='juliet@localhost'><group>Friends</group><group>Friends</group></item>`, 'modify', 'bad-request'],
    ['an empty group', `<item jid='juliet@localhost'><group></group></item>`, 'modify', 'not-acceptable'],
    ['a name over the limit', `<item jid='juliet@localhost' name='${'n'.repeat(1024)}'/>`, 'modify', 'not-acceptable'],
    ['a group name over the limit', `<item jid='juliet@localhost'><group>${'g'.repeat(1024)}</group></item>`, 'modify', 'not-acceptable'],
  ];
  for (const [what, item, type, condition] of cases) {
    test(`roster set with ${what} → ${condition}, nothing stored or pushed`, async (t) => {
      const server = await startServer(t);
      const romeo = await server.login('romeo', { resource: 'r1' });
      await getRoster(romeo);
      const answer = await romeo.iq(set(item));
      assert.equal(answer.attrs.type, 'error', answer.toString());
      const error = answer.getChild('error');
      assert.equal(error?.attrs.type, type, answer.toString());
      assert.ok(error?.getChild(condition, 'urn:ietf:params:xml:ns:xmpp-stanzas'), answer.toString());
      await romeo.expectNothing(100);
      assert.equal(itemsOf(await getRoster(romeo)).size, 0);
    });
  }

  test('roster set beyond max_items → not-allowed; updating an existing item still works', async (t) => {
    const server = await startServer(t, { modules: { roster: { max_items: 2 } } });
    const romeo = await server.login('romeo', { resource: 'r1' });
    assert.equal((await romeo.iq(set(`<item jid='a@localhost'/>`))).attrs.type, 'result');
    assert.equal((await romeo.iq(set(`<item jid='b@localhost'/>`))).attrs.type, 'result');
    const refused = await romeo.iq(set(`<item jid='c@localhost'/>`));
    assert.ok(refused.getChild('error')?.getChild('not-allowed'), refused.toString());
    assert.equal((await romeo.iq(set(`<item jid='a@localhost' name='A'/>`))).attrs.type, 'result');
    assert.deepEqual([...itemsOf(await getRoster(romeo)).keys()].sort(), ['a@localhost', 'b@localhost']);
  });
});

describe('roster: remove (RFC 6121 §2.5)', () => {
  test("subscription='remove' → removal pushed to every interested resource, then the result", async (t) => {
    const server = await startServer(t);
    const r1 = await server.login('romeo', { resource: 'r1' });
    const r2 = await server.login('romeo', { resource: 'r2' });
    await getRoster(r1);
    await getRoster(r2);
    await r1.iq(set(`<item jid='juliet@localhost'/>`));
    await expectPush(r1, `<item jid='juliet@localhost' subscription='none'/>`);
    await expectPush(r2, `<item jid='juliet@localhost' subscription='none'/>`);
    r1.send(`<iq type='set' id='rm1'><query xmlns='${NS_ROSTER}'><item jid='juliet@localhost' subscription='remove'/></query></iq>`);
    await expectPush(r1, `<item jid='juliet@localhost' subscription='remove'/>`);
    await r1.expect(`<iq type='result' id='rm1'/>`);
    await expectPush(r2, `<item jid='juliet@localhost' subscription='remove'/>`);
    assert.equal(itemsOf(await getRoster(r2)).size, 0);
  });

  test('removing an item that is not in the roster → item-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    await getRoster(romeo);
    const answer = await romeo.iq(set(`<item jid='juliet@localhost' subscription='remove'/>`));
    assert.equal(answer.attrs.type, 'error');
    assert.ok(answer.getChild('error')?.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), answer.toString());
    await romeo.expectNothing(100);
  });
});

describe('roster: versioning (RFC 6121 §2.6)', () => {
  test('stream features after authentication announce roster versioning and pre-approval; before, they do not', async (t) => {
    const server = await startServer(t);
    const anonymous = await server.connect();
    assert.equal(anonymous.features?.getChild('ver', 'urn:xmpp:features:rosterver'), undefined);
    assert.equal(anonymous.features?.getChild('sub', 'urn:xmpp:features:pre-approval'), undefined);
    const romeo = await server.login('romeo');
    assert.ok(romeo.features?.getChild('ver', 'urn:xmpp:features:rosterver'), romeo.features?.toString());
    assert.ok(romeo.features?.getChild('sub', 'urn:xmpp:features:pre-approval'), romeo.features?.toString());
  });

  test('get with the current ver → empty result; with an old or unknown ver → the whole roster with the new ver', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const first = (await getRoster(romeo)).getChild('query', NS_ROSTER)!.attrs.ver!;
    await romeo.iq(set(`<item jid='juliet@localhost'/>`));
    await romeo.iq(set(`<item jid='nurse@localhost'/>`));
    const full = await getRoster(romeo, first);
    const current = full.getChild('query', NS_ROSTER)!.attrs.ver!;
    assert.notEqual(current, first);
    assert.deepEqual([...itemsOf(full).keys()].sort(), ['juliet@localhost', 'nurse@localhost']);

    const unchanged = await getRoster(romeo, current);
    assert.equal(unchanged.elements().length, 0, `empty result expected: ${unchanged.toString()}`);

    const empty = await getRoster(romeo, '');
    assert.equal(itemsOf(empty).size, 2, 'ver="" (versioning, nothing cached) → the whole roster');
    assert.equal(itemsOf(await getRoster(romeo, 'garbage')).size, 2);
  });

  test('each change moves the version on, and the pushes carry it', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const v0 = (await getRoster(romeo)).getChild('query', NS_ROSTER)!.attrs.ver!;
    await romeo.iq(set(`<item jid='juliet@localhost'/>`));
    const v1 = (await expectPush(romeo, `<item jid='juliet@localhost' subscription='none'/>`)).getChild('query', NS_ROSTER)!.attrs.ver!;
    await romeo.iq(set(`<item jid='juliet@localhost' subscription='remove'/>`));
    const v2 = (await expectPush(romeo, `<item jid='juliet@localhost' subscription='remove'/>`)).getChild('query', NS_ROSTER)!.attrs.ver!;
    assert.equal(new Set([v0, v1, v2]).size, 3);
    assert.equal((await getRoster(romeo, v2)).elements().length, 0);
  });
});

describe('roster: persistence and account deletion', () => {
  test('items and version survive a restart', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    await romeo.iq(set(`<item jid='juliet@localhost' name='Juliet'><group>Verona</group></item>`));
    const ver = (await getRoster(romeo)).getChild('query', NS_ROSTER)!.attrs.ver!;
    await server.restart();
    const again = await server.login('romeo', { resource: 'r1' });
    assert.equal((await getRoster(again, ver)).elements().length, 0, 'the cached version is still current');
    const roster = await getRoster(again);
    const item = itemsOf(roster).get('juliet@localhost');
    assert.equal(item?.attrs.name, 'Juliet');
    assert.equal(item?.getChildText('group'), 'Verona');
  });

  test('a deleted account loses its roster, and its local contacts fall back to none', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const juliet = await server.login('juliet', { resource: 'balcony' });
    await getRoster(juliet);
    await server.server.deleteAccount('romeo');
    // As if romeo had removed her: unsubscribe (her 'from' goes), then unsubscribed (her 'to').
    await juliet.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='unsubscribe'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='to'/>`);
    await juliet.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='unsubscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none'/>`);
    await server.server.createAccount('romeo', 'password');
    const romeo = await server.login('romeo', { resource: 'r1' });
    assert.equal(itemsOf(await getRoster(romeo)).size, 0);
  });
});

describe('roster: presence side of a removal (RFC 6121 §2.5.2)', () => {
  test("removing a 'both' contact → the contact gets unsubscribe, unavailable, unsubscribed and falls back to none", async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await online(server, 'romeo', 'orchard');
    const juliet = await online(server, 'juliet', 'balcony');
    // The initial presences and probe answers crossing each other.
    await romeo.waitFor(`<presence from='juliet@localhost/balcony'/>`);
    await juliet.waitFor(`<presence from='romeo@localhost/orchard'/>`);
    await juliet.expectNothing(100);
    const answer = await romeo.iq(set(`<item jid='juliet@localhost' subscription='remove'/>`));
    assert.equal(answer.attrs.type, 'result');
    await juliet.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='unsubscribe'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='to'/>`);
    await juliet.expect(`<presence from='romeo@localhost/orchard' to='juliet@localhost' type='unavailable'/>`);
    await juliet.expect(`<presence from='romeo@localhost' to='juliet@localhost' type='unsubscribed'/>`);
    await expectPush(juliet, `<item jid='romeo@localhost' subscription='none'/>`);
    // Juliet's server saw romeo unsubscribe (§3.3.3): her resources go offline for him ...
    await romeo.waitFor(`<presence from='juliet@localhost/balcony' to='romeo@localhost' type='unavailable'/>`);
    // ... and her next presence no longer reaches him.
    juliet.send(`<presence><show>away</show></presence>`);
    await juliet.expect(`<presence from='juliet@localhost/balcony'><show>away</show></presence>`);
    await romeo.expectNothing(150);
  });
});
