// Bookmarks 2 (XEP-0402) and its compatibility with XEP-0048 bookmarks in private XML (#compat)
// and in the storage:bookmarks PEP node (#compat-pep).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type XmppClient } from '../../bin/testing.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import { PUBSUB, PUBSUB_EVENT, expectNoEvent, itemIds, itemsIq, mutual, nextEvent, onlineWithCaps, publish, pubsubError } from './pep-helpers.js';

const BOOKMARKS = 'urn:xmpp:bookmarks:1';
const NODE_OPTIONS = { access_model: 'whitelist', max_items: 'max', persist_items: 'true', send_last_published_item: 'never' };

function setPrivate(client: XmppClient, storage: string): Promise<unknown> {
  return iqExpect(client, `<iq type='set'><query xmlns='jabber:iq:private'>${storage}</query></iq>`, `<iq type='result'/>`);
}

async function getPrivate(client: XmppClient) {
  const answer = await client.iq(`<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`);
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer.getChild('query')!.getChild('storage', 'storage:bookmarks')!;
}

const orchard = `<conference jid='orchard@conference.localhost' name='The Orchard' autojoin='true'><nick>Romeo</nick></conference>`;
const balcony = `<conference jid='balcony@conference.localhost' name='Balcony'/>`;

describe('bookmarks: discovery', () => {
  test('account disco#info → urn:xmpp:bookmarks:1#compat and #compat-pep', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const features = answer.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(`${BOOKMARKS}#compat`));
    assert.ok(features.includes(`${BOOKMARKS}#compat-pep`));
  });

  test('compat: false → no #compat feature, and private XML bookmarks stay private XML', async (t) => {
    const server = await startServer(t, { modules: { bookmarks: { compat: false } } });
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(!answer.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === `${BOOKMARKS}#compat`));
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'>${orchard}</storage>`);
    await iqExpect(romeo, itemsIq(BOOKMARKS), pubsubError('cancel', 'item-not-found'));
  });
});

describe('bookmarks: private XML → PEP (#compat)', () => {
  test('storage:bookmarks set → one whitelisted PEP item per room, id = room JID; a +notify resource hears of each', async (t) => {
    const server = await startServer(t);
    const watcher = await onlineWithCaps(server, 'romeo', 'phone', [`${BOOKMARKS}+notify`]);
    const romeo = await server.login('romeo', { resource: 'legacy' });
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'>${orchard}${balcony}<url name='Home' url='https://example.org'/></storage>`);
    const items = await romeo.iq(itemsIq(BOOKMARKS));
    assertMatches(
      items,
      `<iq type='result'><pubsub xmlns='${PUBSUB}'><items node='${BOOKMARKS}'>
        <item id='orchard@conference.localhost'><conference xmlns='${BOOKMARKS}' name='The Orchard' autojoin='true'><nick>Romeo</nick></conference></item>
        <item id='balcony@conference.localhost'><conference xmlns='${BOOKMARKS}' name='Balcony'/></item>
      </items></pubsub></iq>`,
    );
    const ids = [await nextEvent(watcher), await nextEvent(watcher)].map((m) => m.getChild('event', PUBSUB_EVENT)!.getChild('items')!.getChild('item')!.attrs.id);
    assert.deepEqual(ids.sort(), ['balcony@conference.localhost', 'orchard@conference.localhost']);
    const config = await romeo.iq(`<iq type='get'><pubsub xmlns='${PUBSUB}#owner'><configure node='${BOOKMARKS}'/></pubsub></iq>`);
    assertMatches(config, `<iq type='result'><pubsub><configure><x><field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#max_items'><value>max</value></field></x></configure></pubsub></iq>`);
  });

  test('a second set → only the changed room is published and the removed one retracted; unchanged rooms send nothing', async (t) => {
    const server = await startServer(t);
    const watcher = await onlineWithCaps(server, 'romeo', 'phone', [`${BOOKMARKS}+notify`]);
    const romeo = await server.login('romeo', { resource: 'legacy' });
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'>${orchard}${balcony}</storage>`);
    await nextEvent(watcher);
    await nextEvent(watcher);
    const renamed = `<conference jid='orchard@conference.localhost' name='Orchard (renamed)' autojoin='true'><nick>Romeo</nick></conference>`;
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'>${renamed}</storage>`);
    await nextEvent(watcher, `<message><event xmlns='${PUBSUB_EVENT}'><items node='${BOOKMARKS}'><item id='orchard@conference.localhost'><conference name='Orchard (renamed)'/></item></items></event></message>`);
    await nextEvent(watcher, `<message><event xmlns='${PUBSUB_EVENT}'><items node='${BOOKMARKS}'><retract id='balcony@conference.localhost'/></items></event></message>`);
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'>${renamed}</storage>`);
    await expectNoEvent(watcher, 200);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(BOOKMARKS))), ['orchard@conference.localhost']);
  });

  test('bookmarks kept in private XML only (before this module) → moved to PEP at the next login', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-bookmarks-'));
    const before = await startServer({ dataDir, config: { modules_disabled: ['bookmarks'] } });
    const old = await before.login('romeo');
    await setPrivate(old, `<storage xmlns='storage:bookmarks'>${orchard}</storage>`);
    await before.stop();
    const server = await startServer({ dataDir });
    t.after(async () => {
      await server.stop(); // before its data directory goes
      rmSync(dataDir, { recursive: true, force: true });
    });
    const romeo = await server.login('romeo');
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(BOOKMARKS))), ['orchard@conference.localhost']);
  });
});

describe('bookmarks: PEP → private XML (#compat)', () => {
  test('a PEP bookmark → private XML get lists it with jid, name, autojoin and nick; URL bookmarks from private XML stay', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'><url name='Home' url='https://example.org'/></storage>`);
    await publish(romeo, BOOKMARKS, 'orchard@conference.localhost', `<conference xmlns='${BOOKMARKS}' name='The Orchard' autojoin='1'><nick>Romeo</nick><extensions><state xmlns='urn:test:x'/></extensions></conference>`, NODE_OPTIONS);
    const storage = await getPrivate(romeo);
    assertMatches(
      storage,
      `<storage xmlns='storage:bookmarks'><conference jid='orchard@conference.localhost' name='The Orchard' autojoin='true'><nick>Romeo</nick><state xmlns='urn:test:x'/></conference><url name='Home' url='https://example.org'/></storage>`,
      { strict: true },
    );
  });

  test('a PEP retract → the room is gone from private XML', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await setPrivate(romeo, `<storage xmlns='storage:bookmarks'>${orchard}${balcony}</storage>`);
    await iqExpect(romeo, `<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='${BOOKMARKS}' notify='true'><item id='balcony@conference.localhost'/></retract></pubsub></iq>`, `<iq type='result'/>`);
    const storage = await getPrivate(romeo);
    assert.deepEqual(storage.getChildren('conference').map((c) => c.attrs.jid), ['orchard@conference.localhost']);
  });

  test("another account asking for the bookmarks node → not-allowed with closed-node (whitelist)", async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, BOOKMARKS, 'orchard@conference.localhost', `<conference xmlns='${BOOKMARKS}'/>`, NODE_OPTIONS);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, itemsIq(BOOKMARKS, 'romeo@localhost'), pubsubError('cancel', 'not-allowed', 'closed-node'));
  });
});

describe('bookmarks: node defaults', () => {
  test('a client creating the bookmarks node without publish-options → still whitelist and every bookmark kept; a contact gets closed-node', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publish(romeo, BOOKMARKS, 'orchard@conference.localhost', `<conference xmlns='${BOOKMARKS}' name='The Orchard'><password>secret</password></conference>`);
    await publish(romeo, BOOKMARKS, 'balcony@conference.localhost', `<conference xmlns='${BOOKMARKS}' name='Balcony'/>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(BOOKMARKS))), ['orchard@conference.localhost', 'balcony@conference.localhost']);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, itemsIq(BOOKMARKS, 'romeo@localhost'), pubsubError('cancel', 'not-allowed', 'closed-node'));
    // A Bookmarks 2 client's publish-options match the node made this way.
    await publish(romeo, BOOKMARKS, 'crypt@conference.localhost', `<conference xmlns='${BOOKMARKS}'/>`, NODE_OPTIONS);
    // The XEP-0048 node a legacy client creates without options is private too.
    await publish(romeo, 'storage:bookmarks', 'current', `<storage xmlns='storage:bookmarks'>${orchard}</storage>`);
    await iqExpect(juliet, itemsIq('storage:bookmarks', 'romeo@localhost'), pubsubError('cancel', 'not-allowed', 'closed-node'));
  });
});

describe('bookmarks: the XEP-0048 PEP node (#compat-pep)', () => {
  test('a PEP bookmarks:1 publish → storage:bookmarks item current holds every room', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, BOOKMARKS, 'orchard@conference.localhost', `<conference xmlns='${BOOKMARKS}' name='The Orchard'/>`, NODE_OPTIONS);
    await publish(romeo, BOOKMARKS, 'balcony@conference.localhost', `<conference xmlns='${BOOKMARKS}' name='Balcony'/>`, NODE_OPTIONS);
    const legacy = await romeo.iq(itemsIq('storage:bookmarks'));
    assertMatches(
      legacy,
      `<iq type='result'><pubsub xmlns='${PUBSUB}'><items node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'>
        <conference jid='orchard@conference.localhost' name='The Orchard'/><conference jid='balcony@conference.localhost' name='Balcony'/>
      </storage></item></items></pubsub></iq>`,
    );
  });

  test('a client publishing storage:bookmarks to PEP → the bookmarks:1 items follow', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publish(romeo, BOOKMARKS, 'old@conference.localhost', `<conference xmlns='${BOOKMARKS}'/>`, NODE_OPTIONS);
    await publish(romeo, 'storage:bookmarks', 'current', `<storage xmlns='storage:bookmarks'>${orchard}</storage>`, { access_model: 'whitelist' });
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(BOOKMARKS))), ['orchard@conference.localhost']);
  });
});
