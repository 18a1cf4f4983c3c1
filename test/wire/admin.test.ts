// XEP-0133 service administration (modules/admin.ts): the commands as an admin, and what everyone
// else gets (not listed, forbidden).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { parseForm, formValue, formValues } from '../../server/protocol/xep0004.js';
import type { XmlElement } from '../../server/xml/element.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const CMD = 'http://jabber.org/protocol/commands';
const ADMIN = 'http://jabber.org/protocol/admin';
const ADMINS = { config: { admins: ['boss@localhost'] } };

/** Runs a command in one stage: execute with the submitted fields. */
async function run(client: XmppClient, name: string, fields: Record<string, string | string[]> = {}): Promise<XmlElement> {
  const values = Object.entries(fields)
    .map(([v, value]) => `<field var='${v}'>${(Array.isArray(value) ? value : [value]).map((item) => `<value>${item}</value>`).join('')}</field>`)
    .join('');
  const form = Object.keys(fields).length > 0 ? `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${ADMIN}</value></field>${values}</x>` : '';
  const answer = await client.iq(`<iq type='set' to='localhost'><command xmlns='${CMD}' node='${ADMIN}#${name}' action='execute'>${form}</command></iq>`);
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer.getChild('command', CMD)!;
}

function note(command: XmlElement): { type: string | undefined; text: string | undefined } {
  const el = command.getChild('note');
  return { type: el?.attrs.type, text: el?.text() };
}

function resultForm(command: XmlElement) {
  const x = command.getChild('x', 'jabber:x:data');
  assert.ok(x, command.toString());
  return parseForm(x);
}

async function canLogIn(server: TestServer, username: string, password: string): Promise<boolean> {
  return server.server.verifyPassword(username, password);
}

describe('admin: who may', () => {
  test('an admin sees the admin commands; anyone else sees none and gets forbidden', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    const romeo = await server.login('romeo');
    const list = async (client: XmppClient) =>
      (await client.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='${CMD}'/></iq>`))
        .getChild('query')!
        .getChildren('item')
        .map((item) => item.attrs.node);
    const bossNodes = await list(boss);
    for (const name of ['add-user', 'delete-user', 'change-user-password', 'end-user-session', 'get-online-users-num', 'get-online-users-list', 'get-registered-users-num', 'announce', 'user-stats']) {
      assert.ok(bossNodes.includes(`${ADMIN}#${name}`), `${name} missing`);
    }
    assert.ok(!(await list(romeo)).some((node) => node?.startsWith(ADMIN)));
    await iqExpect(
      romeo,
      `<iq type='set' to='localhost' id='f1'><command xmlns='${CMD}' node='${ADMIN}#add-user' action='execute'/></iq>`,
      `<iq type='error' id='f1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`,
    );
    assert.equal(await server.server.store.accounts.exists('localhost', 'mallory'), false);
  });

  test('a non-admin running any admin command, even with a filled-in form → forbidden, and nothing happens', async (t) => {
    const server = await startServer(t, ADMINS);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'r1' });
    const forms: Record<string, string> = {
      'add-user': `<field var='accountjid'><value>mallory@localhost</value></field><field var='password'><value>pw1234</value></field><field var='password-verify'><value>pw1234</value></field>`,
      'delete-user': `<field var='accountjids'><value>juliet@localhost</value></field>`,
      'change-user-password': `<field var='accountjid'><value>juliet@localhost</value></field><field var='password'><value>stolen</value></field>`,
      'end-user-session': `<field var='accountjids'><value>juliet@localhost</value></field>`,
      announce: `<field var='announcement'><value>Free pizza</value></field>`,
      'get-online-users-list': `<field var='max_items'><value>none</value></field>`,
      'get-online-users-num': '',
      'get-registered-users-list': '',
      'get-registered-users-num': '',
      'user-stats': `<field var='accountjid'><value>juliet@localhost</value></field>`,
    };
    for (const [name, fields] of Object.entries(forms)) {
      const form = fields === '' ? '' : `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${ADMIN}</value></field>${fields}</x>`;
      await iqExpect(
        romeo,
        `<iq type='set' to='localhost' id='${name}'><command xmlns='${CMD}' node='${ADMIN}#${name}' action='execute'>${form}</command></iq>`,
        `<iq type='error' id='${name}'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`,
      );
    }
    await juliet.expectNothing(150);
    assert.equal(await server.server.store.accounts.exists('localhost', 'mallory'), false);
    assert.equal(await canLogIn(server, 'juliet', 'stolen'), false);
    assert.equal((await juliet.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type, 'result', 'juliet is still online');
  });

  test('an admin that is not a JID → startup fails naming admins', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-admin-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    await assert.rejects(startServer({ dataDir, config: { admins: ['not a jid@localhost'] } }), /admins/);
  });
});

describe('admin: accounts', () => {
  test('add-user in two stages → the account exists and logs in', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    const first = await run(boss, 'add-user');
    assert.equal(first.attrs.status, 'executing');
    const fields = resultForm(first).fields.map((f) => f.var);
    assert.deepEqual(fields, ['FORM_TYPE', 'accountjid', 'password', 'password-verify']);
    const done = await boss.iq(
      `<iq type='set' to='localhost'><command xmlns='${CMD}' node='${ADMIN}#add-user' sessionid='${first.attrs.sessionid}'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='accountjid'><value>juliet@localhost</value></field><field var='password'><value>balcony1</value></field><field var='password-verify'><value>balcony1</value></field></x></command></iq>`,
    );
    assert.equal(done.getChild('command', CMD)?.attrs.status, 'completed');
    assert.equal(note(done.getChild('command', CMD)!).type, 'info');
    const juliet = await server.login('juliet', { password: 'balcony1' });
    assert.equal((await juliet.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type, 'result');
  });

  test('add-user with differing passwords, an existing account or another domain → an error note, nothing created', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    assert.deepEqual(note(await run(boss, 'add-user', { accountjid: 'juliet@localhost', password: 'a1b2c3', 'password-verify': 'zzzzzz' })), { type: 'error', text: 'The passwords differ' });
    assert.equal(note(await run(boss, 'add-user', { accountjid: 'boss@localhost', password: 'a1b2c3', 'password-verify': 'a1b2c3' })).type, 'error');
    assert.equal(note(await run(boss, 'add-user', { accountjid: 'juliet@elsewhere.example', password: 'a1b2c3', 'password-verify': 'a1b2c3' })).type, 'error');
    assert.equal(await server.server.store.accounts.exists('localhost', 'juliet'), false);
  });

  test('change-user-password → the new password works, the old one no longer', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    await server.createUser('juliet', 'old-password');
    assert.equal(note(await run(boss, 'change-user-password', { accountjid: 'juliet@localhost', password: 'new-password' })).type, 'info');
    assert.equal(await canLogIn(server, 'juliet', 'new-password'), true);
    assert.equal(await canLogIn(server, 'juliet', 'old-password'), false);
    assert.equal(note(await run(boss, 'change-user-password', { accountjid: 'nobody@localhost', password: 'x12345' })).type, 'error');
  });

  test('delete-user → the account and its sessions are gone', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    const juliet = await server.login('juliet');
    assert.equal(note(await run(boss, 'delete-user', { accountjids: ['juliet@localhost'] })).type, 'info');
    await juliet.expectStreamError('not-authorized');
    assert.equal(await server.server.store.accounts.exists('localhost', 'juliet'), false);
    assert.deepEqual(note(await run(boss, 'delete-user', { accountjids: ['juliet@localhost'] })), { type: 'error', text: 'No such account: juliet@localhost' });
  });
});

describe('admin: sessions and statistics', () => {
  test('online and registered users: numbers and lists (with max_items)', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    await server.login('romeo', { resource: 'a' });
    await server.login('romeo', { resource: 'b' });
    await server.createUser('offline-olga');
    assert.equal(formValue(resultForm(await run(boss, 'get-online-users-num')), 'onlineusersnum'), '2');
    assert.equal(formValue(resultForm(await run(boss, 'get-registered-users-num')), 'registeredusersnum'), '3');
    assert.deepEqual(formValues(resultForm(await run(boss, 'get-online-users-list', { max_items: 'none' })), 'onlineuserjids'), ['boss@localhost', 'romeo@localhost']);
    assert.deepEqual(formValues(resultForm(await run(boss, 'get-registered-users-list', { max_items: '25' })), 'registereduserjids').sort(), [
      'boss@localhost',
      'offline-olga@localhost',
      'romeo@localhost',
    ]);
    const limited = formValues(resultForm(await run(boss, 'get-registered-users-list', { max_items: '1' })), 'registereduserjids');
    assert.equal(limited.length, 1);
  });

  test('end-user-session with a full JID ends that session only; with a bare JID all of them', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    const a = await server.login('romeo', { resource: 'a' });
    const b = await server.login('romeo', { resource: 'b' });
    assert.equal(note(await run(boss, 'end-user-session', { accountjids: ['romeo@localhost/a'] })).text, 'Ended 1 session');
    await a.waitClosed();
    assert.equal((await b.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type, 'result');
    assert.equal(note(await run(boss, 'end-user-session', { accountjids: ['romeo@localhost'] })).text, 'Ended 1 session');
    await b.waitClosed();
  });

  test('user-stats → roster size and online resources', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    const romeo = await server.login('romeo', { resource: 'garden' });
    await romeo.iq(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost'/></query></iq>`);
    const stats = resultForm(await run(boss, 'user-stats', { accountjid: 'romeo@localhost' }));
    assert.equal(formValue(stats, 'rostersize'), '1');
    assert.deepEqual(formValues(stats, 'onlineresources'), ['garden']);
    assert.equal(formValues(stats, 'ipaddresses').length, 1);
    assert.equal(note(await run(boss, 'user-stats', { accountjid: 'nobody@localhost' })).type, 'error');
  });

  test('announce → a headline with subject and body to every online session; an empty one is refused', async (t) => {
    const server = await startServer(t, ADMINS);
    const boss = await server.login('boss');
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'r1' });
    const julietPhone = await server.login('juliet', { resource: 'phone' });
    assert.equal(note(await run(boss, 'announce', { subject: 'Maintenance', announcement: ['Down at noon', 'for an hour'] })).type, 'info');
    for (const client of [romeo, juliet, julietPhone, boss]) {
      await client.waitFor(`<message type='headline' from='localhost'><subject>Maintenance</subject><body>Down at noon\nfor an hour</body></message>`);
    }
    assert.equal(note(await run(boss, 'announce', { announcement: ' ' })).type, 'error');
    await romeo.expectNothing(150);
  });
});
