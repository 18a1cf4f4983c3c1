// The general publish-subscribe service at pubsub.localhost (XEP-0060): node creation, subscribe,
// publish and notifications, the owner use cases, discovery, and their errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import { PUBSUB, PUBSUB_EVENT, PUBSUB_OWNER, configForm, expectNoEvent, itemIds, itemsIq, nextEvent, publish, publishIq, pubsubError } from './pep-helpers.js';

const SERVICE = 'pubsub.localhost';
const entry = (text: string) => `<entry xmlns='http://www.w3.org/2005/Atom'><title>${text}</title></entry>`;

function createIq(node?: string, config = ''): string {
  const create = node === undefined ? '<create/>' : `<create node='${node}'/>`;
  return `<iq type='set' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'>${create}${config ? `<configure>${config}</configure>` : ''}</pubsub></iq>`;
}

function subscribeIq(node: string, jid: string): string {
  return `<iq type='set' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'><subscribe node='${node}' jid='${jid}'/></pubsub></iq>`;
}

function ownerIq(type: 'get' | 'set', body: string): string {
  return `<iq type='${type}' to='${SERVICE}'><pubsub xmlns='${PUBSUB_OWNER}'>${body}</pubsub></iq>`;
}

/** romeo owns node 'news'; juliet is online (available, so bare-JID notifications reach her). */
async function newsNode(t: Parameters<typeof startServer>[0], config = ''): Promise<{ server: TestServer; romeo: XmppClient; juliet: XmppClient }> {
  const server = await startServer(t);
  const romeo = await server.login('romeo');
  await iqExpect(romeo, createIq('news', config), `<iq type='result' from='${SERVICE}'/>`);
  const juliet = await server.login('juliet');
  juliet.send('<presence/>');
  await juliet.waitFor(`<presence from='${juliet.jid}'/>`);
  return { server, romeo, juliet };
}

describe('pubsub service: discovery', () => {
  test('pubsub.localhost → identity pubsub/service with create-nodes and subscribe; listed in the server items', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const info = await romeo.iq(`<iq type='get' to='${SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assertMatches(info, `<iq type='result'><query><identity category='pubsub' type='service'/><feature var='${PUBSUB}#create-nodes'/><feature var='${PUBSUB}#subscribe'/></query></iq>`);
    const items = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assert.ok(items.getChild('query')!.getChildren('item').some((item) => item.attrs.jid === SERVICE));
  });

  test('disco#items → the nodes (with titles); of a node → its item ids; disco#info of a node → pubsub/leaf with meta-data', async (t) => {
    const { romeo } = await newsNode(t, configForm({ title: 'News' }));
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    const nodes = await romeo.iq(`<iq type='get' to='${SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assertMatches(nodes, `<iq type='result'><query><item jid='${SERVICE}' node='news' name='News'/></query></iq>`);
    const items = await romeo.iq(`<iq type='get' to='${SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items' node='news'/></iq>`);
    assertMatches(items, `<iq type='result'><query node='news'><item jid='${SERVICE}' name='n1'/></query></iq>`);
    const info = await romeo.iq(`<iq type='get' to='${SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info' node='news'/></iq>`);
    assertMatches(info, `<iq type='result'><query node='news'><identity category='pubsub' type='leaf'/><x xmlns='jabber:x:data' type='result'><field var='pubsub#owner'><value>romeo@localhost</value></field></x></query></iq>`);
  });
});

describe('pubsub service: nodes', () => {
  test('create → result; the same node again → conflict; an instant node → the result names it', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, createIq('news'), `<iq type='result'/>`);
    await iqExpect(romeo, createIq('news'), pubsubError('cancel', 'conflict'));
    const instant = await romeo.iq(createIq());
    assertMatches(instant, `<iq type='result'><pubsub xmlns='${PUBSUB}'><create node='{any}'/></pubsub></iq>`);
  });

  test('node_creation: nobody → create is forbidden', async (t) => {
    const server = await startServer(t, { modules: { pubsub: { node_creation: 'nobody' } } });
    const romeo = await server.login('romeo');
    await iqExpect(romeo, createIq('news'), pubsubError('auth', 'forbidden'));
  });

  test('publish to a missing node → item-not-found (no auto-create); by a non-publisher → forbidden', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await iqExpect(romeo, publishIq('nothing', 'a', entry('x'), {}, SERVICE), pubsubError('cancel', 'item-not-found'));
    await iqExpect(juliet, publishIq('news', 'a', entry('x'), {}, SERVICE), pubsubError('auth', 'forbidden'));
  });
});

describe('pubsub service: subscribers', () => {
  test('subscribe → subscribed; a publish reaches the subscriber from the service; unsubscribe → no more', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await iqExpect(juliet, subscribeIq('news', 'juliet@localhost'), `<iq type='result'><pubsub xmlns='${PUBSUB}'><subscription node='news' jid='juliet@localhost' subscription='subscribed'/></pubsub></iq>`);
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    await nextEvent(juliet, `<message from='${SERVICE}' to='juliet@localhost' type='headline'><event xmlns='${PUBSUB_EVENT}'><items node='news'><item id='n1'>${entry('first')}</item></items></event></message>`);
    const mine = await juliet.iq(`<iq type='get' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'><subscriptions/></pubsub></iq>`);
    assertMatches(mine, `<iq type='result'><pubsub><subscriptions><subscription node='news' jid='juliet@localhost' subscription='subscribed'/></subscriptions></pubsub></iq>`);
    await iqExpect(juliet, `<iq type='set' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'><unsubscribe node='news' jid='juliet@localhost'/></pubsub></iq>`, `<iq type='result'/>`);
    await publish(romeo, 'news', 'n2', entry('second'), {}, SERVICE);
    await expectNoEvent(juliet, 200);
  });

  test('a new subscriber gets the last published item (send_last_published_item on_sub)', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    await publish(romeo, 'news', 'n2', entry('second'), {}, SERVICE);
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    const event = await nextEvent(juliet);
    assertMatches(event, `<message from='${SERVICE}'><event><items node='news'><item id='n2'/></items></event><delay xmlns='urn:xmpp:delay'/></message>`);
  });

  test("subscribe with someone else's jid → bad-request with invalid-jid; to a missing node → item-not-found; unsubscribe when not subscribed → unexpected-request with not-subscribed", async (t) => {
    const { juliet } = await newsNode(t);
    await iqExpect(juliet, subscribeIq('news', 'romeo@localhost'), pubsubError('modify', 'bad-request', 'invalid-jid'));
    await iqExpect(juliet, subscribeIq('nothing', 'juliet@localhost'), pubsubError('cancel', 'item-not-found'));
    await iqExpect(juliet, `<iq type='set' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'><unsubscribe node='news' jid='juliet@localhost'/></pubsub></iq>`, pubsubError('wait', 'unexpected-request', 'not-subscribed'));
  });

  test('subscription options: pubsub#deliver false pauses notifications', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    const options = await juliet.iq(`<iq type='get' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'><options node='news' jid='juliet@localhost'/></pubsub></iq>`);
    assertMatches(options, `<iq type='result'><pubsub><options node='news'><x xmlns='jabber:x:data'><field var='pubsub#deliver'><value>1</value></field></x></options></pubsub></iq>`);
    await iqExpect(
      juliet,
      `<iq type='set' to='${SERVICE}'><pubsub xmlns='${PUBSUB}'><options node='news' jid='juliet@localhost'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#subscribe_options</value></field><field var='pubsub#deliver'><value>0</value></field></x></options></pubsub></iq>`,
      `<iq type='result'/>`,
    );
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    await expectNoEvent(juliet, 200);
  });

  test('whitelist node: a stranger subscribing → not-allowed with closed-node; made a member → subscribed', async (t) => {
    const { romeo, juliet } = await newsNode(t, configForm({ access_model: 'whitelist' }));
    await iqExpect(juliet, subscribeIq('news', 'juliet@localhost'), pubsubError('cancel', 'not-allowed', 'closed-node'));
    await iqExpect(romeo, ownerIq('set', `<affiliations node='news'><affiliation jid='juliet@localhost' affiliation='member'/></affiliations>`), `<iq type='result'/>`);
    await iqExpect(juliet, subscribeIq('news', 'juliet@localhost'), `<iq type='result'><pubsub><subscription subscription='subscribed'/></pubsub></iq>`);
    assert.deepEqual(itemIds(await juliet.iq(itemsIq('news', SERVICE))), []);
  });
});

describe('pubsub service: owner use cases', () => {
  test('affiliations: a publisher may publish; an outcast loses its subscription and is forbidden', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await iqExpect(romeo, ownerIq('set', `<affiliations node='news'><affiliation jid='juliet@localhost' affiliation='publisher'/></affiliations>`), `<iq type='result'/>`);
    await publish(juliet, 'news', 'j1', entry('by juliet'), {}, SERVICE);
    const affiliations = await romeo.iq(ownerIq('get', `<affiliations node='news'/>`));
    assertMatches(affiliations, `<iq type='result'><pubsub xmlns='${PUBSUB_OWNER}'><affiliations node='news'><affiliation jid='romeo@localhost' affiliation='owner'/><affiliation jid='juliet@localhost' affiliation='publisher'/></affiliations></pubsub></iq>`);
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    await iqExpect(romeo, ownerIq('set', `<affiliations node='news'><affiliation jid='juliet@localhost' affiliation='outcast'/></affiliations>`), `<iq type='result'/>`);
    const subscriptions = await romeo.iq(ownerIq('get', `<subscriptions node='news'/>`));
    assert.equal(subscriptions.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').length, 0);
    await iqExpect(juliet, subscribeIq('news', 'juliet@localhost'), pubsubError('auth', 'forbidden'));
    await iqExpect(juliet, itemsIq('news', SERVICE), pubsubError('auth', 'forbidden'));
  });

  test('removing the last owner → not-acceptable; owner operations by others → forbidden', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await iqExpect(romeo, ownerIq('set', `<affiliations node='news'><affiliation jid='romeo@localhost' affiliation='none'/></affiliations>`), pubsubError('modify', 'not-acceptable'));
    await iqExpect(juliet, ownerIq('get', `<configure node='news'/>`), pubsubError('auth', 'forbidden'));
    await iqExpect(juliet, ownerIq('set', `<purge node='news'/>`), pubsubError('auth', 'forbidden'));
    await iqExpect(juliet, ownerIq('set', `<delete node='news'/>`), pubsubError('auth', 'forbidden'));
    await iqExpect(juliet, ownerIq('get', `<subscriptions node='news'/>`), pubsubError('auth', 'forbidden'));
  });

  test('manage subscriptions: the owner subscribes juliet, she gets the next publish; lists them', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await iqExpect(romeo, ownerIq('set', `<subscriptions node='news'><subscription jid='juliet@localhost' subscription='subscribed'/></subscriptions>`), `<iq type='result'/>`);
    const list = await romeo.iq(ownerIq('get', `<subscriptions node='news'/>`));
    assertMatches(list, `<iq type='result'><pubsub><subscriptions node='news'><subscription jid='juliet@localhost' subscription='subscribed'/></subscriptions></pubsub></iq>`);
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    await nextEvent(juliet);
  });

  test('configure → notify_config sends the new configuration; purge and delete notify subscribers', async (t) => {
    const { romeo, juliet } = await newsNode(t);
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    await nextEvent(juliet);
    await iqExpect(romeo, ownerIq('set', `<configure node='news'>${configForm({ notify_config: '1', title: 'Daily news' })}</configure>`), `<iq type='result'/>`);
    await nextEvent(juliet, `<message><event xmlns='${PUBSUB_EVENT}'><configuration node='news'><x xmlns='jabber:x:data' type='result'><field var='pubsub#title'><value>Daily news</value></field></x></configuration></event></message>`);
    await iqExpect(romeo, ownerIq('set', `<purge node='news'/>`), `<iq type='result'/>`);
    await nextEvent(juliet, `<message><event xmlns='${PUBSUB_EVENT}'><purge node='news'/></event></message>`);
    assert.deepEqual(itemIds(await juliet.iq(itemsIq('news', SERVICE))), []);
    await iqExpect(romeo, ownerIq('set', `<delete node='news'><redirect uri='xmpp:${SERVICE}?;node=other'/></delete>`), `<iq type='result'/>`);
    await nextEvent(juliet, `<message><event xmlns='${PUBSUB_EVENT}'><delete node='news'><redirect uri='xmpp:${SERVICE}?;node=other'/></delete></event></message>`);
    await iqExpect(juliet, itemsIq('news', SERVICE), pubsubError('cancel', 'item-not-found'));
  });

  test('default configuration → the node_config form; an unknown owner verb → feature-not-implemented', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const form = await romeo.iq(ownerIq('get', `<default/>`));
    assertMatches(form, `<iq type='result'><pubsub xmlns='${PUBSUB_OWNER}'><default><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>${PUBSUB}#node_config</value></field><field var='pubsub#max_items'><value>20</value></field></x></default></pubsub></iq>`);
    await iqExpect(romeo, ownerIq('set', `<shrink node='x'/>`), pubsubError('cancel', 'feature-not-implemented', 'unsupported'));
  });

  test('nodes, items and subscriptions survive a restart', async (t) => {
    const { server, romeo } = await newsNode(t);
    let juliet = await server.login('juliet', { resource: 'r2' });
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    await publish(romeo, 'news', 'n1', entry('first'), {}, SERVICE);
    await server.restart();
    const owner = await server.login('romeo');
    juliet = await server.login('juliet');
    juliet.send('<presence/>');
    assert.deepEqual(itemIds(await juliet.iq(itemsIq('news', SERVICE))), ['n1']);
    await publish(owner, 'news', 'n2', entry('second'), {}, SERVICE);
    await nextEvent(juliet, `<message from='${SERVICE}'><event><items node='news'><item id='n2'/></items></event></message>`);
  });
});

describe('pubsub service: more owner use cases', () => {
  test('configure get → the form with current values; set whitelist → a subscriber without affiliation loses the subscription; subscriptions set none ends one', async (t) => {
    const { server, romeo, juliet } = await newsNode(t, configForm({ title: 'News', max_items: '5' }));
    const form = await romeo.iq(ownerIq('get', `<configure node='news'/>`));
    assertMatches(
      form,
      `<iq type='result' from='${SERVICE}'><pubsub xmlns='${PUBSUB_OWNER}'><configure node='news'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>${PUBSUB}#node_config</value></field><field var='pubsub#title'><value>News</value></field><field var='pubsub#access_model'><value>open</value></field><field var='pubsub#max_items'><value>5</value></field></x></configure></pubsub></iq>`,
    );
    const nurse = await server.login('nurse');
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    await nurse.iq(subscribeIq('news', 'nurse@localhost'));
    await iqExpect(romeo, ownerIq('set', `<affiliations node='news'><affiliation jid='nurse@localhost' affiliation='member'/></affiliations>`), `<iq type='result'/>`);
    await iqExpect(romeo, ownerIq('set', `<configure node='news'>${configForm({ access_model: 'whitelist' })}</configure>`), `<iq type='result'/>`);
    let list = await romeo.iq(ownerIq('get', `<subscriptions node='news'/>`));
    assert.deepEqual(list.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.jid), ['nurse@localhost']);
    await iqExpect(juliet, itemsIq('news', SERVICE), pubsubError('cancel', 'not-allowed', 'closed-node'));
    await iqExpect(romeo, ownerIq('set', `<subscriptions node='news'><subscription jid='nurse@localhost' subscription='none'/></subscriptions>`), `<iq type='result'/>`);
    list = await romeo.iq(ownerIq('get', `<subscriptions node='news'/>`));
    assert.equal(list.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').length, 0);
    await iqExpect(romeo, ownerIq('set', `<subscriptions node='news'><subscription jid='nurse@localhost' subscription='pending'/></subscriptions>`), pubsubError('modify', 'bad-request'));
    await iqExpect(romeo, ownerIq('set', `<configure node='missing'>${configForm({ title: 'x' })}</configure>`), pubsubError('cancel', 'item-not-found'));
  });

  test('user deleted → a node it alone owned is deleted (subscribers told), its subscriptions and affiliations leave the other nodes', async (t) => {
    const { server, romeo, juliet } = await newsNode(t);
    await iqExpect(juliet, createIq('diary'), `<iq type='result'/>`);
    await romeo.iq(subscribeIq('diary', 'romeo@localhost'));
    await juliet.iq(subscribeIq('news', 'juliet@localhost'));
    await iqExpect(romeo, ownerIq('set', `<affiliations node='news'><affiliation jid='juliet@localhost' affiliation='publisher'/></affiliations>`), `<iq type='result'/>`);
    romeo.send('<presence/>');
    assert.equal(await server.server.deleteAccount('juliet'), true);
    await nextEvent(romeo, `<message from='${SERVICE}'><event xmlns='${PUBSUB_EVENT}'><delete node='diary'/></event></message>`);
    await iqExpect(romeo, itemsIq('diary', SERVICE), pubsubError('cancel', 'item-not-found'));
    const subscriptions = await romeo.iq(ownerIq('get', `<subscriptions node='news'/>`));
    assert.equal(subscriptions.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').length, 0);
    const affiliations = await romeo.iq(ownerIq('get', `<affiliations node='news'/>`));
    assert.deepEqual(affiliations.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').map((a) => a.attrs.jid), ['romeo@localhost']);
  });
});
