import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plain } from '../../server/sasl/plain.js';
import { deriveScramCredentials, verifyPasswordAgainst } from '../../server/sasl/scram.js';
import type { SaslContext, SaslStep, ScramCredentials } from '../../server/sasl/mechanism.js';

/** A context whose verifyPassword works as the real one should: SCRAM keys from stored salt. */
function fakeCtx(o: { accounts?: Record<string, string>; domain?: string; failStore?: boolean } = {}): SaslContext & { checked: string[] } {
  const creds = new Map<string, ScramCredentials>();
  for (const [user, password] of Object.entries(o.accounts ?? { user: 'pencil' })) {
    creds.set(user, deriveScramCredentials('sha256', password, undefined, 1024));
  }
  const checked: string[] = [];
  const ctx: SaslContext & { checked: string[] } = {
    checked,
    async getScramCredentials() { throw new Error('not used by PLAIN'); },
    async verifyPassword(username, password) {
      checked.push(username);
      if (o.failStore) throw new Error('database is locked');
      const c = creds.get(username);
      return c !== undefined && verifyPasswordAgainst(c, 'sha256', password);
    },
    normalizeUsername(username) {
      if (username.includes('@') || username.includes('/')) throw new Error('invalid localpart');
      return username.toLowerCase();
    },
    channelBinding: () => null,
    channelBindingTypes: [],
    plusOffered: false,
  };
  if (o.domain !== undefined) ctx.domain = o.domain;
  return ctx;
}

async function auth(message: string | Buffer, ctx: SaslContext = fakeCtx()): Promise<SaslStep> {
  return plain.start(ctx).step(Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8'));
}

function assertFailure(step: SaslStep, condition: string): void {
  assert.equal(step.kind, 'failure', `expected failure ${condition}, got ${JSON.stringify(step)}`);
  if (step.kind === 'failure') assert.equal(step.condition, condition, step.text);
}

describe('sasl: PLAIN', () => {
  test('mechanism name is PLAIN', () => assert.equal(plain.name, 'PLAIN'));

  test('right password without authzid succeeds with the normalised username and no data', async () => {
    assert.deepEqual(await auth('\0user\0pencil'), { kind: 'success', username: 'user' });
  });

  test('authcid is SASLprepped and normalised (case, soft hyphen)', async () => {
    assert.deepEqual(await auth('\0U\u00ADSER\0pencil'), { kind: 'success', username: 'user' });
  });

  test('password is SASLprepped by the check (soft hyphen, non-ASCII space)', async () => {
    const ctx = fakeCtx({ accounts: { user: 'pen cil' } });
    assert.equal((await auth('\0user\0pen\u00A0c\u00ADil', ctx)).kind, 'success');
  });

  test('authzid equal to the user, bare or with the domain, succeeds', async () => {
    const ctx = fakeCtx({ domain: 'example.org' });
    assert.equal((await auth('user\0user\0pencil', ctx)).kind, 'success');
    assert.equal((await auth('user@example.org\0user\0pencil', ctx)).kind, 'success');
    assert.equal((await auth('User@EXAMPLE.org\0user\0pencil', ctx)).kind, 'success');
  });

  test('authzid naming someone else fails with invalid-authzid before the password is checked', async () => {
    const ctx = fakeCtx({ domain: 'example.org', accounts: { user: 'pencil', admin: 'x' } });
    for (const authzid of ['admin', 'admin@example.org', 'user@evil.example', 'user@example.org/phone', 'user@']) {
      assertFailure(await auth(`${authzid}\0user\0pencil`, ctx), 'invalid-authzid');
    }
    assert.deepEqual(ctx.checked, []);
  });

  test('wrong password fails with not-authorized', async () => {
    assertFailure(await auth('\0user\0pencil2'), 'not-authorized');
  });

  test('unknown user fails with not-authorized', async () => {
    assertFailure(await auth('\0nobody\0pencil'), 'not-authorized');
  });

  test('a user name refused by normalisation fails with not-authorized', async () => {
    const ctx = fakeCtx();
    assertFailure(await auth('\0user@example.org\0pencil', ctx), 'not-authorized');
    assert.deepEqual(ctx.checked, []);
  });

  test('a password SASLprep prohibits fails with not-authorized without a lookup', async () => {
    const ctx = fakeCtx();
    assertFailure(await auth('\0user\0pen\u0007cil', ctx), 'not-authorized');
    assert.deepEqual(ctx.checked, []);
  });

  const malformed: [string, string | Buffer][] = [
    ['no NUL', 'userpencil'],
    ['one NUL', 'user\0pencil'],
    ['three NULs', '\0user\0pen\0cil'],
    ['empty authcid', '\0\0pencil'],
    ['empty password', '\0user\0'],
    ['invalid UTF-8', Buffer.from([0x00, 0x75, 0x00, 0xff, 0xfe])],
    ['overlong UTF-8', Buffer.from([0x00, 0x75, 0x00, 0xc0, 0xaf])],
    ['a huge message', `\0user\0${'x'.repeat(9000)}`],
  ];
  for (const [what, message] of malformed) {
    test(`message with ${what} fails with malformed-request`, async () => {
      assertFailure(await auth(message), 'malformed-request');
    });
  }

  test('an empty initial response gets an empty challenge, then the credentials succeed', async () => {
    const session = plain.start(fakeCtx());
    assert.deepEqual(await session.step(Buffer.alloc(0)), { kind: 'challenge', data: Buffer.alloc(0) });
    assert.deepEqual(await session.step(Buffer.from('\0user\0pencil')), { kind: 'success', username: 'user' });
  });

  test('an empty response after the empty challenge is malformed-request', async () => {
    const session = plain.start(fakeCtx());
    await session.step(Buffer.alloc(0));
    assertFailure(await session.step(Buffer.alloc(0)), 'malformed-request');
  });

  test('any message after the result is malformed-request', async () => {
    const session = plain.start(fakeCtx());
    await session.step(Buffer.from('\0user\0pencil'));
    assertFailure(await session.step(Buffer.from('\0user\0pencil')), 'malformed-request');
  });

  test('a failing account store gives temporary-auth-failure, not a throw', async () => {
    assertFailure(await auth('\0user\0pencil', fakeCtx({ failStore: true })), 'temporary-auth-failure');
  });
});
