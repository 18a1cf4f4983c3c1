// XEP-0227 records: SCRAM credentials (single and ejabberd's double base64) and one <user/>
// element turned into what Herald stores (storage/pie/format.ts, storage/pie/user.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml } from '../../server/xml/parser.js';
import { verifyPasswordAgainst } from '../../server/sasl/scram.js';
import { decodeScramCredentials, encodeScramCredentials } from '../../storage/pie/format.js';
import { deriveCredentials, readUser, type ImportedUser } from '../../storage/pie/user.js';

const scram = (mechanism: string, inner: string) => parseXml(`<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='${mechanism}'>${inner}</scram-credentials>`);

// Prosody 0.12 (test/fixtures/xep0227/prosody/juliet@capulet.example.xml): password juliet-secret.
const PROSODY_JULIET = scram('SCRAM-SHA-1', `<server-key>W1t2tRBgpuY7WIbjCIcseJwIGPM=</server-key><stored-key>V4jpBabe+2A84T4AvxFCoSfJXoY=</stored-key><iter-count>10000</iter-count><salt>ODM3YmE5MDMtZjVjNy00ZDZkLTg5YjMtN2Q0NWRiMGQxZTBl</salt>`);
// ejabberd (test/fixtures/xep0227/ejabberd): password romeo-secret, every value base64 of base64.
const EJABBERD_ROMEO = scram('SCRAM-SHA-1', `<iter-count>4096</iter-count><salt>V2g0UFBKMHJSK2lteExQUzRmQUhHQT09</salt><server-key>L2J1Yk8xeURlTnZublJPR0hFb0pPRDhuQlFRPQ==</server-key><stored-key>emd1OVJsZ053dmxISy9Ud242UUxlOEVHaWlnPQ==</stored-key>`);

describe('pie: SCRAM credentials', () => {
  test("Prosody's keys (base64 of the raw bytes) are kept with their salt and 10,000 iterations and verify the password", () => {
    const decoded = decodeScramCredentials(PROSODY_JULIET);
    assert.equal(decoded.kind, 'ok');
    if (decoded.kind !== 'ok') return;
    assert.equal(decoded.hash, 'sha1');
    assert.equal(decoded.doubleEncoded, false);
    assert.equal(decoded.credentials.iterations, 10000);
    assert.equal(decoded.credentials.salt.toString(), '837ba903-f5c7-4d6d-89b3-7d45db0d1e0e');
    assert.ok(verifyPasswordAgainst(decoded.credentials, 'sha1', 'juliet-secret'));
    assert.ok(!verifyPasswordAgainst(decoded.credentials, 'sha1', 'romeo-secret'));
  });

  test("ejabberd's double base64 is detected and decoded twice (salt included)", () => {
    const decoded = decodeScramCredentials(EJABBERD_ROMEO);
    assert.ok(decoded.kind === 'ok' && decoded.doubleEncoded);
    if (decoded.kind !== 'ok') return;
    assert.equal(decoded.credentials.salt.toString('hex'), '5a1e0f3c9d2b47e8a6c4b3d2e1f00718');
    assert.ok(verifyPasswordAgainst(decoded.credentials, 'sha1', 'romeo-secret'));
  });

  test('encode → decode gives the same credentials, single and double (ejabberd) encoded', () => {
    const decoded = decodeScramCredentials(PROSODY_JULIET);
    if (decoded.kind !== 'ok') return assert.fail('decoded');
    for (const double of [false, true]) {
      const again = decodeScramCredentials(parseXml(encodeScramCredentials('sha1', decoded.credentials, double).toString()));
      assert.ok(again.kind === 'ok');
      if (again.kind !== 'ok') return;
      assert.equal(again.doubleEncoded, double);
      assert.deepEqual(again.credentials, decoded.credentials);
    }
  });

  test('SCRAM-SHA-512 (ejabberd can store it) → unsupported, not an error', () => {
    assert.deepEqual(decodeScramCredentials(scram('SCRAM-SHA-512', '')), { kind: 'unsupported', mechanism: 'SCRAM-SHA-512' });
  });

  test('broken credentials → an error that says what is wrong', () => {
    const cases: [string, RegExp][] = [
      [`<iter-count>4096</iter-count><server-key>AA==</server-key><stored-key>AA==</stored-key>`, /without <salt\/>/],
      [`<iter-count>many</iter-count><salt>AA==</salt><server-key>AA==</server-key><stored-key>AA==</stored-key>`, /iter-count 'many' is not a number/],
      [`<iter-count>4096</iter-count><salt>not base64!</salt><server-key>AA==</server-key><stored-key>AA==</stored-key>`, /salt is not base64/],
      [`<iter-count>4096</iter-count><salt>AAAA</salt><server-key>AAAA</server-key><stored-key>AAAA</stored-key>`, /must be 20 bytes/],
    ];
    for (const [inner, message] of cases) assert.throws(() => decodeScramCredentials(scram('SCRAM-SHA-1', inner)), message);
  });

  test('keys derived from a plain password (thread pool PBKDF2) verify it for both hashes, with fresh salts', async () => {
    const credentials = await deriveCredentials('benvolio-secret', 4096);
    assert.ok(verifyPasswordAgainst(credentials.sha1!, 'sha1', 'benvolio-secret'));
    assert.ok(verifyPasswordAgainst(credentials.sha256!, 'sha256', 'benvolio-secret'));
    assert.ok(!verifyPasswordAgainst(credentials.sha256!, 'sha256', 'benvolio-secreT'));
    assert.notDeepEqual(credentials.sha1!.salt, credentials.sha256!.salt);
  });
});

async function read(xml: string, now = new Date('2025-01-02T03:04:05Z')): Promise<{ user: ImportedUser; notices: string[] }> {
  const notices: string[] = [];
  const user = await readUser(parseXml(xml), { host: 'a.example', iterations: 4096, notice: (kind, detail) => notices.push(`${kind}: ${detail}`), now: () => now });
  return { user, notices };
}

describe('pie: reading a <user/>', () => {
  test('roster items: bare, deduplicated groups, self skipped, invalid JID and bad subscription reported', async () => {
    const { user, notices } = await read(`<user name='Romeo'><query xmlns='jabber:iq:roster'>
      <item jid='Juliet@A.example/balcony' name='Juliet' subscription='both' ask='subscribe' approved='true'><group>F</group><group>F</group><group/></item>
      <item jid='romeo@a.example' subscription='both'/><item jid='@bad'/><item jid='x@a.example' subscription='remove'/></query></user>`);
    assert.equal(user.username, 'romeo', 'the name is normalised as a localpart');
    assert.deepEqual(user.roster, [{ jid: 'juliet@a.example', name: 'Juliet', subscription: 'both', ask: 'subscribe', approved: true, groups: ['F'] }]);
    assert.equal(notices.length, 2);
    assert.match(notices[0]!, /'@bad' is not a valid JID/);
    assert.match(notices[1]!, /subscription 'remove'/);
  });

  test('pending requests (jabber:client or the XEP-0227 namespace) are stored from the contact to the account, keeping extensions', async () => {
    const { user } = await read(`<user name='romeo'><presence xmlns='jabber:client' from='Friar@verona.example/cell' to='romeo@a.example' type='subscribe'><status>hi</status></presence><presence from='nurse@verona.example' type='subscribe'/><presence from='x@y' type='unsubscribe'/></user>`);
    assert.deepEqual(user.pendingIn, [
      ['friar@verona.example', `<presence from='friar@verona.example' to='romeo@a.example' type='subscribe'><status>hi</status></presence>`],
      ['nurse@verona.example', `<presence from='nurse@verona.example' type='subscribe' to='romeo@a.example'/>`],
    ]);
  });

  test('offline messages keep their stamp (XEP-0203, legacy XEP-0091); one without gets a delay of the import time', async () => {
    const { user, notices } = await read(`<user name='romeo'><offline-messages>
      <message xmlns='jabber:client' from='a@b' type='chat'><body>1</body><delay xmlns='urn:xmpp:delay' stamp='2024-03-14T21:03:00.5Z'/></message>
      <message xmlns='jabber:client' from='a@b'><body>2</body><x xmlns='jabber:x:delay' stamp='20020910T23:08:25'/></message>
      <message xmlns='jabber:client' from='a@b' to='romeo@a.example/r'><body>3</body></message>
      <message xmlns='jabber:client'><body>no sender</body></message><iq xmlns='jabber:client'/></offline-messages></user>`);
    assert.deepEqual(user.offline.map((m) => new Date(m.stamp).toISOString()), ['2024-03-14T21:03:00.500Z', '2002-09-10T23:08:25.000Z', '2025-01-02T03:04:05.000Z']);
    assert.equal(user.offline[0]!.stanza, `<message from='a@b' type='chat' to='romeo@a.example'><body>1</body><delay xmlns='urn:xmpp:delay' stamp='2024-03-14T21:03:00.5Z'/></message>`);
    assert.equal(user.offline[2]!.stanza, `<message from='a@b' to='romeo@a.example/r'><body>3</body><delay xmlns='urn:xmpp:delay' from='a.example' stamp='2025-01-02T03:04:05Z'>Offline Storage</delay></message>`);
    assert.equal(user.offline[0]!.with, 'a@b');
    assert.deepEqual(notices.map((n) => n.split(':')[0]), ['offline', 'offline']);
  });

  test("private XML grouped by namespace; elements without one of their own reported; ejabberd's default privacy list → blocklist", async () => {
    const { user, notices } = await read(`<user name='romeo'>
      <query xmlns='jabber:iq:private'><a xmlns='urn:x'/><b xmlns='urn:x'/><c xmlns='urn:y'/><d/></query>
      <query xmlns='jabber:iq:privacy'><default name='Blocked contacts'/><list name='Blocked contacts'><item order='1' action='deny' type='jid' value='Spam@Example.net'/><item order='2' action='deny' type='group' value='G'/></list><list name='other'><item action='deny' type='jid' value='x@y'/></list></query>
      <blocklist xmlns='urn:xmpp:blocking'><item jid='spam@example.net'/><item jid='more@example.net'/></blocklist></user>`);
    assert.deepEqual(user.privateXml, [['urn:x', [`<a xmlns='urn:x'/>`, `<b xmlns='urn:x'/>`]], ['urn:y', [`<c xmlns='urn:y'/>`]]]);
    assert.deepEqual(user.blocklist, ['spam@example.net', 'more@example.net']);
    assert.deepEqual(notices, ['private: private XML <d/> without a namespace of its own', 'privacy: 2 privacy list rules (XEP-0016) not imported: only the default list\'s blocked JIDs become the blocklist']);
  });

  test("a plain password becomes SCRAM keys; ejabberd's old 'scram:' password attribute is read as keys; SCRAM elements win", async () => {
    const plain = await read(`<user name='b' password='benvolio-secret'/>`);
    assert.equal(plain.user.credentialSource, 'password');
    assert.ok(verifyPasswordAgainst(plain.user.credentials.sha256!, 'sha256', 'benvolio-secret'));
    const legacy = await read(`<user name='r' password='scram:emd1OVJsZ053dmxISy9Ud242UUxlOEVHaWlnPQ==,L2J1Yk8xeURlTnZublJPR0hFb0pPRDhuQlFRPQ==,V2g0UFBKMHJSK2lteExQUzRmQUhHQT09,4096'/>`);
    assert.ok(verifyPasswordAgainst(legacy.user.credentials.sha1!, 'sha1', 'romeo-secret'));
    assert.ok(legacy.user.doubleEncoded);
    const both = await read(`<user name='j' password='not-this'>${PROSODY_JULIET.toString()}</user>`);
    assert.equal(both.user.credentialSource, 'scram');
    assert.ok(verifyPasswordAgainst(both.user.credentials.sha1!, 'sha1', 'juliet-secret'));
  });

  test("Prosody before 0.12 (no <scram-credentials/>): hex keys, raw salt and iteration_count as extended-xep0227 attributes → SCRAM-SHA-1 keys that verify the password", async () => {
    const ext = `xmlns:ns1='http://prosody.im/protocol/extended-xep0227'`;
    const attrs = `${ext} ns1:stored_key='e2816d443528c2340c84da882f94915fd79f7f5b' xmlns:ns2='http://prosody.im/protocol/extended-xep0227' ns2:server_key='d326ec5ebe935b18460cc38574d2c4e403d29989' xmlns:ns3='http://prosody.im/protocol/extended-xep0227' ns3:salt='4f3d2a1e-7b6c-4e5f-9a8b-0c1d2e3f4a5b' xmlns:ns4='http://prosody.im/protocol/extended-xep0227' ns4:iteration_count='4096'`;
    const { user } = await read(`<user name='mercutio' ${attrs}/>`);
    assert.equal(user.credentialSource, 'scram');
    assert.equal(user.credentials.sha256, undefined);
    assert.equal(user.credentials.sha1!.iterations, 4096);
    assert.equal(user.credentials.sha1!.salt.toString(), '4f3d2a1e-7b6c-4e5f-9a8b-0c1d2e3f4a5b');
    assert.ok(verifyPasswordAgainst(user.credentials.sha1!, 'sha1', 'mercutio-secret'));
    // Other account fields in that namespace (Prosody 0.12 keeps e.g. 'updated' there) are no password.
    assert.equal((await read(`<user name='m' ${ext} ns1:updated='1700000000'/>`)).user.credentialSource, 'none');
    await assert.rejects(read(`<user name='m' ${ext} ns1:stored_key='e2816d443528c2340c84da882f94915fd79f7f5b'/>`), /stored_key, server_key, salt and iteration_count go together/);
    await assert.rejects(read(`<user name='m' ${attrs.replace('e2816d44', 'zz816d44')}/>`), /40 hex digits/);
  });

  test('a password SASLprep prohibits → account without credentials, reported; no password at all → no credentials', async () => {
    const { user, notices } = await read(`<user name='x' password='a&#xE000;b'/>`);
    assert.equal(user.credentialSource, 'none');
    assert.deepEqual(user.credentials, {});
    assert.match(notices[0]!, /SASLprep prohibits/);
    assert.equal((await read(`<user name='y'/>`)).user.credentialSource, 'none');
  });

  test('unknown children → reported, not imported; a MAM archive is kept for the importer (read item by item as it writes)', async () => {
    const { user, notices } = await read(`<user name='x'><foo xmlns='urn:example'/><archive xmlns='urn:xmpp:pie:0#mam'/></user>`);
    assert.deepEqual(notices.map((n) => n.split(':')[0]), ['unknown']);
    assert.deepEqual(user.archives.map((a) => a.toString()), [`<archive xmlns='urn:xmpp:pie:0#mam'/>`]);
  });

  test("PEP as Prosody writes it: node configuration form, affiliations (the owner's implicit), subscriptions, items in order", async () => {
    const { user, notices } = await read(`<user name='romeo'>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
        <configure node='urn:xmpp:bookmarks:1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>
          <field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#max_items'><value>max</value></field><field var='pubsub#send_last_published_item'><value>never</value></field></x></configure>
        <affiliations node='urn:xmpp:bookmarks:1'><affiliation jid='romeo@a.example' affiliation='owner'/><affiliation jid='Nurse@a.example/x' affiliation='member'/></affiliations>
        <subscriptions node='urn:xmpp:bookmarks:1'><subscription jid='friar@a.example/cell' subscribed='subscribed'/></subscriptions>
        <configure node='urn:xmpp:avatar:metadata'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>authorize</value></field></x></configure>
      </pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'>
        <items node='urn:xmpp:bookmarks:1'><item id='a@conference.a.example'><conference xmlns='urn:xmpp:bookmarks:1' name='A'/></item><item id='b@conference.a.example'><conference xmlns='urn:xmpp:bookmarks:1' name='B'/></item></items>
        <items node='http://jabber.org/protocol/nick'><item id='1'><nick xmlns='http://jabber.org/protocol/nick'>Old</nick></item><item id='2'><nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick></item></items>
      </pubsub></user>`);
    const byName = new Map(user.pep.map((node) => [node.name, node]));
    const bookmarks = byName.get('urn:xmpp:bookmarks:1')!;
    assert.equal(bookmarks.record.config.access_model, 'whitelist');
    assert.equal(bookmarks.record.config.max_items, 'max');
    assert.equal(bookmarks.record.config.send_last_published_item, 'never');
    assert.deepEqual(bookmarks.record.affiliations, { 'nurse@a.example': 'member' });
    assert.deepEqual(bookmarks.record.subscriptions.map((s) => [s.jid, s.deliver]), [['friar@a.example/cell', true]]);
    assert.deepEqual(bookmarks.items.map((i) => [i.id, i.payload]), [
      ['a@conference.a.example', `<conference xmlns='urn:xmpp:bookmarks:1' name='A'/>`],
      ['b@conference.a.example', `<conference xmlns='urn:xmpp:bookmarks:1' name='B'/>`],
    ]);
    // No configuration in the file: XEP-0163's defaults, one item kept (the newest).
    const nick = byName.get('http://jabber.org/protocol/nick')!;
    assert.equal(nick.record.config.access_model, 'presence');
    assert.deepEqual(nick.items.map((i) => i.id), ['2']);
    // A value Herald does not offer keeps the default, and says so.
    assert.equal(byName.get('urn:xmpp:avatar:metadata')!.record.config.access_model, 'presence');
    assert.deepEqual(notices, [`pep: PEP node urn:xmpp:avatar:metadata: pubsub#access_model = 'authorize' is not supported; the default is kept`]);
  });

  test("PEP items: Herald's <delay/> after the payload gives the publish time (not the payload); an id given twice keeps the later item", async () => {
    const { user } = await read(`<user name='romeo'>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>max</value></field></x></configure></pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'>
      <item id='a'><conference xmlns='urn:xmpp:bookmarks:1' name='A'/><delay xmlns='urn:xmpp:delay' stamp='2025-06-01T10:11:12.345Z'/></item>
      <item id='b'><conference xmlns='urn:xmpp:bookmarks:1' name='B'/></item>
      <item id='a'><conference xmlns='urn:xmpp:bookmarks:1' name='A2'/></item>
    </items></pubsub></user>`);
    const [node] = user.pep;
    assert.deepEqual(node!.items.map((i) => [i.id, i.payload, i.stamp]), [
      ['b', `<conference xmlns='urn:xmpp:bookmarks:1' name='B'/>`, undefined],
      ['a', `<conference xmlns='urn:xmpp:bookmarks:1' name='A2'/>`, undefined],
    ]);
    const { user: stamped } = await read(`<user name='romeo'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'><item id='a'><conference xmlns='urn:xmpp:bookmarks:1' name='A'/><delay xmlns='urn:xmpp:delay' stamp='2025-06-01T10:11:12.345Z'/></item></items></pubsub></user>`);
    assert.equal(stamped.pep[0]!.items[0]!.stamp, Date.parse('2025-06-01T10:11:12.345Z'));
    assert.equal(stamped.pep[0]!.items[0]!.payload, `<conference xmlns='urn:xmpp:bookmarks:1' name='A'/>`);
  });

  test('no name, or a name that is not a localpart → error', async () => {
    await assert.rejects(read(`<user password='x'/>`), /without a 'name'/);
    await assert.rejects(read(`<user name='a@b'/>`), /'a@b' is not a valid JID localpart/);
  });
});
