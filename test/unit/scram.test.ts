import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  createScramMechanism, deriveScramCredentials, scramSha1, scramSha1Plus, scramSha256, scramSha256Plus, verifyPasswordAgainst,
} from '../../server/sasl/scram.js';
import type { ChannelBindingType, SaslContext, SaslMechanismFactory, SaslStep, ScramCredentials, ScramHash } from '../../server/sasl/mechanism.js';
import { saslprep } from '../../server/sasl/saslprep.js';
import { tlsExporter, tlsServerEndPoint } from '../../server/sasl/channel-binding.js';

// ---------------------------------------------------------------------------------------------
// Helpers: a fake SaslContext and a minimal SCRAM client (RFC 5802 §3 from the client's side).

interface FakeCtxOptions {
  accounts?: Record<string, string>;                 // normalised username → password
  salt?: Buffer;
  iterations?: number;
  bindings?: Partial<Record<ChannelBindingType, Buffer>>;
  plusOffered?: boolean;
  domain?: string;
  normalize?: (u: string) => string;
  failStore?: boolean;
}

function fakeCtx(o: FakeCtxOptions = {}): SaslContext & { lookups: string[] } {
  const accounts = o.accounts ?? { user: 'pencil' };
  const cache = new Map<string, ScramCredentials>();
  const bindings = o.bindings ?? {};
  const lookups: string[] = [];
  const ctx: SaslContext & { lookups: string[] } = {
    lookups,
    async getScramCredentials(username: string, hash: ScramHash) {
      lookups.push(username);
      if (o.failStore) throw new Error('database is locked');
      const password = accounts[username];
      if (password === undefined) return null;
      const key = `${hash}:${username}`;
      let creds = cache.get(key);
      if (!creds) cache.set(key, creds = deriveScramCredentials(hash, password, o.salt ?? Buffer.from('fixed-salt-16byt'), o.iterations ?? 4096));
      return creds;
    },
    async verifyPassword() { throw new Error('not used by SCRAM'); },
    normalizeUsername: o.normalize ?? ((u) => u),
    channelBinding: (type) => bindings[type] ?? null,
    channelBindingTypes: Object.keys(bindings) as ChannelBindingType[],
    plusOffered: o.plusOffered ?? Object.keys(bindings).length > 0,
  };
  if (o.domain !== undefined) ctx.domain = o.domain;
  return ctx;
}

const HASH_BYTES: Record<ScramHash, number> = { sha1: 20, sha256: 32 };
const hmac = (hash: ScramHash, key: Buffer, data: string | Buffer): Buffer => createHmac(hash, key).update(data).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  // eslint-disable-next-line no-bitwise -- RFC 5802 §3
  return Buffer.from(a.map((x, i) => x ^ (b[i] ?? 0)));
}

/** The client's proof and the ServerSignature it expects, as RFC 5802 §3 defines them. */
function clientProof(hash: ScramHash, password: string, salt: Buffer, iterations: number, authMessage: string) {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, HASH_BYTES[hash], hash);
  const clientKey = hmac(hash, salted, 'Client Key');
  const storedKey = createHash(hash).update(clientKey).digest();
  const proof = xor(clientKey, hmac(hash, storedKey, authMessage));
  const serverSignature = hmac(hash, hmac(hash, salted, 'Server Key'), authMessage);
  return { proof: proof.toString('base64'), verifier: `v=${serverSignature.toString('base64')}` };
}

/** Parses "r=..,s=..,i=.." */
function parseServerFirst(step: SaslStep): { r: string; s: string; i: number; text: string } {
  assert.equal(step.kind, 'challenge', `expected a challenge, got ${JSON.stringify(step)}`);
  const text = step.kind === 'challenge' ? step.data.toString('utf8') : '';
  const m = /^r=([^,]+),s=([A-Za-z0-9+/=]+),i=(\d+)$/.exec(text);
  assert.ok(m, `server-first-message has the RFC 5802 form: ${text}`);
  return { r: m[1] ?? '', s: m[2] ?? '', i: Number(m[3]), text };
}

interface LoginOptions {
  mech: SaslMechanismFactory;
  ctx: SaslContext;
  hash: ScramHash;
  saslname?: string;               // as sent in n=
  password?: string;
  gs2?: string;                    // gs2 header, default 'n,,'
  cbData?: Buffer;                 // appended to the gs2 header in c=
  cnonce?: string;
  finalExtensions?: string;        // e.g. ',x=1', covered by the proof
  finalNonce?: (r: string) => string;   // the r= the client sends (and signs)
  tamper?: (final: string) => string;
}

/** One full exchange; returns the server-first text and the final step. */
async function login(o: LoginOptions): Promise<{ serverFirst: string; final: SaslStep; expectedVerifier: string }> {
  const session = o.mech.start(o.ctx);
  const gs2 = o.gs2 ?? 'n,,';
  const bare = `n=${o.saslname ?? 'user'},r=${o.cnonce ?? randomBytes(12).toString('base64')}`;
  const sf = parseServerFirst(await session.step(Buffer.from(gs2 + bare)));
  const cbind = Buffer.concat([Buffer.from(gs2), o.cbData ?? Buffer.alloc(0)]).toString('base64');
  const withoutProof = `c=${cbind},r=${o.finalNonce ? o.finalNonce(sf.r) : sf.r}${o.finalExtensions ?? ''}`;
  const { proof, verifier } = clientProof(o.hash, o.password ?? 'pencil', Buffer.from(sf.s, 'base64'), sf.i, `${bare},${sf.text},${withoutProof}`);
  const final = `${withoutProof},p=${proof}`;
  const step = await session.step(Buffer.from(o.tamper ? o.tamper(final) : final));
  return { serverFirst: sf.text, final: step, expectedVerifier: verifier };
}

function assertFailure(step: SaslStep, condition: string): void {
  assert.equal(step.kind, 'failure', `expected failure ${condition}, got ${JSON.stringify(step)}`);
  if (step.kind === 'failure') assert.equal(step.condition, condition, step.text);
}

function assertSuccess(step: SaslStep, username: string, verifier?: string): void {
  assert.equal(step.kind, 'success', `expected success, got ${JSON.stringify(step)}`);
  if (step.kind !== 'success') return;
  assert.equal(step.username, username);
  if (verifier !== undefined) assert.equal(step.data?.toString('utf8'), verifier);
}

// ---------------------------------------------------------------------------------------------

describe('scram: RFC test vectors', () => {
  test('RFC 5802 §5 SCRAM-SHA-1 example succeeds with the RFC proof and server signature', async () => {
    const ctx = fakeCtx({ salt: Buffer.from('QSXCR+Q6sek8bf92', 'base64') });
    const session = createScramMechanism('sha1', false, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' }).start(ctx);
    const first = await session.step(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
    assert.deepEqual(first, { kind: 'challenge', data: Buffer.from('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096') });
    const final = await session.step(Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='));
    assertSuccess(final, 'user', 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
  });

  test('RFC 7677 §3 SCRAM-SHA-256 example succeeds with the RFC proof and server signature', async () => {
    const ctx = fakeCtx({ salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') });
    const session = createScramMechanism('sha256', false, { serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' }).start(ctx);
    const first = await session.step(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    assert.equal(first.kind === 'challenge' && first.data.toString(), 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    const final = await session.step(Buffer.from('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='));
    assertSuccess(final, 'user', 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  test('the test client reproduces the RFC 5802 proof (sanity check of the helper)', () => {
    const authMessage = 'n=user,r=fyko+d2lbbFgONRv9qkxdawL,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j';
    const { proof, verifier } = clientProof('sha1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64'), 4096, authMessage);
    assert.equal(proof, 'v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    assert.equal(verifier, 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
  });

  test('mechanism names are the IANA names', () => {
    assert.deepEqual([scramSha1, scramSha256, scramSha1Plus, scramSha256Plus].map((m) => m.name),
      ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS']);
  });
});

describe('scram: stored credentials', () => {
  test('deriveScramCredentials defaults to a random 16-byte salt and 4096 iterations', () => {
    const a = deriveScramCredentials('sha256', 'pencil');
    const b = deriveScramCredentials('sha256', 'pencil');
    assert.equal(a.salt.length, 16);
    assert.equal(a.iterations, 4096);
    assert.notDeepEqual(a.salt, b.salt);
    assert.equal(a.storedKey.length, 32);
    assert.equal(deriveScramCredentials('sha1', 'pencil').serverKey.length, 20);
  });

  test('verifyPasswordAgainst accepts the password and refuses others', () => {
    const creds = deriveScramCredentials('sha1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64'));
    assert.equal(verifyPasswordAgainst(creds, 'sha1', 'pencil'), true);
    assert.equal(verifyPasswordAgainst(creds, 'sha1', 'pencil '), false);
    assert.equal(verifyPasswordAgainst(creds, 'sha1', ''), false);
    assert.equal(verifyPasswordAgainst(creds, 'sha256', 'pencil'), false);    // keys of the other hash
    assert.equal(verifyPasswordAgainst(creds, 'sha1', 'pen\u0007cil'), false);  // SASLprep refuses: false, not a throw
  });

  test('passwords are SASLprepped: a soft hyphen and a non-ASCII space do not matter', () => {
    const creds = deriveScramCredentials('sha256', 'I\u00ADX pass');
    assert.equal(verifyPasswordAgainst(creds, 'sha256', 'IX\u00A0pass'), true);
    assert.equal(verifyPasswordAgainst(creds, 'sha256', '\u2168 pass'), true);   // NFKC: ROMAN NUMERAL NINE → IX
  });
});

describe('scram: login', () => {
  for (const [mech, hash] of [[scramSha1, 'sha1'], [scramSha256, 'sha256']] as const) {
    test(`${mech.name}: right password succeeds with the server signature`, async () => {
      const { final, expectedVerifier } = await login({ mech, ctx: fakeCtx(), hash });
      assertSuccess(final, 'user', expectedVerifier);
    });

    test(`${mech.name}: wrong password fails with not-authorized`, async () => {
      const { final } = await login({ mech, ctx: fakeCtx(), hash, password: 'pencil2' });
      assertFailure(final, 'not-authorized');
    });
  }

  test('the server nonce is the client nonce plus 32 base64url characters of randomness', async () => {
    const session = scramSha1.start(fakeCtx());
    const a = parseServerFirst(await session.step(Buffer.from('n,,n=user,r=abc')));
    const b = parseServerFirst(await scramSha1.start(fakeCtx()).step(Buffer.from('n,,n=user,r=abc')));
    assert.match(a.r, /^abc[A-Za-z0-9_-]{32}$/);
    assert.notEqual(a.r, b.r);
  });

  test('unknown user gets a server-first message of the same form, then not-authorized', async () => {
    const ctx = fakeCtx({ accounts: { user: 'pencil' } });
    const known = await login({ mech: scramSha256, ctx, hash: 'sha256' });
    const unknown = await login({ mech: scramSha256, ctx, hash: 'sha256', saslname: 'nobody' });
    const again = await login({ mech: scramSha256, ctx, hash: 'sha256', saslname: 'nobody' });
    const other = await login({ mech: scramSha256, ctx, hash: 'sha256', saslname: 'nobody2' });
    const salt = (sf: string) => /,s=([^,]+),/.exec(sf)?.[1] ?? '';
    const shape = (sf: string) => sf.replace(/r=[^,]+/, 'r=').replace(/s=[^,]+/, `s=${Buffer.from(salt(sf), 'base64').length}`);
    assert.equal(shape(unknown.serverFirst), shape(known.serverFirst));     // 16-byte salt, i=4096 in both
    assert.equal(salt(unknown.serverFirst), salt(again.serverFirst));       // stable per name: retries can't tell
    assert.notEqual(salt(unknown.serverFirst), salt(other.serverFirst));
    assertFailure(unknown.final, 'not-authorized');
  });

  test('unknownUserIterations sets the iteration count shown to unknown users', async () => {
    const mech = createScramMechanism('sha1', false, { unknownUserIterations: 10000 });
    const sf = parseServerFirst(await mech.start(fakeCtx()).step(Buffer.from('n,,n=ghost,r=abc')));
    assert.equal(sf.i, 10000);
  });

  test('user names are escaped: =2C is a comma and =3D an equals sign', async () => {
    const ctx = fakeCtx({ accounts: { 'a,b=c': 'pencil' } });
    assertSuccess((await login({ mech: scramSha1, ctx, hash: 'sha1', saslname: 'a=2Cb=3Dc' })).final, 'a,b=c');
    assertSuccess((await login({ mech: scramSha1, ctx, hash: 'sha1', saslname: 'a=2cb=3dc' })).final, 'a,b=c');
    assert.deepEqual(ctx.lookups, ['a,b=c', 'a,b=c']);
  });

  test('user names go through SASLprep and normalizeUsername', async () => {
    const ctx = fakeCtx({ normalize: (u) => u.toLowerCase() });
    assertSuccess((await login({ mech: scramSha1, ctx, hash: 'sha1', saslname: 'US\u00ADER' })).final, 'user');
    assert.deepEqual(ctx.lookups, ['user']);
  });

  test('a user name refused by normalizeUsername or SASLprep fails with not-authorized', async () => {
    const ctx = fakeCtx({ normalize: (u) => { if (u.includes('@')) throw new Error('bad localpart'); return u; } });
    assertFailure(await scramSha1.start(ctx).step(Buffer.from('n,,n=a@b,r=abc')), 'not-authorized');
    assertFailure(await scramSha1.start(ctx).step(Buffer.from('n,,n=a\u0007b,r=abc')), 'not-authorized');
    assert.deepEqual(ctx.lookups, []);
  });

  test('authzid equal to the user (bare or with the domain) is accepted', async () => {
    const ctx = fakeCtx({ domain: 'example.org' });
    assertSuccess((await login({ mech: scramSha1, ctx, hash: 'sha1', gs2: 'n,a=user,' })).final, 'user');
    assertSuccess((await login({ mech: scramSha1, ctx, hash: 'sha1', gs2: 'n,a=user@Example.org,' })).final, 'user');
  });

  test('authzid naming someone else fails with invalid-authzid', async () => {
    const ctx = fakeCtx({ domain: 'example.org', accounts: { user: 'pencil', other: 'x' } });
    for (const gs2 of ['n,a=other,', 'n,a=other@example.org,', 'n,a=user@evil.example,', 'n,a=user@example.org/res,']) {
      assertFailure(await scramSha1.start(ctx).step(Buffer.from(`${gs2}n=user,r=abc`)), 'invalid-authzid');
    }
  });

  test('an empty initial response gets an empty challenge, then the exchange goes on', async () => {
    const ctx = fakeCtx({ salt: Buffer.from('QSXCR+Q6sek8bf92', 'base64') });
    const session = createScramMechanism('sha1', false, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' }).start(ctx);
    assert.deepEqual(await session.step(Buffer.alloc(0)), { kind: 'challenge', data: Buffer.alloc(0) });
    parseServerFirst(await session.step(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL')));
    const final = await session.step(Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='));
    assertSuccess(final, 'user', 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
  });

  test('a second empty message is malformed-request', async () => {
    const session = scramSha1.start(fakeCtx());
    await session.step(Buffer.alloc(0));
    assertFailure(await session.step(Buffer.alloc(0)), 'malformed-request');
  });

  test('any message after success is malformed-request (the server-final data went in <success/>)', async () => {
    const ctx = fakeCtx({ salt: Buffer.from('QSXCR+Q6sek8bf92', 'base64') });
    const session = createScramMechanism('sha1', false, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' }).start(ctx);
    await session.step(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
    await session.step(Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='));
    assertFailure(await session.step(Buffer.alloc(0)), 'malformed-request');
  });

  test('a failing account store gives temporary-auth-failure, not a throw', async () => {
    assertFailure(await scramSha1.start(fakeCtx({ failStore: true })).step(Buffer.from('n,,n=user,r=abc')), 'temporary-auth-failure');
  });
});

describe('scram: malformed input', () => {
  const badFirst: [string, string | Buffer][] = [
    ['no gs2 header', 'n=user,r=abc'],
    ['gs2 header only', 'n,,'],
    ['one comma', 'n,'],
    ['unknown gs2 flag', 'x,,n=user,r=abc'],
    ['bad channel-binding name', 'p=tls exporter,,n=user,r=abc'],
    ['authzid without a=', 'n,user,n=user,r=abc'],
    ['missing username', 'n,,r=abc'],
    ['missing nonce', 'n,,n=user'],
    ['empty nonce', 'n,,n=user,r='],
    ['empty username', 'n,,n=,r=abc'],
    ['nonce with a space', 'n,,n=user,r=a c'],
    ['nonce with a non-ASCII character', 'n,,n=user,r=abc\u00e9'],
    ['bad escape in username', 'n,,n=us=41er,r=abc'],
    ['NUL in username', 'n,,n=us\0er,r=abc'],
    ['mandatory extension m=', 'n,,m=ext,n=user,r=abc'],
    ['bad extension attribute', 'n,,n=user,r=abc,12'],
    ['invalid UTF-8', Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xc3, 0x28, 0x2c, 0x72, 0x3d, 0x61])],
    ['huge message', `n,,n=user,r=${'a'.repeat(10000)}`],
  ];
  for (const [what, message] of badFirst) {
    test(`client-first with ${what} fails with malformed-request`, async () => {
      const step = await scramSha256.start(fakeCtx()).step(Buffer.isBuffer(message) ? message : Buffer.from(message));
      assertFailure(step, 'malformed-request');
    });
  }

  test('client-first with unknown extensions after the nonce is accepted', async () => {
    parseServerFirst(await scramSha256.start(fakeCtx()).step(Buffer.from('n,,n=user,r=abc,x=1')));
  });

  const badFinal: [string, (f: string) => string, string][] = [
    ['bad base64 in c=', (f) => f.replace(/c=[^,]+/, 'c=bi*s'), 'malformed-request'],
    ['bad base64 in p=', (f) => f.replace(/p=.+$/, 'p=abc'), 'malformed-request'],
    ['no proof', (f) => f.replace(/,p=.+$/, ''), 'malformed-request'],
    ['no nonce', (f) => f.replace(/,r=[^,]+/, ''), 'malformed-request'],
    ['proof not last', (f) => f.replace(/(,p=.+)$/, '$1,x=1'), 'malformed-request'],
    ['attributes out of order', (f) => f.replace(/^(c=[^,]+),(r=[^,]+)/, '$2,$1'), 'malformed-request'],
    ['garbage', () => 'hello', 'malformed-request'],
    ['empty message', () => '', 'malformed-request'],
    ['another nonce', (f) => f.replace(/,r=[^,]+/, ',r=abcXYZ'), 'not-authorized'],
    ['the client nonce only', (f) => f.replace(/,r=[^,]+/, ',r=cnonce'), 'not-authorized'],
    ['a truncated proof', (f) => f.replace(/p=.+$/, 'p=AAAA'), 'not-authorized'],
    ['c= for the y flag', (f) => f.replace(/c=[^,]+/, 'c=eSws'), 'not-authorized'],
    ['a flipped proof bit', (f) => f.replace(/p=(.)/, (_m, ch: string) => `p=${ch === 'A' ? 'B' : 'A'}`), 'not-authorized'],
  ];
  for (const [what, tamper, condition] of badFinal) {
    test(`client-final with ${what} fails with ${condition}`, async () => {
      const { final } = await login({ mech: scramSha1, ctx: fakeCtx(), hash: 'sha1', cnonce: 'cnonce', tamper });
      assertFailure(final, condition);
    });
  }

  test('client-final signing another nonce fails with not-authorized (nonce mismatch)', async () => {
    for (const finalNonce of [() => 'cnonce', (r: string) => `${r}x`, (r: string) => r.slice(0, -1)]) {
      const { final } = await login({ mech: scramSha1, ctx: fakeCtx(), hash: 'sha1', cnonce: 'cnonce', finalNonce });
      assertFailure(final, 'not-authorized');
      assert.equal(final.kind === 'failure' && final.text, 'nonce mismatch');
    }
  });

  test('client-final with unknown extensions before the proof is accepted', async () => {
    const { final } = await login({ mech: scramSha1, ctx: fakeCtx(), hash: 'sha1', finalExtensions: ',x=1,y=abc' });
    assertSuccess(final, 'user');
  });

  test('random bytes never make a step throw', async () => {
    for (let i = 0; i < 300; i++) {
      const ctx = fakeCtx({ bindings: { 'tls-exporter': Buffer.alloc(32, 1) } });
      const junk = randomBytes(i % 64);
      const junkText = Buffer.from(`n,,n=user,r=abc${junk.toString('latin1')}`, 'latin1');
      for (const mech of [scramSha1, scramSha256Plus]) {
        const s1 = await mech.start(ctx).step(junk);
        assert.ok(s1.kind === 'failure' || s1.kind === 'challenge');
        const session = mech.start(ctx);
        await session.step(junkText);
        const s2 = await session.step(randomBytes(i % 100));
        assert.equal(s2.kind, 'failure');
      }
    }
  });
});

describe('scram: channel binding', () => {
  const exporter = randomBytes(32);
  const endPoint = randomBytes(48);
  const bindings = { 'tls-exporter': exporter, 'tls-server-end-point': endPoint };

  test('SCRAM-SHA-256-PLUS with tls-exporter succeeds when both sides have the same binding', async () => {
    const { final, expectedVerifier } = await login({
      mech: scramSha256Plus, ctx: fakeCtx({ bindings }), hash: 'sha256', gs2: 'p=tls-exporter,,', cbData: exporter,
    });
    assertSuccess(final, 'user', expectedVerifier);
  });

  test('SCRAM-SHA-1-PLUS with tls-server-end-point and an authzid succeeds', async () => {
    const { final } = await login({
      mech: scramSha1Plus, ctx: fakeCtx({ bindings }), hash: 'sha1', gs2: 'p=tls-server-end-point,a=user,', cbData: endPoint,
    });
    assertSuccess(final, 'user');
  });

  test('a different binding (a man in the middle) fails with not-authorized', async () => {
    const { final } = await login({
      mech: scramSha256Plus, ctx: fakeCtx({ bindings }), hash: 'sha256', gs2: 'p=tls-exporter,,', cbData: randomBytes(32),
    });
    assertFailure(final, 'not-authorized');
  });

  test('the binding of the other type fails with not-authorized', async () => {
    const { final } = await login({
      mech: scramSha256Plus, ctx: fakeCtx({ bindings }), hash: 'sha256', gs2: 'p=tls-exporter,,', cbData: endPoint,
    });
    assertFailure(final, 'not-authorized');
  });

  test('a channel-binding type we do not offer or cannot compute fails with not-authorized', async () => {
    const ctx = fakeCtx({ bindings: { 'tls-server-end-point': endPoint } });
    for (const type of ['tls-unique', 'tls-exporter', 'x-custom']) {
      assertFailure(await scramSha256Plus.start(ctx).step(Buffer.from(`p=${type},,n=user,r=abc`)), 'not-authorized');
    }
    const availableButNotOffered: SaslContext = { ...ctx, channelBinding: () => exporter };
    assertFailure(await scramSha256Plus.start(availableButNotOffered).step(Buffer.from('p=tls-exporter,,n=user,r=abc')), 'not-authorized');
    const listedButNull: SaslContext = { ...ctx, channelBindingTypes: ['tls-exporter'], channelBinding: () => null };
    assertFailure(await scramSha256Plus.start(listedButNull).step(Buffer.from('p=tls-exporter,,n=user,r=abc')), 'not-authorized');
  });

  test('a -PLUS mechanism without channel binding (n or y) fails with malformed-request', async () => {
    for (const gs2 of ['n,,', 'y,,']) {
      assertFailure(await scramSha256Plus.start(fakeCtx({ bindings })).step(Buffer.from(`${gs2}n=user,r=abc`)), 'malformed-request');
    }
  });

  test('channel binding on a non-PLUS mechanism fails with malformed-request', async () => {
    assertFailure(await scramSha256.start(fakeCtx({ bindings })).step(Buffer.from('p=tls-exporter,,n=user,r=abc')), 'malformed-request');
  });

  test("gs2 flag 'y' while -PLUS is offered is a downgrade and fails with not-authorized", async () => {
    assertFailure(await scramSha256.start(fakeCtx({ bindings, plusOffered: true })).step(Buffer.from('y,,n=user,r=abc')), 'not-authorized');
  });

  test("an unsupported channel-binding type (tls-unique) is reported to the stream, which may then accept 'y'", async () => {
    const reported: string[] = [];
    const ctx = { ...fakeCtx({ bindings }), onUnsupportedChannelBinding: (type: string) => reported.push(type) };
    assertFailure(await scramSha256Plus.start(ctx).step(Buffer.from('p=tls-unique,,n=user,r=abc')), 'not-authorized');
    assert.deepEqual(reported, ['tls-unique']);
    // The stream then sets acceptYFlag: the client saw -PLUS, so its 'y' is not a stripped offer.
    const { final } = await login({ mech: scramSha256, ctx: { ...fakeCtx({ bindings }), acceptYFlag: true }, hash: 'sha256', gs2: 'y,,' });
    assertSuccess(final, 'user');
  });

  test("gs2 flag 'y' without -PLUS on offer succeeds with c=eSws", async () => {
    const { final } = await login({ mech: scramSha256, ctx: fakeCtx({ plusOffered: false }), hash: 'sha256', gs2: 'y,,' });
    assertSuccess(final, 'user');
  });

  test("gs2 flag 'n' (client without channel binding) succeeds even when -PLUS is offered", async () => {
    const { final } = await login({ mech: scramSha256, ctx: fakeCtx({ bindings }), hash: 'sha256' });
    assertSuccess(final, 'user');
  });
});

describe('saslprep: RFC 4013 §3 examples', () => {
  const examples: [string, string][] = [
    ['I\u00ADX', 'IX'],            // SOFT HYPHEN mapped to nothing
    ['user', 'user'],
    ['USER', 'USER'],              // case preserved
    ['\u00AA', 'a'],               // NFKC
    ['\u2168', 'IX'],              // NFKC
    ['a\u00A0b', 'a b'],           // non-ASCII space mapped to SPACE
    ['a\u200Bb', 'a b'],           // ZERO WIDTH SPACE is in C.1.2 too: SPACE, as libidn does
    ['\u0627\u0628\u0031\u0628', '\u0627\u0628\u0031\u0628'],   // RandAL first and last: fine
    ['', ''],
  ];
  for (const [input, output] of examples) {
    test(`${JSON.stringify(input)} → ${JSON.stringify(output)}`, () => assert.equal(saslprep(input), output));
  }

  const prohibited: [string, string][] = [
    ['\u0007', 'prohibited'],          // control character
    ['\u0627\u0031', 'bidi'],          // RandAL first, not last
    ['a\u0627', 'bidi'],               // RandAL last, L first
    ['\u0627a\u0627', 'bidi'],         // RandAL first and last, but an L inside
    ['\uE000', 'prohibited'],          // private use
    ['\uFFFE', 'prohibited'],          // non-character
    ['a\uD800b', 'prohibited'],        // lone surrogate
    ['\u200E', 'prohibited'],          // LEFT-TO-RIGHT MARK (C.8)
    ['\u{E0001}', 'prohibited'],       // LANGUAGE TAG (C.9)
    ['\u2FF0', 'prohibited'],          // ideographic description (C.7)
    ['\u0080', 'prohibited'],          // C1 control
  ];
  for (const [input, reason] of prohibited) {
    test(`${JSON.stringify(input)} is refused (${reason})`, () => {
      assert.throws(() => saslprep(input), (e: unknown) => e instanceof Error && 'reason' in e && e.reason === reason);
    });
  }

  test('unassigned code points are allowed in queries and refused in stored strings', () => {
    assert.equal(saslprep('a\u0221'), 'a\u0221');     // U+0221 was unassigned in Unicode 3.2
    assert.throws(() => saslprep('a\u0221', { allowUnassigned: false }), /unassigned/);
    assert.equal(saslprep('pass\u00E9', { allowUnassigned: false }), 'pass\u00E9');
  });
});

// A throwaway self-signed ECDSA P-256 certificate signed with ecdsa-with-SHA384 (valid until 2126).
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6Eb3SfxrtzkePNwy
4IbjehYZkoPuwdDq2XhQEMv86V+hRANCAATVPcUuYm7h9X7Kl5LWFuizn1/anPzr
JZ3HjtCP5nqs41KIceoKJP7UTZno+Sl3A6uDxG5+hoWuEmQrqMdkaXYr
-----END PRIVATE KEY-----`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUXBWcBUz4XL5apXRQQsc6wsh4jJ8wCgYIKoZIzj0EAwMw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMTIxMjAzNVoYDzIxMjYxMTA3
MjEyMDM1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATVPcUuYm7h9X7Kl5LWFuizn1/anPzrJZ3HjtCP5nqs41KIceoKJP7U
TZno+Sl3A6uDxG5+hoWuEmQrqMdkaXYro1MwUTAdBgNVHQ4EFgQUBJRxfYmP9Iel
PHuCI9M7ZP4ohXQwHwYDVR0jBBgwFoAUBJRxfYmP9IelPHuCI9M7ZP4ohXQwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAwNIADBFAiEA2VW9L+VS2jLI89CewbCB
S/oupjVgx7lDyMx11kUMabQCIC+HHHjr1G8Tzgje1034WHNBwtQ8Hd04kcBuDE3j
zqa0
-----END CERTIFICATE-----`;
const TEST_CERT_DER = Buffer.from(TEST_CERT.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
// RSASSA-PSS with SHA-512 in its parameters, and sha1WithRSAEncryption (certificates only, no keys).
const PSS_SHA512_DER = Buffer.from('MIICXDCCAZGgAwIBAgIUJ5jk/T6/rle4cV4HcudjP5w5RmowQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgMFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgMFAKIDAgEgMAwxCjAIBgNVBAMMAXAwIBcNMjYxMjAxMjEyMDM5WhgPMjEyNjExMDcyMTIwMzlaMAwxCjAIBgNVBAMMAXAwgZ0wCwYJKoZIhvcNAQEKA4GNADCBiQKBgQDGk07gLftNtfxQfv2Mf8CB5I9u0Fa/r5iSaplnUrrpNbZPJTjCJuTvBPlwSPXgkzbwkdpIFWiIf8kCDQiTK7x4gm8/dhB3YqTzN4ZG/NwpuHfjksdqePllVvqa8RsrtcWKyMVz4xb/9+L1B6eoC9AidUM+iKobmmjAY8vFgHiSqQIDAQABo1MwUTAdBgNVHQ4EFgQUkN1aZV7QXEKexlaZDIctvjOJaUwwHwYDVR0jBBgwFoAUkN1aZV7QXEKexlaZDIctvjOJaUwwDwYDVR0TAQH/BAUwAwEB/zBBBgkqhkiG9w0BAQowNKAPMA0GCWCGSAFlAwQCAwUAoRwwGgYJKoZIhvcNAQEIMA0GCWCGSAFlAwQCAwUAogMCASADgYEAcpgrEqyk9gL6iF2oQaX8DmTLfTmU4VAj1mqPqeugnyAexi5HUnrQ6CaucRIfgHcI08Q8LQY/iNe+xTiHyIvp5QSIsqJSHhGarU4IyIfZPl6xsapzLi+pf0RNmFuAghNq4KJAdRIkNv9x6BX8EeSkLgnSmxGq6V0o1nO2ltHyNjA=', 'base64');
const SHA1_RSA_DER = Buffer.from('MIIB9jCCAV+gAwIBAgIUHtNkDqMYdCwJPrDV1XpLwCXrloUwDQYJKoZIhvcNAQEFBQAwDDEKMAgGA1UEAwwBczAgFw0yNjEyMDEyMTIwMzlaGA8yMTI2MTEwNzIxMjAzOVowDDEKMAgGA1UEAwwBczCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkCgYEAr0sKoyNOVlzEy7etve34PsA35xIhBy0HBQpoM+l/P0o3+CJFPrTp/i275fVy0041xu+e+BHtoSEmbuU4qidswVaCwJBRLm+bEflW72AHzD1kDA2qDl7AE1paO8or1hzWuuUexNAyDMmasIf9Nilek58LeetaZiMKLqtyjMQIS2MCAwEAAaNTMFEwHQYDVR0OBBYEFJniEkSFcgLhWIPfZUZqYRmGX7IrMB8GA1UdIwQYMBaAFJniEkSFcgLhWIPfZUZqYRmGX7IrMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQEFBQADgYEAUcwjGqqBWufDGoCiP254zdN9NsWSfQe01hVV9cCu2WLcxV5aIoR1r6Zr6WJ6ZwMvo5sNTXwa9IrNHG/WcinPm4ricPBOVM/o1EaZVXKfB2Tzibea0RLH9H0+U3C7BScj/IRRF/bGrJ1XFxOKT3bApNoVMM9u3lCHF6mOVTiJczc=', 'base64');

describe('channel binding: tls-server-end-point (RFC 5929 §4.1)', () => {
  const digest = (hash: string, der: Buffer) => createHash(hash).update(der).digest('hex');

  test('an ecdsa-with-SHA384 certificate is hashed with SHA-384', () => {
    assert.equal(tlsServerEndPoint(TEST_CERT_DER).toString('hex'),
      'e8f4de2c6172b15748e674f53a81d1941db27f72ee07f96201d15a3514850e1496f652e85c284c6465f033d41c5d64cc');
  });

  test('a sha1WithRSAEncryption certificate is hashed with SHA-256, not SHA-1', () => {
    assert.equal(tlsServerEndPoint(SHA1_RSA_DER).toString('hex'), 'aa73041e16c00b7ad0c09f5c0109450342b996e9d8c3a71ad2309c17fa9dc76a');
  });

  test('an RSASSA-PSS certificate uses the hash named in its parameters (SHA-512)', () => {
    assert.equal(tlsServerEndPoint(PSS_SHA512_DER).toString('hex'), digest('sha512', PSS_SHA512_DER));
  });

  test('an explicit signature algorithm OID wins over the certificate', () => {
    assert.equal(tlsServerEndPoint(TEST_CERT_DER, '1.2.840.113549.1.1.13').toString('hex'), digest('sha512', TEST_CERT_DER));
    assert.equal(tlsServerEndPoint(TEST_CERT_DER, '1.2.840.113549.1.1.4').toString('hex'), digest('sha256', TEST_CERT_DER));   // MD5 → SHA-256
    assert.equal(tlsServerEndPoint(Buffer.from('junk'), '1.3.101.112').toString('hex'), digest('sha256', Buffer.from('junk'))); // Ed25519
  });

  test('bytes that are not a certificate throw', () => {
    assert.throws(() => tlsServerEndPoint(Buffer.from('not a certificate')));
    assert.throws(() => tlsServerEndPoint(Buffer.alloc(0)));
  });
});

describe('channel binding: tls-exporter (RFC 9266)', () => {
  async function handshake(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ server: TLSSocket; client: TLSSocket; close: () => void }> {
    const tlsServer = createServer({ key: TEST_KEY, cert: TEST_CERT, maxVersion });
    const serverSide = new Promise<TLSSocket>((resolve) => tlsServer.once('secureConnection', resolve));
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const client = connect({ port: (tlsServer.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise<void>((resolve) => client.once('secureConnect', resolve));
    const server = await serverSide;
    return { server, client, close: () => { client.destroy(); server.destroy(); tlsServer.close(); } };
  }

  test('on TLS 1.3 both ends compute the same 32 bytes, and getCertificate().raw gives tls-server-end-point', async () => {
    const { server, client, close } = await handshake('TLSv1.3');
    try {
      const mine = tlsExporter(server);
      assert.equal(mine?.length, 32);
      assert.deepEqual(mine, tlsExporter(client));
      const raw = (server.getCertificate() as { raw?: Buffer } | null)?.raw;
      assert.ok(raw);
      assert.deepEqual(tlsServerEndPoint(raw), tlsServerEndPoint(TEST_CERT_DER));
    } finally {
      close();
    }
  });

  test('on TLS 1.2 tls-exporter is unavailable (null)', async () => {
    const { server, close } = await handshake('TLSv1.2');
    try {
      assert.equal(tlsExporter(server), null);
    } finally {
      close();
    }
  });
});

describe('scram: performance', () => {
  test('a server-side SCRAM-SHA-1 exchange runs no PBKDF2 (stored keys only)', async (t) => {
    // With 100 000 iterations one PBKDF2 takes tens of milliseconds; the server must not notice.
    const iterations = 100_000;
    const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
    const creds = deriveScramCredentials('sha1', 'pencil', salt, iterations);
    const ctx: SaslContext = { ...fakeCtx(), getScramCredentials: async () => creds };
    const mech = createScramMechanism('sha1', false, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' });
    const first = Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const serverFirst = `r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=${salt.toString('base64')},i=${iterations}`;
    const withoutProof = 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j';
    const { proof } = clientProof('sha1', 'pencil', salt, iterations, `n=user,r=fyko+d2lbbFgONRv9qkxdawL,${serverFirst},${withoutProof}`);
    const final = Buffer.from(`${withoutProof},p=${proof}`);
    const exchange = async () => {
      const session = mech.start(ctx);
      await session.step(first);
      return session.step(final);
    };
    assertSuccess(await exchange(), 'user');
    for (let i = 0; i < 200; i++) await exchange();         // warm-up
    const rounds = 2000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) await exchange();
    const micros = Number(process.hrtime.bigint() - start) / 1000 / rounds;
    t.diagnostic(`server-side SCRAM-SHA-1 exchange: ${micros.toFixed(1)} µs`);
    assert.ok(micros < 2000, `one exchange took ${micros} µs`);
  });
});
