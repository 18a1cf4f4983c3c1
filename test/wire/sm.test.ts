// XEP-0198 stream management over the wire: acks, hibernation when the socket dies, resumption
// (also on another transport), and what happens to queued stanzas when nobody resumes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, XmppClient, type TestServer } from '../../bin/testing.js';
import type { XmlElement } from '../../server/xml/element.js';
import { befriend, expectUnordered, online } from './presence-helpers.js';
import { defineModule } from '../../server/module-api.js';
import { builtinModules } from '../../modules/index.js';

const SM = 'urn:xmpp:sm:3';

/** What the client counts for 'h': stanzas received since SM was enabled. */
function handled(client: XmppClient, since: number): number {
  return client.received.slice(since).filter((el) => (el.name === 'message' || el.name === 'presence' || el.name === 'iq') && el.attrs.xmlns === undefined).length;
}

async function enableSm(client: XmppClient, resume = true): Promise<{ id: string | undefined; mark: number; enabled: XmlElement }> {
  client.send(`<enable xmlns='${SM}'${resume ? " resume='true'" : ''}/>`);
  const enabled = await client.waitFor(`<enabled xmlns='${SM}'/>`);
  return { id: enabled.attrs.id, mark: client.received.length, enabled };
}

/** A new connection for `username` that resumes `previd` instead of binding. */
async function resumeOn(server: TestServer, username: string, previd: string, h: number, websocket = false): Promise<{ client: XmppClient; answer: XmlElement }> {
  const client = websocket ? await server.connect({ websocket: server.websocketUrl }) : await server.connect();
  if (!websocket) await client.startTls();
  await client.authenticate(username, 'password');
  client.send(`<resume xmlns='${SM}' previd='${previd}' h='${h}'/>`);
  const answer = await client.next();
  return { client, answer };
}

async function messages(client: XmppClient, count: number): Promise<string[]> {
  const bodies: string[] = [];
  while (bodies.length < count) {
    const el = await client.next();
    if (el.name === 'message') bodies.push(el.getChildText('body') ?? '');
  }
  return bodies;
}

describe('sm: enable and acks (XEP-0198)', () => {
  test('<enable/> after bind → <enabled/>; <r/> is answered with the number of stanzas handled', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id, enabled } = await enableSm(romeo, false);
    assert.equal(id, undefined, 'no resumption id when resumption was not asked for');
    assert.equal(enabled.attrs.resume, undefined);
    romeo.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    romeo.send(`<presence/>`);
    romeo.send(`<r xmlns='${SM}'/>`);
    await romeo.waitFor(`<a xmlns='${SM}' h='2'/>`);
  });

  test('resumption asked for → id, resume and max (in seconds, within max_resume_timeout)', async (t) => {
    const server = await startServer(t, { config: { c2s: { max_resume_timeout: '10 minutes' } } });
    const romeo = await server.login('romeo');
    romeo.send(`<enable xmlns='${SM}' resume='true' max='3600'/>`);
    await romeo.waitFor(`<enabled xmlns='${SM}' id='{any}' resume='true' max='600'/>`);
  });

  test('<enable/> before bind or twice → <failed/> with unexpected-request', async (t) => {
    const server = await startServer(t);
    await server.createUser('romeo');
    const client = await server.connect();
    await client.startTls();
    await client.authenticate('romeo', 'password');
    client.send(`<enable xmlns='${SM}'/>`);
    await client.expect(`<failed xmlns='${SM}'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
    await client.bind('r');
    await enableSm(client);
    client.send(`<enable xmlns='${SM}'/>`);
    await client.waitFor(`<failed xmlns='${SM}'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
  });

  test('the server asks for an ack after sm_ack_after stanzas, and accepts the answer', async (t) => {
    const server = await startServer(t, { config: { c2s: { sm_ack_after: 3 } } });
    const romeo = await server.login('romeo', { resource: 'r' });
    const juliet = await server.login('juliet', { resource: 'j' });
    const { mark } = await enableSm(romeo);
    for (let i = 0; i < 3; i++) juliet.send(`<message to='romeo@localhost/r' type='chat'><body>${i}</body></message>`);
    await romeo.waitFor(`<r xmlns='${SM}'/>`);
    romeo.send(`<a xmlns='${SM}' h='${handled(romeo, mark)}'/>`);
    romeo.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await romeo.waitFor(`<iq type='result' id='p1'/>`);
  });

  test('acknowledging more than was sent → stream error undefined-condition with handled-count-too-high', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await enableSm(romeo);
    romeo.send(`<a xmlns='${SM}' h='5'/>`);
    const error = await romeo.expectStreamError('undefined-condition');
    assert.ok(error.getChild('handled-count-too-high', SM), error.toString());
  });
});

describe('sm: hibernation and resumption', () => {
  test('the socket dies → the session hibernates (no unavailable); resume → exactly the unacked stanzas, in order, once', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id, mark } = await enableSm(romeo);
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>one</body></message>`);
    await romeo.waitFor(`<message><body>one</body></message>`);
    const h = handled(romeo, mark); // 'one' received; say nothing yet (not acked)
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const body of ['two', 'three', 'four']) juliet.send(`<message to='romeo@localhost/r' type='chat'><body>${body}</body></message>`);
    await juliet.expectNothing(200); // no error bounces: the session is still there
    const { client, answer } = await resumeOn(server, 'romeo', id!, h);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.equal(answer.attrs.previd, id);
    assert.deepEqual(await messages(client, 3), ['two', 'three', 'four']);
    await client.expectNothing(300);
    // The session goes on: new messages and replies flow.
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>five</body></message>`);
    await client.waitFor(`<message><body>five</body></message>`);
  });

  test('resume with an h lower than what was received → the stanzas after h come again (the client said it lacks them)', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id } = await enableSm(romeo);
    for (const body of ['a', 'b']) juliet.send(`<message to='romeo@localhost/r' type='chat'><body>${body}</body></message>`);
    await romeo.waitFor(`<message><body>b</body></message>`);
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { client, answer } = await resumeOn(server, 'romeo', id!, 0);
    assert.equal(answer.name, 'resumed');
    assert.deepEqual(await messages(client, 2), ['a', 'b']);
  });

  test('a client on TCP hibernates and resumes on WebSocket', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'phone' });
    const { id, mark } = await enableSm(romeo);
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    juliet.send(`<message to='romeo@localhost/phone' type='chat'><body>while away</body></message>`);
    const { client, answer } = await resumeOn(server, 'romeo', id!, handled(romeo, mark), true);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.ok(client.websocket);
    assert.deepEqual(await messages(client, 1), ['while away']);
    client.send(`<message to='juliet@localhost/j' type='chat'><body>hello from ws</body></message>`);
    await juliet.waitFor(`<message from='romeo@localhost/phone'><body>hello from ws</body></message>`);
  });

  test('several resumes in a row keep the counters right', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    let romeo = await server.login('romeo', { resource: 'r' });
    const { id, mark } = await enableSm(romeo);
    let h = 0; // stanzas received on earlier connections
    let since = mark;
    for (let round = 1; round <= 3; round++) {
      juliet.send(`<message to='romeo@localhost/r' type='chat'><body>round ${round}</body></message>`);
      await romeo.waitFor(`<message><body>round ${round}</body></message>`);
      h += handled(romeo, since);
      romeo.dropTcp();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const resumed = await resumeOn(server, 'romeo', id!, h);
      assert.equal(resumed.answer.name, 'resumed', `round ${round}: ${resumed.answer.toString()}`);
      romeo = resumed.client;
      since = 0;
      await romeo.expectNothing(150); // nothing to replay: everything was acknowledged by h
      // The server's count of what romeo sent carries over too.
      romeo.send(`<presence/>`);
      romeo.send(`<r xmlns='${SM}'/>`);
      await romeo.waitFor(`<a xmlns='${SM}' h='${round}'/>`);
    }
  });

  test('unknown or foreign resumption id → <failed/> with item-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id } = await enableSm(romeo);
    await server.createUser('mallory');
    const { answer } = await resumeOn(server, 'mallory', id!, 0);
    assert.equal(answer.name, 'failed');
    assert.ok(answer.getChild('item-not-found'), answer.toString());
    const unknown = await resumeOn(server, 'romeo', 'no-such-id', 0);
    assert.ok(unknown.answer.getChild('item-not-found'));
  });

  test('not resumed in time → queued messages come from offline storage at the next login; contacts see unavailable; IQs get an error', async (t) => {
    const server = await startServer(t, { config: { c2s: { resume_timeout: '1s' } } });
    await befriend(server, 'juliet', 'romeo');
    const juliet = await online(server, 'juliet', 'j');
    const romeo = await online(server, 'romeo', 'r');
    await juliet.waitFor(`<presence from='romeo@localhost/r'/>`);
    await enableSm(romeo);
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    juliet.send(`<message to='romeo@localhost/r' type='chat' id='m1'><body>first</body></message>`);
    juliet.send(`<message to='romeo@localhost' type='chat' id='m2'><body>second</body></message>`);
    juliet.send(`<iq to='romeo@localhost/r' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>`);
    await juliet.expectNothing(300);
    // After the resume window: unavailable presence and the IQ error.
    await expectUnordered(juliet, [
      `<presence from='romeo@localhost/r' type='unavailable'/>`,
      `<iq type='error' id='v1'><error><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
    ]);
    const again = await server.login('romeo', { resource: 'laptop' });
    again.send('<presence/>');
    await again.waitFor(`<message id='m1'><body>first</body><delay xmlns='urn:xmpp:delay'/></message>`);
    await again.waitFor(`<message id='m2'><body>second</body><delay xmlns='urn:xmpp:delay'/></message>`);
  });

  test('a clean </stream:stream> ends an SM session at once (no hibernation)', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id } = await enableSm(romeo);
    await romeo.close();
    const { answer } = await resumeOn(server, 'romeo', id!, 0);
    assert.ok(answer.getChild('item-not-found'), 'nothing left to resume');
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>after close</body></message>`);
    await juliet.expectNothing(200); // stored offline (no error): romeo's account exists
  });

  test('a fresh bind of the same resource while hibernated → nothing lost: queued messages reach the new session', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id } = await enableSm(romeo);
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>queued</body></message>`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const fresh = await server.login('romeo', { resource: 'r' });
    fresh.send('<presence/>');
    await fresh.waitFor(`<message><body>queued</body></message>`);
    const { answer } = await resumeOn(server, 'romeo', id!, 0);
    assert.ok(answer.getChild('item-not-found'), 'the old session is gone');
  });

  test('no ack within sm_ack_timeout → the connection counts as lost and the session hibernates', async (t) => {
    const server = await startServer(t, { config: { c2s: { sm_ack_after: 1, sm_ack_timeout: '1s' } } });
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id, mark } = await enableSm(romeo);
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>ping?</body></message>`);
    await romeo.waitFor(`<r xmlns='${SM}'/>`);
    const h = handled(romeo, mark);
    await romeo.waitClosed(4000); // we never answered the <r/>
    const { answer } = await resumeOn(server, 'romeo', id!, h);
    assert.equal(answer.name, 'resumed', answer.toString());
  });
});

describe('sm: limits and hooks for other modules', () => {
  test('more than sm_max_queue stanzas for a hibernated session → it ends, and the messages go offline', async (t) => {
    const server = await startServer(t, { config: { c2s: { sm_max_queue: 10 } } });
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id } = await enableSm(romeo);
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 12; i++) juliet.send(`<message to='romeo@localhost/r' type='chat' id='q${i}'><body>${i}</body></message>`);
    await juliet.expectNothing(300);
    const { answer } = await resumeOn(server, 'romeo', id!, 0);
    assert.ok(answer.getChild('item-not-found'), 'the session ended when its queue overflowed');
    const again = await server.login('romeo', { resource: 'r2' });
    again.send('<presence/>');
    const bodies: string[] = [];
    while (bodies.length < 12) {
      const el = await again.next();
      if (el.name === 'message') bodies.push(el.getChildText('body')!);
    }
    assert.deepEqual(bodies, Array.from({ length: 12 }, (_, i) => String(i)), 'nothing lost, in order');
  });

  test("hooks: 'session:hibernated', 'session:queued', 'session:resumed' and 'session:closed' fire in that story", async (t) => {
    const seen: string[] = [];
    const recorder = defineModule({
      name: 'hook-recorder',
      setup(m) {
        m.on('session:hibernated', ({ session }) => void seen.push(`hibernated ${session.resource}`));
        m.on('session:queued', ({ session, stanza }) => void seen.push(`queued ${session.resource} ${stanza.getChildText('body')}`));
        m.on('session:resumed', ({ session }) => void seen.push(`resumed ${session.resource}`));
        m.on('session:closed', ({ session }) => void seen.push(`closed ${session.resource}`));
      },
    });
    const server = await startServer(t, { moduleList: [...builtinModules, recorder] });
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'r' });
    const { id } = await enableSm(romeo);
    romeo.dropTcp();
    await new Promise((resolve) => setTimeout(resolve, 100));
    juliet.send(`<message to='romeo@localhost/r' type='chat'><body>hi</body></message>`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { client } = await resumeOn(server, 'romeo', id!, 0);
    await client.waitFor(`<message><body>hi</body></message>`);
    await client.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(seen.filter((s) => s.endsWith(' r') || s.includes(' r ')), ['hibernated r', 'queued r hi', 'resumed r', 'closed r']);
  });
});
