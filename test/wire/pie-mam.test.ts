// Message archives moved with `herald import` (XEP-0227, Prosody's <archive xmlns='urn:xmpp:pie:0#mam'/>)
// seen from a client: after the move, a MAM query (XEP-0313) returns the imported messages under
// their original archive ids with their original delay stamps, and a client that synced before the
// move pages on from an id it knows.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, loginImported, serverWithImport, tempDir } from './pie-helpers.js';
import { FORWARD, MAM, forwardedOf, query } from './mam-helpers.js';

/** Keeps archived messages forever: with the default retention (365 days) the server would delete these 2024 messages at its start. */
const serverWithArchive = (t: { after(fn: () => unknown): void }, files: string[]) =>
  serverWithImport(t, 'capulet.example', files, {}, { modules: { mam: { retention: '0' } } });

const IDS = ['jN4uJ8xQZ7Yb0Kp2', 'c3Wq9rLh1TzM5aVe', 'Ue7Hf2nP0sXk4RgB', 'p9Lz2Ws8QeKa1Vt4'];

describe('pie: MAM archives imported from Prosody', () => {
  test('imported archive → MAM query returns the messages with their original ids and delay stamps, oldest first', async (t) => {
    const { server, report } = await serverWithArchive(t, [fixture('prosody-mam')]);
    assert.equal(report.items.archived, 4);
    const juliet = await loginImported(server, 'juliet', 'juliet-secret');
    const answer = await query(juliet);
    assert.equal(answer.iq.attrs.type, 'result', answer.iq.toString());
    assert.deepEqual(answer.ids, IDS);
    assert.deepEqual(answer.results.map((r) => r.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp),
      ['2024-03-15T10:00:00Z', '2024-03-15T10:01:30Z', '2024-03-15T10:05:00Z', '2024-03-15T10:06:12Z']);
    assert.deepEqual(answer.bodies, ['But soft, what light through yonder window breaks?', 'O Romeo, Romeo, wherefore art thou Romeo?', 'Madam! Your mother calls.', 'Parting is such sweet sorrow & so on']);
    const first = forwardedOf(answer.results[0]!);
    assert.equal(first.attrs.from, 'romeo@capulet.example/orchard');
    assert.equal(first.attrs.xmlns, 'jabber:client');
    assert.deepEqual([answer.first, answer.last, answer.count, answer.complete], [IDS[0], IDS[3], '4', 'true']);
    juliet.close();
  });

  test("RSM after = an imported id → the messages after it; 'with' = the contact's bare JID → only that conversation", async (t) => {
    const { server } = await serverWithArchive(t, [fixture('prosody-mam')]);
    const juliet = await loginImported(server, 'juliet', 'juliet-secret');
    const page = await query(juliet, { rsm: `<max>2</max><after>${IDS[0]}</after>` });
    assert.deepEqual(page.ids, [IDS[1], IDS[2]]);
    assert.equal(page.complete, 'false');
    const rest = await query(juliet, { rsm: `<max>2</max><after>${page.last}</after>` });
    assert.deepEqual(rest.ids, [IDS[3]]);
    assert.equal(rest.complete, 'true');
    const withRomeo = await query(juliet, { fields: { with: 'romeo@capulet.example' } });
    assert.deepEqual(withRomeo.ids, [IDS[0], IDS[1], IDS[3]]);
    // New messages are archived after the imported ones.
    juliet.send(`<message to='juliet@capulet.example/r1' type='chat' id='new1'><body>Anon, good nurse!</body></message>`);
    await juliet.waitFor(`<message id='new1'/>`);
    const latest = await query(juliet, { rsm: `<after>${IDS[3]}</after>` });
    assert.deepEqual(latest.bodies, ['Anon, good nurse!']);
    juliet.close();
  });

  test('RSM after = an id the file did not have → item-not-found; a skipped item (no stamp) is not in the archive', async (t) => {
    const dir = tempDir(t, 'herald-pie-mam-');
    const file = join(dir, 'juliet.xml');
    writeFileSync(file, `<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.example'><user name='juliet' password='juliet-secret'><archive xmlns='urn:xmpp:pie:0#mam'>`
      + `<result xmlns='urn:xmpp:mam:2' id='nostamp'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='romeo@capulet.example/o' to='juliet@capulet.example'><body>lost</body></message></forwarded></result>`
      + `<result xmlns='urn:xmpp:mam:2' id='kept'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-03-15T10:00:00Z'/><message xmlns='jabber:client' from='romeo@capulet.example/o' to='juliet@capulet.example'><body>kept</body></message></forwarded></result>`
      + `</archive></user></host></server-data>\n`);
    const { server, report } = await serverWithArchive(t, [file]);
    assert.deepEqual(report.warnings.map((w) => `${w.line} ${w.kind}`), ['1 mam']);
    const juliet = await loginImported(server, 'juliet', 'juliet-secret');
    assert.deepEqual((await query(juliet)).ids, ['kept']);
    const missing = await query(juliet, { rsm: `<after>nostamp</after>` });
    assert.equal(missing.iq.attrs.type, 'error');
    assert.ok(missing.iq.getChild('error')?.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), missing.iq.toString());
    juliet.close();
  });
});
