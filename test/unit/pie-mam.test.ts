// Message archives (XEP-0313) in `herald import` / `herald export` (storage/pie/mam.ts): Prosody's
// <archive xmlns='urn:xmpp:pie:0#mam'/> into the mam module's archive with its ids, stamps, peers
// and order; Herald's archive out in the same shape; export → import → export without loss.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '../../storage/sqlite.js';
import { formatImportReport, importPie, type ImportReport } from '../../storage/pie/import.js';
import { exportPie, exportPieSplit } from '../../storage/pie/export.js';
import { parseXml } from '../../server/xml/parser.js';
import { IMPORT_XML_LIMITS } from '../../storage/pie/reader.js';
import type { StoredMessage } from '../../modules/mam/store.js';

interface TestContextLike {
  after(fn: () => unknown): void;
}

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/xep0227/prosody-mam/juliet@capulet.example.xml', import.meta.url));
const DOMAIN = 'capulet.example';

function tempDir(t: TestContextLike): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-pie-mam-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function openStore(t: TestContextLike, dir: string, name = 'herald.sqlite'): SqliteStore {
  const store = new SqliteStore({ path: join(dir, name) });
  t.after(() => store.close());
  return store;
}

const archiveOf = (store: SqliteStore, user: string) => store.archive<StoredMessage>(DOMAIN, 'mam', 'messages').list(user);

async function exportText(store: SqliteStore, domain = DOMAIN): Promise<string> {
  let text = '';
  await exportPie(store, { write: async (chunk) => void (text += chunk) }, { domain });
  return text;
}

function writeFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const userFile = (archive: string, user = 'juliet', extra = '') =>
  `<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='${DOMAIN}'>\n${extra}<user name='${user}'><archive xmlns='urn:xmpp:pie:0#mam'>${archive}</archive></user>\n</host>\n</server-data>\n`;
const result = (id: string, stamp: string, message: string) =>
  `<result xmlns='urn:xmpp:mam:2' id='${id}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='${stamp}'/>${message}</forwarded></result>`;
const chat = (from: string, to: string, body: string, attrs = "type='chat'") => `<message xmlns='jabber:client' ${attrs} from='${from}' to='${to}'><body>${body}</body></message>`;

describe('pie: MAM archives from Prosody', () => {
  test("Prosody's <archive/> → the mam archive: result ids as keys, delay stamps (microseconds cut to ms), peer from from/to, file order", async (t) => {
    const store = openStore(t, tempDir(t));
    const report = await importPie(store, [FIXTURE], { domain: DOMAIN });
    assert.equal(report.items.archived, 4);
    assert.deepEqual(report.warnings, []);
    const items = await archiveOf(store, 'juliet');
    assert.deepEqual(items.map((i) => i.key), ['jN4uJ8xQZ7Yb0Kp2', 'c3Wq9rLh1TzM5aVe', 'Ue7Hf2nP0sXk4RgB', 'p9Lz2Ws8QeKa1Vt4']);
    assert.deepEqual(items.map((i) => new Date(i.stamp).toISOString()), ['2024-03-15T10:00:00.123Z', '2024-03-15T10:01:30.000Z', '2024-03-15T10:05:00.500Z', '2024-03-15T10:06:12.000Z']);
    // Received: the sender's JID as written (full); sent: the 'to' as addressed, as live archiving keeps them.
    assert.deepEqual(items.map((i) => i.with), ['romeo@capulet.example/orchard', 'romeo@capulet.example', 'nurse@verona.example/kitchen', 'romeo@capulet.example']);
    // Stored as the mam module stores live messages: no xmlns, everything else as it was.
    assert.equal(items[0]!.value.stanza, `<message type='chat' to='juliet@capulet.example/balcony' id='m1' from='romeo@capulet.example/orchard'><body>But soft, what light through yonder window breaks?</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`);
    assert.equal(items[3]!.value.stanza, `<message type='chat' to='romeo@capulet.example' id='m4' from='juliet@capulet.example/balcony'><body>Parting is such sweet sorrow &amp; so on</body></message>`);
    assert.match(formatImportReport(report)[0]!, /, 4 archived messages\.$/);
    // History older than the mam module's default retention would go at the next start: said.
    assert.equal(report.oldestArchived, Date.parse('2024-03-15T10:00:00.123Z'));
    assert.ok(formatImportReport(report).some((line) => /^The oldest archived message is from 2024-03-15: .*modules\.mam\.retention/.test(line)));
    assert.ok(!formatImportReport({ ...report, oldestArchived: Date.now() - 86_400_000 }).some((line) => line.includes('retention')));
  });

  test('export writes the archive as Prosody does, oldest first: <archive><result id><forwarded><delay stamp/><message xmlns=jabber:client/>', async (t) => {
    const store = openStore(t, tempDir(t));
    await importPie(store, [FIXTURE], { domain: DOMAIN });
    const exported = await exportText(store);
    const user = parseXml(exported.replace(/^<\?xml[^>]*\?>\s*/, '')).getChild('host')!.getChild('user')!;
    const archive = user.getChild('archive', 'urn:xmpp:pie:0#mam');
    assert.ok(archive, exported);
    const results = archive.elements();
    assert.deepEqual(results.map((r) => [r.name, r.attrs.xmlns, r.attrs.id]), [
      ['result', 'urn:xmpp:mam:2', 'jN4uJ8xQZ7Yb0Kp2'], ['result', 'urn:xmpp:mam:2', 'c3Wq9rLh1TzM5aVe'],
      ['result', 'urn:xmpp:mam:2', 'Ue7Hf2nP0sXk4RgB'], ['result', 'urn:xmpp:mam:2', 'p9Lz2Ws8QeKa1Vt4'],
    ]);
    const forwarded = results.map((r) => r.getChild('forwarded', 'urn:xmpp:forward:0')!);
    assert.deepEqual(forwarded.map((f) => f.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp), ['2024-03-15T10:00:00.123Z', '2024-03-15T10:01:30Z', '2024-03-15T10:05:00.500Z', '2024-03-15T10:06:12Z']);
    const first = forwarded[0]!.getChild('message', 'jabber:client');
    assert.equal(first?.attrs.from, 'romeo@capulet.example/orchard');
    assert.equal(first?.getChildText('body'), 'But soft, what light through yonder window breaks?');
    // One message a line, so a file is readable and an editor can find one.
    assert.equal(exported.split('\n').filter((line) => line.trimStart().startsWith("<result xmlns='urn:xmpp:mam:2'")).length, 4);
  });

  test('export → import → export gives the same file and the same archive rows (ids, stamps, peers, order), across export pages', async (t) => {
    const dir = tempDir(t);
    const source = openStore(t, dir, 'a.sqlite');
    await importPie(source, [FIXTURE], { domain: DOMAIN });
    // More than one export page (500) of messages, each a millisecond apart.
    const archive = source.archive<StoredMessage>(DOMAIN, 'mam', 'messages');
    await source.transaction('exclusive', async () => {
      for (let i = 0; i < 1203; i++) {
        const stanza = `<message type='chat' from='juliet@capulet.example/balcony' to='romeo@capulet.example' id='n${i}'><body>line ${i}</body></message>`;
        await archive.append('juliet', { stanza }, { key: `id-${i}`, with: 'romeo@capulet.example', stamp: Date.UTC(2024, 3, 1) + i });
      }
    });
    const first = await exportText(source);
    const target = openStore(t, dir, 'b.sqlite');
    const report = await importPie(target, [writeFile(dir, 'export.xml', first)], { domain: DOMAIN });
    assert.equal(report.items.archived, 1207);
    assert.equal(await exportText(target), first);
    const rows = (items: Awaited<ReturnType<typeof archiveOf>>) => items.map(({ key, stamp, with: peer, value }) => ({ key, stamp, peer, value }));
    assert.deepEqual(rows(await archiveOf(target, 'juliet')), rows(await archiveOf(source, 'juliet')));
  });

  test('re-import with --replace → the archive once, not twice; an id given twice in a file → kept once, reported', async (t) => {
    const dir = tempDir(t);
    const store = openStore(t, dir);
    await importPie(store, [FIXTURE], { domain: DOMAIN });
    await importPie(store, [FIXTURE], { domain: DOMAIN, replace: true });
    assert.equal((await archiveOf(store, 'juliet')).length, 4);
    const skipped = await importPie(store, [FIXTURE], { domain: DOMAIN });
    assert.deepEqual(skipped.existing, ['juliet']);
    assert.equal((await archiveOf(store, 'juliet')).length, 4);

    const twice = writeFile(dir, 'twice.xml', userFile(
      result('same', '2024-01-01T00:00:00Z', chat('a@b.example/x', 'romeo@capulet.example', 'first')) +
      result('same', '2024-01-01T00:00:01Z', chat('a@b.example/x', 'romeo@capulet.example', 'second')), 'romeo'));
    const report = await importPie(store, [twice], { domain: DOMAIN });
    const items = await archiveOf(store, 'romeo');
    assert.deepEqual(items.map((i) => i.value.stanza.includes('first')), [true]);
    assert.deepEqual(report.warnings.map((w) => [w.line, w.kind, w.message]), [[3, 'mam', "archive item 'same' of romeo@capulet.example appears twice: the first is kept"]]);
  });

  test('bad items → skipped with a FILE:LINE notice each (no message, bad or missing stamp, over the stanza limit, no peer, not a result); groupchat counted once; no id → a new one', async (t) => {
    const dir = tempDir(t);
    const store = openStore(t, dir);
    const path = writeFile(dir, 'bad.xml', userFile([
      `<result xmlns='urn:xmpp:mam:2' id='nomsg'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></forwarded></result>`,
      result('badstamp', 'yesterday', chat('r@capulet.example/x', 'juliet@capulet.example', 'a')),
      `<result xmlns='urn:xmpp:mam:2' id='nostamp'><forwarded xmlns='urn:xmpp:forward:0'>${chat('r@capulet.example/x', 'juliet@capulet.example', 'b')}</forwarded></result>`,
      result('big', '2024-01-01T00:00:00Z', chat('r@capulet.example/x', 'juliet@capulet.example', 'x'.repeat(2000))),
      result('nopeer', '2024-01-01T00:00:00Z', `<message xmlns='jabber:client' to='juliet@capulet.example'><body>c</body></message>`),
      `<item xmlns='urn:example' id='other'/>`,
      result('gc1', '2024-01-01T00:00:00Z', chat('room@muc.example/nick', 'juliet@capulet.example', 'd', "type='groupchat'")),
      result('gc2', '2024-01-01T00:00:00Z', chat('room@muc.example/nick', 'juliet@capulet.example', 'e', "type='groupchat'")),
      `<result xmlns='urn:xmpp:mam:2'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-02T00:00:00Z'/>${chat('r@capulet.example/x', 'juliet@capulet.example', 'kept')}</forwarded></result>`,
      // Our own stanza-id in the stored message is dropped (the result id stands for it); others stay.
      result('ok', '2024-01-03T00:00:00Z', `<message xmlns='jabber:client' from='r@capulet.example/x' to='juliet@capulet.example'><body>ok</body><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.example' id='ok'/><stanza-id xmlns='urn:xmpp:sid:0' by='r@capulet.example' id='theirs'/></message>`),
    ].join('')));
    const report = await importPie(store, [path], { domain: DOMAIN, maxStanzaBytes: 1024 });
    const where = (w: ImportReport['warnings'][number]) => `${w.file}:${w.line}`;
    assert.deepEqual(new Set(report.warnings.map(where)), new Set([`${path}:3`]));
    const messages = report.warnings.map((w) => w.message);
    assert.equal(messages.length, 8, messages.join('\n'));
    assert.match(messages[0]!, /^archive item 'nomsg' of juliet@capulet\.example: no <forwarded><message\/><\/forwarded>, not imported$/);
    assert.match(messages[1]!, /'badstamp'.*stamp 'yesterday' is not a XEP-0082 DateTime/);
    assert.match(messages[2]!, /'nostamp'.*no <delay\/> stamp/);
    assert.match(messages[3]!, /'big'.*\d+ bytes, larger than the stanza limit \(1024 bytes\)/);
    assert.match(messages[4]!, /'nopeer'.*no valid 'to' and 'from'/);
    assert.match(messages[5]!, /'other'.*<item\/> is not a urn:xmpp:mam:2 <result\/>/);
    assert.match(messages[6]!, /without an 'id': imported as \S+/);
    assert.match(messages[7]!, /^2 groupchat messages in the archive of juliet@capulet\.example not imported/);
    const items = await archiveOf(store, 'juliet');
    assert.equal(items.length, 2);
    assert.ok(items[0]!.key && items[0]!.key !== '' && messages[6]!.endsWith(items[0]!.key));
    assert.equal(items[1]!.key, 'ok');
    assert.equal(items[1]!.value.stanza, `<message from='r@capulet.example/x' to='juliet@capulet.example'><body>ok</body><stanza-id xmlns='urn:xmpp:sid:0' by='r@capulet.example' id='theirs'/></message>`);
  });

  test('a malformed file after 100 users with archives (written while the rest is read) → rejected at its line, no archive row or account left', async (t) => {
    const dir = tempDir(t);
    const store = openStore(t, dir);
    await store.archive<StoredMessage>(DOMAIN, 'mam', 'messages').append('zed', { stanza: '<message/>' }, { key: 'z1', with: 'x@y', stamp: 1 });
    const users = Array.from({ length: 100 }, (_, i) =>
      `<user name='u${i}'><archive xmlns='urn:xmpp:pie:0#mam'>${result(`a${i}`, '2024-01-01T00:00:00Z', chat('r@capulet.example/x', `u${i}@capulet.example`, 'hello'))}</archive></user>\n`).join('');
    const path = writeFile(dir, 'broken.xml', `<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='${DOMAIN}'>\n${users}<user name='tybalt'><vCard xmlns='vcard-temp'><FN>T</vCard></user>\n</host>\n</server-data>\n`);
    await assert.rejects(importPie(store, [path], { domain: DOMAIN }), /broken\.xml:103: .*vCard/);
    assert.deepEqual(store.db.prepare('SELECT owner FROM archive').pluck().all(), ['zed']);
    assert.equal(await store.accounts.count(DOMAIN), 0);
  });
  test('--split (one file per user, the archive written a page at a time) into a directory that has the file already → EEXIST, the file untouched', async (t) => {
    const dir = tempDir(t);
    const store = openStore(t, dir);
    await importPie(store, [FIXTURE], { domain: DOMAIN });
    const split = join(dir, 'split');
    await exportPieSplit(store, split, { domain: DOMAIN });
    const written = readFileSync(join(split, `juliet@${DOMAIN}.xml`), 'utf8');
    assert.equal(written.match(/<result xmlns='urn:xmpp:mam:2'/g)?.length, 4);
    await assert.rejects(exportPieSplit(store, split, { domain: DOMAIN }), (err: NodeJS.ErrnoException) => err.code === 'EEXIST');
    assert.equal(readFileSync(join(split, `juliet@${DOMAIN}.xml`), 'utf8'), written);
  });
  test("a user whose archive is over the reader's limit for one <user/> (64 MiB; 4 KiB here) → rejected with the line and the limit, nothing written", async (t) => {
    const dir = tempDir(t);
    const store = openStore(t, dir);
    const results = Array.from({ length: 100 }, (_, i) => result(`x${i}`, '2024-01-01T00:00:00Z', chat('r@capulet.example/x', 'juliet@capulet.example', `line ${i}`)) + '\n').join('');
    const path = writeFile(dir, 'big.xml', userFile(`\n${results}`));
    const limit = IMPORT_XML_LIMITS.maxStanzaBytes;
    IMPORT_XML_LIMITS.maxStanzaBytes = 4096;
    t.after(() => void (IMPORT_XML_LIMITS.maxStanzaBytes = limit));
    await assert.rejects(importPie(store, [path], { domain: DOMAIN }), /big\.xml:\d+: a <user\/> larger than 4096 bytes, the most one account's data \(message archive included\) may take up in a file$/);
    IMPORT_XML_LIMITS.maxStanzaBytes = limit;
    assert.equal(store.db.prepare('SELECT count(*) FROM archive').pluck().get(), 0);
  });
});
