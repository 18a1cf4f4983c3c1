// PEP (XEP-0163) on the wire: auto-create, +notify filtering through entity capabilities, last item
// on presence, access models, publish-options preconditions, configuration, retract/delete/purge
// notifications, persistence.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import {
  PUBSUB,
  PUBSUB_EVENT,
  PUBSUB_OWNER,
  announce,
  configForm,
  expectNoEvent,
  itemIds,
  itemsIq,
  mutual,
  nextEvent,
  onlineWithCaps,
  publish,
  publishIq,
  pubsubError,
} from './pep-helpers.js';

const TUNE = 'http://jabber.org/protocol/tune';
const tune = (title: string) => `<tune xmlns='${TUNE}'><title>${title}</title></tune>`;

describe('pep: discovery', () => {
  test('disco#info of the own account → identity pubsub/pep and the pubsub features', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assertMatches(answer, `<iq type='result'><query><identity category='account' type='registered'/><identity category='pubsub' type='pep'/></query></iq>`);
    const features = answer.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    for (const name of ['publish', 'publish-options', 'auto-create', 'access-presence', 'access-open', 'access-whitelist', 'last-published', 'filtered-notifications', 'retrieve-items', 'delete-nodes', 'config-node']) {
      assert.ok(features.includes(`${PUBSUB}#${name}`), `missing pubsub#${name}`);
    }
  });

  test('disco#items of an account → the owner sees every node, a stranger only the open ones', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'i1', tune('a'));
    await publish(romeo, 'urn:test:open', 'i1', `<x xmlns='urn:test:open'/>`, { access_model: 'open' });
    const own = await romeo.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assert.deepEqual(own.getChild('query')!.getChildren('item').map((i) => i.attrs.node).sort(), [TUNE, 'urn:test:open']);
    const benvolio = await server.login('benvolio');
    const theirs = await benvolio.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assert.deepEqual(theirs.getChild('query')!.getChildren('item').map((i) => i.attrs.node), ['urn:test:open']);
  });
});

describe('pep: publishing and notifications', () => {
  test('publish to a missing node → auto-created; the result names node and item; items returns it', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, publishIq(TUNE, 'song1', tune('Intro')), `<iq type='result'><pubsub xmlns='${PUBSUB}'><publish node='${TUNE}'><item id='song1'/></publish></pubsub></iq>`);
    const items = await romeo.iq(itemsIq(TUNE));
    assertMatches(items, `<iq type='result'><pubsub xmlns='${PUBSUB}'><items node='${TUNE}'><item id='song1'><tune xmlns='${TUNE}'><title>Intro</title></tune></item></items></pubsub></iq>`);
  });

  test('publish → contact with both subscription and tune+notify caps, and the own +notify resource, get the event from the bare JID', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
    const romeo2 = await onlineWithCaps(server, 'romeo', 'garden', [`${TUNE}+notify`]);
    const romeo = await server.login('romeo', { resource: 'orchard' });
    await publish(romeo, TUNE, 'song1', tune('Intro'));
    const pattern = (to: string) =>
      `<message from='romeo@localhost' to='${to}' type='headline'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='song1'><tune xmlns='${TUNE}'><title>Intro</title></tune></item></items></event></message>`;
    await nextEvent(juliet, pattern('juliet@localhost/balcony'));
    await nextEvent(romeo2, pattern('romeo@localhost/garden'));
    await expectNoEvent(romeo, 200); // no +notify, no event
  });

  test('contact whose caps lack tune+notify → no notification', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', ['http://jabber.org/protocol/geoloc+notify']);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'song1', tune('Intro'));
    await expectNoEvent(juliet, 300);
  });

  test('stranger with tune+notify caps sending directed presence → not asked for caps, no notification', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const benvolio = await server.login('benvolio');
    // Directed presence to romeo: no subscription, so romeo's PEP does not ask benvolio for caps.
    await announce(benvolio, [`${TUNE}+notify`], { presence: `<presence to='romeo@localhost'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='x' ver='abc'/></presence>`, queried: false });
    await publish(romeo, TUNE, 'song1', tune('Intro'), { access_model: 'open' });
    await expectNoEvent(benvolio, 300);
  });

  test('contact coming online with tune+notify → the last published item, stamped with a delay', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'song1', tune('First'));
    await publish(romeo, TUNE, 'song2', tune('Second'));
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
    const event = await nextEvent(juliet);
    assertMatches(event, `<message from='romeo@localhost' type='headline'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='song2'/></items></event><delay xmlns='urn:xmpp:delay'/></message>`);
    await expectNoEvent(juliet, 200); // only the last one
  });

  test('node with send_last_published_item never → nothing on presence', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'song1', tune('First'), { send_last_published_item: 'never' });
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
    await expectNoEvent(juliet, 250);
  });

  test('someone else publishing to an account → forbidden', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await server.login('juliet');
    await iqExpect(juliet, publishIq(TUNE, 'x', tune('Mine'), {}, 'romeo@localhost'), pubsubError('auth', 'forbidden'));
  });

  test('publish without a payload → bad-request with payload-required', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><publish node='${TUNE}'><item id='a'/></publish></pubsub></iq>`, pubsubError('modify', 'bad-request', 'payload-required'));
  });
});

describe('pep: entity capabilities', () => {
  test('a second resource with the same verified ver → not asked again, and still notified', async (t) => {
    const server = await startServer(t);
    const first = await server.login('romeo', { resource: 'r1' });
    await announce(first, [`${TUNE}+notify`], { shared: true });
    const second = await server.login('romeo', { resource: 'r2' });
    await announce(second, [`${TUNE}+notify`], { shared: true, queried: false });
    const publisher = await server.login('romeo', { resource: 'r3' });
    await publish(publisher, TUNE, 'a', tune('a'));
    await nextEvent(first);
    await nextEvent(second);
  });

  test('a ver that does not hash to the answer → used for that resource but not cached: the next one is asked too', async (t) => {
    const server = await startServer(t);
    const first = await server.login('romeo', { resource: 'r1' });
    await announce(first, [`${TUNE}+notify`], { shared: true, ver: 'bogus' });
    const second = await server.login('romeo', { resource: 'r2' });
    await announce(second, [`${TUNE}+notify`], { shared: true, ver: 'bogus' }); // fails unless asked
    const publisher = await server.login('romeo', { resource: 'r3' });
    await publish(publisher, TUNE, 'a', tune('a'));
    await nextEvent(first);
    await nextEvent(second);
  });
});

describe('pep: access models', () => {
  test('presence (default): a contact retrieves items, a stranger gets not-authorized with presence-subscription-required', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'song1', tune('Intro'));
    const juliet = await server.login('juliet');
    assert.deepEqual(itemIds(await juliet.iq(itemsIq(TUNE, 'romeo@localhost'))), ['song1']);
    const benvolio = await server.login('benvolio');
    await iqExpect(benvolio, itemsIq(TUNE, 'romeo@localhost'), pubsubError('auth', 'not-authorized', 'presence-subscription-required'));
  });

  test('open (an OMEMO device list): a stranger retrieves items and may subscribe, then gets notifications', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const DEVICELIST = 'eu.siacs.conversations.axolotl.devicelist';
    const list = (ids: string[]) => `<list xmlns='eu.siacs.conversations.axolotl'>${ids.map((id) => `<device id='${id}'/>`).join('')}</list>`;
    await publish(romeo, DEVICELIST, 'current', list(['1']), { access_model: 'open' });
    const benvolio = await server.login('benvolio');
    benvolio.send('<presence/>'); // notifications to a bare JID reach available resources
    const items = await benvolio.iq(itemsIq(DEVICELIST, 'romeo@localhost'));
    assertMatches(items, `<iq type='result' from='romeo@localhost'><pubsub xmlns='${PUBSUB}'><items node='${DEVICELIST}'><item id='current'><list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list></item></items></pubsub></iq>`);
    await iqExpect(
      benvolio,
      `<iq type='set' to='romeo@localhost'><pubsub xmlns='${PUBSUB}'><subscribe node='${DEVICELIST}' jid='benvolio@localhost'/></pubsub></iq>`,
      `<iq type='result'><pubsub xmlns='${PUBSUB}'><subscription node='${DEVICELIST}' jid='benvolio@localhost' subscription='subscribed'/></pubsub></iq>`,
    );
    await nextEvent(benvolio); // the last item, on subscription
    await publish(romeo, DEVICELIST, 'current', list(['1', '2']));
    const event = await nextEvent(benvolio);
    assertMatches(event, `<message from='romeo@localhost' to='benvolio@localhost'><event xmlns='${PUBSUB_EVENT}'><items><item id='current'><list><device id='1'/><device id='2'/></list></item></items></event></message>`);
  });

  test('whitelist: the owner retrieves items; a contact gets not-allowed with closed-node and no notification', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', ['urn:test:private+notify']);
    const romeo = await server.login('romeo');
    await publish(romeo, 'urn:test:private', 'a', `<secret xmlns='urn:test:private'/>`, { access_model: 'whitelist' });
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:private'))), ['a']);
    await iqExpect(juliet, itemsIq('urn:test:private', 'romeo@localhost'), pubsubError('cancel', 'not-allowed', 'closed-node'));
    await expectNoEvent(juliet, 200);
  });

  test('roster: a contact in an allowed group retrieves items, one in another group gets not-authorized with not-in-roster-group', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet', ['Friends']);
    await mutual(server, 'romeo', 'nurse', ['Servants']);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('x'));
    await iqExpect(
      romeo,
      `<iq type='set'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${TUNE}'>${configForm({ access_model: 'roster', roster_groups_allowed: ['Friends'] })}</configure></pubsub></iq>`,
      `<iq type='result'/>`,
    );
    const juliet = await server.login('juliet');
    assert.deepEqual(itemIds(await juliet.iq(itemsIq(TUNE, 'romeo@localhost'))), ['a']);
    const nurse = await server.login('nurse');
    await iqExpect(nurse, itemsIq(TUNE, 'romeo@localhost'), pubsubError('auth', 'not-authorized', 'not-in-roster-group'));
  });

  test('items of a node that does not exist → item-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, itemsIq('urn:test:none'), pubsubError('cancel', 'item-not-found'));
  });
});

describe('pep: publish-options and configuration', () => {
  test('publish-options the existing node does not match → conflict with precondition-not-met; matching ones → published', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('x'));
    await iqExpect(romeo, publishIq(TUNE, 'b', tune('y'), { access_model: 'open' }), pubsubError('cancel', 'conflict', 'precondition-not-met'));
    await publish(romeo, TUNE, 'b', tune('y'), { access_model: 'presence', persist_items: 'true' });
    await iqExpect(romeo, publishIq(TUNE, 'c', tune('z'), { max_items: 'lots' }), pubsubError('cancel', 'conflict', 'precondition-not-met'));
  });

  test("max_items 'max' as a precondition creates a node that keeps many items (bookmarks style)", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const options = { access_model: 'whitelist', max_items: 'max', persist_items: 'true', send_last_published_item: 'never' };
    for (const id of ['a', 'b', 'c']) await publish(romeo, 'urn:test:many', id, `<x xmlns='urn:test:many'/>`, options);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:many'))), ['a', 'b', 'c']);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:many', undefined, ` max_items='2'`))), ['b', 'c']);
  });

  test('configure: the form shows the configuration; max_items 2 keeps the two newest items', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    const form = await romeo.iq(`<iq type='get'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${TUNE}'/></pubsub></iq>`);
    assertMatches(form, `<iq type='result'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${TUNE}'><x xmlns='jabber:x:data' type='form'><field var='pubsub#access_model'><value>presence</value></field></x></configure></pubsub></iq>`);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${TUNE}'>${configForm({ max_items: '2' })}</configure></pubsub></iq>`, `<iq type='result'/>`);
    for (const id of ['b', 'c']) await publish(romeo, TUNE, id, tune(id));
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(TUNE))), ['b', 'c']);
  });

  test('configure by someone else → forbidden; of a missing node → item-not-found; with a bad value → not-acceptable', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='get' to='romeo@localhost'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${TUNE}'/></pubsub></iq>`, pubsubError('auth', 'forbidden'));
    await iqExpect(romeo, `<iq type='get'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='urn:test:none'/></pubsub></iq>`, pubsubError('cancel', 'item-not-found'));
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${TUNE}'>${configForm({ access_model: 'everyone' })}</configure></pubsub></iq>`, pubsubError('modify', 'not-acceptable'));
  });
});

describe('pep: retract, delete, purge', () => {
  async function withListener(t: Parameters<typeof startServer>[0]) {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    await nextEvent(juliet);
    return { server, romeo, juliet };
  }

  test('retract → contacts get a retract notification; the item is gone; retracting it again → item-not-found', async (t) => {
    const { romeo, juliet } = await withListener(t);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='${TUNE}' notify='true'><item id='a'/></retract></pubsub></iq>`, `<iq type='result'/>`);
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><retract id='a'/></items></event></message>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(TUNE))), []);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='${TUNE}'><item id='a'/></retract></pubsub></iq>`, pubsubError('cancel', 'item-not-found'));
  });

  test('purge → one purge notification, no items left', async (t) => {
    const { romeo, juliet } = await withListener(t);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB_OWNER}'><purge node='${TUNE}'/></pubsub></iq>`, `<iq type='result'/>`);
    await nextEvent(juliet, `<message><event xmlns='${PUBSUB_EVENT}'><purge node='${TUNE}'/></event></message>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(TUNE))), []);
  });

  test('delete → delete notification; the node is gone (items → item-not-found); deleting it again → item-not-found', async (t) => {
    const { romeo, juliet } = await withListener(t);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB_OWNER}'><delete node='${TUNE}'/></pubsub></iq>`, `<iq type='result'/>`);
    await nextEvent(juliet, `<message><event xmlns='${PUBSUB_EVENT}'><delete node='${TUNE}'/></event></message>`);
    await iqExpect(romeo, itemsIq(TUNE), pubsubError('cancel', 'item-not-found'));
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB_OWNER}'><delete node='${TUNE}'/></pubsub></iq>`, pubsubError('cancel', 'item-not-found'));
  });

  test('delete by a contact → forbidden', async (t) => {
    const { juliet } = await withListener(t);
    await iqExpect(juliet, `<iq type='set' to='romeo@localhost'><pubsub xmlns='${PUBSUB_OWNER}'><delete node='${TUNE}'/></pubsub></iq>`, pubsubError('auth', 'forbidden'));
  });
});

describe('pep: persistence', () => {
  test('nodes, configuration and items survive a restart; items of a persist_items=false node do not', async (t) => {
    const server = await startServer(t);
    let romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'), { access_model: 'open' });
    await publish(romeo, 'urn:test:mood', 'm', `<mood xmlns='urn:test:mood'/>`, { persist_items: 'false' });
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:mood'))), ['m']);
    await server.restart();
    romeo = await server.login('romeo');
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(TUNE))), ['a']);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:mood'))), []);
    const benvolio = await server.login('benvolio');
    assert.deepEqual(itemIds(await benvolio.iq(itemsIq(TUNE, 'romeo@localhost'))), ['a']); // still open
  });
});
