import assert from 'node:assert/strict';
import test, { describe } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  Jid,
  JidError,
  makeJid,
  normalizeDomainpart,
  normalizeLocalpart,
  normalizeResourcepart,
  parseJid,
  tryParseJid,
  type JidPart,
} from '../../server/jid.js';

function assertRejected(input: string, part: JidPart): void {
  assert.throws(
    () => parseJid(input),
    (err: unknown) => err instanceof JidError && err.part === part,
    `${JSON.stringify(input)} should be rejected in its ${part}part`,
  );
}

function assertParts(input: string, local: string, domain: string, resource: string): void {
  const jid = parseJid(input);
  assert.deepEqual({ local: jid.local, domain: jid.domain, resource: jid.resource }, { local, domain, resource }, input);
}

describe('jid: RFC 7622 §3.5.1 examples of valid JIDs', () => {
  const examples: Array<[input: string, local: string, domain: string, resource: string]> = [
    ['juliet@example.com', 'juliet', 'example.com', ''],
    ['juliet@example.com/foo', 'juliet', 'example.com', 'foo'],
    ['juliet@example.com/foo bar', 'juliet', 'example.com', 'foo bar'],
    ['juliet@example.com/foo@bar', 'juliet', 'example.com', 'foo@bar'],
    ['foo\\20bar@example.com', 'foo\\20bar', 'example.com', ''],
    ['fussball@example.com', 'fussball', 'example.com', ''],
    ['fu\u00DFball@example.com', 'fu\u00DFball', 'example.com', ''],
    ['\u03C0@example.com', '\u03C0', 'example.com', ''],
    ['\u03A3@example.com/foo', '\u03C3', 'example.com', 'foo'],
    ['\u03C3@example.com/foo', '\u03C3', 'example.com', 'foo'],
    ['\u03C2@example.com/foo', '\u03C2', 'example.com', 'foo'],
    ['king@example.com/\u265A', 'king', 'example.com', '\u265A'],
    ['example.com', '', 'example.com', ''],
    ['example.com/foobar', '', 'example.com', 'foobar'],
    ['a.example.com/b@example.net', '', 'a.example.com', 'b@example.net'],
  ];
  for (const [input, local, domain, resource] of examples) {
    test(`${input} is valid`, () => assertParts(input, local, domain, resource));
  }

  test('ß and ss stay different localparts (no case folding to ss)', () => {
    assert.ok(!parseJid('fu\u00DFball@example.com').equals(parseJid('fussball@example.com')));
  });

  test('final sigma ς is not the same as σ', () => {
    assert.ok(!parseJid('\u03C2@example.com/foo').equals(parseJid('\u03C3@example.com/foo')));
  });
});

describe('jid: RFC 7622 §3.5.2 examples of invalid JIDs', () => {
  const examples: Array<[input: string, part: JidPart, why: string]> = [
    ['"juliet"@example.com', 'local', 'quotation marks are disallowed in localparts'],
    ['foo bar@example.com', 'local', 'space is disallowed in localparts'],
    ['juliet@example.com/', 'resource', 'empty resourcepart'],
    ['@example.com/', 'local', 'empty localpart'],
    ['henry\u2163@example.com', 'local', 'ROMAN NUMERAL FOUR has a compatibility mapping (HasCompat)'],
    ['\u265A@example.com', 'local', 'BLACK CHESS KING is a symbol, not IdentifierClass'],
    ['juliet@', 'domain', 'empty domainpart'],
    ['/foobar', 'domain', 'empty domainpart'],
  ];
  for (const [input, part, why] of examples) {
    test(`${input} is rejected in the ${part}part: ${why}`, () => assertRejected(input, part));
  }
});

describe('jid: splitting', () => {
  test('the resourcepart is everything after the first slash', () => {
    assertParts('juliet@example.com/a/b@c', 'juliet', 'example.com', 'a/b@c');
  });

  test('an @ after the first @ lands in the domainpart and is rejected there', () => {
    assertRejected('a@b@example.com', 'domain');
  });

  test('separators are matched before mapping: fullwidth @ in a localpart maps to a disallowed @', () => {
    assertRejected('a\uFF20b@example.com', 'local');
  });

  test('empty input and a lone @ are rejected', () => {
    assertRejected('', 'domain');
    assertRejected('@', 'local');
  });
});

describe('jid: localpart (UsernameCaseMapped plus RFC 7622 §3.3.1)', () => {
  test('uppercase is mapped to lowercase, ASCII and not', () => {
    assert.equal(String(parseJid('JuLiEt@example.com')), 'juliet@example.com');
    assert.equal(parseJid('\u00C9LODIE@example.com').local, '\u00E9lodie');
  });

  test('fullwidth letters are width-mapped', () => {
    assert.equal(parseJid('\uFF2A\uFF35\uFF2C\uFF29\uFF25\uFF34@example.com').local, 'juliet');
  });

  test('decomposed input is composed (NFC)', () => {
    assert.equal(parseJid('e\u0301@example.com').local, '\u00E9');
    assert.ok(parseJid('e\u0301@example.com').equals(parseJid('\u00E9@example.com')));
  });

  test('Kelvin sign maps to k (rules before class check, RFC 8264 §7 order)', () => {
    assert.equal(parseJid('\u212Aelvin@example.com').local, 'kelvin');
  });

  for (const ch of ['&', "'", ':', '<', '>']) {
    test(`${ch} is disallowed by RFC 7622 §3.3.1`, () => assertRejected(`a${ch}b@example.com`, 'local'));
  }

  test('other ASCII punctuation is allowed', () => {
    assert.equal(parseJid('a.b-c_d+e!#$%*=?^`{|}~@example.com').local, 'a.b-c_d+e!#$%*=?^`{|}~');
  });

  test('controls, non-ASCII spaces and unassigned code points are rejected', () => {
    assertRejected('a\u0007b@example.com', 'local');
    assertRejected('a\u00A0b@example.com', 'local');
    assertRejected('a\u{E0001}b@example.com', 'local');
    assertRejected('a\uFFFFb@example.com', 'local');
  });

  test('titlecase and compatibility characters are rejected', () => {
    assertRejected('\u01C5@example.com', 'local');
    assertRejected('\uFB01x@example.com', 'local');
  });

  test('halfwidth Hangul maps to compatibility jamo, which are rejected', () => {
    assertRejected('\uFFA1\uFFC2@example.com', 'local');
  });

  test('MIDDLE DOT is allowed only between two l (Catalan l·l)', () => {
    assert.equal(parseJid('col\u00B7lega@example.com').local, 'col\u00B7lega');
    assertRejected('a\u00B7b@example.com', 'local');
  });

  test('ZERO WIDTH JOINER is allowed only after a virama', () => {
    assert.equal(parseJid('\u0915\u094D\u200D\u0937@example.com').local, '\u0915\u094D\u200D\u0937');
    assertRejected('a\u200Db@example.com', 'local');
  });

  test('ZERO WIDTH NON-JOINER is allowed between joining letters (Persian), not after alef', () => {
    assert.ok(tryParseJid('\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645@example.com'));
    assertRejected('\u0627\u200C\u0628@example.com', 'local');
    assertRejected('a\u200Cb@example.com', 'local');
  });

  test('Arabic-Indic and Extended Arabic-Indic digits must not be mixed', () => {
    assert.ok(tryParseJid('\u0639\u0661\u0662@example.com'));
    assertRejected('\u0639\u0661\u06F2@example.com', 'local');
  });

  test('Bidi Rule: right-to-left localparts are fine, mixed directions are not', () => {
    assert.equal(parseJid('\u05E9\u05DC\u05D5\u05DD@example.com').local, '\u05E9\u05DC\u05D5\u05DD');
    assert.ok(tryParseJid('\u0639\u0644\u064A123@example.com'));
    assertRejected('abc\u05E9@example.com', 'local');
    assertRejected('1\u05E9@example.com', 'local');
    assertRejected('\u0639\u0661' + '1@example.com', 'local');
  });

  test('normalizeLocalpart is exported for SASL usernames and throws JidError', () => {
    assert.equal(normalizeLocalpart('Romeo'), 'romeo');
    assert.equal(normalizeLocalpart('\uFF32omeo'), 'romeo');
    assert.throws(() => normalizeLocalpart('ro meo'), JidError);
    assert.throws(() => normalizeLocalpart('romeo@x'), JidError);
    assert.throws(() => normalizeLocalpart(''), JidError);
  });
});

describe('jid: resourcepart (OpaqueString)', () => {
  test('case, fullwidth and spaces are preserved', () => {
    assert.equal(parseJid('a@example.com/Balcony \uFF21').resource, 'Balcony \uFF21');
  });

  test('non-ASCII spaces map to U+0020', () => {
    assert.equal(parseJid('a@example.com/foo\u00A0bar\u3000baz').resource, 'foo bar baz');
  });

  test('decomposed input is composed (NFC)', () => {
    assert.equal(parseJid('a@example.com/cafe\u0301').resource, 'caf\u00E9');
  });

  test('symbols, punctuation and compatibility characters are allowed', () => {
    assert.equal(parseJid('a@example.com/\u265A \u2163 \uFB01 \u00BF').resource, '\u265A \u2163 \uFB01 \u00BF');
  });

  test('controls and unassigned code points are rejected', () => {
    assertRejected('a@example.com/foo\nbar', 'resource');
    assertRejected('a@example.com/foo\u0000', 'resource');
    assertRejected('a@example.com/\u0085', 'resource');
    assertRejected('a@example.com/\u{E0001}', 'resource');
  });

  test('a lone surrogate is rejected', () => {
    assertRejected('a@example.com/\uD800', 'resource');
  });

  test('ZERO WIDTH JOINER without virama is rejected, also in emoji sequences (RFC 5892 A.2)', () => {
    assertRejected('a@example.com/\u{1F468}\u200D\u{1F4BB}', 'resource');
  });

  test('normalizeResourcepart is exported and throws JidError', () => {
    assert.equal(normalizeResourcepart('x\u2003y'), 'x y');
    assert.throws(() => normalizeResourcepart(''), JidError);
  });
});

describe('jid: domainpart', () => {
  test('ASCII is lowercased', () => {
    assert.equal(parseJid('EXAMPLE.COM').domain, 'example.com');
    assert.equal(String(parseJid('Juliet@Example.COM/Foo')), 'juliet@example.com/Foo');
  });

  test('one trailing dot is stripped, before the resource and everywhere', () => {
    assert.equal(String(parseJid('juliet@example.com./balcony')), 'juliet@example.com/balcony');
    assert.ok(parseJid('example.com.').equals(parseJid('example.com')));
  });

  test('two trailing dots, a lone dot and empty labels are rejected', () => {
    assertRejected('example.com..', 'domain');
    assertRejected('.', 'domain');
    assertRejected('a..example.com', 'domain');
    assertRejected('.example.com', 'domain');
  });

  test('IDN: U-labels stay Unicode, lowercased', () => {
    assert.equal(parseJid('b\u00FCcher.example').domain, 'b\u00FCcher.example');
    assert.equal(parseJid('B\u00DCCHER.example').domain, 'b\u00FCcher.example');
  });

  test('IDN: A-labels become U-labels and compare equal', () => {
    assert.equal(parseJid('xn--bcher-kva.example').domain, 'b\u00FCcher.example');
    assert.equal(parseJid('XN--BCHER-KVA.Example').domain, 'b\u00FCcher.example');
    assert.ok(parseJid('romeo@xn--bcher-kva.example').equals(parseJid('romeo@b\u00FCcher.example')));
  });

  test('IDN: fullwidth letters map; right-to-left names work', () => {
    assert.equal(parseJid('\uFF45\uFF58\uFF41\uFF4D\uFF50\uFF4C\uFF45.com').domain, 'example.com');
    const arabic = '\u0645\u062B\u0627\u0644.\u0625\u062E\u062A\u0628\u0627\u0631'; // مثال.إختبار
    assert.equal(parseJid(arabic).domain, arabic);
  });

  test('IDN: invalid A-labels are rejected', () => {
    assertRejected('xn--zz.example', 'domain');
    assertRejected('xn--abc-.example', 'domain');
    assertRejected('xn--.example', 'domain');
  });

  test('symbols that UTS #46 still admits are rejected (IDNA2008)', () => {
    assertRejected('\u2603.net', 'domain');
    assertRejected('i\u2764.ws', 'domain');
  });

  test('only letters, digits and inner hyphens in ASCII labels', () => {
    assertRejected('a_b.example', 'domain');
    assertRejected('-ab.example', 'domain');
    assertRejected('ab-.example', 'domain');
    assertRejected('a b.example', 'domain');
    assertRejected('a?b.example', 'domain');
    assertRejected('a:5222', 'domain');
    assert.equal(parseJid('a-b.ex-ample').domain, 'a-b.ex-ample');
  });

  test('labels are at most 63 octets', () => {
    assert.equal(parseJid(`${'a'.repeat(63)}.example`).domain.length, 63 + 8);
    assertRejected(`${'a'.repeat(64)}.example`, 'domain');
  });

  test('IPv4 addresses are allowed; digits that are not one are rejected', () => {
    assert.equal(parseJid('juliet@192.0.2.1/x').domain, '192.0.2.1');
    assertRejected('1.2.3', 'domain');
    assertRejected('example.123', 'domain');
    assertRejected('\uFF11.\uFF12.\uFF13', 'domain');
  });

  test('IPv6 literals are allowed and canonicalised', () => {
    assert.equal(parseJid('juliet@[::1]/x').domain, '[::1]');
    assert.ok(parseJid('[0:0:0:0:0:0:0:1]').equals(parseJid('[::1]')));
    assert.equal(parseJid('[2001:DB8::1]').domain, '[2001:db8::1]');
    assertRejected('[::1', 'domain');
    assertRejected('[example.com]', 'domain');
    assertRejected('[fe80::1%eth0]', 'domain');
  });

  test('normalizeDomainpart is exported and throws JidError', () => {
    assert.equal(normalizeDomainpart('Example.COM.'), 'example.com');
    assert.throws(() => normalizeDomainpart(''), JidError);
  });
});

describe('jid: length limits (1023 octets of UTF-8 per part)', () => {
  test('localpart of 1023 octets is accepted, 1024 rejected', () => {
    assert.equal(parseJid(`${'a'.repeat(1023)}@example.com`).local.length, 1023);
    assertRejected(`${'a'.repeat(1024)}@example.com`, 'local');
  });

  test('localpart octets are counted in UTF-8 after normalisation', () => {
    assert.ok(tryParseJid(`${'\u00E9'.repeat(511)}a@example.com`)); // 1022 + 1
    assertRejected(`${'\u00E9'.repeat(512)}@example.com`, 'local'); // 1024
    assertRejected(`${'e\u0301'.repeat(512)}@example.com`, 'local'); // composes to 1024
    // α + three marks compose to U+1F82: 1364 UTF-16 units of input, 1023 octets once normalised.
    assert.equal(parseJid(`${'\u03B1\u0313\u0300\u0345'.repeat(341)}@example.com`).local, '\u1F82'.repeat(341));
  });

  test('resourcepart of 1023 octets is accepted, 1024 rejected', () => {
    assert.equal(parseJid(`a@example.com/${'r'.repeat(1023)}`).resource.length, 1023);
    assertRejected(`a@example.com/${'r'.repeat(1024)}`, 'resource');
    assertRejected(`a@example.com/${'\u265A'.repeat(342)}`, 'resource'); // 1026 octets
  });

  test('domainpart of 1023 octets is accepted, 1024 rejected', () => {
    const label = 'd'.repeat(63);
    const domain1023 = Array.from({ length: 16 }, () => label).join('.'); // 16 × 63 + 15
    assert.equal(parseJid(domain1023).domain.length, 1023);
    assertRejected(`${domain1023}x`, 'domain');
    assertRejected(`x${domain1023.slice(1)}.\u00E9`, 'domain');
  });

  test('huge input is refused without normalising it', () => {
    assertRejected(`${'\u00E9'.repeat(100_000)}@example.com`, 'local');
    assertRejected(`a@example.com/${'\u00E9'.repeat(100_000)}`, 'resource');
  });
});

describe('jid: the Jid value', () => {
  test('bare drops the resource, is cached, and is the JID itself when already bare', () => {
    const full = parseJid('romeo@example.net/orchard');
    assert.equal(String(full.bare), 'romeo@example.net');
    assert.equal(full.bare, full.bare);
    assert.equal(full.bareString, 'romeo@example.net');
    assert.equal(full.withoutResource(), full.bare);
    const bare = parseJid('romeo@example.net');
    assert.equal(bare.bare, bare);
  });

  test('isBare tells whether there is a resource', () => {
    assert.equal(parseJid('romeo@example.net').isBare(), true);
    assert.equal(parseJid('example.net').isBare(), true);
    assert.equal(parseJid('romeo@example.net/orchard').isBare(), false);
  });

  test('toString rebuilds the normalised string and is cached', () => {
    const jid = parseJid('ROMEO@Example.NET./Orchard');
    assert.equal(jid.toString(), 'romeo@example.net/Orchard');
    assert.equal(`${jid}`, 'romeo@example.net/Orchard');
    assert.equal(String(parseJid('example.net/x')), 'example.net/x');
    assert.equal(JSON.stringify({ jid }), '{"jid":"romeo@example.net/Orchard"}');
  });

  test('a normalised JID parses back to an equal JID', () => {
    for (const input of ['\u03A3@B\u00DCCHER.example/Foo\u00A0', 'xn--bcher-kva.example', '[0::1]/r', '\uFF2A@example.com']) {
      const jid = parseJid(input);
      assert.ok(parseJid(jid.toString()).equals(jid), input);
    }
  });

  test('equals compares all three parts', () => {
    const jid = parseJid('romeo@example.net/orchard');
    assert.ok(jid.equals(parseJid('Romeo@EXAMPLE.net/orchard')));
    assert.ok(!jid.equals(parseJid('romeo@example.net/Orchard')));
    assert.ok(!jid.equals(parseJid('romeo@example.net')));
    assert.ok(!jid.equals(parseJid('example.net/orchard')));
    assert.ok(jid.bare.equals(parseJid('romeo@example.net')));
  });

  test('withResource normalises the resource and keeps local and domain', () => {
    const jid = parseJid('romeo@example.net/orchard').withResource('balcony\u2003two');
    assert.equal(String(jid), 'romeo@example.net/balcony two');
    assert.throws(() => jid.withResource(''), (err: unknown) => err instanceof JidError && err.part === 'resource');
    assert.throws(() => jid.withResource('a\u0000'), JidError);
  });

  test('a Jid is frozen', () => {
    const jid = parseJid('romeo@example.net/orchard');
    assert.ok(Object.isFrozen(jid));
    assert.throws(() => {
      (jid as { local: string }).local = 'mallory';
    }, TypeError);
    assert.equal(jid.local, 'romeo');
  });

  test('parseJid returns the cached instance for a repeated string', () => {
    assert.equal(parseJid('cache@example.net/r'), parseJid('cache@example.net/r'));
    assert.ok(parseJid('cache@example.net/r') instanceof Jid);
  });

  test('the cache keeps working after it fills up', () => {
    for (let i = 0; i < 25_000; i++) parseJid(`user${i}@example.net`);
    assert.equal(parseJid('user24999@example.net').local, 'user24999');
    assert.equal(parseJid('user0@example.net').local, 'user0');
  });

  test('cached JIDs do not keep the parser chunk they were sliced from alive', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    const jids: Jid[] = [];
    for (let i = 0; i < 300; i++) {
      // As from an XML parser: the attribute value is a slice of a large buffer (256 KiB here, 75 MiB in all).
      const chunk = `${i}`.padEnd(262_144, 'x') + `<message to='Chunk${i}@Example.net/orchard'/>`;
      const attribute = chunk.slice(chunk.indexOf("'") + 1, chunk.lastIndexOf("'"));
      jids.push(parseJid(attribute), makeJid(attribute.slice(0, 6), 'example.net', attribute.slice(-7)));
    }
    gc();
    const retained = process.memoryUsage().heapUsed - before;
    assert.equal(String(jids[0]), 'chunk0@example.net/orchard');
    assert.ok(retained < 20_000_000, `${(retained / 1e6).toFixed(1)} MB retained by 600 JIDs`);
  });

  test('tryParseJid returns null for invalid JIDs', () => {
    assert.equal(tryParseJid('juliet@'), null);
    assert.equal(tryParseJid('foo bar@example.com'), null);
    assert.equal(String(tryParseJid('juliet@example.com')), 'juliet@example.com');
  });

  test('JidError names the part and says why', () => {
    try {
      parseJid('foo bar@example.com');
      assert.fail('expected a JidError');
    } catch (err) {
      assert.ok(err instanceof JidError);
      assert.equal(err.part, 'local');
      assert.equal(err.name, 'JidError');
      assert.match(err.message, /localpart.*U\+0020/);
    }
  });
});

describe('jid: makeJid', () => {
  test('normalises each part', () => {
    const jid = makeJid('\u03A3', 'B\u00DCCHER.example.', 'Foo\u00A0');
    assert.equal(String(jid), '\u03C3@b\u00FCcher.example/Foo ');
    assert.ok(jid.equals(parseJid('\u03C3@xn--bcher-kva.example/Foo ')));
  });

  test('empty local or resource means the part is absent', () => {
    assert.equal(String(makeJid('', 'example.com')), 'example.com');
    assert.equal(String(makeJid('', 'example.com', '')), 'example.com');
    assert.equal(String(makeJid('a', 'example.com', 'r')), 'a@example.com/r');
  });

  test('parts are taken whole: an @ in the localpart or a / in the domain is rejected', () => {
    assert.throws(() => makeJid('a@b', 'example.com'), (err: unknown) => err instanceof JidError && err.part === 'local');
    assert.throws(() => makeJid('a', 'example.com/r'), (err: unknown) => err instanceof JidError && err.part === 'domain');
    assert.equal(makeJid('a', 'example.com', 'r/s@t').resource, 'r/s@t');
  });

  test('an invalid domain is rejected', () => {
    assert.throws(() => makeJid('a', ''), (err: unknown) => err instanceof JidError && err.part === 'domain');
  });
});
