// `herald import` and `herald export` as admins run them: the compiled CLI as a child process.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli as run } from './cli-helpers.js';
import { fixture, importInto, loginImported, startServerIn, tempDir, withDatabase } from './pie-helpers.js';

function configIn(dir: string, domain: string): string {
  const file = join(dir, 'herald.yml');
  writeFileSync(file, `domain: ${domain}\ndata_dir: ./data\n`);
  return file;
}

describe('herald import / herald export', () => {
  test('import of an ejabberd export → summary on stdout; export → a file only its owner can read, importable again', async (t) => {
    const dir = tempDir(t);
    const config = configIn(dir, 'montague.example');
    const imported = await run(['import', fixture('ejabberd/20240315-101500.xml'), '--config', config], dir);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /^Imported 3 accounts into montague\.example from 1 file in [\d.]+ s: 5 roster items, 1 pending subscription request, 1 vCard, 1 private XML namespace, 2 offline messages, 1 blocklist, 0 PEP nodes \(0 items\), 0 archived messages\.$/m);
    assert.match(imported.stdout, /2 accounts had SCRAM keys base64-encoded twice \(ejabberd's export\): decoded\./);

    const exported = await run(['export', 'backup.xml', '--config', config], dir);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /^Exported 3 accounts of montague\.example to backup\.xml\.$/m);
    assert.equal(statSync(join(dir, 'backup.xml')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, 'backup.xml'), 'utf8'), /^<\?xml version='1\.0' encoding='UTF-8'\?>\n<server-data xmlns='urn:xmpp:pie:0'>\n  <host jid='montague\.example'>\n    <user name='benvolio'>/);
    const again = await run(['export', 'backup.xml', '--config', config], dir);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /backup\.xml exists already/);

    const other = tempDir(t);
    const reimported = await run(['import', join(dir, 'backup.xml'), '--config', configIn(other, 'montague.example')], other);
    assert.equal(reimported.code, 0, reimported.stderr);
    assert.match(reimported.stdout, /^Imported 3 accounts/);
  });

  test('malformed file → exit 1, FILE:LINE and "Nothing was imported."', async (t) => {
    const dir = tempDir(t);
    const config = configIn(dir, 'localhost');
    writeFileSync(join(dir, 'bad.xml'), `<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='localhost'>\n<user name='a' password='x'/>\n<user name='b'><query xmlns='jabber:iq:roster'></user>\n</host></server-data>\n`);
    const result = await run(['import', 'bad.xml', '--config', config], dir);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `herald: bad.xml:4: unmatched end tag user (not-well-formed)\nNothing was imported.\n`);
    const users = await run(['users', '--config', config], dir);
    assert.equal(users.stdout, '');
  });

  test('malformed file after an earlier import, with --replace → exit 1 naming FILE:LINE; every row of every table as before', async (t) => {
    const dir = tempDir(t);
    const config = configIn(dir, 'montague.example');
    await importInto(join(dir, 'data'), [fixture('ejabberd/20240315-101500.xml')], { domain: 'montague.example' }); // as `herald import` does
    const before = await databaseRows(join(dir, 'data'));
    // A new account, a replacement for an existing one (which --replace would delete first), then line 9 breaks.
    writeFileSync(join(dir, 'broken.xml'), [
      `<?xml version='1.0' encoding='UTF-8'?>`,
      `<server-data xmlns='urn:xmpp:pie:0'>`,
      `  <host jid='montague.example'>`,
      `    <user name='tybalt' password='tybalt-secret'><query xmlns='jabber:iq:roster'><item jid='romeo@montague.example' subscription='none'/></query></user>`,
      `    <user name='romeo' password='new-secret'>`,
      `      <vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard>`,
      `    </user>`,
      `    <user name='sampson' password='s'>`,
      `      <vCard xmlns='vcard-temp'><FN>Sampson</FN></vcard>`,
      `    </user>`,
      `  </host>`,
      `</server-data>`,
    ].join('\n'));
    const result = await run(['import', 'broken.xml', '--replace', '--config', config], dir);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `herald: broken.xml:9: unmatched end tag vcard (not-well-formed)\nNothing was imported.\n`);
    assert.equal(result.stdout, '');
    assert.deepEqual(await databaseRows(join(dir, 'data')), before);
  });

  test('import while the server runs → exit 1, asks to stop it; export works meanwhile', async (t) => {
    const dir = tempDir(t);
    const config = configIn(dir, 'localhost');
    const server = await startServerIn(t, join(dir, 'data'));
    await server.createUser('romeo', 'romeo-secret');
    writeFileSync(join(dir, 'one.xml'), `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='late' password='x'/></host></server-data>`);
    const refused = await run(['import', 'one.xml', '--config', config], dir);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /the database is in use by another process: stop Herald/);
    const exported = await run(['export', '--config', config], dir);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /<user name='romeo'>/);
    (await loginImported(server, 'romeo', 'romeo-secret')).close(); // the server was not disturbed
  });
});

/** Every row of every table of a data directory's database, to show that a refused import changed nothing. */
async function databaseRows(dataDir: string): Promise<Record<string, unknown[]>> {
  return withDatabase(dataDir, async (store) => {
    const tables = store.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all() as string[];
    const rows: Record<string, unknown[]> = {};
    for (const table of tables) rows[table] = store.db.prepare(`SELECT * FROM "${table}" ORDER BY 1, 2`).all();
    assert.ok((rows.accounts?.length ?? 0) > 0, 'the earlier import left accounts');
    return rows;
  });
}
