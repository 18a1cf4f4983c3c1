// RFC 6121 §8.5 delivery rules for local accounts (router.ts), with real presence from the presence
// module deciding which resources are available and at what priority.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import type { XmppClient } from '../../server/client.js';
import { eventually, sleep, STANZAS_NS } from './c2s-helpers.js';

/** Sends available presence with this priority and waits until the server has taken it in. */
async function available(server: TestServer, client: XmppClient, priority: number): Promise<void> {
  client.send(`<presence><priority>${priority}</priority></presence>`);
  const [bare, resource] = [client.jid.split('/')[0]!, client.jid.split('/').slice(1).join('/')];
  await eventually(() => {
    const session = server.server.sessions.get(bare, resource);
    return session !== undefined && session.available && session.priority === priority;
  }, `${client.jid} to be available at priority ${priority}`);
}

/** True when `client` has received a message with this id (presence and the like do not count). */
function gotMessage(client: XmppClient, id: string): boolean {
  return client.received.some((el) => el.name === 'message' && el.attrs.id === id);
}

async function resources(server: TestServer, username: string, priorities: Record<string, number | null>): Promise<Record<string, XmppClient>> {
  const out: Record<string, XmppClient> = {};
  for (const [resource, priority] of Object.entries(priorities)) {
    out[resource] = await server.login(username, { resource });
    if (priority !== null) await available(server, out[resource]!, priority);
  }
  return out;
}

describe('routing: messages to a bare JID (RFC 6121 §8.5.2.1.1)', () => {
  for (const type of ['chat', 'normal'] as const) {
    test(`${type} → the highest-priority resource(s) only`, async (t) => {
      const server = await startServer(t);
      const romeo = await server.login('romeo', { resource: 'r1' });
      const juliet = await resources(server, 'juliet', { a: 5, b: 5, c: 1, d: null });
      romeo.send(`<message to='juliet@localhost' type='${type}' id='top'><body>to the highest</body></message>`);
      await juliet.a!.waitFor(`<message id='top' from='romeo@localhost/r1' to='juliet@localhost'/>`);
      await juliet.b!.waitFor(`<message id='top'/>`);
      await sleep(150);
      assert.ok(!gotMessage(juliet.c!, 'top'), 'lower priority resource got it');
      assert.ok(!gotMessage(juliet.d!, 'top'), 'resource without presence got it');
    });
  }

  test('headline → every available resource with non-negative priority', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { a: 5, b: 0, c: -1, d: null });
    romeo.send(`<message to='juliet@localhost' type='headline' id='news'><body>extra</body></message>`);
    await juliet.a!.waitFor(`<message id='news'/>`);
    await juliet.b!.waitFor(`<message id='news'/>`);
    await sleep(150);
    assert.ok(!gotMessage(juliet.c!, 'news'), 'negative priority resource got a headline');
    assert.ok(!gotMessage(juliet.d!, 'news'), 'resource without presence got a headline');
  });

  test('negative priority resources do not get bare-JID messages; a non-negative one does', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { shy: -1, open: 0 });
    romeo.send(`<message to='juliet@localhost' type='chat' id='m1'><body>hi</body></message>`);
    await juliet.open!.waitFor(`<message id='m1'/>`);
    await sleep(150);
    assert.ok(!gotMessage(juliet.shy!, 'm1'));
  });

  test('only negative priority resources → not delivered to them, and no error to the sender', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { shy: -5 });
    romeo.send(`<message to='juliet@localhost' type='chat' id='m2'><body>hi</body></message>`);
    await sleep(300);
    assert.ok(!gotMessage(juliet.shy!, 'm2'), 'delivered to a negative priority resource');
    assert.ok(!romeo.received.some((el) => el.name === 'message' && el.attrs.type === 'error'), 'kept for later (offline), not bounced');
  });

  test('a full JID reaches its resource whatever its priority', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { shy: -1, open: 3 });
    romeo.send(`<message to='juliet@localhost/shy' type='chat' id='m3'><body>just you</body></message>`);
    await juliet.shy!.waitFor(`<message id='m3' to='juliet@localhost/shy'/>`);
    await sleep(150);
    assert.ok(!gotMessage(juliet.open!, 'm3'));
  });

  test('groupchat to a bare JID with resources available → service-unavailable, nobody gets it', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { a: 1 });
    romeo.send(`<message to='juliet@localhost' type='groupchat' id='g1'><body>room?</body></message>`);
    await romeo.waitFor(`<message type='error' id='g1'><error type='cancel'><service-unavailable xmlns='${STANZAS_NS}'/></error></message>`);
    assert.ok(!gotMessage(juliet.a!, 'g1'));
  });
});

describe('routing: messages to a full JID that is not connected (RFC 6121 §8.5.3.2.1)', () => {
  test('type chat → handled like the bare JID: delivered to the available resource', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { balcony: 1 });
    romeo.send(`<message to='juliet@localhost/garden' type='chat' id='c1'><body>where are you?</body></message>`);
    await juliet.balcony!.waitFor(`<message id='c1' to='juliet@localhost/garden'/>`);
  });

  test('type normal → service-unavailable, not redirected to another resource', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { balcony: 1 });
    romeo.send(`<message to='juliet@localhost/garden' id='n1'><body>where are you?</body></message>`);
    await romeo.waitFor(`<message type='error' id='n1' from='juliet@localhost/garden'><error><service-unavailable xmlns='${STANZAS_NS}'/></error></message>`);
    await sleep(100);
    assert.ok(!gotMessage(juliet.balcony!, 'n1'));
  });

  test('type headline → not redirected to another resource', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await resources(server, 'juliet', { balcony: 1 });
    romeo.send(`<message to='juliet@localhost/garden' type='headline' id='h1'><body>news</body></message>`);
    await sleep(200);
    assert.ok(!gotMessage(juliet.balcony!, 'h1'));
  });
});

describe('routing: IQ between resources (RFC 6121 §8.5.3.1)', () => {
  test('IQ to a full JID → delivered to that resource only, and its result routed back to the asker', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await resources(server, 'juliet', { balcony: 5, garden: 1 });
    romeo.send(`<iq type='get' to='juliet@localhost/garden' id='v1'><query xmlns='jabber:iq:version'/></iq>`);
    await juliet.garden!.waitFor(`<iq type='get' from='romeo@localhost/r1' id='v1'/>`);
    juliet.garden!.send(`<iq type='result' to='romeo@localhost/r1' id='v1'><query xmlns='jabber:iq:version'><name>garden</name></query></iq>`);
    const result = await romeo.waitFor(`<iq type='result' from='juliet@localhost/garden' id='v1'/>`);
    assert.equal(result.getChild('query', 'jabber:iq:version')?.getChildText('name'), 'garden');
    assert.ok(!juliet.balcony!.received.some((el) => el.name === 'iq' && el.attrs.id === 'v1'));
  });

  test('IQ between two resources of the same account → delivered and answered', async (t) => {
    const server = await startServer(t);
    const phone = await server.login('romeo', { resource: 'phone' });
    const laptop = await server.login('romeo', { resource: 'laptop' });
    phone.send(`<iq type='get' to='romeo@localhost/laptop' id='self1'><query xmlns='urn:example:sync'/></iq>`);
    await laptop.waitFor(`<iq type='get' from='romeo@localhost/phone' id='self1'/>`);
    laptop.send(`<iq type='result' to='romeo@localhost/phone' id='self1'/>`);
    await phone.waitFor(`<iq type='result' from='romeo@localhost/laptop' id='self1'/>`);
  });
});
