// PEP (XEP-0163) the way clients use it, over the wire with several clients: the OMEMO device list
// and bundles (open nodes, publish-options preconditions, reconfigure and retry), item ids and
// retrieval, retract notifications, last items after a real subscription handshake, the caps
// cache shared between accounts, and what deleting an account leaves behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import {
  PUBSUB,
  PUBSUB_EVENT,
  PUBSUB_OWNER,
  announce,
  clientInfo,
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
  sync,
} from './pep-helpers.js';

const AXOLOTL = 'eu.siacs.conversations.axolotl';
const DEVICELIST = `${AXOLOTL}.devicelist`;
const bundleNode = (device: string) => `${AXOLOTL}.bundles:${device}`;
const deviceList = (ids: string[]) => `<list xmlns='${AXOLOTL}'>${ids.map((id) => `<device id='${id}'/>`).join('')}</list>`;
const bundle = (key: string) =>
  `<bundle xmlns='${AXOLOTL}'><signedPreKeyPublic signedPreKeyId='1'>${key}</signedPreKeyPublic><signedPreKeySignature>c2ln</signedPreKeySignature><identityKey>aWs=</identityKey><prekeys><preKeyPublic preKeyId='1'>cGs=</preKeyPublic></prekeys></bundle>`;
const OPEN = { access_model: 'open' };
const TUNE = 'http://jabber.org/protocol/tune';
const tune = (title: string) => `<tune xmlns='${TUNE}'><title>${title}</title></tune>`;

function ownerIq(type: 'get' | 'set', body: string, to?: string): string {
  return `<iq type='${type}'${to ? ` to='${to}'` : ''}><pubsub xmlns='${PUBSUB_OWNER}'>${body}</pubsub></iq>`;
}

describe('pep: OMEMO', () => {
  test('device list and bundle published open → a contact with devicelist+notify gets the list, a stranger fetches the bundle', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${DEVICELIST}+notify`]);
    const romeo = await server.login('romeo', { resource: 'phone' });
    await iqExpect(
      romeo,
      publishIq(bundleNode('1001'), 'current', bundle('a2V5'), OPEN),
      `<iq type='result'><pubsub xmlns='${PUBSUB}'><publish node='${bundleNode('1001')}'><item id='current'/></publish></pubsub></iq>`,
    );
    await publish(romeo, DEVICELIST, 'current', deviceList(['1001']), OPEN);
    const event = await nextEvent(juliet);
    assertMatches(
      event,
      `<message from='romeo@localhost' to='juliet@localhost/balcony' type='headline'><event xmlns='${PUBSUB_EVENT}'><items node='${DEVICELIST}'><item id='current'><list xmlns='${AXOLOTL}'><device id='1001'/></list></item></items></event></message>`,
    );
    // Nobody asked for bundle notifications.
    await expectNoEvent(juliet, 150);
    // A stranger starting an encrypted chat reads the list and the bundle.
    const benvolio = await server.login('benvolio');
    assert.deepEqual(itemIds(await benvolio.iq(itemsIq(DEVICELIST, 'romeo@localhost'))), ['current']);
    const items = await benvolio.iq(itemsIq(bundleNode('1001'), 'romeo@localhost'));
    assertMatches(items, `<iq type='result' from='romeo@localhost'><pubsub xmlns='${PUBSUB}'><items node='${bundleNode('1001')}'><item id='current'><bundle xmlns='${AXOLOTL}'><identityKey>aWs=</identityKey></bundle></item></items></pubsub></iq>`);
    // A bundle of a device that never published → item-not-found.
    await iqExpect(benvolio, itemsIq(bundleNode('2002'), 'romeo@localhost'), pubsubError('cancel', 'item-not-found'));
  });

  test('device list node made with the presence default → open publish-options fail with precondition-not-met until the node is reconfigured', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, DEVICELIST, 'current', deviceList(['1'])); // an old client: no publish-options
    const benvolio = await server.login('benvolio');
    await iqExpect(benvolio, itemsIq(DEVICELIST, 'romeo@localhost'), pubsubError('auth', 'not-authorized', 'presence-subscription-required'));
    // XEP-0060 §7.1.5: the node exists and differs → conflict + precondition-not-met, nothing stored.
    await iqExpect(romeo, publishIq(DEVICELIST, 'current', deviceList(['1', '2']), OPEN), pubsubError('cancel', 'conflict', 'precondition-not-met'));
    const before = await romeo.iq(itemsIq(DEVICELIST));
    assertMatches(before, `<iq type='result'><pubsub><items><item id='current'><list><device id='1'/></list></item></items></pubsub></iq>`);
    assert.equal(before.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('list')!.getChildren('device').length, 1);
    // What Conversations does next: configure the node as asked, publish again.
    const form = await romeo.iq(ownerIq('get', `<configure node='${DEVICELIST}'/>`));
    assertMatches(form, `<iq type='result'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='${DEVICELIST}'><x xmlns='jabber:x:data' type='form'><field var='pubsub#access_model'><value>presence</value></field></x></configure></pubsub></iq>`);
    await iqExpect(romeo, ownerIq('set', `<configure node='${DEVICELIST}'>${configForm(OPEN)}</configure>`), `<iq type='result'/>`);
    await publish(romeo, DEVICELIST, 'current', deviceList(['1', '2']), OPEN);
    const after = await benvolio.iq(itemsIq(DEVICELIST, 'romeo@localhost'));
    assert.equal(after.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('list')!.getChildren('device').length, 2);
  });

  test('publish-options on a new node configure it; the same options again pass; another max_items, persist_items or send_last_published_item → precondition-not-met', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const options = { access_model: 'open', max_items: 'max', persist_items: 'true' };
    await publish(romeo, bundleNode('7'), 'current', bundle('b25l'), options);
    await publish(romeo, bundleNode('7'), 'current', bundle('dHdv'), options); // same id: replaced
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(bundleNode('7')))), ['current']);
    await iqExpect(romeo, publishIq(bundleNode('7'), 'current', bundle('eA=='), { ...options, max_items: '5' }), pubsubError('cancel', 'conflict', 'precondition-not-met'));
    await iqExpect(romeo, publishIq(bundleNode('7'), 'current', bundle('eA=='), { ...options, persist_items: 'false' }), pubsubError('cancel', 'conflict', 'precondition-not-met'));
    await iqExpect(romeo, publishIq(bundleNode('7'), 'current', bundle('eA=='), { ...options, send_last_published_item: 'never' }), pubsubError('cancel', 'conflict', 'precondition-not-met'));
    // A field the server does not know is no precondition (Prosody ignores it too).
    await publish(romeo, bundleNode('7'), 'current', bundle('eQ=='), { ...options, 'made-up-option': 'x' });
  });
});

describe('pep: items and item ids', () => {
  test('publish without an id → the result carries the id the server chose; items by id returns only those; max_items the newest', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await publish(romeo, 'urn:test:blog', undefined, `<entry xmlns='http://www.w3.org/2005/Atom'><title>one</title></entry>`, { max_items: '10' });
    const generated = answer.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id;
    assert.ok(generated && generated.length >= 8, 'a generated item id');
    await publish(romeo, 'urn:test:blog', 'two', `<entry xmlns='http://www.w3.org/2005/Atom'><title>two</title></entry>`);
    await publish(romeo, 'urn:test:blog', 'three', `<entry xmlns='http://www.w3.org/2005/Atom'><title>three</title></entry>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:blog'))), [generated, 'two', 'three']);
    const byId = await romeo.iq(`<iq type='get'><pubsub xmlns='${PUBSUB}'><items node='urn:test:blog'><item id='${generated}'/><item id='three'/></items></pubsub></iq>`);
    assert.deepEqual(itemIds(byId), [generated, 'three']);
    assertMatches(byId, `<iq type='result'><pubsub><items node='urn:test:blog'><item id='${generated}'><entry xmlns='http://www.w3.org/2005/Atom'><title>one</title></entry></item></items></pubsub></iq>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:blog', undefined, ` max_items='1'`))), ['three']);
    // Republishing an id replaces the item and makes it the newest.
    await publish(romeo, 'urn:test:blog', 'two', `<entry xmlns='http://www.w3.org/2005/Atom'><title>two, edited</title></entry>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:blog'))), [generated, 'three', 'two']);
  });

  test('configure max_items below the number of items → the oldest go at once', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    for (const id of ['a', 'b', 'c']) await publish(romeo, 'urn:test:blog', id, `<entry xmlns='http://www.w3.org/2005/Atom'><title>${id}</title></entry>`, { max_items: '10' });
    await iqExpect(romeo, ownerIq('set', `<configure node='urn:test:blog'>${configForm({ max_items: '1' })}</configure>`), `<iq type='result'/>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq('urn:test:blog'))), ['c']);
  });

  test('items by an id the node lacks → item-not-found; a bad max_items → bad-request; no node → nodeid-required', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    await iqExpect(romeo, `<iq type='get'><pubsub xmlns='${PUBSUB}'><items node='${TUNE}'><item id='nope'/></items></pubsub></iq>`, pubsubError('cancel', 'item-not-found'));
    await iqExpect(romeo, itemsIq(TUNE, undefined, ` max_items='zero'`), pubsubError('modify', 'bad-request'));
    await iqExpect(romeo, `<iq type='get'><pubsub xmlns='${PUBSUB}'><items/></pubsub></iq>`, pubsubError('modify', 'bad-request', 'nodeid-required'));
  });
});

describe('pep: retract', () => {
  test("notify_retract off → a retract is silent unless the request says notify='true'", async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
    const romeo = await server.login('romeo');
    for (const id of ['a', 'b']) {
      await publish(romeo, TUNE, id, tune(id), { notify_retract: 'false', max_items: '5' });
      await nextEvent(juliet);
    }
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='${TUNE}'><item id='a'/></retract></pubsub></iq>`, `<iq type='result'/>`);
    await expectNoEvent(juliet, 200);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='${TUNE}' notify='1'><item id='b'/></retract></pubsub></iq>`, `<iq type='result'/>`);
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><retract id='b'/></items></event></message>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(TUNE))), []);
  });

  test('retract by a contact → forbidden; without an item → bad-request with item-required', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='set' to='romeo@localhost'><pubsub xmlns='${PUBSUB}'><retract node='${TUNE}'><item id='a'/></retract></pubsub></iq>`, pubsubError('auth', 'forbidden'));
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='${TUNE}'/></pubsub></iq>`, pubsubError('modify', 'bad-request', 'item-required'));
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(TUNE))), ['a']);
  });
});

describe('pep: last item and caps over real presence', () => {
  test('a subscription handshake completed on the wire → the last item once, when romeo approves; none before, no second one when it becomes mutual', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'song', tune('Before we met'));
    romeo.send('<presence/>');
    await sync(romeo);
    const juliet = await server.login('juliet');
    await announce(juliet, [`${TUNE}+notify`]); // her own PEP asks; the verified ver is cached
    await expectNoEvent(juliet, 150);
    juliet.send(`<presence type='subscribe' to='romeo@localhost'/>`);
    await romeo.waitFor(`<presence type='subscribe' from='juliet@localhost'/>`);
    await expectNoEvent(juliet, 100); // asking is not enough
    romeo.send(`<presence type='subscribed' to='juliet@localhost'/>`);
    // romeo's PEP, knowing her ver, sends the last item without asking again.
    const event = await nextEvent(juliet);
    assertMatches(event, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='song'><tune><title>Before we met</title></tune></item></items></event><delay xmlns='urn:xmpp:delay'/></message>`);
    romeo.send(`<presence type='subscribe' to='juliet@localhost'/>`);
    await juliet.waitFor(`<presence type='subscribe' from='romeo@localhost'/>`);
    juliet.send(`<presence type='subscribed' to='romeo@localhost'/>`);
    // Her server now sends romeo her presence (RFC 6121 §3.1.5): same caps, nothing new.
    await sync(juliet);
    await expectNoEvent(juliet, 200);
  });

  test("a one-way subscription (the contact sees the account's presence, not the reverse) → approved: the last item; later publishes and logins: notified", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'song', tune('One way'));
    romeo.send('<presence/>');
    await sync(romeo);
    let juliet = await server.login('juliet');
    await announce(juliet, [`${TUNE}+notify`], { shared: true });
    juliet.send(`<presence type='subscribe' to='romeo@localhost'/>`);
    await romeo.waitFor(`<presence type='subscribe' from='juliet@localhost'/>`);
    romeo.send(`<presence type='subscribed' to='juliet@localhost'/>`);
    // juliet has 'to', romeo 'from': her presence never reaches romeo, yet she is auto-subscribed.
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='song'/></items></event><delay xmlns='urn:xmpp:delay'/></message>`);
    await publish(romeo, TUNE, 'next', tune('Still one way'));
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='next'/></items></event></message>`);
    await juliet.close();
    juliet = await server.login('juliet');
    await announce(juliet, [`${TUNE}+notify`], { shared: true, queried: false });
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='next'/></items></event></message>`);
    // The reverse direction gets nothing: juliet has not approved romeo.
    const romeoCaps = await server.login('romeo', { resource: 'caps' });
    await announce(romeoCaps, ['urn:test:mood+notify'], { shared: true });
    await publish(juliet, 'urn:test:mood', 'm', `<mood xmlns='urn:test:mood'/>`, OPEN);
    await expectNoEvent(romeoCaps, 200);
  });

  test('a contact changing status with the same caps → no second last item; after going offline and back → the last item again', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    const juliet = await server.login('juliet');
    await announce(juliet, [`${TUNE}+notify`], { shared: true });
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='a'/></items></event></message>`);
    const { ver } = clientInfo([`${TUNE}+notify`]); // the ver announce() sent (shared: no marker)
    const presence = (show: string) => `<presence><show>${show}</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://herald.test/client' ver='${ver}'/></presence>`;
    juliet.send(presence('away'));
    await sync(juliet);
    await expectNoEvent(juliet, 200);
    juliet.send(`<presence type='unavailable'/>`);
    await sync(juliet);
    juliet.send(presence('chat'));
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='a'/></items></event></message>`);
  });

  test("a verified ver learnt from one account's contact → another account's contact with it is not asked again, and is notified", async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    await mutual(server, 'benvolio', 'nurse');
    const juliet = await server.login('juliet');
    await announce(juliet, [`${TUNE}+notify`], { shared: true }); // asked by her own PEP
    const nurse = await server.login('nurse');
    await announce(nurse, [`${TUNE}+notify`], { shared: true, queried: false });
    const benvolio = await server.login('benvolio');
    await publish(benvolio, TUNE, 'b', tune('b'));
    await nextEvent(nurse, `<message from='benvolio@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'/></event></message>`);
  });

  test('a client that answers the caps query with an error → no notifications, and no last item', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    const juliet = await server.login('juliet');
    juliet.send(`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:test:broken' ver='AAAA'/></presence>`);
    // One query serves every account that wants this ver (her own PEP's and romeo's).
    const get = await juliet.waitFor(`<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='urn:test:broken#AAAA'/></iq>`);
    juliet.send(`<iq type='error' id='${get.attrs.id}' to='${get.attrs.from}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    await expectNoEvent(juliet, 200);
    await publish(romeo, TUNE, 'b', tune('b'));
    await expectNoEvent(juliet, 200);
  });
});

describe('pep: presence subscriptions ending', () => {
  for (const [who, stanza] of [
    ['the contact unsubscribes', (client: 'romeo' | 'juliet') => (client === 'juliet' ? `<presence type='unsubscribe' to='romeo@localhost'/>` : undefined)],
    ['the account cancels the subscription', (client: 'romeo' | 'juliet') => (client === 'romeo' ? `<presence type='unsubscribed' to='juliet@localhost'/>` : undefined)],
  ] as const) {
    test(`${who} → the contact's resources get no more events, even from an open node`, async (t) => {
      const server = await startServer(t);
      await mutual(server, 'romeo', 'juliet');
      const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
      const romeo = await server.login('romeo');
      await publish(romeo, TUNE, 'a', tune('a'), OPEN);
      await nextEvent(juliet);
      const fromJuliet = stanza('juliet');
      const fromRomeo = stanza('romeo');
      if (fromJuliet) juliet.send(fromJuliet);
      if (fromRomeo) romeo.send(fromRomeo);
      await sync(juliet);
      await sync(romeo);
      await publish(romeo, TUNE, 'b', tune('b'));
      await expectNoEvent(juliet, 250);
      // She may still read the open node.
      assert.deepEqual(itemIds(await juliet.iq(itemsIq(TUNE, 'romeo@localhost'))), ['b']);
    });
  }
});

describe('pep: blocking', () => {
  test('a contact the account blocked (XEP-0191) → no notifications and no last item, though its caps ask for the node', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    await mutual(server, 'romeo', 'nurse');
    const romeo = await server.login('romeo');
    await publish(romeo, TUNE, 'a', tune('a'));
    await iqExpect(romeo, `<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='nurse@localhost'/></block></iq>`, `<iq type='result'/>`);
    const juliet = await onlineWithCaps(server, 'juliet', 'balcony', [`${TUNE}+notify`]);
    await nextEvent(juliet); // the last item
    const nurse = await server.login('nurse');
    await announce(nurse, [`${TUNE}+notify`], { queried: true });
    await expectNoEvent(nurse, 150);
    await publish(romeo, TUNE, 'b', tune('b'));
    await nextEvent(juliet, `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='b'/></items></event></message>`);
    await expectNoEvent(nurse, 200);
  });
});

describe('pep: deleted accounts', () => {
  test("user deleted → its PEP nodes are gone, and its subscription and affiliation leave other accounts' nodes", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, DEVICELIST, 'current', deviceList(['1']), OPEN);
    let juliet = await server.login('juliet');
    await publish(juliet, TUNE, 'j', tune('mine'), OPEN);
    await juliet.iq(`<iq type='set' to='romeo@localhost'><pubsub xmlns='${PUBSUB}'><subscribe node='${DEVICELIST}' jid='juliet@localhost'/></pubsub></iq>`);
    await iqExpect(romeo, ownerIq('set', `<affiliations node='${DEVICELIST}'><affiliation jid='juliet@localhost' affiliation='member'/></affiliations>`), `<iq type='result'/>`);
    const subscribed = await romeo.iq(ownerIq('get', `<subscriptions node='${DEVICELIST}'/>`));
    assertMatches(subscribed, `<iq type='result'><pubsub><subscriptions node='${DEVICELIST}'><subscription jid='juliet@localhost' subscription='subscribed'/></subscriptions></pubsub></iq>`);

    assert.equal(await server.server.deleteAccount('juliet'), true);
    await sync(romeo);
    const subscriptions = await romeo.iq(ownerIq('get', `<subscriptions node='${DEVICELIST}'/>`));
    assert.equal(subscriptions.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').length, 0, subscriptions.toString());
    const affiliations = await romeo.iq(ownerIq('get', `<affiliations node='${DEVICELIST}'/>`));
    assert.deepEqual(affiliations.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').map((a) => a.attrs.jid), ['romeo@localhost']);
    // Someone registering the name again starts with an empty PEP.
    await server.server.createAccount('juliet', 'password');
    juliet = await server.login('juliet');
    await iqExpect(juliet, itemsIq(TUNE), pubsubError('cancel', 'item-not-found'));
    await iqExpect(romeo, itemsIq(TUNE, 'juliet@localhost'), pubsubError('cancel', 'item-not-found'));
  });
});
