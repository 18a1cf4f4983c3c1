import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../../storage/sqlite.js';
import { tempDatabase } from '../helpers/temp-database.js';
import { deriveScramCredentials } from '../../server/sasl/scram.js';

const creds = (password: string) => ({ sha1: deriveScramCredentials('sha1', password, undefined, 16) });

describe('storage: account cache', () => {
  test('another process writing the database (the CLI) is seen at once: created, changed, deleted', async (t) => {
    const path = tempDatabase(t);
    const server = new SqliteStore({ path });
    const cli = new SqliteStore({ path });
    t.after(async () => {
      await server.close();
      await cli.close();
    });
    assert.equal(await server.accounts.exists('localhost', 'romeo'), false); // cached as missing
    await cli.accounts.create('localhost', 'romeo', creds('one'));
    assert.equal(await server.accounts.exists('localhost', 'romeo'), true);
    const before = await server.accounts.get('localhost', 'romeo');
    await cli.accounts.setCredentials('localhost', 'romeo', creds('two'));
    const after = await server.accounts.get('localhost', 'romeo');
    assert.notDeepEqual(after?.credentials.sha1?.storedKey, before?.credentials.sha1?.storedKey);
    await cli.accounts.delete('localhost', 'romeo');
    assert.equal(await server.accounts.get('localhost', 'romeo'), null);
  });

  test("the server's own writes update what it reads", async (t) => {
    const store = new SqliteStore({ path: ':memory:' });
    t.after(() => store.close());
    assert.equal(await store.accounts.get('localhost', 'juliet'), null);
    await store.accounts.create('localhost', 'juliet', creds('x'));
    assert.ok(await store.accounts.get('localhost', 'juliet'));
    await store.accounts.delete('localhost', 'juliet');
    assert.equal(await store.accounts.exists('localhost', 'juliet'), false);
  });
});

describe('storage: account deletion', () => {
  test("deleting an account removes its items from every archive store, also one this process never opened, and no one else's", async (t) => {
    const path = tempDatabase(t);
    const server = new SqliteStore({ path });
    await server.accounts.create('localhost', 'romeo', creds('one'));
    await server.archive<string>('localhost', 'mam', 'messages').append('romeo', 'archived');
    await server.archive<string>('localhost', 'offline', 'messages').append('romeo', 'waiting');
    await server.archive<string>('localhost', 'offline', 'messages').append('juliet', 'hers');
    await server.close();
    // The CLI (herald deluser) opens no module stores: the deletion must still find them.
    const cli = new SqliteStore({ path });
    t.after(() => cli.close());
    assert.equal(await cli.accounts.delete('localhost', 'romeo'), true);
    const owners = cli.db.prepare('SELECT owner, value FROM archive ORDER BY id').all();
    assert.deepEqual(owners, [{ owner: 'juliet', value: '"hers"' }]);
    // Appends no longer pay for an index that only deletion used (migration 4).
    assert.equal(cli.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'archive_account'").pluck().get(), 0);
  });
});

describe('storage: account announcements (CLI → running server)', () => {
  test('what one process announces another reads in order after the id it has seen; day-old ones are dropped', async (t) => {
    const path = tempDatabase(t);
    const server = new SqliteStore({ path });
    t.after(() => server.close());
    const start = await server.accounts.lastAnnouncementId();
    assert.equal(start, 0);
    const cli = new SqliteStore({ path });
    await cli.accounts.announce('localhost', 'juliet', 'deleted');
    await cli.accounts.announce('example.org', 'romeo', 'deleted');
    await cli.accounts.announce('localhost', 'nurse', 'deleted');
    const seen = await server.accounts.announcementsAfter('localhost', start);
    assert.deepEqual(seen.map((a) => [a.username, a.change]), [['juliet', 'deleted'], ['nurse', 'deleted']]);
    assert.deepEqual(await server.accounts.announcementsAfter('localhost', seen[1]!.id), []);
    cli.db.prepare('UPDATE account_announcements SET at = ? WHERE username = ?').run(Date.now() - 25 * 3_600_000, 'juliet');
    await cli.accounts.announce('localhost', 'tybalt', 'deleted');
    await cli.close();
    assert.deepEqual((await server.accounts.announcementsAfter('localhost', 0)).map((a) => a.username), ['nurse', 'tybalt']);
    assert.equal(await server.accounts.lastAnnouncementId(), 4);
  });
});
