// Avatars: XEP-0084 PEP avatars and XEP-0153 vCard avatars kept in step (XEP-0398), and the
// avatar hash the server puts into presence.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, type XmppClient } from '../../bin/testing.js';
import { assertMatches, iqExpect } from './module-helpers.js';
import { PUBSUB_EVENT, itemIds, itemsIq, mutual, nextEvent, onlineWithCaps, publish } from './pep-helpers.js';

const DATA = 'urn:xmpp:avatar:data';
const METADATA = 'urn:xmpp:avatar:metadata';
const UPDATE = 'vcard-temp:x:update';
const IMAGE = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
const BASE64 = IMAGE.toString('base64');
const HASH = createHash('sha1').update(IMAGE).digest('hex');

async function publishAvatar(client: XmppClient, id = HASH, data = BASE64): Promise<void> {
  await publish(client, DATA, id, `<data xmlns='${DATA}'>${data}</data>`);
  await publish(client, METADATA, id, `<metadata xmlns='${METADATA}'><info id='${id}' bytes='${IMAGE.length}' type='image/png'/></metadata>`);
}

async function vcardOf(client: XmppClient, of = 'romeo@localhost') {
  const answer = await client.iq(`<iq type='get' to='${of}'><vCard xmlns='vcard-temp'/></iq>`);
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer.getChild('vCard', 'vcard-temp')!;
}

/** Sends presence and returns the copy the server echoes to this resource. */
async function ownPresence(client: XmppClient, presence = '<presence/>') {
  client.send(presence);
  return client.waitFor(`<presence from='${client.jid}'/>`);
}

describe('avatars: discovery', () => {
  test('account disco#info → urn:xmpp:pep-vcard-conversion:0', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='romeo@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(answer.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'urn:xmpp:pep-vcard-conversion:0'));
  });
});

describe('avatars: PEP → vCard', () => {
  test('data and metadata published → the vCard has the PHOTO (type, base64), and presence carries its hash', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='set'><vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard></iq>`, `<iq type='result'/>`);
    await publishAvatar(romeo);
    const vcard = await vcardOf(romeo);
    assertMatches(vcard, `<vCard xmlns='vcard-temp'><FN>Romeo</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>${BASE64}</BINVAL></PHOTO></vCard>`);
    const presence = await ownPresence(romeo);
    assertMatches(presence, `<presence><x xmlns='${UPDATE}'><photo>${HASH}</photo></x></presence>`);
  });

  test('metadata whose data does not hash to its id → the vCard is left as it is', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const wrongId = 'a'.repeat(40);
    await publishAvatar(romeo, wrongId);
    const vcard = await vcardOf(romeo);
    assert.equal(vcard.getChild('PHOTO'), undefined, vcard.toString());
  });

  test('metadata without info (avatar disabled) → the PHOTO leaves the vCard', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publishAvatar(romeo);
    assert.ok((await vcardOf(romeo)).getChild('PHOTO'));
    await publish(romeo, METADATA, 'none', `<metadata xmlns='${METADATA}'/>`);
    assert.equal((await vcardOf(romeo)).getChild('PHOTO'), undefined);
  });
});

describe('avatars: vCard → PEP', () => {
  test('a vCard with a PHOTO → data and metadata items with id = SHA-1 hex; +notify resources get the metadata; strangers may read', async (t) => {
    const server = await startServer(t);
    const watcher = await onlineWithCaps(server, 'romeo', 'phone', [`${METADATA}+notify`]);
    const romeo = await server.login('romeo', { resource: 'legacy' });
    const folded = `${BASE64.slice(0, 20)}\n ${BASE64.slice(20)}`;
    await iqExpect(romeo, `<iq type='set'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>${folded}</BINVAL></PHOTO></vCard></iq>`, `<iq type='result'/>`);
    await nextEvent(
      watcher,
      `<message from='romeo@localhost'><event xmlns='${PUBSUB_EVENT}'><items node='${METADATA}'><item id='${HASH}'><metadata xmlns='${METADATA}'><info id='${HASH}' bytes='${IMAGE.length}' type='image/png'/></metadata></item></items></event></message>`,
    );
    const benvolio = await server.login('benvolio');
    const data = await benvolio.iq(itemsIq(DATA, 'romeo@localhost'));
    assertMatches(data, `<iq type='result'><pubsub><items node='${DATA}'><item id='${HASH}'><data xmlns='${DATA}'>${BASE64}</data></item></items></pubsub></iq>`);
  });

  test('the same vCard photo again → nothing new published', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const set = `<iq type='set'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>${BASE64}</BINVAL></PHOTO></vCard></iq>`;
    await iqExpect(romeo, set, `<iq type='result'/>`);
    await iqExpect(romeo, set.replace('<PHOTO>', '<NICKNAME>R</NICKNAME><PHOTO>'), `<iq type='result'/>`);
    assert.deepEqual(itemIds(await romeo.iq(itemsIq(METADATA))), [HASH]);
  });

  test('a vCard without PHOTO after an avatar → empty metadata (disabled), and presence no longer gets a hash', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='set'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>${BASE64}</BINVAL></PHOTO></vCard></iq>`, `<iq type='result'/>`);
    await iqExpect(romeo, `<iq type='set'><vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard></iq>`, `<iq type='result'/>`);
    const metadata = await romeo.iq(itemsIq(METADATA, undefined, ` max_items='1'`));
    assertMatches(metadata, `<iq type='result'><pubsub><items><item id='current'><metadata xmlns='${METADATA}'/></item></items></pubsub></iq>`, { strict: false });
    assert.equal(metadata.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('metadata')!.getChild('info'), undefined);
    const presence = await ownPresence(romeo);
    assert.equal(presence.getChild('x', UPDATE), undefined, presence.toString());
  });
});

describe('avatars: presence (XEP-0398 §4)', () => {
  test('a contact receives the hash in presence; directed presence (a MUC join) gets it too', async (t) => {
    const server = await startServer(t);
    await mutual(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await publishAvatar(romeo);
    const juliet = await server.login('juliet');
    juliet.send('<presence/>');
    await juliet.waitFor(`<presence from='juliet@localhost/${juliet.jid.split('/')[1]}'/>`);
    romeo.send('<presence/>');
    const seen = await juliet.waitFor(`<presence from='${romeo.jid}'/>`);
    assertMatches(seen, `<presence><x xmlns='${UPDATE}'><photo>${HASH}</photo></x></presence>`);
    romeo.send(`<presence to='juliet@localhost/${juliet.jid.split('/')[1]}'/>`);
    const directed = await juliet.waitFor(`<presence from='${romeo.jid}'/>`);
    assertMatches(directed, `<presence><x xmlns='${UPDATE}'><photo>${HASH}</photo></x></presence>`);
  });

  test('an empty <photo/> (client not ready) is left alone; an <x/> without photo is overwritten', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await publishAvatar(romeo);
    const empty = await ownPresence(romeo, `<presence><x xmlns='${UPDATE}'><photo/></x></presence>`);
    assert.equal(empty.getChildren('x', UPDATE).join(''), `<x xmlns='${UPDATE}'><photo/></x>`);
    const bare = await ownPresence(romeo, `<presence><x xmlns='${UPDATE}'/></presence>`);
    assert.equal(bare.getChildren('x', UPDATE).join(''), `<x xmlns='${UPDATE}'><photo>${HASH}</photo></x>`);
  });

  test('no avatar → presence goes out untouched', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const presence = await ownPresence(romeo, `<presence><status>here</status></presence>`);
    assert.equal(presence.children.join(''), '<status>here</status>');
  });
});
