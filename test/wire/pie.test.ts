// XEP-0227 import and export seen from clients: accounts moved over from Prosody and ejabberd log
// in with their old passwords (SCRAM keys kept, salts and iteration counts as they were) and find
// their roster, vCard, private XML, offline messages, pending requests, blocklist and PEP nodes;
// an export imported into a fresh server gives the same accounts (and the same export).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import { getRoster, itemsOf } from './presence-helpers.js';
import { exportOf, fixture, importInto, loginImported, serverWithImport, startServerIn, tempDir, withDatabase } from './pie-helpers.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importPie } from '../../storage/pie/import.js';
import { FORWARD, MAM, query as mamQuery } from './mam-helpers.js';

const VCARD_GET = `<iq type='get'><vCard xmlns='vcard-temp'/></iq>`;
const BOOKMARKS_GET = `<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`;
const BLOCKLIST_GET = `<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>`;
const NICK_PUBLISH = `<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Romeo M.</nick></item></publish></pubsub></iq>`;

describe('pie: import from Prosody (prosody-migrator output, one file per user)', () => {
  test('imported account logs in with its old password (SCRAM-SHA-1, Prosody salt and 10,000 iterations) and finds roster, vCard and private XML', async (t) => {
    const { server, report } = await serverWithImport(t, 'capulet.example', [fixture('prosody')]);
    assert.equal(report.accounts, 2);
    const juliet = await loginImported(server, 'juliet', 'juliet-secret');
    const items = itemsOf(await getRoster(juliet));
    assert.deepEqual([...items.keys()].sort(), ['romeo@capulet.example', 'tybalt@verona.example']);
    assert.equal(items.get('romeo@capulet.example')?.toString(), `<item jid='romeo@capulet.example' name='Romeo' subscription='both'><group>Friends</group><group>Montagues</group></item>`);
    assert.equal(items.get('tybalt@verona.example')?.toString(), `<item jid='tybalt@verona.example' subscription='none' ask='subscribe'/>`);
    const vcard = await juliet.iq(VCARD_GET);
    assert.equal(vcard.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Juliet Capulet');
    const bookmarks = await juliet.iq(BOOKMARKS_GET);
    const conference = bookmarks.getChild('query', 'jabber:iq:private')?.getChild('storage', 'storage:bookmarks')?.getChild('conference');
    assert.equal(conference?.attrs.jid, 'balcony@conference.capulet.example');
    assert.equal(conference?.getChildText('nick'), 'Juliet');
    juliet.close();
  });

  test("Prosody's pending request (<presence type='subscribe'/> under <user/>) reaches the account when it comes online", async (t) => {
    const { server } = await serverWithImport(t, 'capulet.example', [fixture('prosody')]);
    const juliet = await loginImported(server, 'juliet', 'juliet-secret');
    await getRoster(juliet);
    juliet.send('<presence/>');
    await juliet.waitFor(`<presence type='subscribe' from='nurse@verona.example' to='juliet@capulet.example'/>`);
    juliet.close();
  });

  test('a Prosody 0.11 export (hex keys as extended-xep0227 attributes, no <scram-credentials/>) → the account logs in with its old password over SCRAM-SHA-1', async (t) => {
    const { server, report } = await serverWithImport(t, 'capulet.example', [fixture('prosody-0.11')]);
    assert.deepEqual(report.withoutCredentials, []);
    assert.deepEqual(report.sha1Only, ['mercutio']);
    const mercutio = await loginImported(server, 'mercutio', 'mercutio-secret', { mechanism: 'SCRAM-SHA-1' });
    assert.equal((await mercutio.iq(VCARD_GET)).getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Mercutio');
    mercutio.close();
    await assert.rejects(loginImported(server, 'mercutio', 'wrong-secret', { mechanism: 'SCRAM-SHA-1' }), /not-authorized/);
  });

  test('wrong password for an imported account → not-authorized', async (t) => {
    const { server } = await serverWithImport(t, 'capulet.example', [fixture('prosody')]);
    await assert.rejects(loginImported(server, 'romeo', 'juliet-secret'), /not-authorized/);
  });
});

describe('pie: import from ejabberd (export_piefxis: XInclude, SCRAM base64-encoded twice)', () => {
  test('double-base64 SCRAM-SHA-1 keys log in; offline messages arrive with their original delay stamps', async (t) => {
    const { server, report } = await serverWithImport(t, 'montague.example', [fixture('ejabberd/20240315-101500.xml')]);
    assert.equal(report.accounts, 3);
    assert.equal(report.doubleEncoded, 2);
    const romeo = await loginImported(server, 'romeo', 'romeo-secret');
    await getRoster(romeo);
    romeo.send('<presence/>');
    await romeo.waitFor(`<message from='benvolio@montague.example/street' type='chat' id='ej1'><body>Where the devil should this Romeo be?</body><delay xmlns='urn:xmpp:delay' stamp='2024-03-14T21:03:00.123456Z'/></message>`);
    await romeo.waitFor(`<message from='mercutio@montague.example/square' id='ej2'><subject>Queen Mab</subject><delay xmlns='urn:xmpp:delay' stamp='2024-03-14T21:05:10.000001Z'/></message>`);
    romeo.close();
  });

  test('roster, pending request with its status, vCard, private XML and the privacy-list blocklist are there', async (t) => {
    const { server } = await serverWithImport(t, 'montague.example', [fixture('ejabberd/20240315-101500.xml')]);
    const romeo = await loginImported(server, 'romeo', 'romeo-secret');
    const items = itemsOf(await getRoster(romeo));
    assert.deepEqual([...items.keys()].sort(), ['benvolio@montague.example', 'juliet@capulet.example', 'mercutio@montague.example']);
    assert.equal(items.get('mercutio@montague.example')?.attrs.subscription, 'to');
    assert.equal(items.get('juliet@capulet.example')?.attrs.ask, 'subscribe');
    assert.equal((await romeo.iq(VCARD_GET)).getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Romeo Montague');
    const bookmarks = await romeo.iq(BOOKMARKS_GET);
    assert.equal(bookmarks.getChild('query', 'jabber:iq:private')?.getChild('storage', 'storage:bookmarks')?.getChild('conference')?.attrs.name, 'Sycamore grove');
    const blocklist = await romeo.iq(BLOCKLIST_GET);
    assert.deepEqual(blocklist.getChild('blocklist', 'urn:xmpp:blocking')?.getChildren('item').map((item) => item.attrs.jid), ['rosaline@verona.example']);
    romeo.send('<presence/>');
    await romeo.waitFor(`<presence type='subscribe' from='friar@verona.example' to='romeo@montague.example'><status>A word, my son</status></presence>`);
    romeo.close();
  });

  test('a plain password attribute becomes SCRAM-SHA-1 and -256 keys; a SCRAM-SHA-256-only account logs in with SCRAM-SHA-256', async (t) => {
    const { server, report } = await serverWithImport(t, 'montague.example', [fixture('ejabberd/20240315-101500.xml')]);
    assert.equal(report.fromPassword, 1);
    (await loginImported(server, 'benvolio', 'benvolio-secret', { mechanism: 'SCRAM-SHA-256' })).close();
    (await loginImported(server, 'benvolio', 'benvolio-secret', { mechanism: 'SCRAM-SHA-1' })).close();
    (await loginImported(server, 'mercutio', 'mercutio-secret', { mechanism: 'SCRAM-SHA-256' })).close();
    // The plain password itself is nowhere in the database.
    await server.server.stop();
    const found = await withDatabase(server.dataDir, async (store) => store.db.prepare("SELECT count(*) FROM accounts WHERE credentials LIKE '%benvolio-secret%'").pluck().get());
    assert.equal(found, 0);
  });
});

describe('pie: export → import round trip', () => {
  test('an export imported into a fresh server gives the same logins, data (PEP and message archives included) and export', async (t) => {
    const source = await startServer(t);
    await source.createUser('juliet');
    const romeo = await source.login('romeo');
    await getRoster(romeo);
    await romeo.iq(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' name='Juliet'><group>Verona</group></item></query></iq>`);
    romeo.send(`<presence to='juliet@localhost' type='subscribe'/>`);
    assert.equal((await romeo.iq(`<iq type='set'><vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard></iq>`)).attrs.type, 'result');
    assert.equal((await romeo.iq(`<iq type='set'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs></query></iq>`)).attrs.type, 'result');
    assert.equal((await romeo.iq(`<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='spam@example.net'/></block></iq>`)).attrs.type, 'result');
    assert.equal((await romeo.iq(NICK_PUBLISH)).attrs.type, 'result');
    romeo.send(`<message to='juliet@localhost' type='chat' id='rt1'><body>Meet me at the balcony &amp; bring a ladder</body></message>`);
    const archived = (user: string) => source.server.store.archive('localhost', 'mam', 'messages').count(user);
    const stored = async () => (await source.server.store.archive('localhost', 'offline', 'messages').count('juliet')) === 1 && (await archived('romeo')) === 1 && (await archived('juliet')) === 1;
    // Archived messages are committed a little after the offline one: wait for all three.
    const exported = await exportOnceStored(source, stored, (text) => /<offline-messages><message [^>]*id='rt1'/.test(text) && text.match(/<result xmlns='urn:xmpp:mam:2'/g)?.length === 2);
    // Both message archives travel (XEP-0313 in Prosody's <archive xmlns='urn:xmpp:pie:0#mam'/>).
    assert.equal(exported.match(/<archive xmlns='urn:xmpp:pie:0#mam'>/g)?.length, 2);
    const [sent] = await source.server.store.archive('localhost', 'mam', 'messages').list('romeo');

    // When the nick was published travels too (a <delay/> after the item's payload).
    assert.match(exported, /<nick xmlns='http:\/\/jabber\.org\/protocol\/nick'>Romeo M\.<\/nick><delay xmlns='urn:xmpp:delay' stamp='\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'\/><\/item>/);
    const { server: target, report } = await serverWithImport(t, 'localhost', [writeTemp(t, exported)]);
    assert.equal(report.accounts, 2);
    // Nothing lost or changed on the way: the new server exports exactly what the old one did.
    assert.equal(await exportOf(target.dataDir, { domain: 'localhost' }), exported);
    const juliet = await loginImported(target, 'juliet', 'password', { mechanism: 'SCRAM-SHA-256' });
    await getRoster(juliet);
    juliet.send('<presence/>');
    await juliet.waitFor(`<message id='rt1' type='chat'><body>Meet me at the balcony &amp; bring a ladder</body><delay xmlns='urn:xmpp:delay'/></message>`);
    const romeo2 = await loginImported(target, 'romeo', 'password');
    // The archive answers with the id and time the message had on the old server.
    const history = await mamQuery(romeo2);
    assert.deepEqual(history.ids, [sent!.key]);
    assert.deepEqual(history.bodies, ['Meet me at the balcony & bring a ladder']);
    assert.equal(history.results[0]!.getChild('result', MAM)?.getChild('forwarded', FORWARD)?.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp, new Date(sent!.stamp).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    assert.equal(itemsOf(await getRoster(romeo2)).get('juliet@localhost')?.toString(), `<item jid='juliet@localhost' name='Juliet' subscription='none' ask='subscribe'><group>Verona</group></item>`);
    assert.equal((await romeo2.iq(VCARD_GET)).getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Romeo');
    const prefs = await romeo2.iq(`<iq type='get'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>`);
    assert.equal(prefs.getChild('query', 'jabber:iq:private')?.getChild('prefs', 'urn:example:prefs')?.getChildText('theme'), 'dark');
    assert.deepEqual((await romeo2.iq(BLOCKLIST_GET)).getChild('blocklist', 'urn:xmpp:blocking')?.getChildren('item').map((i) => i.attrs.jid), ['spam@example.net']);
    const nick = await romeo2.iq(`<iq type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/nick'/></pubsub></iq>`);
    const item = nick.getChild('pubsub', 'http://jabber.org/protocol/pubsub')?.getChild('items')?.getChild('item');
    assert.equal(item?.attrs.id, 'current');
    assert.equal(item?.getChild('nick', 'http://jabber.org/protocol/nick')?.text(), 'Romeo M.');
    juliet.close();
    romeo2.close();
  });

  test('the pending request exported from one server is delivered by the other', async (t) => {
    const source = await startServer(t);
    await source.createUser('juliet');
    const romeo = await source.login('romeo');
    romeo.send(`<presence to='juliet@localhost' type='subscribe' id='sub1'/>`);
    const exported = await exportOnceStored(source, async () => (await source.server.store.map('localhost', 'presence', 'pending_in').count('juliet')) === 1, "type='subscribe'");
    // As Prosody and ejabberd read it: a jabber:client subscribe from the contact, under <user/>.
    assert.match(exported, /<presence (?=[^>]*xmlns='jabber:client')(?=[^>]*type='subscribe')(?=[^>]*from='romeo@localhost')[^>]*\/>/);
    const { server: target } = await serverWithImport(t, 'localhost', [writeTemp(t, exported)]);
    const juliet = await loginImported(target, 'juliet', 'password');
    await getRoster(juliet);
    juliet.send('<presence/>');
    await juliet.waitFor(`<presence type='subscribe' from='romeo@localhost' to='juliet@localhost'/>`);
    juliet.close();
  });
});

describe('pie: conflicts and a running server', () => {
  test('an account that exists is kept (old password works, file data skipped); --replace swaps in the file’s account', async (t) => {
    const dataDir = tempDir(t);
    const server = await startServerIn(t, dataDir);
    await server.createUser('romeo', 'old-password');
    await server.server.stop();
    const file = writeTemp(t, `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='romeo' password='new-password'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='both'/></query></user></host></server-data>`);
    const kept = await importInto(dataDir, [file], { domain: 'localhost' });
    assert.deepEqual(kept.existing, ['romeo']);
    await server.start();
    (await loginImported(server, 'romeo', 'old-password')).close();
    await assert.rejects(loginImported(server, 'romeo', 'new-password'), /not-authorized/);
    await server.server.stop();
    const replaced = await importInto(dataDir, [file], { domain: 'localhost', replace: true });
    assert.deepEqual(replaced.replaced, ['romeo']);
    await server.start();
    const romeo = await loginImported(server, 'romeo', 'new-password');
    assert.deepEqual([...itemsOf(await getRoster(romeo)).keys()], ['juliet@localhost']);
    romeo.close();
  });

  test('import while the server has the database open → refused, nothing written', async (t) => {
    const server = await startServer(t);
    const file = writeTemp(t, `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='late' password='x'/></host></server-data>`);
    await assert.rejects(
      withDatabase(server.dataDir, (store) => importPie(store, [file], { domain: 'localhost' })),
      /database is in use by another process: stop Herald/,
    );
    assert.equal(await server.server.store.accounts.exists('localhost', 'late'), false);
  });
});

/**
 * The export of a running server's domain (written, like `herald export`, while it runs) once
 * `stored` holds. `stored` asks the server's own connection, which sees its writes before their
 * group commit (storage/sqlite.ts); the export's connection sees them only after it, hence the
 * wait before exporting.
 */
async function exportOnceStored(server: TestServer, stored: () => Promise<boolean>, expected: string | ((exported: string) => boolean), timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!(await stored())) {
    if (Date.now() > deadline) assert.fail('the server did not store it in time');
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 10));
  }
  for (;;) {
    // Exporting while the server's write is still uncommitted would stall both (one thread): wait first.
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 20));
    const exported = await exportOf(server.dataDir, { domain: 'localhost' });
    if (typeof expected === 'string' ? exported.includes(expected) : expected(exported)) return exported;
    if (Date.now() > deadline) assert.fail(`the export has no ${typeof expected === 'string' ? expected : 'what the test waits for'}:\n${exported}`);
  }
}

function writeTemp(t: { after(fn: () => unknown): void }, text: string): string {
  const file = join(tempDir(t), 'export.xml');
  writeFileSync(file, text);
  return file;
}
