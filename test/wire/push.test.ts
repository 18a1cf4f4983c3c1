// XEP-0357 Push Notifications, server part, over the wire: enabling and disabling push services,
// the account's options, and the pushes themselves (hibernated sessions, offline messages),
// against a fake push service that records publishes and answers as told.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';
import type { XmlElement } from '../../server/xml/element.js';
import { parseXml } from '../../server/xml/parser.js';
import {
  PUSH,
  bodies,
  enablePush,
  enableSm,
  handled,
  hibernatedRomeo,
  optionsForm,
  pushServer,
  resumeOn,
  sleep,
  storedEnables,
} from './push-helpers.js';

const enable = (attrs: string, inner = '') => `<iq type='set'><enable xmlns='${PUSH}' ${attrs}>${inner}</enable></iq>`;
const disable = (attrs: string) => `<iq type='set'><disable xmlns='${PUSH}' ${attrs}/></iq>`;
/** The include-* values of the urn:xmpp:push:options form inside an element. */
function optionValues(parent: XmlElement): Record<string, string | undefined> {
  const form = parent.getChildren('x', 'jabber:x:data').find((x) => x.getChildren('field').some((f) => f.getChildText('value') === 'urn:xmpp:push:options'));
  assert.ok(form, `no options form in ${parent.toString()}`);
  const value = (name: string) => form.getChildren('field').find((f) => f.attrs.var === name)?.getChildText('value');
  return { senders: value('include-senders'), count: value('include-message-count'), subscriptions: value('include-subscription-count'), bodies: value('include-message-bodies') };
}

const chat = (to: string, body: string) => `<message to='${to}' type='chat'><body>${body}</body></message>`;

describe('push: enable and disable (XEP-0357 §5, §6)', () => {
  test("account disco#info → feature urn:xmpp:push:0 and the urn:xmpp:push:options form with the defaults", async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      `<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='${PUSH}'/>
        <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:xmpp:push:options</value></field>
          <field var='include-senders'><value>0</value></field><field var='include-message-count'><value>1</value></field>
          <field var='include-subscription-count'><value>1</value></field><field var='include-message-bodies'><value>0</value></field></x>
      </query></iq>`,
    );
  });

  test('enable with publish-options → result; stored per (jid, node) with the secret and the resource; same pair again replaces it', async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    const answer = await enablePush(romeo, 'N1', 'first');
    assert.equal(answer.elements().length, 0, 'no options form asked for: an empty result');
    await enablePush(romeo, 'N1', 'second');
    await enablePush(romeo, 'N2', 'other');
    const stored = await storedEnables(server, 'romeo');
    assert.deepEqual(
      stored.map((e) => [e.jid, e.node, e.resource, e.publishOptions]),
      [
        ['push.localhost', 'N1', 'phone', [{ var: 'secret', values: ['second'] }]],
        ['push.localhost', 'N2', 'phone', [{ var: 'secret', values: ['other'] }]],
      ],
    );
  });

  test('enable without jid → bad-request; with a malformed jid → jid-malformed; without node → feature-not-implemented', async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, enable(`node='N'`), `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    await iqExpect(romeo, enable(`jid='a@b@c' node='N'`), `<iq type='error'>${stanzaErrorPattern('modify', 'jid-malformed')}</iq>`);
    await iqExpect(romeo, enable(`jid='push.localhost'`), `<iq type='error'>${stanzaErrorPattern('cancel', 'feature-not-implemented')}</iq>`);
    await iqExpect(
      romeo,
      enable(`jid='push.localhost' node='N'`, optionsForm({}).replace('</x>', `<field var='include-senders'><value>maybe</value></field></x>`)),
      `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`,
    );
    assert.deepEqual(await storedEnables(server, 'romeo'), []);
  });

  test("enable sent to another account's JID → forbidden", async (t) => {
    const { server } = await pushServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='set' to='juliet@localhost'><enable xmlns='${PUSH}' jid='push.localhost' node='N'/></iq>`,
      `<iq type='error'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`,
    );
    assert.deepEqual(await storedEnables(server, 'juliet'), []);
  });

  test('disable with node removes that one; without node every node of that jid; unknown → plain result; no jid → bad-request', async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo');
    for (const node of ['A', 'B', 'C']) await enablePush(romeo, node);
    await iqExpect(romeo, disable(`jid='push.localhost' node='B'`), `<iq type='result'/>`);
    assert.deepEqual((await storedEnables(server, 'romeo')).map((e) => e.node), ['A', 'C']);
    await iqExpect(romeo, disable(`jid='other.example' node='A'`), `<iq type='result'/>`);
    await iqExpect(romeo, disable(`node='A'`), `<iq type='error'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
    assert.equal((await storedEnables(server, 'romeo')).length, 2);
    await iqExpect(romeo, disable(`jid='push.localhost'`), `<iq type='result'/>`);
    assert.deepEqual(await storedEnables(server, 'romeo'), []);
  });

  test('max_devices 2: a third enable disables the oldest', async (t) => {
    const { server } = await pushServer(t, { max_devices: 2 });
    const romeo = await server.login('romeo');
    for (const node of ['old', 'middle', 'new']) {
      await enablePush(romeo, node);
      await sleep(5); // distinct enabledAt
    }
    assert.deepEqual((await storedEnables(server, 'romeo')).map((e) => e.node).sort(), ['middle', 'new']);
  });

  test('options: a first enable chooses; later enables may only narrow; after disabling everything the next may widen', async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo');
    let answer = await enablePush(romeo, 'A', 'S', optionsForm({ 'include-senders': true, 'include-message-bodies': true }));
    assert.deepEqual(optionValues(answer), { senders: '1', count: '1', subscriptions: '1', bodies: '1' });
    // A second device asks for bodies off: allowed (narrower), and in force for the whole account.
    answer = await enablePush(romeo, 'B', 'S', optionsForm({ 'include-message-bodies': false }));
    assert.deepEqual(optionValues(answer), { senders: '1', count: '1', subscriptions: '1', bodies: '0' });
    const disco = await romeo.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.deepEqual(optionValues(disco.getChild('query', 'http://jabber.org/protocol/disco#info')!), { senders: '1', count: '1', subscriptions: '1', bodies: '0' });
    // Turning bodies back on while enables exist is ignored; the answer says what holds.
    answer = await enablePush(romeo, 'C', 'S', optionsForm({ 'include-message-bodies': true, 'include-senders': false }));
    assert.deepEqual(optionValues(answer), { senders: '0', count: '1', subscriptions: '1', bodies: '0' });
    await iqExpect(romeo, disable(`jid='push.localhost'`), `<iq type='result'/>`);
    answer = await enablePush(romeo, 'D', 'S', optionsForm({ 'include-message-bodies': true }));
    assert.deepEqual(optionValues(answer), { senders: '0', count: '1', subscriptions: '1', bodies: '1' });
  });

  test('allow_message_bodies false: a client asking for bodies does not get them', async (t) => {
    const { server } = await pushServer(t, { allow_message_bodies: false });
    const romeo = await server.login('romeo');
    const answer = await enablePush(romeo, 'A', 'S', optionsForm({ 'include-message-bodies': true }));
    assert.equal(optionValues(answer).bodies, '0');
  });

  test('enables survive a restart, and still push', async (t) => {
    const { server, fake } = await pushServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1', 'secret-1');
    await romeo.close();
    await server.restart();
    assert.equal((await storedEnables(server, 'romeo')).length, 1);
    const juliet = await server.login('juliet');
    juliet.send(chat('romeo@localhost', 'after restart'));
    const publish = await fake.next();
    assert.equal(publish.node, 'N1');
    assert.equal(publish.options?.secret, 'secret-1');
  });
});

describe('push: notifications (XEP-0357 §7)', () => {
  test('hibernated push session, 3 messages → first publish at once (count 1), the rest coalesced (count 3); no sender or body by default; resume gets each message once', async (t) => {
    const { server, fake } = await pushServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const { id, mark, romeo } = await hibernatedRomeo(server);
    for (const body of ['one', 'two', 'three']) juliet.send(chat('romeo@localhost/phone', body));
    const first = await fake.next();
    assert.equal(first.from, 'romeo@localhost');
    assert.equal(first.to, 'push.localhost');
    assert.equal(first.node, 'N1');
    assert.deepEqual(first.options, { FORM_TYPE: 'http://jabber.org/protocol/pubsub#publish-options', secret: 'S' });
    assert.deepEqual(first.summary, { FORM_TYPE: 'urn:xmpp:push:summary', 'message-count': '1', 'last-message-priority': 'high' });
    const started = Date.now();
    const merged = await fake.next();
    assert.ok(Date.now() - started >= 150, 'the second push waited for the window');
    assert.deepEqual(merged.summary, { FORM_TYPE: 'urn:xmpp:push:summary', 'message-count': '3', 'last-message-priority': 'high' });
    await fake.expectNone(400);
    const { client, answer } = await resumeOn(server, 'romeo', id, handled(romeo, mark));
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.deepEqual(await bodies(client, 3), ['one', 'two', 'three']);
    await client.expectNothing(300);
  });

  test('include-senders and include-message-bodies opted in → last-message-sender (bare) and last-message-body', async (t) => {
    const { server, fake } = await pushServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    await hibernatedRomeo(server, 'N1', optionsForm({ 'include-senders': true, 'include-message-bodies': true }));
    juliet.send(chat('romeo@localhost/phone', 'Wherefore art thou?'));
    const publish = await fake.next();
    assert.equal(publish.summary['last-message-sender'], 'juliet@localhost');
    assert.equal(publish.summary['last-message-body'], 'Wherefore art thou?');
    assert.equal(publish.summary['message-count'], '1');
  });

  test('chat-state-only messages → no push; a receipt → push with priority normal and nothing counted', async (t) => {
    const { server, fake } = await pushServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    await hibernatedRomeo(server);
    juliet.send(`<message to='romeo@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    juliet.send(`<message to='romeo@localhost/phone' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>`);
    await fake.expectNone(300);
    juliet.send(`<message to='romeo@localhost/phone'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`);
    const publish = await fake.next();
    assert.equal(publish.summary['last-message-priority'], 'normal');
    assert.equal(publish.summary['message-count'], '0');
  });

  test('important_only: a receipt → no push; a message with a body → push', async (t) => {
    const { server, fake } = await pushServer(t, { important_only: true });
    const juliet = await server.login('juliet', { resource: 'j' });
    await hibernatedRomeo(server);
    juliet.send(`<message to='romeo@localhost/phone'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`);
    await fake.expectNone(300);
    juliet.send(chat('romeo@localhost/phone', 'hi'));
    assert.equal((await fake.next()).summary['last-message-priority'], 'high');
  });

  test('a subscription request queued for the hibernated session → pending-subscription-count 1', async (t) => {
    const { server, fake } = await pushServer(t);
    const juliet = await server.login('juliet', { resource: 'j' });
    const romeo = await server.login('romeo', { resource: 'phone' });
    await romeo.iq(`<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`);
    romeo.send('<presence/>');
    await romeo.waitFor(`<presence from='romeo@localhost/phone'/>`);
    await enablePush(romeo, 'N1');
    await enableSm(romeo);
    romeo.dropTcp();
    await sleep(100);
    juliet.send(`<presence to='romeo@localhost' type='subscribe'/>`);
    const publish = await fake.next();
    assert.equal(publish.summary['pending-subscription-count'], '1');
    assert.equal(publish.summary['message-count'], '0');
    assert.equal(publish.summary['last-subscription-sender'], undefined, 'no sender by default');
  });

  test('resume_timeout 1s, hibernation 3s: a push session is still resumable after 1.5 s; after its first push the normal timeout applies', async (t) => {
    const { server, fake } = await pushServer(t, { hibernation: '3s' }, { c2s: { resume_timeout: '1s' } });
    const quiet = await hibernatedRomeo(server);
    await sleep(1500);
    const h = handled(quiet.romeo, quiet.mark);
    const { client, answer } = await resumeOn(server, 'romeo', quiet.id, h);
    assert.equal(answer.name, 'resumed', answer.toString());
    const mark = client.received.length;
    // Again, but now a message pushes at once: from then on only the normal second is left.
    client.dropTcp();
    await sleep(100);
    const juliet = await server.login('juliet', { resource: 'j' });
    juliet.send(chat('romeo@localhost/phone', 'wake up'));
    await fake.next();
    await sleep(1500);
    const late = await resumeOn(server, 'romeo', quiet.id, h + handled(client, mark));
    assert.equal(late.answer.name, 'failed', late.answer.toString());
    assert.ok(late.answer.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), late.answer.toString());
    // The session ended: the message went to offline storage, and was not pushed a second time.
    await fake.expectNone(300);
  });

  test('no session at all: a message stored offline → push; the device logging in resets the count', async (t) => {
    const { server, fake } = await pushServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    await romeo.close();
    const juliet = await server.login('juliet');
    juliet.send(chat('romeo@localhost', 'are you there?'));
    assert.equal((await fake.next()).summary['message-count'], '1');
    juliet.send(chat('romeo@localhost', 'hello?'));
    assert.equal((await fake.next()).summary['message-count'], '2');
    const back = await server.login('romeo', { resource: 'phone' });
    await back.close();
    await sleep(100);
    juliet.send(chat('romeo@localhost', 'again'));
    assert.equal((await fake.next()).summary['message-count'], '1');
  });

  test('a push owed at shutdown (inside the window) goes out after the restart, with the counts', async (t) => {
    const { server, fake } = await pushServer(t, { coalesce_window: '1s' });
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    await romeo.close();
    const juliet = await server.login('juliet');
    juliet.send(chat('romeo@localhost', 'one'));
    assert.equal((await fake.next()).summary['message-count'], '1');
    juliet.send(chat('romeo@localhost', 'two'));
    await sleep(100);
    assert.equal((await storedEnables(server, 'romeo'))[0]?.owed, true);
    await server.restart();
    const owed = await fake.next(3000);
    assert.equal(owed.summary['message-count'], '2');
    assert.equal(owed.summary['last-message-priority'], 'high');
    await fake.expectNone(300);
  });

  test('a live session of the device → no push for messages stored offline (it is not offline)', async (t) => {
    const { server, fake } = await pushServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    const juliet = await server.login('juliet');
    juliet.send(chat('romeo@localhost', 'stored: romeo sent no presence'));
    await fake.expectNone(300);
  });
});

describe('push: publish errors (XEP-0357 §7.1)', () => {
  test('item-not-found → the enable is disabled: gone from storage, no further publish', async (t) => {
    const { server, fake } = await pushServer(t, { coalesce_window: '50ms' });
    fake.answer('N1', { type: 'cancel', condition: 'item-not-found' });
    const juliet = await server.login('juliet', { resource: 'j' });
    await hibernatedRomeo(server);
    juliet.send(chat('romeo@localhost/phone', 'one'));
    await fake.next();
    await sleep(100);
    assert.deepEqual(await storedEnables(server, 'romeo'), []);
    juliet.send(chat('romeo@localhost/phone', 'two'));
    await fake.expectNone(300);
  });

  test('auth/forbidden (a wrong secret) → disabled too', async (t) => {
    const { server, fake } = await pushServer(t);
    fake.answer('N1', { type: 'auth', condition: 'forbidden' });
    const juliet = await server.login('juliet');
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    await romeo.close();
    juliet.send(chat('romeo@localhost', 'hi'));
    await fake.next();
    await sleep(100);
    assert.deepEqual(await storedEnables(server, 'romeo'), []);
  });

  test('wait/resource-constraint → retried with backoff; success keeps the enable', async (t) => {
    const { server, fake } = await pushServer(t, { retry_delay: '100ms' });
    fake.answer('N1', { type: 'wait', condition: 'resource-constraint' }, { type: 'wait', condition: 'resource-constraint' });
    const juliet = await server.login('juliet', { resource: 'j' });
    await hibernatedRomeo(server);
    juliet.send(chat('romeo@localhost/phone', 'one'));
    const first = await fake.next();
    const second = await fake.next();
    const third = await fake.next();
    assert.deepEqual([second.summary, third.summary], [first.summary, first.summary], 'the same notification again');
    await sleep(50);
    const [stored] = await storedEnables(server, 'romeo');
    assert.equal(stored?.errors, 0);
  });

  test('modify/bad-request twice with max_errors 2 → disabled after the second; one success in between resets the count', async (t) => {
    const { server, fake } = await pushServer(t, { max_errors: 2, coalesce_window: '50ms' });
    const bad = { type: 'modify', condition: 'bad-request' } as const;
    fake.answer('N1', bad, 'ok', bad, bad);
    const juliet = await server.login('juliet');
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    await romeo.close();
    for (let i = 1; i <= 4; i++) {
      juliet.send(chat('romeo@localhost', `m${i}`));
      await fake.next();
      await sleep(100);
      assert.equal((await storedEnables(server, 'romeo')).length, i < 4 ? 1 : 0, `after publish ${i}`);
    }
    juliet.send(chat('romeo@localhost', 'm5'));
    await fake.expectNone(300);
  });

  test('no answer within publish_timeout counts as an error (max_errors 1 → disabled)', async (t) => {
    const { server, fake } = await pushServer(t, { max_errors: 1, publish_timeout: '200ms' });
    fake.answer('N1', 'silent');
    const juliet = await server.login('juliet');
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    await romeo.close();
    juliet.send(chat('romeo@localhost', 'hi'));
    await fake.next();
    await sleep(400);
    assert.deepEqual(await storedEnables(server, 'romeo'), []);
  });

  test('a remote push service (unreachable: remote-server-not-found) → disabled at the first push', async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    await romeo.iq(enable(`jid='push.example.org' node='N'`));
    await romeo.close();
    const juliet = await server.login('juliet');
    juliet.send(chat('romeo@localhost', 'hi'));
    await sleep(300);
    assert.deepEqual(await storedEnables(server, 'romeo'), []);
  });

  test('the push service announces affiliation none (XEP-0357 §8) → that enable is disabled', async (t) => {
    const { server } = await pushServer(t);
    const romeo = await server.login('romeo', { resource: 'phone' });
    await enablePush(romeo, 'N1');
    await enablePush(romeo, 'N2');
    server.server.router.routeLocal(
      parseXml(
        `<message from='push.localhost' to='romeo@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub' node='N1'><affiliation jid='romeo@localhost' affiliation='none'/></pubsub></message>`,
      ),
    );
    await sleep(100);
    assert.deepEqual((await storedEnables(server, 'romeo')).map((e) => e.node), ['N2']);
    await romeo.expectNothing(100);
  });
});
