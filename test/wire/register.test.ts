// XEP-0077 In-Band Registration over real streams: registering before login (and logging in with
// the new account), the throttle, password change and account removal once logged in.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../bin/testing.js';
import type { XmppClient } from '../../server/client.js';
import { NS } from '../../server/protocol/ns.js';

const REGISTER = NS.REGISTER;
const STANZAS = NS.STANZA_ERRORS;

function registration(username: string, password: string, id = 'reg1'): string {
  return `<iq type='set' id='${id}'><query xmlns='${REGISTER}'><username>${username}</username><password>${password}</password></query></iq>`;
}

function errorPattern(id: string, type: string, condition: string): string {
  return `<iq type='error' id='${id}'><error type='${type}'><${condition} xmlns='${STANZAS}'/></error></iq>`;
}

/** Stream open, STARTTLS done, not authenticated: where registration happens. */
async function encrypted(server: TestServer): Promise<XmppClient> {
  const client = await server.connect();
  await client.startTls();
  return client;
}

async function canLogIn(server: TestServer, username: string, password: string): Promise<boolean> {
  const client = await encrypted(server);
  const outcome = await client.tryAuthenticate(username, password);
  client.dropTcp();
  return outcome.name === 'success';
}

const OPEN = { modules: { register: { allow_registration: true } } };

describe('register: disabled (the default)', () => {
  // With the invites module (on by default) the stream feature is announced for invitation tokens
  // (test/wire/invites.test.ts); without it, registration is simply not offered.
  test('no allow_registration, no invites → no stream feature, and a registration get → service-unavailable', async (t) => {
    const server = await startServer(t, { config: { modules_disabled: ['invites'] } });
    const client = await encrypted(server);
    assert.equal(client.features?.getChild('register', NS.REGISTER_FEATURE), undefined);
    const answer = await client.iq(`<iq type='get' id='g1'><query xmlns='${REGISTER}'/></iq>`);
    assert.equal(answer.attrs.type, 'error');
    assert.ok(answer.getChild('error')?.getChild('service-unavailable', STANZAS));
    const set = await client.iq(registration('bill', 'Calliope', 's1'));
    assert.ok(set.getChild('error')?.getChild('service-unavailable', STANZAS));
    assert.equal(await server.server.store.accounts.exists('localhost', 'bill'), false);
  });
});

describe('register: creating an account before login', () => {
  test('allow_registration → stream feature after STARTTLS, and the get lists username, password and a form', async (t) => {
    const server = await startServer(t, OPEN);
    const client = await encrypted(server);
    assert.ok(client.features?.getChild('register', NS.REGISTER_FEATURE));
    const answer = await client.iq(`<iq type='get' id='g1'><query xmlns='${REGISTER}'/></iq>`);
    const query = answer.getChild('query', REGISTER);
    assert.equal(answer.attrs.type, 'result');
    assert.ok(query?.getChild('instructions') && query.getChild('username') && query.getChild('password'));
    assert.equal(query?.getChild('registered'), undefined);
    const fields = query?.getChild('x', NS.DATA_FORMS)?.getChildren('field').map((field) => field.attrs.var);
    assert.deepEqual(fields, ['FORM_TYPE', 'username', 'password']);
  });

  test('register, then log in on the same stream and on a new connection', async (t) => {
    const server = await startServer(t, OPEN);
    const client = await encrypted(server);
    const answer = await client.iq(registration('Bill', 'Calliope'));
    assert.equal(answer.attrs.type, 'result');
    // RFC 7622 localpart rules: 'Bill' is stored as 'bill'.
    assert.equal(await server.server.store.accounts.exists('localhost', 'bill'), true);
    await client.authenticate('bill', 'Calliope');
    assert.equal(await client.bind('globe'), 'bill@localhost/globe');
    const again = await server.login('bill', { password: 'Calliope' });
    assert.equal((await again.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type, 'result');
  });

  test('a submitted data form registers like the legacy fields', async (t) => {
    const server = await startServer(t, OPEN);
    const client = await encrypted(server);
    const answer = await client.iq(`<iq type='set' id='f1'><query xmlns='${REGISTER}'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE'><value>${REGISTER}</value></field>
        <field var='username'><value>juliet</value></field>
        <field var='password'><value>R0m30-R0m30</value></field>
      </x></query></iq>`);
    assert.equal(answer.attrs.type, 'result');
    assert.equal(await canLogIn(server, 'juliet', 'R0m30-R0m30'), true);
  });

  test('an existing username → cancel/conflict, and the account keeps its password', async (t) => {
    const server = await startServer(t, OPEN);
    await server.createUser('romeo', 'original');
    const client = await encrypted(server);
    client.send(registration('romeo', 'takeover', 'c1'));
    await client.expect(errorPattern('c1', 'cancel', 'conflict'));
    assert.equal(await canLogIn(server, 'romeo', 'original'), true);
  });

  for (const [what, query] of [
    ['no password', `<username>bill</username>`],
    ['an empty password', `<username>bill</username><password/>`],
    ['no username', `<password>Calliope</password>`],
    ['a username with a space', `<username>bill shakespeare</username><password>Calliope</password>`],
    ['a username with an @', `<username>bill@elsewhere</username><password>Calliope</password>`],
    ['a password shorter than min_password_length', `<username>bill</username><password>abc</password>`],
  ] as const) {
    test(`${what} → modify/not-acceptable, nothing created`, async (t) => {
      const server = await startServer(t, OPEN);
      const client = await encrypted(server);
      client.send(`<iq type='set' id='n1'><query xmlns='${REGISTER}'>${query}</query></iq>`);
      await client.expect(errorPattern('n1', 'modify', 'not-acceptable'));
      assert.deepEqual(await server.server.store.accounts.list('localhost'), []);
    });
  }

  test('<remove/> before login → auth/registration-required', async (t) => {
    const server = await startServer(t, OPEN);
    const client = await encrypted(server);
    client.send(`<iq type='set' id='x1'><query xmlns='${REGISTER}'><remove/></query></iq>`);
    await client.expect(errorPattern('x1', 'auth', 'registration-required'));
  });

  test('registration before STARTTLS when encryption is required → policy-violation stream error', async (t) => {
    const server = await startServer(t, OPEN);
    const client = await server.connect();
    client.send(registration('bill', 'Calliope'));
    await client.expectStreamError('policy-violation');
    assert.equal(await server.server.store.accounts.exists('localhost', 'bill'), false);
  });
});

describe('register: throttle per IP address', () => {
  test('registration_throttle 2 → the third account from one address → wait/policy-violation', async (t) => {
    const server = await startServer(t, { config: { limits: { exempt: [] } }, modules: { register: { allow_registration: true, registration_throttle: 2 } } });
    const client = await encrypted(server);
    assert.equal((await client.iq(registration('one', 'password1', 'a'))).attrs.type, 'result');
    // A refused attempt (conflict) does not use up the allowance.
    assert.equal((await client.iq(registration('one', 'password1', 'b'))).getChild('error')?.getChild('conflict', STANZAS)?.name, 'conflict');
    const other = await encrypted(server);
    assert.equal((await other.iq(registration('two', 'password2', 'c'))).attrs.type, 'result');
    other.send(registration('three', 'password3', 'd'));
    await other.expect(errorPattern('d', 'wait', 'policy-violation'));
    assert.deepEqual(await server.server.store.accounts.list('localhost'), ['one', 'two']);
  });

  test('addresses in limits.exempt (loopback by default) are not throttled', async (t) => {
    const server = await startServer(t, { modules: { register: { allow_registration: true, registration_throttle: 1 } } });
    const client = await encrypted(server);
    for (const name of ['one', 'two', 'three']) assert.equal((await client.iq(registration(name, 'password1', name))).attrs.type, 'result');
  });
});

describe('register: a logged-in account', () => {
  test('get → <registered/> with the username', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='get' id='q1'><query xmlns='${REGISTER}'/></iq>`);
    await romeo.expect(`<iq type='result' id='q1'><query xmlns='${REGISTER}'><registered/><username>romeo</username></query></iq>`);
  });

  test('password change (also sent to the server) → result; the old password fails, the new one works', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='set' id='p1'><query xmlns='${REGISTER}'><username>romeo</username><password>n3w-secret</password></query></iq>`);
    await romeo.expect(`<iq type='result' id='p1'/>`);
    assert.equal(await canLogIn(server, 'romeo', 'password'), false);
    assert.equal(await canLogIn(server, 'romeo', 'n3w-secret'), true);
    romeo.send(`<iq type='set' id='p2' to='localhost'><query xmlns='${REGISTER}'><username>romeo@localhost</username><password>third-one</password></query></iq>`);
    await romeo.expect(`<iq type='result' id='p2' from='localhost'/>`);
    assert.equal(await canLogIn(server, 'romeo', 'third-one'), true);
  });

  test("another account's username → modify/bad-request, password unchanged", async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='set' id='p1'><query xmlns='${REGISTER}'><username>juliet</username><password>n3w-secret</password></query></iq>`);
    await romeo.expect(errorPattern('p1', 'modify', 'bad-request'));
    assert.equal(await canLogIn(server, 'juliet', 'password'), true);
    assert.equal(await canLogIn(server, 'romeo', 'password'), true);
  });

  test('password change with an empty or short password → error, password unchanged', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='set' id='p1'><query xmlns='${REGISTER}'><username>romeo</username><password/></query></iq>`);
    await romeo.expect(errorPattern('p1', 'modify', 'bad-request'));
    romeo.send(`<iq type='set' id='p2'><query xmlns='${REGISTER}'><username>romeo</username><password>abc</password></query></iq>`);
    await romeo.expect(errorPattern('p2', 'modify', 'not-acceptable'));
    assert.equal(await canLogIn(server, 'romeo', 'password'), true);
  });

  test('password_change: false → cancel/not-allowed', async (t) => {
    const server = await startServer(t, { modules: { register: { password_change: false } } });
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='set' id='p1'><query xmlns='${REGISTER}'><username>romeo</username><password>n3w-secret</password></query></iq>`);
    await romeo.expect(errorPattern('p1', 'cancel', 'not-allowed'));
    assert.equal(await canLogIn(server, 'romeo', 'password'), true);
  });

  test('<remove/> → result first, then not-authorized to every session; the account and its data are gone', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const other = await server.login('romeo', { resource: 'r2' });
    const data = server.server.store.map<number>('localhost', 'some-module', 'things');
    await data.set('romeo', 'k', 1);
    romeo.send(`<iq type='set' id='rm1'><query xmlns='${REGISTER}'><remove/></query></iq>`);
    await romeo.expect(`<iq type='result' id='rm1'/>`);
    await romeo.expectStreamError('not-authorized');
    await other.expectStreamError('not-authorized');
    assert.equal(await server.server.store.accounts.exists('localhost', 'romeo'), false);
    assert.equal(await data.count('romeo'), 0);
    assert.equal(await canLogIn(server, 'romeo', 'password'), false);
  });

  test('<remove/> with other children → modify/bad-request, account kept', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    romeo.send(`<iq type='set' id='rm1'><query xmlns='${REGISTER}'><remove/><username>romeo</username></query></iq>`);
    await romeo.expect(errorPattern('rm1', 'modify', 'bad-request'));
    assert.equal(await server.server.store.accounts.exists('localhost', 'romeo'), true);
  });
});
