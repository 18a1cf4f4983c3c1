// Invitations (modules/invites.ts): `herald invite` writing tokens while the server runs, XEP-0445
// registration with a token while registration is closed, single use and expiry, XEP-0401 ad-hoc
// commands, and the mutual subscription of inviter and invitee (XEP-0379).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { parseForm, formValue } from '../../server/protocol/xep0004.js';
import { NS } from '../../server/protocol/ns.js';
import { runCli } from './cli-helpers.js';
import { assertMatches, iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { INVITE_TOKENS, issueInvite, type Invite } from '../../modules/invites.js';

const PARS = 'urn:xmpp:pars:0';
const CMD = 'http://jabber.org/protocol/commands';
const ROSTER = 'jabber:iq:roster';

/** `herald invite ARGS` against the running test server's database; resolves with stdout, stderr and the exit code. */
async function heraldInvite(t: { after(fn: () => unknown): void }, server: TestServer, args: string[] = [], extraYaml = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-invite-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'herald.yml'), `domain: localhost\ndata_dir: ${JSON.stringify(server.dataDir)}\n${extraYaml}`);
  return runCli(['invite', '--config', 'herald.yml', ...args], dir);
}

async function cliToken(t: { after(fn: () => unknown): void }, server: TestServer, args: string[] = []): Promise<{ uri: string; token: string }> {
  const result = await heraldInvite(t, server, args);
  assert.equal(result.code, 0, result.stderr);
  const uri = result.stdout.split('\n')[0]!;
  return { uri, token: tokenOf(uri) };
}

/** A token made in-process the way `herald invite` makes it (spawning the CLI is slow; a few tests do). */
async function directToken(server: TestServer, options: { kind?: Invite['kind']; inviter?: string; username?: string; ttl?: number } = {}): Promise<{ uri: string; token: string }> {
  const tokens = server.server.store.map<Invite>('localhost', 'invites', INVITE_TOKENS);
  const issued = await issueInvite(tokens, 'localhost', { kind: options.kind ?? 'account', inviter: options.inviter, username: options.username, register: true, ttl: options.ttl ?? 60_000 });
  return { uri: issued.uri, token: issued.token };
}

function tokenOf(uri: string): string {
  const token = /preauth=([A-Za-z0-9]+)/.exec(uri)?.[1];
  assert.ok(token, uri);
  return token;
}

/** Connected, STARTTLS done, not logged in: where registration happens. */
async function encrypted(server: TestServer): Promise<XmppClient> {
  const client = await server.connect();
  await client.startTls();
  return client;
}

function registration(username: string, password: string, extra = ''): string {
  return `<iq type='set'><query xmlns='${NS.REGISTER}'><username>${username}</username><password>${password}</password>${extra}</query></iq>`;
}

/** XEP-0445: the token, then the registration, on one connection. */
async function registerWithToken(server: TestServer, token: string, username: string, password = 'secret-pw'): Promise<void> {
  const client = await encrypted(server);
  assert.equal((await client.iq(`<iq type='set' to='localhost'><preauth xmlns='${PARS}' token='${token}'/></iq>`)).attrs.type, 'result');
  const done = await client.iq(registration(username, password));
  assert.equal(done.attrs.type, 'result', done.toString());
  client.dropTcp();
}

async function rosterItem(client: XmppClient, jid: string) {
  const roster = await client.iq(`<iq type='get'><query xmlns='${ROSTER}'/></iq>`);
  return roster.getChild('query', ROSTER)?.getChildren('item').find((item) => item.attrs.jid === jid);
}

describe('invites: herald invite and pre-authenticated registration (XEP-0445)', () => {
  test('a CLI token (printed as the xmpp: URI, then the landing link) registers an account while registration is closed; the stream announces it', async (t) => {
    const server = await startServer(t);
    const result = await heraldInvite(t, server, ['--expires', '2h'], `modules:\n  invites:\n    landing_page: 'https://invite.example.org/{host}/#{token}'\n`);
    assert.equal(result.code, 0, result.stderr);
    const [uri, landing, rest] = result.stdout.split('\n');
    assert.match(uri!, /^xmpp:localhost\?register;preauth=[A-Za-z0-9]{24}$/);
    assert.equal(landing, `https://invite.example.org/localhost/#${tokenOf(uri!)}`);
    assert.equal(rest, '');
    assert.match(result.stderr, /Valid for one new account, until \d{4}-\d\d-\d\dT/);
    // --expires 2h: valid until two hours from now.
    const until = Date.parse(/until (\S+?)\.? /.exec(result.stderr)?.[1] ?? '');
    assert.ok(until > Date.now() + 119 * 60_000 && until <= Date.now() + 120 * 60_000 + 1000, result.stderr);
    const client = await encrypted(server);
    assert.ok(client.features?.getChild('register', 'urn:xmpp:ibr-token:0'));
    assert.ok(client.features?.getChild('register', NS.REGISTER_FEATURE));
    await iqExpect(client, `<iq type='set' to='localhost' id='p1'><preauth xmlns='${PARS}' token='${tokenOf(uri!)}'/></iq>`, `<iq type='result' id='p1'/>`);
    const form = await client.iq(`<iq type='get'><query xmlns='${NS.REGISTER}'/></iq>`);
    assert.equal(form.attrs.type, 'result');
    assert.equal((await client.iq(registration('juliet', 'balcony-pw'))).attrs.type, 'result');
    const juliet = await server.login('juliet', { password: 'balcony-pw' });
    assert.equal((await juliet.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type, 'result');
  });

  test('without a token registration stays closed → service-unavailable; a made-up token → item-not-found', async (t) => {
    const server = await startServer(t);
    const client = await encrypted(server);
    await iqExpect(client, `<iq type='get' id='g1'><query xmlns='${NS.REGISTER}'/></iq>`, `<iq type='error' id='g1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    await iqExpect(client, registration('mallory', 'mallory-pw').replace("type='set'", "type='set' id='s1'"), `<iq type='error' id='s1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    await iqExpect(client, `<iq type='set' to='localhost' id='p1'><preauth xmlns='${PARS}' token='madeup'/></iq>`, `<iq type='error' id='p1'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    assert.equal(await server.server.store.accounts.exists('localhost', 'mallory'), false);
  });

  test('a used token is refused the second time, on the preauth IQ and inside the registration', async (t) => {
    const server = await startServer(t);
    const { token } = await directToken(server);
    await registerWithToken(server, token, 'juliet');
    const client = await encrypted(server);
    await iqExpect(client, `<iq type='set' to='localhost' id='p2'><preauth xmlns='${PARS}' token='${token}'/></iq>`, `<iq type='error' id='p2'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    const again = await client.iq(registration('nurse', 'nurse-pw', `<preauth xmlns='${PARS}' token='${token}'/>`));
    assertMatches(again, `<iq type='error'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    assert.equal(await server.server.store.accounts.exists('localhost', 'nurse'), false);
  });

  test('two connections present the same token: the first registration wins, the second → service-unavailable', async (t) => {
    const server = await startServer(t);
    const { token } = await directToken(server);
    const [one, two] = [await encrypted(server), await encrypted(server)];
    for (const client of [one, two]) assert.equal((await client.iq(`<iq type='set' to='localhost'><preauth xmlns='${PARS}' token='${token}'/></iq>`)).attrs.type, 'result');
    assert.equal((await one.iq(registration('juliet', 'balcony-pw'))).attrs.type, 'result');
    assertMatches(await two.iq(registration('nurse', 'nurse-pw')), `<iq type='error'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    assert.equal(await server.server.store.accounts.exists('localhost', 'nurse'), false);
  });

  test('a token inside the registration query (no preauth IQ) registers too', async (t) => {
    const server = await startServer(t);
    const { token } = await directToken(server);
    const client = await encrypted(server);
    assert.equal((await client.iq(registration('juliet', 'balcony-pw', `<preauth xmlns='${PARS}' token='${token}'/>`))).attrs.type, 'result');
    assert.equal(await server.server.store.accounts.exists('localhost', 'juliet'), true);
  });

  test('an expired token → item-not-found, nothing registered', async (t) => {
    const server = await startServer(t);
    const { token } = await directToken(server, { ttl: 200 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const client = await encrypted(server);
    await iqExpect(client, `<iq type='set' to='localhost' id='p3'><preauth xmlns='${PARS}' token='${token}'/></iq>`, `<iq type='error' id='p3'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    const inline = await client.iq(registration('juliet', 'balcony-pw', `<preauth xmlns='${PARS}' token='${token}'/>`));
    assert.equal(inline.attrs.type, 'error');
    assert.equal(await server.server.store.accounts.exists('localhost', 'juliet'), false);
  });

  test('--username reserves the name: the token registers only it, and open registration cannot take it', async (t) => {
    const server = await startServer(t, { modules: { register: { allow_registration: true } } });
    const { uri, token } = await directToken(server, { username: 'juliet' });
    assert.match(uri, /^xmpp:juliet@localhost\?register;preauth=/);
    const open = await encrypted(server);
    assertMatches(await open.iq(registration('juliet', 'mallory-pw')), `<iq type='error'>${stanzaErrorPattern('cancel', 'conflict')}</iq>`);
    const invited = await encrypted(server);
    await invited.iq(`<iq type='set' to='localhost'><preauth xmlns='${PARS}' token='${token}'/></iq>`);
    assertMatches(await invited.iq(registration('romeo', 'romeo-pw')), `<iq type='error'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
    assert.equal((await invited.iq(registration('juliet', 'balcony-pw'))).attrs.type, 'result');
    assert.equal(await server.server.verifyPassword('juliet', 'balcony-pw'), true);
  });

  test('CLI errors: --roster-of an unknown user → exit 1 with a message', async (t) => {
    const server = await startServer(t);
    const unknown = await heraldInvite(t, server, ['--roster-of', 'nobody', '--expires', '2d']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nobody@localhost does not exist/);
  });
});

describe('invites: contacts (XEP-0379, XEP-0401)', () => {
  test('herald invite --roster-of romeo → the new account and romeo are subscribed both ways, romeo gets the push', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    await romeo.iq(`<iq type='get'><query xmlns='${ROSTER}'/></iq>`); // interested in pushes
    romeo.send('<presence/>');
    const { uri, token } = await cliToken(t, server, ['--roster-of', 'romeo']);
    assert.match(uri, /^xmpp:romeo@localhost\?roster;preauth=[A-Za-z0-9]+;ibr=y$/);
    await registerWithToken(server, token, 'juliet');
    await romeo.waitFor(`<iq type='set'><query xmlns='${ROSTER}'><item jid='juliet@localhost' subscription='both'/></query></iq>`);
    const juliet = await server.login('juliet', { password: 'secret-pw' });
    assert.equal((await rosterItem(juliet, 'romeo@localhost'))?.attrs.subscription, 'both');
    // And presence flows: juliet comes online, romeo sees her.
    juliet.send('<presence><status>here</status></presence>');
    await romeo.waitFor(`<presence><status>here</status></presence>`);
  });

  test('a user runs urn:xmpp:invite#invite → a roster URI (no ibr=y by default); an existing account subscribes with it and is approved', async (t) => {
    const server = await startServer(t, { modules: { invites: { landing_page: 'https://invite.example.org/#{uri}' } } });
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'r1' });
    await juliet.iq(`<iq type='get'><query xmlns='${ROSTER}'/></iq>`);
    juliet.send('<presence/>');
    const answer = await romeo.iq(`<iq type='set' to='localhost'><command xmlns='${CMD}' node='urn:xmpp:invite#invite' action='execute'/></iq>`);
    const command = answer.getChild('command', CMD)!;
    assert.equal(command.attrs.status, 'completed');
    const form = parseForm(command.getChild('x', 'jabber:x:data')!);
    assert.equal(formValue(form, 'FORM_TYPE'), 'urn:xmpp:invite#invitation');
    const uri = formValue(form, 'uri')!;
    assert.match(uri, /^xmpp:romeo@localhost\?roster;preauth=[A-Za-z0-9]+$/);
    assert.equal(formValue(form, 'landing-url'), `https://invite.example.org/#${encodeURIComponent(uri)}`);
    assert.ok(Date.parse(formValue(form, 'expire')!) > Date.now() + 6 * 86_400_000);
    // Without ibr=y the token cannot create an account.
    const stranger = await encrypted(server);
    assertMatches(await stranger.iq(`<iq type='set' to='localhost'><preauth xmlns='${PARS}' token='${tokenOf(uri)}'/></iq>`), `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    juliet.send(`<presence type='subscribe' to='romeo@localhost'><preauth xmlns='${PARS}' token='${tokenOf(uri)}'/></presence>`);
    // Approved at once, and romeo asks back (in either order).
    const types = new Set<string | undefined>();
    while (types.size < 2) types.add((await juliet.waitFor(`<presence from='romeo@localhost'/>`)).attrs.type);
    assert.deepEqual([...types].sort(), ['subscribe', 'subscribed']);
    assert.equal((await rosterItem(romeo, 'juliet@localhost'))?.attrs.subscription, 'from');
    assert.equal((await rosterItem(romeo, 'juliet@localhost'))?.attrs.ask, 'subscribe');
  });

  test('a subscription with a wrong or used token is an ordinary request (no approval)', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send('<presence/>');
    const juliet = await server.login('juliet', { resource: 'r1' });
    juliet.send(`<presence type='subscribe' to='romeo@localhost'><preauth xmlns='${PARS}' token='forged'/></presence>`);
    await romeo.waitFor(`<presence type='subscribe' from='juliet@localhost'/>`);
    await juliet.expectNothing(200);
    assert.equal((await rosterItem(romeo, 'juliet@localhost'))?.attrs.subscription ?? 'none', 'none');
  });

  test('create-account: admins get the form and a register URI (optionally subscribed to them); others are forbidden', async (t) => {
    const server = await startServer(t, { config: { admins: ['boss@localhost'] } });
    const boss = await server.login('boss', { resource: 'r1' });
    await boss.iq(`<iq type='get'><query xmlns='${ROSTER}'/></iq>`);
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='set' to='localhost' id='c1'><command xmlns='${CMD}' node='urn:xmpp:invite#create-account' action='execute'/></iq>`,
      `<iq type='error' id='c1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`,
    );
    const first = (await boss.iq(`<iq type='set' to='localhost'><command xmlns='${CMD}' node='urn:xmpp:invite#create-account' action='execute'/></iq>`)).getChild('command', CMD)!;
    assert.equal(first.attrs.status, 'executing');
    assert.deepEqual(parseForm(first.getChild('x', 'jabber:x:data')!).fields.map((f) => f.var), ['username', 'roster-subscription']);
    const done = (
      await boss.iq(
        `<iq type='set' to='localhost'><command xmlns='${CMD}' node='urn:xmpp:invite#create-account' sessionid='${first.attrs.sessionid}'><x xmlns='jabber:x:data' type='submit'>` +
          `<field var='username'><value>Nurse</value></field><field var='roster-subscription'><value>1</value></field></x></command></iq>`,
      )
    ).getChild('command', CMD)!;
    const uri = formValue(parseForm(done.getChild('x', 'jabber:x:data')!), 'uri')!;
    assert.match(uri, /^xmpp:nurse@localhost\?register;preauth=/);
    await registerWithToken(server, tokenOf(uri), 'nurse');
    await boss.waitFor(`<iq type='set'><query xmlns='${ROSTER}'><item jid='nurse@localhost' subscription='both'/></query></iq>`);
  });
});
