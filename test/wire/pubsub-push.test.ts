// The embedded push service (modules/pubsub): disco, and XEP-0357 §5 publishes with
// publish-options (XEP-0060 §7.1) — node and secret checks, payload checks, the handler's answer.
// Here the app server is left out and the test plays it through the 'pubsub' service.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import type { PushPublish } from '../../modules/pubsub/index.js';
import { stanzaError } from '../../server/errors.js';
import { assertMatches, iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { PUBSUB, publishIq } from './appserver-helpers.js';

const withoutAppServer = builtinModules.filter((def) => def.name !== 'appserver');
const PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';

/** A server whose push publishes land in `published` (or fail with what `answer` throws). */
async function pushService(t: Parameters<typeof startServer>[0], config: Record<string, unknown> = {}) {
  const server = await startServer(t, { moduleList: withoutAppServer, modules: { pubsub: config } });
  const published: PushPublish[] = [];
  const control: { answer?: () => never } = {};
  const service = pubsubOf(server);
  service.onPublish(async (publish) => {
    control.answer?.();
    published.push(publish);
  });
  await service.createPushNode('n1', 's3cret', 'romeo@localhost');
  return { server, service, published, control };
}

function pubsubOf(server: TestServer) {
  const service = server.server.service('pubsub');
  assert.ok(service, 'the pubsub module provides its service');
  return service;
}

describe('pubsub: the push service (disco)', () => {
  test('push.localhost → identity pubsub/push with urn:xmpp:push:0 and the pubsub publish features; listed in the server items', async (t) => {
    const { server } = await pushService(t);
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      `<iq type='result' from='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'>
        <identity category='pubsub' type='push'/>
        <feature var='${PUBSUB}'/>
        <feature var='${PUBSUB}#publish'/>
        <feature var='${PUBSUB}#publish-options'/>
        <feature var='urn:xmpp:push:0'/>
      </query></iq>`,
    );
    const items = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assert.ok(items.getChild('query')?.getChildren('item').some((item) => item.attrs.jid === 'push.localhost'), items.toString());
  });

  test('push_service: pushes.localhost → the service is there and not at push.localhost', async (t) => {
    const { server } = await pushService(t, { push_service: 'pushes.localhost' });
    const romeo = await server.login('romeo');
    await iqExpect(romeo, publishIq('n1', 's3cret', undefined, { to: 'pushes.localhost' }), `<iq type='result' from='pushes.localhost'/>`);
    const other = await romeo.iq(`<iq type='get' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.equal(other.attrs.type, 'error');
  });
});

describe('pubsub: publishing to push nodes (XEP-0357 §5, XEP-0060 §7.1)', () => {
  test('right node and secret → result naming node and item; the handler gets node, owner and notification', async (t) => {
    const { server, published } = await pushService(t);
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      publishIq('n1', 's3cret', { 'message-count': '2' }, { itemId: 'i1' }),
      `<iq type='result' from='push.localhost'><pubsub xmlns='${PUBSUB}'><publish node='n1'><item id='i1'/></publish></pubsub></iq>`,
    );
    assert.equal(published.length, 1);
    assert.equal(published[0]!.node, 'n1');
    assert.equal(published[0]!.owner, 'romeo@localhost');
    assert.equal(published[0]!.publisher.toString(), 'romeo@localhost/' + romeo.jid.split('/')[1]);
    assert.ok(published[0]!.notification.toString().includes('message-count'));
  });

  test('an item without id → the service makes one up and names it in the result', async (t) => {
    const { server } = await pushService(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(publishIq('n1', 's3cret'));
    const id = answer.getChild('pubsub', PUBSUB)?.getChild('publish')?.getChild('item')?.attrs.id;
    assert.ok(id && id.length >= 8, answer.toString());
  });

  test('unknown node → cancel/item-not-found; the handler is not called', async (t) => {
    const { server, published } = await pushService(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, publishIq('nope', 's3cret'), `<iq type='error' from='push.localhost'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    assert.equal(published.length, 0);
  });

  test('wrong secret, or no publish-options → auth/forbidden; the handler is not called', async (t) => {
    const { server, published } = await pushService(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, publishIq('n1', 'guess'), `<iq type='error'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await iqExpect(romeo, publishIq('n1', 's3cre'), `<iq type='error'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await iqExpect(romeo, publishIq('n1', undefined), `<iq type='error'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    assert.equal(published.length, 0);
  });

  test('no node → bad-request nodeid-required; no item → item-required; another payload → invalid-payload', async (t) => {
    const { server } = await pushService(t);
    const romeo = await server.login('romeo');
    const options = `<publish-options><x xmlns='jabber:x:data' type='submit'><field var='secret'><value>s3cret</value></field></x></publish-options>`;
    await iqExpect(
      romeo,
      `<iq type='set' to='push.localhost'><pubsub xmlns='${PUBSUB}'><publish><item/></publish>${options}</pubsub></iq>`,
      `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request', `<nodeid-required xmlns='${PUBSUB_ERRORS}'/>`)}</iq>`,
    );
    await iqExpect(
      romeo,
      `<iq type='set' to='push.localhost'><pubsub xmlns='${PUBSUB}'><publish node='n1'/>${options}</pubsub></iq>`,
      `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request', `<item-required xmlns='${PUBSUB_ERRORS}'/>`)}</iq>`,
    );
    await iqExpect(
      romeo,
      `<iq type='set' to='push.localhost'><pubsub xmlns='${PUBSUB}'><publish node='n1'><item><entry xmlns='http://www.w3.org/2005/Atom'/></item></publish>${options}</pubsub></iq>`,
      `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request', `<invalid-payload xmlns='${PUBSUB_ERRORS}'/>`)}</iq>`,
    );
  });

  test('another pubsub request (subscribe) → feature-not-implemented with pubsub#errors unsupported', async (t) => {
    const { server } = await pushService(t);
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='set' to='push.localhost'><pubsub xmlns='${PUBSUB}'><subscribe node='n1' jid='romeo@localhost'/></pubsub></iq>`,
      `<iq type='error'>${stanzaErrorPattern('cancel', 'feature-not-implemented', `<unsupported xmlns='${PUBSUB_ERRORS}' feature='subscribe'/>`)}</iq>`,
    );
  });

  test("the handler's StanzaError is the publish's answer (token gone → item-not-found, later → wait)", async (t) => {
    const { server, control } = await pushService(t);
    const romeo = await server.login('romeo');
    control.answer = () => {
      throw stanzaError.itemNotFound('gone');
    };
    await iqExpect(romeo, publishIq('n1', 's3cret'), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    control.answer = () => {
      throw stanzaError.resourceConstraint('later');
    };
    await iqExpect(romeo, publishIq('n1', 's3cret'), `<iq type='error'>${stanzaErrorPattern('wait', 'resource-constraint')}</iq>`);
  });

  test('a deleted node → item-not-found; nodes survive a restart', async (t) => {
    const { server, service } = await pushService(t);
    await service.createPushNode('n2', 'other', 'juliet@localhost');
    assert.equal(await service.deletePushNode('n2'), true);
    assert.equal(await service.deletePushNode('n2'), false);
    await server.restart();
    const published: PushPublish[] = [];
    pubsubOf(server).onPublish(async (publish) => void published.push(publish));
    assert.equal(await pubsubOf(server).pushNodeOwner('n1'), 'romeo@localhost');
    const romeo = await server.login('romeo');
    assertMatches(await romeo.iq(publishIq('n1', 's3cret')), `<iq type='result'/>`);
    await iqExpect(romeo, publishIq('n2', 'other'), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    assert.equal(published.length, 1);
  });
});
