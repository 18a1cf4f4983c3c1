// `herald import` at the storage level (storage/pie/import.ts): all or nothing, errors with
// file:line, hosts and duplicates, dry runs, and a small version of the 20,000-account benchmark.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../storage/sqlite.js';
import { PieImportError, formatImportReport, importPie, type ImportOptions } from '../../storage/pie/import.js';
import { PieFormatError } from '../../storage/pie/format.js';
import { generatePieFile } from '../../bench/pie-import.js';

interface TestContextLike {
  after(fn: () => unknown): void;
}

function setup(t: TestContextLike): { dir: string; store: SqliteStore } {
  const dir = mkdtempSync(join(tmpdir(), 'herald-pie-import-'));
  const store = new SqliteStore({ path: join(dir, 'herald.sqlite') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store };
}

function file(dir: string, name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/** Every row of every table, to show that a failed import changed nothing. */
function snapshot(store: SqliteStore): string {
  const rows = ['accounts', 'kv', 'archive'].map((table) => store.db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2, 3`).all());
  return JSON.stringify(rows);
}

async function rejectsAt(promise: Promise<unknown>, path: string, line: number, reason: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PieFormatError, `PieFormatError, got ${String(err)}`);
    assert.equal(err.file, path);
    assert.equal(err.line, line, `line ${line}: ${err.message}`);
    assert.match(err.reason, reason);
    return true;
  });
}

const options: ImportOptions = { domain: 'a.example' };
const head = [`<?xml version='1.0' encoding='UTF-8'?>`, `<server-data xmlns='urn:xmpp:pie:0'>`, `  <host jid='a.example'>`];
const tail = [`  </host>`, `</server-data>`];
const alice = [`    <user name='alice' password='alice-secret'>`, `      <query xmlns='jabber:iq:roster'><item jid='bob@a.example' subscription='both'/></query>`, `    </user>`];
const bob = [`    <user name='bob' password='bob-secret'><vCard xmlns='vcard-temp'><FN>Bob</FN></vCard></user>`];

describe('pie import: all or nothing', () => {
  test('malformed XML at line 9 → rejected with that line; the accounts before it (message archive included) and the existing data are as they were', async (t) => {
    const { dir, store } = setup(t);
    await store.accounts.create('a.example', 'zed', {});
    await store.map('a.example', 'roster', 'items').set('zed', 'x@y', { jid: 'x@y', subscription: 'none', groups: [] });
    await store.archive('a.example', 'mam', 'messages').append('zed', { stanza: '<message/>' }, { key: 'z1', with: 'x@y', stamp: 1 });
    const before = snapshot(store);
    const aliceWithArchive = [alice[0]!, `      <archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='a1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/><message xmlns='jabber:client' from='bob@a.example/r' to='alice@a.example'><body>hi</body></message></forwarded></result></archive>`, alice[2]!];
    const path = file(dir, 'bad.xml', [...head, ...aliceWithArchive, ...bob, `    <user name='carol'>`, `      <vCard xmlns='vcard-temp'><FN>Carol</vCard>`, `    </user>`, ...tail]);
    await rejectsAt(importPie(store, [path], options), path, 9, /unmatched end tag vCard/);
    assert.equal(snapshot(store), before);
  });

  test("broken SCRAM keys in a user → rejected at the line where that <user> starts, nothing imported", async (t) => {
    const { dir, store } = setup(t);
    const before = snapshot(store);
    const path = file(dir, 'keys.xml', [...head, ...alice, `    <user name='carol'>`, `      <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>`, `        <iter-count>4096</iter-count><salt>!!</salt><server-key>AA==</server-key><stored-key>AA==</stored-key>`, `      </scram-credentials>`, `    </user>`, ...tail]);
    await rejectsAt(importPie(store, [path], options), path, 7, /<user name='carol'>: salt is not base64/);
    assert.equal(snapshot(store), before);
  });

  test('a truncated file → rejected at its last line, nothing imported', async (t) => {
    const { dir, store } = setup(t);
    const path = file(dir, 'cut.xml', [...head, ...alice, ...bob]);
    await rejectsAt(importPie(store, [path], options), path, 7, /truncated/);
    assert.equal(await store.accounts.count('a.example'), 0);
  });

  test('the same user twice (say, a host file next to the main file that includes it) → rejected, nothing imported', async (t) => {
    const { dir, store } = setup(t);
    const first = file(dir, '1.xml', [...head, ...alice, ...tail]);
    const second = file(dir, '2.xml', [...head, ...bob, ...alice, ...tail]);
    await rejectsAt(importPie(store, [first, second], options), second, 5, /user alice appears a second time \(first at .*1\.xml:4\)/);
    assert.equal(await store.accounts.count('a.example'), 0);
  });

  test('a dry run reports what it would import and writes nothing', async (t) => {
    const { dir, store } = setup(t);
    const path = file(dir, 'ok.xml', [...head, ...alice, ...bob, ...tail]);
    const report = await importPie(store, [path], { ...options, dryRun: true });
    assert.equal(report.accounts, 2);
    assert.equal(report.items.roster, 1);
    assert.equal(await store.accounts.count('a.example'), 0);
    assert.match(formatImportReport(report)[0]!, /^Checked \(dry run, nothing written\) 2 accounts into a\.example/);
  });
});

describe('pie import: hosts, existing accounts, report', () => {
  test("users of another host are skipped and counted; a file with other hosts only → refused", async (t) => {
    const { dir, store } = setup(t);
    const mixed = file(dir, 'mixed.xml', [`<server-data xmlns='urn:xmpp:pie:0'>`, `<host jid='other.example'><user name='x'/><user name='y'/></host>`, `<host jid='A.Example'><user name='z'/></host>`, `</server-data>`]);
    const report = await importPie(store, [mixed], options);
    assert.equal(report.accounts, 1, 'the host jid is compared normalised');
    assert.deepEqual(report.otherHosts, { 'other.example': 2 });
    assert.ok(formatImportReport(report).includes(`Skipped 2 users of other.example: this server's domain is a.example.`));
    const other = file(dir, 'other.xml', [`<server-data xmlns='urn:xmpp:pie:0'><host jid='other.example'><user name='x'/></host></server-data>`]);
    await assert.rejects(importPie(store, [other], options), (err: unknown) => err instanceof PieImportError && /users of other\.example only/.test(err.message));
  });

  test('an existing account is kept with its data (listed); replace deletes it and its data first', async (t) => {
    const { dir, store } = setup(t);
    await store.accounts.create('a.example', 'alice', {});
    await store.map('a.example', 'roster', 'items').set('alice', 'old@a.example', { jid: 'old@a.example', subscription: 'none', groups: [] });
    const path = file(dir, 'ok.xml', [...head, ...alice, ...bob, ...tail]);
    const kept = await importPie(store, [path], options);
    assert.deepEqual(kept.existing, ['alice']);
    assert.equal(kept.accounts, 1);
    assert.deepEqual((await store.map('a.example', 'roster', 'items').list('alice')).map((e) => e.key), ['old@a.example']);
    await store.accounts.delete('a.example', 'bob');
    const replaced = await importPie(store, [path], { ...options, replace: true });
    assert.deepEqual(replaced.replaced, ['alice']);
    assert.deepEqual((await store.map('a.example', 'roster', 'items').list('alice')).map((e) => e.key), ['bob@a.example']);
  });

  test('a directory stands for its .xml files; a missing path → refused', async (t) => {
    const { dir, store } = setup(t);
    const sub = join(dir, 'export');
    await import('node:fs').then((fs) => fs.mkdirSync(sub));
    file(sub, 'alice@a.example.xml', [...head, ...alice, ...tail]);
    file(sub, 'bob@a.example.xml', [...head, ...bob, ...tail]);
    file(sub, 'notes.txt', ['not xml']);
    assert.equal((await importPie(store, [sub], options)).accounts, 2);
    await assert.rejects(importPie(store, [join(dir, 'gone.xml')], options), /cannot read .*gone\.xml: no such file/);
  });
});

describe('pie import: speed (small version of bench/pie-import.ts)', () => {
  test('1,000 accounts with 10-contact rosters and vCards import completely', async (t) => {
    const { dir, store } = setup(t);
    const generated = await generatePieFile(join(dir, 'big.xml'), 1000);
    const started = performance.now();
    const report = await importPie(store, [generated.path], { domain: 'localhost' });
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`imported ${report.accounts} accounts (${(generated.bytes / 1024 / 1024).toFixed(1)} MiB) in ${seconds.toFixed(2)} s`);
    assert.equal(report.accounts, 1000);
    assert.equal(report.items.roster, 10000);
    assert.equal(report.items.vcards, 1000);
    assert.equal(await store.accounts.count('localhost'), 1000);
    assert.equal(store.db.prepare(`SELECT count(*) FROM kv WHERE module = 'roster' AND store = 'items'`).pluck().get(), 10000);
  });
});
