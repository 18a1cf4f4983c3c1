// RFC 7622 XMPP addresses (JIDs): splitting, PRECIS enforcement of localparts and resourceparts
// (classes from RFC 8264, profiles from RFC 8265) and IDNA domainparts via node:url. Every stanza's
// addresses pass through parseJid, so pure-ASCII parts take a fast path and recent strings are cached.
// Left out: JavaScript exposes no Bidi_Class, so the Bidi Rule for localparts classifies characters
// by block and value (bidiClass below); a few modifier letters that Unicode calls ON come out as L.
// XEP-0106 escaping is not done here: `foo\20bar` is simply a valid localpart.
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';

/** Which part of a JID was rejected. */
export type JidPart = 'local' | 'domain' | 'resource';

/** Thrown for a string that is not a valid JID (or JID part) under RFC 7622. */
export class JidError extends Error {
  override readonly name = 'JidError';
  readonly part: JidPart;

  constructor(part: JidPart, reason: string) {
    super(`invalid JID ${part}part: ${reason}`);
    this.part = part;
  }
}

let createJid: (local: string, domain: string, resource: string) => Jid;

/**
 * A normalised, immutable JID. Create one with {@link parseJid} or {@link makeJid}; because the
 * parts are normalised, comparing them compares addresses.
 */
export class Jid {
  /** Normalised localpart, '' when absent. */
  readonly local: string;
  /** Normalised domainpart: lowercase, U-labels, no trailing dot. */
  readonly domain: string;
  /** Normalised resourcepart, '' when absent. */
  readonly resource: string;
  #string: string | undefined;
  #bare: Jid | undefined;

  static {
    createJid = (local, domain, resource) => new Jid(local, domain, resource);
  }

  private constructor(local: string, domain: string, resource: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    // parseJid hands the same instance to every caller that parses the same string.
    Object.freeze(this);
  }

  /** This JID without its resource (the same instance when it has none). */
  get bare(): Jid {
    if (this.resource === '') return this;
    return (this.#bare ??= createJid(this.local, this.domain, ''));
  }

  /** The bare JID as a string: `local@domain` or `domain`. */
  get bareString(): string {
    return this.bare.toString();
  }

  /** True when the JID has no resourcepart. */
  isBare(): boolean {
    return this.resource === '';
  }

  /** Same address, all three parts equal. */
  equals(other: Jid): boolean {
    return this === other || (this.local === other.local && this.domain === other.domain && this.resource === other.resource);
  }

  /** This bare JID with `resource` (normalised; throws JidError when invalid or empty). */
  withResource(resource: string): Jid {
    return createJid(this.local, this.domain, normalizeResourcepart(detach(resource)));
  }

  /** Alias of {@link Jid.bare}. */
  withoutResource(): Jid {
    return this.bare;
  }

  toString(): string {
    return (this.#string ??=
      (this.local === '' ? '' : this.local + '@') + this.domain + (this.resource === '' ? '' : '/' + this.resource));
  }

  /** JSON and pino log fields show the JID as its string. */
  toJSON(): string {
    return this.toString();
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing and the cache of recent strings

const MAX_CACHED_JIDS = 10_000;
// Long strings are rare in honest traffic and would let a peer pin megabytes in the cache.
const MAX_CACHED_INPUT_LENGTH = 256;
const recentJids = new Map<string, Jid>();

/** Parses and normalises a JID string; throws {@link JidError} when it is not a valid JID. */
export function parseJid(input: string): Jid {
  const cached = recentJids.get(input);
  if (cached !== undefined) return cached;
  const own = detach(input); // the parts are slices of it, and it becomes the cache key
  const jid = splitAndNormalize(own);
  if (own.length <= MAX_CACHED_INPUT_LENGTH) {
    if (recentJids.size >= MAX_CACHED_JIDS) recentJids.clear();
    recentJids.set(own, jid);
  }
  return jid;
}

/** Like {@link parseJid}, but returns null for an invalid JID. */
export function tryParseJid(input: string): Jid | null {
  try {
    return parseJid(input);
  } catch (err) {
    if (err instanceof JidError) return null;
    throw err;
  }
}

/** Builds a JID from separate parts, normalising each; '' (or no resource) means the part is absent. */
export function makeJid(local: string, domain: string, resource = ''): Jid {
  return createJid(
    local === '' ? '' : normalizeLocalpart(detach(local)),
    normalizeDomainpart(domain),
    resource === '' ? '' : normalizeResourcepart(detach(resource)),
  );
}

// XML parsers hand attribute values over as slices (V8 SlicedString) of the whole buffer they read,
// and normalising ASCII returns its input, so a Jid or cache key could keep that buffer alive:
// 2,000 JID-sized slices of 64 KiB chunks held 134 MB of heap, their copies 3 MB. Concatenation
// makes a fresh flat string; the slice of it holds only that copy.
function detach(s: string): string {
  return (' ' + s).slice(1);
}

function splitAndNormalize(input: string): Jid {
  // RFC 7622 §3.1: "an implementation needs to match the separator characters '@' and '/' before
  // applying any transformation algorithms, which might decompose certain Unicode code points to
  // the separator characters". The resourcepart is everything after the first '/' (it may hold
  // '@' and '/'); the localpart ends at the first '@' before that (§3.2, parsing steps 1 and 2).
  const slash = input.indexOf('/');
  const head = slash === -1 ? input : input.slice(0, slash);
  const at = head.indexOf('@');
  // An '@' or '/' with nothing after it leaves an empty part, which the normalisers reject.
  const local = at === -1 ? '' : normalizeLocalpart(head.slice(0, at));
  const domain = normalizeDomainpart(at === -1 ? head : head.slice(at + 1));
  const resource = slash === -1 ? '' : normalizeResourcepart(input.slice(slash + 1));
  return createJid(local, domain, resource);
}

// ---------------------------------------------------------------------------------------------
// Localparts and resourceparts: PRECIS profiles

// RFC 7622 §3.3/§3.4/§3.2: each part "MUST NOT be zero octets in length and MUST NOT be more than
// 1023 octets in length", counted in UTF-8 after normalisation.
const MAX_PART_OCTETS = 1023;
// Before normalising, refuse what cannot fit: NFC composes at most 4 UTF-16 units into one
// character (U+1F82), no other mapping here shortens text, and every unit left takes ≥ 1 octet.
const MAX_INPUT_UNITS = 4 * MAX_PART_OCTETS;

// ASCII that needs no work beyond lowercasing: IdentifierClass ASCII7 (U+0021..U+007E) minus the
// characters RFC 7622 §3.3.1 adds to the disallowed set: " & ' / : < > @
const ASCII_LOCALPART = /^[\x21\x23-\x25\x28-\x2E\x30-\x39\x3B\x3D\x3F\x41-\x7E]{1,1023}$/;
const LOCALPART_EXTRA_DISALLOWED = /["&'\/:<>@]/;
// FreeformClass admits ASCII7 and the space; only the controls are out.
const ASCII_RESOURCEPART = /^[\x20-\x7E]{1,1023}$/;
// RFC 8265 §4.2.1: "non-ASCII space ... any Unicode code point having a Unicode general category
// of "Zs" (with the exception of U+0020)"
const NON_ASCII_SPACE = /[^\P{Zs}\x20]/gu;

/**
 * Enforces the localpart rules of RFC 7622 §3.3 (PRECIS UsernameCaseMapped, RFC 8265 §3.3, plus
 * the extra disallowed characters of §3.3.1). SASL uses it so usernames match localparts.
 */
export function normalizeLocalpart(input: string): string {
  if (ASCII_LOCALPART.test(input)) return input.toLowerCase();
  const output = applyUntilStable('local', input, usernameCaseMappedRules);
  checkLength('local', output);
  // RFC 7622 §3.3.1 disallows these in localparts although IdentifierClass and UsernameCaseMapped
  // allow them; checked after mapping, since fullwidth forms map onto them.
  const extra = LOCALPART_EXTRA_DISALLOWED.exec(output);
  if (extra !== null) throw new JidError('local', `disallowed character ${codePointName(extra[0])}`);
  const chars = Array.from(output);
  checkPrecisClass('local', chars, IDENTIFIER_CLASS);
  // RFC 8265 §3.3.1, Directionality Rule: "Applications MUST apply the "Bidi Rule" defined in
  // [RFC5893]" to strings that contain right-to-left code points.
  if (!satisfiesBidiRule(chars)) throw new JidError('local', 'mixes text directions against the Bidi Rule (RFC 5893)');
  return output;
}

/** Enforces the resourcepart rules of RFC 7622 §3.4 (PRECIS OpaqueString, RFC 8265 §4.2). */
export function normalizeResourcepart(input: string): string {
  if (ASCII_RESOURCEPART.test(input)) return input;
  const output = applyUntilStable('resource', input, opaqueStringRules);
  checkLength('resource', output);
  checkPrecisClass('resource', Array.from(output), FREEFORM_CLASS);
  return output;
}

// RFC 8265 §3.3.1, in the order of RFC 8264 §7: width mapping, case mapping ("preferably using the
// Unicode toLowerCase() operation"; JavaScript's is the language-insensitive one), then NFC.
function usernameCaseMappedRules(s: string): string {
  return mapWidth(s).toLowerCase().normalize('NFC');
}

// RFC 8265 §4.2.1: no width or case mapping; non-ASCII spaces become U+0020, then NFC.
function opaqueStringRules(s: string): string {
  return s.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
}

// RFC 8266 §2.1 (Nickname) found the rules are "not an idempotent procedure for all code points" and
// says to "apply the rules repeatedly until the output string is stable; if the output string does
// not stabilize after reapplying the rules three (3) additional times ... reject". We do so for
// every profile, so that a JID always parses back from its own string unchanged.
function applyUntilStable(part: JidPart, input: string, rules: (s: string) => string): string {
  if (input === '') throw new JidError(part, 'empty');
  if (input.length > MAX_INPUT_UNITS) throw new JidError(part, `longer than ${MAX_PART_OCTETS} octets`);
  let output = rules(input);
  if (output === input) return output; // unchanged input is stable by definition
  for (let reapplied = 0; reapplied < 3; reapplied++) {
    const again = rules(output);
    if (again === output) return output;
    output = again;
  }
  throw new JidError(part, 'normalisation does not reach a stable string');
}

function checkLength(part: JidPart, output: string): void {
  // RFC 8265 §3.3.2 and §4.2.2: the string must not be empty after enforcement either.
  if (output === '') throw new JidError(part, 'empty');
  if (Buffer.byteLength(output, 'utf8') > MAX_PART_OCTETS) throw new JidError(part, `longer than ${MAX_PART_OCTETS} octets`);
}

// RFC 8265 §3.3.1: "Map fullwidth and halfwidth code points to their decomposition mappings (see
// Unicode Standard Annex #11)". Those are the <wide>/<narrow> decompositions, all one code point.
const WIDE_OR_NARROW = /[\u3000\uFF01-\uFFEE]/g;
const widthDecompositions = buildWidthDecompositions();

function mapWidth(s: string): string {
  return s.replace(WIDE_OR_NARROW, (ch) => widthDecompositions.get(ch) ?? ch);
}

function buildWidthDecompositions(): Map<string, string> {
  const map = new Map<string, string>([['\u3000', ' '], ['\uFFE3', '\u00AF']]);
  // Only one step of decomposition: NFKD would go on to map U+00AF to space + U+0304, and halfwidth
  // Hangul to conjoining jamo that NFC then composes into syllables.
  for (let cp = 0xffa0; cp <= 0xffdc; cp++) {
    const target = halfwidthHangulTarget(cp);
    if (target !== undefined) map.set(String.fromCharCode(cp), String.fromCharCode(target));
  }
  for (let cp = 0xff01; cp <= 0xffee; cp++) {
    const ch = String.fromCharCode(cp);
    const decomposed = ch.normalize('NFKD');
    if (!map.has(ch) && decomposed !== ch && decomposed.length === 1) map.set(ch, decomposed);
  }
  return map;
}

function halfwidthHangulTarget(cp: number): number | undefined {
  if (cp === 0xffa0) return 0x3164;
  if (cp >= 0xffa1 && cp <= 0xffbe) return cp - 0xffa1 + 0x3131;
  if (cp >= 0xffc2 && cp <= 0xffc7) return cp - 0xffc2 + 0x314f;
  if (cp >= 0xffca && cp <= 0xffcf) return cp - 0xffca + 0x3155;
  if (cp >= 0xffd2 && cp <= 0xffd7) return cp - 0xffd2 + 0x315b;
  if (cp >= 0xffda && cp <= 0xffdc) return cp - 0xffda + 0x3161;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PRECIS string classes (RFC 8264 §4 and §8), contextual rules (RFC 5892 Appendix A)

type Property = 'valid' | 'context' | 'disallowed';
interface PrecisClass {
  readonly name: string;
  // Matches when some character needs more than a general-category look.
  readonly suspect: RegExp;
  readonly freeform: boolean;
}

// RFC 5892 §2.6 exceptions, which RFC 8264 §9.6 applies before every other category.
const EXCEPTIONS = new Map<number, Property>([
  ...[0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007].map((cp) => [cp, 'valid'] as const),
  ...[0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb].map((cp) => [cp, 'context'] as const),
  ...[0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b].map((cp) => [cp, 'disallowed'] as const),
]);
const ARABIC_INDIC_DIGIT = /[\u0660-\u0669]/;
const EXTENDED_ARABIC_INDIC_DIGIT = /[\u06F0-\u06F9]/;
// Exceptions, Default_Ignorable (which covers the join controls) and the old Hangul jamo blocks.
const SPECIAL =
  String.raw`\p{Default_Ignorable_Code_Point}\u00B7\u0375\u05F3\u05F4\u0640\u0660-\u0669\u06F0-\u06FE\u07FA\u0F0B` +
  String.raw`\u1100-\u11FF\u3007\u302E\u302F\u3031-\u3035\u303B\u30FB\uA960-\uA97F\uD7B0-\uD7FF`;
const IDENTIFIER_CLASS: PrecisClass = {
  name: 'IdentifierClass',
  suspect: new RegExp(String.raw`[^\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}\x21-\x7E]|[${SPECIAL}]`, 'u'),
  freeform: false,
};
const FREEFORM_CLASS: PrecisClass = {
  name: 'FreeformClass',
  suspect: new RegExp(String.raw`[^\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]|[${SPECIAL}]`, 'u'),
  freeform: true,
};

const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
// OtherLetterDigits, Spaces, Symbols, Punctuation: valid in FreeformClass only.
const FREEFORM_ONLY = /^[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{S}\p{P}]$/u;
// Unassigned, Controls, PrecisIgnorableProperties (RFC 8264 §9.10, §9.12, §9.13): disallowed.
const NEVER_VALID = /^[\p{Cn}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}\p{Cc}]$/u;

function checkPrecisClass(part: JidPart, chars: readonly string[], precisClass: PrecisClass): void {
  const joined = chars.join('');
  // RFC 8264 §9.17 HasCompat: "toNFKC(cp) != cp". On NFC text, NFKC changes the string exactly
  // when some character has a compatibility mapping, so one call spares a call per character.
  const hasCompat = !precisClass.freeform && joined.normalize('NFKC') !== joined;
  if (!hasCompat && !precisClass.suspect.test(joined)) return;
  for (let i = 0; i < chars.length; i++) {
    const property = precisProperty(chars[i]!, precisClass.freeform);
    if (property === 'valid' || (property === 'context' && contextRuleHolds(chars, i))) continue;
    const reason = property === 'context' ? 'not allowed in this context' : `not allowed by the PRECIS ${precisClass.name}`;
    throw new JidError(part, `character ${codePointName(chars[i]!)} ${reason}`);
  }
}

// RFC 8264 §8, in its order ("If .cp. .in. Exceptions Then Exceptions(cp); ...").
function precisProperty(ch: string, freeform: boolean): Property {
  const cp = ch.codePointAt(0)!;
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  if (cp >= 0x21 && cp <= 0x7e) return 'valid'; // ASCII7
  if (cp === 0x200c || cp === 0x200d) return 'context'; // JoinControl
  if (isOldHangulJamo(cp) || NEVER_VALID.test(ch)) return 'disallowed';
  if (ch.normalize('NFKC') !== ch) return freeform ? 'valid' : 'disallowed'; // HasCompat
  if (LETTER_DIGITS.test(ch)) return 'valid';
  if (FREEFORM_ONLY.test(ch)) return freeform ? 'valid' : 'disallowed';
  return 'disallowed';
}

// RFC 5892 §2.9 OldHangulJamo: Hangul_Syllable_Type L, V or T.
function isOldHangulJamo(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) || (cp >= 0xd7b0 && cp <= 0xd7c6) || (cp >= 0xd7cb && cp <= 0xd7fb)
  );
}

const GREEK = /^\p{Script=Greek}$/u;
const HEBREW = /^\p{Script=Hebrew}$/u;
const KANA_OR_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

// RFC 5892 Appendix A: the rules for CONTEXTJ and CONTEXTO code points.
function contextRuleHolds(chars: readonly string[], i: number): boolean {
  const ch = chars[i]!;
  const before = chars[i - 1] ?? '';
  const after = chars[i + 1] ?? '';
  switch (ch) {
    case '\u200C': // A.1 ZERO WIDTH NON-JOINER
      return isVirama(before) || zwnjBetweenJoiningLetters(chars, i);
    case '\u200D': // A.2 ZERO WIDTH JOINER: "If Canonical_Combining_Class(Before(cp)) .eq. Virama"
      return isVirama(before);
    case '\u00B7': // A.3 MIDDLE DOT: "Between 'l' (U+006C) characters only" (Catalan ela geminada)
      return before === 'l' && after === 'l';
    case '\u0375': // A.4 GREEK LOWER NUMERAL SIGN: "If Script(After(cp)) .eq. Greek"
      return GREEK.test(after);
    case '\u05F3': // A.5, A.6 HEBREW GERESH, GERSHAYIM: "If Script(Before(cp)) .eq. Hebrew"
    case '\u05F4':
      return HEBREW.test(before);
    case '\u30FB': // A.7 KATAKANA MIDDLE DOT: some character is Hiragana, Katakana or Han
      return chars.some((c) => KANA_OR_HAN.test(c));
  }
  // A.8, A.9: Arabic-Indic and Extended Arabic-Indic digits must not be mixed.
  if (ARABIC_INDIC_DIGIT.test(ch)) return !chars.some((c) => EXTENDED_ARABIC_INDIC_DIGIT.test(c));
  if (EXTENDED_ARABIC_INDIC_DIGIT.test(ch)) return !chars.some((c) => ARABIC_INDIC_DIGIT.test(c));
  return false;
}

// JavaScript exposes no Canonical_Combining_Class, but canonical reordering reveals it: a mark
// moves before U+3099 (class 8) only if its class is above 8, and after U+05B0 (class 10) only if
// its class is between 1 and 9. Both together mean class 9, Virama.
function isVirama(ch: string): boolean {
  if (ch === '' || ch === '\u3099' || ch === '\u05B0') return false;
  return (ch + '\u3099').normalize('NFD') === '\u3099' + ch && ('\u05B0' + ch).normalize('NFD') === ch + '\u05B0';
}

const TRANSPARENT = /^[\p{Mn}\p{Me}\p{Cf}]$/u;

// RFC 5892 A.1: "If RegExpMatch((Joining_Type:{L,D})(Joining_Type:T)*\u200C
// (Joining_Type:T)*(Joining_Type:{R,D})) Then True". JavaScript has no Joining_Type either; the
// WHATWG IDNA in node:url does (UTS #46 CheckJoiners implements this same rule), so we ask it
// about the two letters around the ZWNJ, the transparent marks between them left out.
function zwnjBetweenJoiningLetters(chars: readonly string[], i: number): boolean {
  let before = i - 1;
  while (before >= 0 && TRANSPARENT.test(chars[before]!) && !isJoinControl(chars[before]!)) before--;
  let after = i + 1;
  while (after < chars.length && TRANSPARENT.test(chars[after]!) && !isJoinControl(chars[after]!)) after++;
  const left = chars[before];
  const right = chars[after];
  // Every joining letter is outside ASCII; ASCII here could also be URL syntax to the host parser.
  if (left === undefined || right === undefined || left < '\x80' || right < '\x80') return false;
  if (isJoinControl(left) || isJoinControl(right)) return false;
  return domainToASCII(left + '\u200C' + right) !== '';
}

function isJoinControl(ch: string): boolean {
  return ch === '\u200C' || ch === '\u200D';
}

// ---------------------------------------------------------------------------------------------
// The Bidi Rule (RFC 5893 §2) for localparts

type BidiClass = 'L' | 'R' | 'AN' | 'EN' | 'ES' | 'ET' | 'CS' | 'ON' | 'NSM' | 'BN';

// Blocks whose letters are right-to-left (R or AL; the rule treats both alike).
const RTL_BLOCKS = /^[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF\u{10800}-\u{10FFF}\u{1E800}-\u{1EFFF}]$/u;
const ARABIC_NUMBER = /^[\u0600-\u0605\u0660-\u0669\u066B\u066C\u06DD\u0890\u0891\u08E2\u{10D30}-\u{10D39}\u{10E60}-\u{10E7E}]$/u;
const NON_SPACING = /^[\p{Mn}\p{Me}]$/u;
const RTL_ALLOWED = new Set<BidiClass>(['R', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);
const LTR_ALLOWED = new Set<BidiClass>(['L', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);

// Bidi_Class of the characters IdentifierClass admits (classes are checked first): letters and
// marks by block, digits and ASCII punctuation by value, the contextual exceptions by hand.
function bidiClass(ch: string): BidiClass {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x80) {
    if (cp >= 0x30 && cp <= 0x39) return 'EN';
    if (ch === '+' || ch === '-') return 'ES';
    if (ch === '#' || ch === '$' || ch === '%') return 'ET';
    if (ch === ',' || ch === '.' || ch === '/' || ch === ':') return 'CS';
    return (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) ? 'L' : 'ON';
  }
  if (NON_SPACING.test(ch)) return 'NSM';
  if (ARABIC_NUMBER.test(ch)) return 'AN';
  if (cp >= 0x06f0 && cp <= 0x06f9) return 'EN';
  if (isJoinControl(ch)) return 'BN';
  if (RTL_BLOCKS.test(ch)) return 'R';
  if (cp === 0x00b7 || cp === 0x0375 || cp === 0x30fb) return 'ON';
  return 'L';
}

function satisfiesBidiRule(chars: readonly string[]): boolean {
  // Every R, AL and AN character lies in these blocks; most localparts skip the per-character pass.
  if (!chars.some((ch) => RTL_BLOCKS.test(ch))) return true;
  const classes = chars.map(bidiClass);
  // RFC 8265 §3.3.1: strings without right-to-left code points get no special processing for
  // directionality; RFC 5893 §1.4 counts R, AL and AN as right-to-left.
  if (!classes.some((c) => c === 'R' || c === 'AN')) return true;
  const first = classes[0];
  if (first !== 'L' && first !== 'R') return false; // 1. first character L, R or AL
  const rtl = first === 'R';
  const allowed = rtl ? RTL_ALLOWED : LTR_ALLOWED; // 2. and 5.
  if (!classes.every((c) => allowed.has(c))) return false;
  let last = classes.length - 1;
  while (last > 0 && classes[last] === 'NSM') last--;
  const end = classes[last];
  if (!rtl) return end === 'L' || end === 'EN'; // 6.
  if (end !== 'R' && end !== 'EN' && end !== 'AN') return false; // 3.
  return !(classes.includes('EN') && classes.includes('AN')); // 4.
}

// ---------------------------------------------------------------------------------------------
// Domainparts

// A host name of LDH labels (RFC 1034 §3.5, RFC 1123 §2.1), any case; anything else takes the slow
// path, which also explains rejections.
const ASCII_HOSTNAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const NUMERIC_LAST_LABEL = /(?:^|\.)[0-9]+$/;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// ASCII the WHATWG host parser would treat as URL syntax ('a/b.com' comes back as 'a').
const ASCII_NOT_LDH = /[\x00-\x2C\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]/;
// RFC 5892 §2.4 IgnorableBlocks: disallowed in IDNA though PRECIS has no such category.
const IGNORABLE_BLOCKS = /^[\u20D0-\u20FF\u{1D100}-\u{1D24F}]$/u;

// A server sees few distinct domains, and they cost the most to check.
const MAX_CACHED_DOMAINS = 1000;
const recentDomains = new Map<string, string>();

/**
 * Enforces the domainpart rules of RFC 7622 §3.2: strips one trailing dot, lowercases, turns
 * A-labels into U-labels (IDNA via node:url), and accepts IPv4 addresses and bracketed IPv6.
 */
export function normalizeDomainpart(input: string): string {
  const cached = recentDomains.get(input);
  if (cached !== undefined) return cached;
  const domain = detach(normalizeDomainUncached(input));
  if (input.length <= MAX_CACHED_INPUT_LENGTH) {
    if (recentDomains.size >= MAX_CACHED_DOMAINS) recentDomains.clear();
    recentDomains.set(detach(input), domain);
  }
  return domain;
}

function normalizeDomainUncached(input: string): string {
  // RFC 7622 §3.2: a final dot "MUST be stripped before any other canonicalization steps are taken"
  const domain = input.endsWith('.') ? input.slice(0, -1) : input;
  if (domain === '') throw new JidError('domain', 'empty');
  if (domain.length <= MAX_PART_OCTETS && ASCII_HOSTNAME.test(domain)) {
    const lower = domain.toLowerCase();
    if (lower.includes('xn--')) return normalizeIdn(lower);
    // RFC 1123 §2.1: a host name never has the dotted-decimal form, its last label is alphabetic.
    if (NUMERIC_LAST_LABEL.test(lower) && !isIPv4(lower)) throw new JidError('domain', 'neither a host name nor an IPv4 address');
    return lower;
  }
  if (domain.startsWith('[')) return normalizeIpv6Literal(domain);
  return normalizeIdn(domain);
}

function checkAsciiLabels(domain: string): void {
  for (const label of domain.split('.')) {
    // RFC 7622 §3.2.1: only "code points that are allowed in NR-LDH labels or U-labels"; labels
    // keep DNS's 63-octet limit (RFC 1034 §3.1).
    if (label === '') throw new JidError('domain', 'empty label');
    if (!LDH_LABEL.test(label)) {
      throw new JidError('domain', `label '${label}' is not letters, digits and inner hyphens of at most 63 octets`);
    }
  }
}

// RFC 7622 §3.2 also allows an IP address as domainpart: IPv4, or IPv6 as an RFC 3986 IP-literal
// in brackets. IPvFuture and zone identifiers are not accepted.
function normalizeIpv6Literal(domain: string): string {
  const address = domain.endsWith(']') ? domain.slice(1, -1) : '';
  if (!isIPv6(address) || address.includes('%')) throw new JidError('domain', 'not a valid IPv6 address literal');
  // The WHATWG serialisation (RFC 5952 form) makes '[0:0::1]' and '[::1]' the same JID.
  return new URL(`http://[${address}]/`).hostname;
}

function normalizeIdn(domain: string): string {
  const asciiSyntax = ASCII_NOT_LDH.exec(domain);
  if (asciiSyntax !== null) throw new JidError('domain', `disallowed character ${codePointName(asciiSyntax[0])}`);
  if (domain.length > MAX_INPUT_UNITS) throw new JidError('domain', `longer than ${MAX_PART_OCTETS} octets`);
  // UTS #46 processing: maps case and width, applies NFC, validates labels, joiners and bidi.
  const ascii = domainToASCII(domain);
  if (ascii === '') throw new JidError('domain', 'not a valid internationalized domain name');
  checkAsciiLabels(ascii);
  // The WHATWG parser reads '１.２.３' as the IPv4 address 1.2.0.3; IP addresses must come as ASCII.
  if (NUMERIC_LAST_LABEL.test(ascii)) throw new JidError('domain', 'neither a host name nor an IPv4 address');
  // RFC 7622 §3.2.1: "each A-label MUST be converted to a U-label".
  const unicode = domainToUnicode(ascii);
  // An A-label that does not come back from its own U-label ('xn--abc-' decodes to plain 'abc')
  // is not IDNA-valid.
  if (domainToASCII(unicode) !== ascii) throw new JidError('domain', 'contains an A-label that is not IDNA-valid');
  for (const label of unicode.split('.')) checkULabel(label);
  checkLength('domain', unicode);
  return unicode;
}

// UTS #46 still admits what IDNA2003 did (symbols such as '☃'); RFC 7622 asks for IDNA2008
// U-labels, whose code points (RFC 5892) are the IdentifierClass letters and digits.
function checkULabel(label: string): void {
  const chars = Array.from(label);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch < '\x80') continue; // LDH, checked in A-label form
    const property = IGNORABLE_BLOCKS.test(ch) ? 'disallowed' : precisProperty(ch, false);
    // Joiners were checked by UTS #46 CheckJoiners, with real joining types.
    if (property === 'valid' || isJoinControl(ch) || (property === 'context' && contextRuleHolds(chars, i))) continue;
    throw new JidError('domain', `character ${codePointName(ch)} not allowed by IDNA2008 (RFC 5892)`);
  }
}

function codePointName(ch: string): string {
  return 'U+' + ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
}
