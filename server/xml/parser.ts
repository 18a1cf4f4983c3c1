// The XML stream parser: untrusted bytes in, stream events and complete stanzas out.
//
// Written for XMPP's restricted XML (RFC 6120 §11): elements, attributes, text, CDATA, the five
// predefined entities and character references, namespaces, one optional XML declaration. Everything
// else is refused with the stream error the RFC names:
// - comments, processing instructions, DTDs, other entity references → restricted-xml (§11.1);
// - invalid UTF-8 → not-well-formed; a declared encoding other than UTF-8 → unsupported-encoding
//   (§11.6); a code point split across two reads is fine (streaming decoder);
// - stanza size in bytes, element depth, attribute count and attribute length → policy-violation,
//   checked as data arrives, so an endless tag or text never grows past the limit plus one read.
// It scans with indexOf and sticky regular expressions instead of a character state machine, and
// remembers where an unfinished tag's scan stopped, so input split into tiny reads costs no rescans.
// After a fault the parser goes quiet: every further write is ignored.
//
// Checked against saxes (a conforming XML parser) by a differential test: test/unit/xml-differential.test.ts.

import { isUtf8 } from 'node:buffer';
import { XmlElement, type Attrs } from './element.js';

export interface XmlLimits {
  /** Largest top-level element (stanza, or the stream header), in bytes. */
  maxStanzaBytes: number;
  /** Deepest element nesting, counting the stream root as 1. */
  maxDepth: number;
  maxAttributes: number;
  /** Longest attribute value, in characters. */
  maxAttributeLength: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = {
  maxStanzaBytes: 256 * 1024,
  maxDepth: 64,
  maxAttributes: 64,
  maxAttributeLength: 16 * 1024,
};

export type XmlFaultCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'unsupported-encoding' | 'bad-format';

export interface StreamHeader {
  /** Local name of the root (`stream` for TCP streams). */
  name: string;
  /** Namespace of the root element. */
  ns: string;
  /** The default namespace declared on the root (the content namespace: jabber:client, ...). */
  contentNs: string | undefined;
  /** Namespace prefix used on the root element ('' when none). */
  prefix: string;
  /** Attributes other than namespace declarations, by qualified name (`xml:lang`). */
  attrs: Attrs;
}

export interface XmlStreamEvents {
  streamOpen(header: StreamHeader): void;
  /** A complete top-level element. `ns` is its namespace; `el.attrs.xmlns` is set only when it differs from the content namespace. */
  stanza(el: XmlElement, ns: string): void;
  streamClose(): void;
  fault(condition: XmlFaultCondition, text: string): void;
  /** With `containerDepth` > 0: an element between the root and the stanzas opened (attributes only, no children). */
  containerOpen?(el: XmlElement, ns: string): void;
  containerClose?(el: XmlElement): void;
}

export interface XmlStreamOptions {
  /**
   * Element levels below the root that are announced as containerOpen/containerClose instead of
   * being built, so the stanzas are the elements below them: 0 for XMPP streams; 1 for an
   * XEP-0227 file, whose <host> elements hold the <user> elements a reader wants one at a time.
   */
  containerDepth?: number;
}

class Fault extends Error {
  constructor(readonly condition: XmlFaultCondition, message: string) {
    super(message);
  }
}

const NS_XML = 'http://www.w3.org/XML/1998/namespace';
const NS_XMLNS = 'http://www.w3.org/2000/xmlns/';

// XML 1.0 (5th ed.) names, without ':' (Namespaces in XML: NCName).
const NAME_START = 'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = NAME_START + '\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040';
const NCNAME = `[${NAME_START}][${NAME_CHAR}]*`;
const QNAME = new RegExp(`^(?:(${NCNAME}):)?(${NCNAME})$`, 'u');
// Start tags are scanned character by character (scanName, skipXmlSpace below), not with sticky
// regular expressions: every exec() allocates a match array, ~8 KB of garbage per login.
/** Whitespace in the sense of JavaScript's \s beyond ASCII: it ends a tag or attribute name. */
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
/** Characters XML 1.0 does not allow at all (lone surrogates are checked separately). */
const FORBIDDEN_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const REFERENCE = /&([^;&<]*);?/g;
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;
const QUOTE_OR_ANGLE = /['"<>]/g;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

/**
 * The namespace bindings in force at an element. A new one is made only where an element declares
 * something; the prefix map is shared until an element declares a prefix (rare in XMPP: almost
 * every declaration is a default `xmlns`). Plain objects chained with Object.create() did the same,
 * but made every parent scope a prototype, which V8 handles slowly (~40 % of openElement's time).
 */
class Scope {
  constructor(
    /** The default namespace ('' = none: undeclared with xmlns=''). */
    readonly defaultNs: string | undefined,
    readonly prefixes: ReadonlyMap<string, string>,
  ) {}
}
const ROOT_SCOPE = new Scope(undefined, new Map([['xml', NS_XML], ['xmlns', NS_XMLNS]]));

/**
 * Streaming UTF-8 decoding of untrusted bytes: invalid UTF-8 (overlong forms, surrogates, code
 * points past U+10FFFF, stray continuation bytes) throws; a code point split across two reads waits
 * for its last bytes. A byte order mark at the start of a document is dropped, as TextDecoder does.
 * Cheaper than a fatal TextDecoder, which builds an ICU converter per document (two per login).
 */
class Utf8Decoder {
  /** The first bytes of a code point whose last bytes have not arrived (at most 3). */
  private carry: Buffer | undefined;
  private atDocumentStart = true;

  reset(): void {
    this.carry = undefined;
    this.atDocumentStart = true;
  }

  decode(chunk: Uint8Array): string {
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carry !== undefined) {
      bytes = Buffer.concat([this.carry, bytes]);
      this.carry = undefined;
    }
    const end = completeUtf8Length(bytes);
    // Copied: the caller may reuse its buffer.
    if (end < bytes.length) this.carry = Buffer.from(bytes.subarray(end));
    if (end === 0) return '';
    const whole = end === bytes.length ? bytes : bytes.subarray(0, end);
    if (!isUtf8(whole)) throw new Error('invalid UTF-8');
    let text = whole.toString('utf8');
    if (this.atDocumentStart) {
      this.atDocumentStart = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }
}

/** Bytes of `bytes` up to the last complete code point: what is left is the start of one still arriving. */
function completeUtf8Length(bytes: Buffer): number {
  const length = bytes.length;
  const lowest = Math.max(0, length - 4);
  let lead = length - 1;
  while (lead >= lowest && (bytes[lead]! & 0xc0) === 0x80) lead--;
  if (lead < lowest) return length; // four continuation bytes in a row: invalid, let the check say so
  const first = bytes[lead]!;
  const needed = first < 0xc0 ? 1 : first < 0xe0 ? 2 : first < 0xf0 ? 3 : 4;
  return lead + needed > length ? lead : length;
}

export class XmlStreamParser {
  private decoder = new Utf8Decoder();
  /** Decoded input not yet consumed. */
  private buf = '';
  private pos = 0;
  private dead = false;
  /** Bumped by reset()/stop(): a handler that restarts the stream ends the current scan. */
  private generation = 0;
  private started = false;
  private rootClosed = false;
  /** Something (whitespace, the XML declaration) came before the root: no XML declaration any more. */
  private seenContent = false;

  private stack: XmlElement[] = [];
  /** Open containers (see XmlStreamOptions); their namespaces and scopes are on nsStack and scopeStack. */
  private containers: XmlElement[] = [];
  /** See XmlStreamOptions; may be set from streamOpen, once the root says what the document is. */
  containerDepth: number;
  private nsStack: string[] = [];
  private scopeStack: Scope[] = [];
  /** Qualified names of the open containers and elements as written, innermost last: an end tag must match. */
  private qnames: string[] = [];
  private contentNs = '';
  private rootName = '';
  /** Index in buf where the current top-level element began (meaningful while one is open). */
  private topStart = 0;
  /** Bytes of the current top-level element consumed in earlier writes (already dropped from buf). */
  private carriedBytes = 0;
  /**
   * An unfinished token waiting for its terminator ('>' of a tag, ']]>' of CDATA). Further reads
   * are scanned on their own and kept as parts until the terminator arrives, so a huge token sent
   * in tiny reads costs linear time (the large-token trap expat fixed in 2.6.0).
   */
  private pendingKind: 'tag' | 'end-tag' | 'cdata' | undefined;
  private pendingParts: string[] = [];
  private pendingLength = 0;
  private pendingQuote = '';
  private pendingTail = '';

  constructor(private readonly events: XmlStreamEvents, private readonly limits: XmlLimits = DEFAULT_XML_LIMITS, options: XmlStreamOptions = {}) {
    this.containerDepth = options.containerDepth ?? 0;
  }

  /** Start a fresh XML document (stream restart after STARTTLS or SASL). Drops unparsed input. */
  reset(): void {
    this.generation++;
    this.decoder.reset();
    this.buf = '';
    this.pos = 0;
    this.dead = false;
    this.started = false;
    this.rootClosed = false;
    this.seenContent = false;
    this.stack = [];
    this.containers = [];
    this.nsStack = [];
    this.scopeStack = [];
    this.qnames = [];
    this.contentNs = '';
    this.rootName = '';
    this.topStart = 0;
    this.carriedBytes = 0;
    this.clearPending();
  }

  private clearPending(): void {
    this.pendingKind = undefined;
    this.pendingParts = [];
    this.pendingLength = 0;
    this.pendingQuote = '';
    this.pendingTail = '';
  }

  /** Stop parsing for good (after a stream error, or when the connection closes). */
  stop(): void {
    this.generation++;
    this.dead = true;
    this.buf = '';
    this.clearPending();
  }

  get stopped(): boolean {
    return this.dead;
  }

  /** Between top-level elements, with nothing half-read (RFC 7395: a message holds whole elements). */
  get idle(): boolean {
    return this.stack.length === 0 && this.pendingKind === undefined && WHITESPACE_ONLY.test(this.buf.slice(this.pos));
  }

  write(chunk: Buffer | Uint8Array | string): void {
    if (this.dead) return;
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
    } else {
      try {
        text = this.decoder.decode(chunk);
      } catch {
        this.failWith('not-well-formed', 'invalid UTF-8');
        return;
      }
    }
    if (text.length === 0) return;
    if (this.pendingKind !== undefined) {
      const end = this.findTerminator(text);
      if (FORBIDDEN_CHAR.test(end < 0 ? text : text.slice(0, end))) {
        this.failWith('not-well-formed', 'character not allowed in XML');
        return;
      }
      if (end < 0) {
        this.pendingParts.push(text);
        this.pendingLength += text.length;
        this.checkOpenSize();
        return;
      }
      // The token is complete: parse it from one string, once.
      this.pendingParts.push(text);
      this.buf = this.pendingParts.join('');
      this.pos = 0;
      this.topStart = 0;
      this.clearPending();
    } else if (this.pos >= this.buf.length) {
      this.buf = text;
      this.pos = 0;
      this.topStart = 0;
    } else {
      this.buf = this.buf.slice(this.pos) + text;
      this.topStart = Math.max(0, this.topStart - this.pos);
      this.pos = 0;
    }
    const generation = this.generation;
    try {
      this.parse(generation);
    } catch (err) {
      if (generation !== this.generation) return; // reset or stopped by a handler
      if (err instanceof Fault) this.failWith(err.condition, err.message);
      else throw err;
      return;
    }
    if (generation !== this.generation) return;
    // What stays for the next read is only the unfinished token; the open element's consumed part
    // is remembered as a byte count.
    if (this.stack.length > 0) {
      this.carriedBytes += Buffer.byteLength(this.buf.slice(this.topStart, this.pos));
      this.topStart = 0;
    }
    const rest = this.buf.slice(this.pos);
    this.buf = rest;
    this.pos = 0;
    if (this.pendingKind === undefined && rest.length > 0) {
      try {
        this.startPending(rest);
      } catch (err) {
        if (err instanceof Fault) return this.failWith(err.condition, err.message);
        throw err;
      }
    }
    this.checkOpenSize();
  }

  /** Keeps an unfinished token aside (see pendingKind); plain text remainders stay in buf. */
  private startPending(rest: string): void {
    let kind: 'tag' | 'end-tag' | 'cdata' | undefined;
    if (rest.startsWith('<![CDATA[')) kind = 'cdata';
    else if (rest.startsWith('</')) kind = 'end-tag';
    else if (rest.length >= 2 && rest[0] === '<' && rest[1] !== '!' && rest[1] !== '?') kind = 'tag';
    if (kind === undefined) return;
    if (FORBIDDEN_CHAR.test(rest)) throw new Fault('not-well-formed', 'character not allowed in XML');
    this.pendingKind = kind;
    this.pendingParts = [rest];
    this.pendingLength = rest.length;
    this.pendingQuote = '';
    this.pendingTail = '';
    this.buf = '';
    if (kind === 'tag') this.findTerminator(rest.slice(1)); // sets the quote state; no '>' is in there
    else if (kind === 'cdata') this.pendingTail = rest.slice(-2);
  }

  /** Index of the pending token's terminator in `text`, or -1 (updating the scan state). */
  private findTerminator(text: string): number {
    if (this.pendingKind === 'end-tag') return text.indexOf('>');
    if (this.pendingKind === 'cdata') {
      const joined = this.pendingTail + text;
      const at = joined.indexOf(']]>');
      this.pendingTail = joined.slice(-2);
      return at < 0 ? -1 : at;
    }
    QUOTE_OR_ANGLE.lastIndex = 0;
    let quote = this.pendingQuote;
    for (;;) {
      const m = QUOTE_OR_ANGLE.exec(text);
      if (!m) break;
      const ch = m[0];
      if (ch === '<') {
        this.pendingQuote = '';
        return m.index; // never legal in a tag: let the full parse report it
      }
      if (quote !== '') {
        if (ch === quote) quote = '';
      } else if (ch === '>') {
        this.pendingQuote = '';
        return m.index; // '<' is an error the full parse will report
      } else quote = ch;
    }
    this.pendingQuote = quote;
    return -1;
  }

  /** Characters never outnumber bytes: this bounds memory before the element is complete (the exact byte count is checked when it is). */
  private checkOpenSize(): void {
    const open = this.carriedBytes + this.pendingLength + (this.buf.length - this.pos);
    if (open > this.limits.maxStanzaBytes) this.failWith('policy-violation', `stanza larger than ${this.limits.maxStanzaBytes} bytes`);
  }

  private failWith(condition: XmlFaultCondition, text: string): void {
    if (this.dead) return;
    this.stop();
    this.events.fault(condition, text);
  }

  private parse(generation: number): void {
    const buf = this.buf;
    while (this.pos < buf.length && generation === this.generation) {
      if (buf.charCodeAt(this.pos) !== 0x3c /* < */) {
        if (!this.text(buf)) return;
        continue;
      }
      if (this.pos + 1 >= buf.length) return;
      const next = buf.charCodeAt(this.pos + 1);
      let done: boolean;
      if (next === 0x2f /* / */) done = this.endTag(buf);
      else if (next === 0x21 /* ! */) done = this.markup(buf);
      else if (next === 0x3f /* ? */) done = this.processingInstruction(buf);
      else done = this.startTag(buf);
      if (!done) return;
    }
  }

  // ---- character data ----

  /** Consumes text up to the next '<' (or what is safe to consume of it); false when more input is needed. */
  private text(buf: string): boolean {
    const start = this.pos;
    let end = buf.indexOf('<', start);
    const complete = end >= 0;
    if (!complete) {
      end = buf.length;
      // Hold back what could be the start of a reference, a CR of a CRLF, or of ']]>'.
      const amp = buf.lastIndexOf('&', end - 1);
      if (amp >= start && buf.indexOf(';', amp) < 0) {
        // The longest legal reference is '&#x10FFFF;'; anything longer will never be one.
        if (buf.length - amp > 16) throw new Fault('not-well-formed', "'&' not starting a reference");
        end = amp;
      }
      while (end > start && (buf.charCodeAt(end - 1) === 0x0d || buf.charCodeAt(end - 1) === 0x5d)) end--;
      if (end === start) return false;
    }
    const raw = buf.slice(start, end);
    this.pos = end;
    this.seenContent = true;
    if (this.stack.length === 0) {
      // Before the root, or between stanzas: only whitespace (keepalives, pretty printing).
      if (!WHITESPACE_ONLY.test(raw)) {
        if (!this.started || this.rootClosed) throw new Fault('not-well-formed', 'text outside the root element');
        throw new Fault('bad-format', 'text between stanzas');
      }
      if (this.started) this.topStart = this.pos;
      return complete || this.pos < buf.length;
    }
    if (raw.includes(']]>')) throw new Fault('not-well-formed', "']]>' in text");
    this.appendText(decodeText(raw));
    return true;
  }

  private appendText(text: string): void {
    if (text.length === 0) return;
    const parent = this.stack[this.stack.length - 1]!;
    const children = parent.children;
    const last = children[children.length - 1];
    if (typeof last === 'string') children[children.length - 1] = last + text;
    else children.push(text);
  }

  // ---- <!...> and <?...?> ----

  private markup(buf: string): boolean {
    const rest = buf.slice(this.pos, this.pos + 9);
    if (rest.startsWith('<!--')) throw new Fault('restricted-xml', 'comment not allowed (RFC 6120 §11.1)');
    if (rest.startsWith('<!DOCTYPE')) throw new Fault('restricted-xml', 'DTD not allowed (RFC 6120 §11.1)');
    if (rest.startsWith('<![CDATA[')) {
      if (this.stack.length === 0) throw new Fault('not-well-formed', 'CDATA outside an element');
      const end = buf.indexOf(']]>', this.pos + 9);
      if (end < 0) return false;
      this.appendText(normalizeNewlines(checkChars(buf.slice(this.pos + 9, end))));
      this.pos = end + 3;
      return true;
    }
    const incomplete = rest.length < 9 && ['<!--', '<![CDATA[', '<!DOCTYPE'].some((m) => m.startsWith(rest));
    if (incomplete) return false;
    throw new Fault('not-well-formed', "unknown markup after '<!'");
  }

  private processingInstruction(buf: string): boolean {
    const end = buf.indexOf('?>', this.pos + 2);
    const atDocumentStart = !this.started && !this.seenContent;
    const head = buf.slice(this.pos, this.pos + 6);
    if (atDocumentStart && head.length < 6 && '<?xml '.startsWith(head)) return false;
    // The XML declaration is the only processing-instruction-like thing allowed, and only first.
    if (!atDocumentStart || !/^<\?xml[ \t\r\n]/.test(head)) {
      throw new Fault('restricted-xml', 'processing instruction not allowed (RFC 6120 §11.1)');
    }
    if (end < 0) return false;
    const decl = buf.slice(this.pos + 5, end);
    const match = /^[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:'1\.[0-9]+'|"1\.[0-9]+")(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:'([A-Za-z][\w.-]*)'|"([A-Za-z][\w.-]*)"))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:'(?:yes|no)'|"(?:yes|no)"))?[ \t\r\n]*$/.exec(decl);
    if (!match) throw new Fault('not-well-formed', 'malformed XML declaration');
    const encoding = (match[1] ?? match[2])?.toLowerCase();
    if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'utf8') throw new Fault('unsupported-encoding', `encoding ${encoding} is not UTF-8`);
    this.pos = end + 2;
    this.seenContent = true;
    return true;
  }

  // ---- tags ----

  private endTag(buf: string): boolean {
    const close = buf.indexOf('>', this.pos + 2);
    if (close < 0) return false;
    const name = buf.slice(this.pos + 2, close).replace(/[ \t\r\n]+$/, '');
    const depth = this.stack.length;
    if (depth === 0 && this.containers.length > 0) {
      if (name !== this.qnames[this.qnames.length - 1]) throw new Fault('not-well-formed', `unmatched end tag ${name}`);
      this.pos = close + 1;
      this.closeContainer();
      return true;
    }
    if (depth === 0) {
      if (!this.started || this.rootClosed) throw new Fault('not-well-formed', 'unexpected end tag');
      if (name !== this.rootName) throw new Fault('not-well-formed', `unmatched end tag ${name}`);
      this.pos = close + 1;
      this.rootClosed = true;
      this.events.streamClose();
      this.stop();
      return false;
    }
    if (name !== this.qnames[this.qnames.length - 1]) throw new Fault('not-well-formed', `unmatched end tag ${name}`);
    this.pos = close + 1;
    this.closeElement();
    return true;
  }

  private startTag(buf: string): boolean {
    if (this.rootClosed) throw new Fault('not-well-formed', 'content after the root element');
    // Find the '>' that ends this tag, outside quotes.
    let quote = 0;
    let close = -1;
    for (let i = this.pos + 1, length = buf.length; i < length; i++) {
      const c = buf.charCodeAt(i);
      if (quote !== 0) {
        if (c === quote) quote = 0;
        else if (c === 0x3c /* < */) throw new Fault('not-well-formed', "'<' in an attribute value");
      } else if (c === 0x3e /* > */) {
        close = i;
        break;
      } else if (c === 0x3c) {
        throw new Fault('not-well-formed', "'<' inside a tag");
      } else if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
        quote = c;
      }
    }
    if (close < 0) return false;
    const tagStart = this.pos;
    this.pos = close + 1;
    this.openElement(buf, tagStart, close);
    return true;
  }

  private openElement(buf: string, start: number, close: number): void {
    const depth = this.stack.length + this.containers.length + (this.started ? 1 : 0);
    if (depth + 1 > this.limits.maxDepth) throw new Fault('policy-violation', `elements nested deeper than ${this.limits.maxDepth}`);
    const nameEnd = scanName(buf, start + 1, false);
    if (nameEnd === start + 1) throw new Fault('not-well-formed', 'missing tag name');
    const qname = buf.slice(start + 1, nameEnd);
    let i = nameEnd;
    // Attribute names and (decoded) values, flat: [name0, value0, name1, value1, ...].
    const raw: string[] = [];
    let declares = false;
    for (;;) {
      // The end of the tag: [ \t\r\n]* '/'? '>', ending right at `close`.
      const next = skipXmlSpace(buf, i);
      const c = buf.charCodeAt(next);
      if (c === 0x3e /* > */ || (c === 0x2f /* / */ && buf.charCodeAt(next + 1) === 0x3e)) {
        if ((c === 0x3e ? next + 1 : next + 2) !== close + 1) throw new Fault('not-well-formed', 'malformed tag');
        break;
      }
      // An attribute: [ \t\r\n]+ name [ \t\r\n]* '=' [ \t\r\n]* quoted value without '<'.
      const malformed = (): Fault => new Fault('not-well-formed', `malformed attribute in <${qname}>`);
      if (next === i) throw malformed();
      const attrNameEnd = scanName(buf, next, true);
      if (attrNameEnd === next) throw malformed();
      let k = skipXmlSpace(buf, attrNameEnd);
      if (buf.charCodeAt(k) !== 0x3d /* = */) throw malformed();
      k = skipXmlSpace(buf, k + 1);
      const quote = buf.charCodeAt(k);
      if (quote !== 0x22 && quote !== 0x27) throw malformed();
      const valueEnd = buf.indexOf(quote === 0x22 ? '"' : "'", k + 1);
      if (valueEnd < 0 || valueEnd >= close) throw malformed();
      const value = buf.slice(k + 1, valueEnd);
      if (value.indexOf('<') >= 0) throw malformed();
      i = valueEnd + 1;
      if (raw.length >= this.limits.maxAttributes * 2) throw new Fault('policy-violation', `more than ${this.limits.maxAttributes} attributes`);
      if (value.length > this.limits.maxAttributeLength) throw new Fault('policy-violation', `attribute longer than ${this.limits.maxAttributeLength} characters`);
      const name = buf.slice(next, attrNameEnd);
      for (let k = 0; k < raw.length; k += 2) if (raw[k] === name) throw new Fault('not-well-formed', `duplicate attribute ${name}`);
      if (name.charCodeAt(0) === 0x78 /* x */ && (name === 'xmlns' || name.startsWith('xmlns:'))) declares = true;
      raw.push(name, decodeAttribute(value));
    }
    const selfClosing = buf.charCodeAt(close - 1) === 0x2f;

    // Namespaces: a new scope only when this element declares something.
    const parentScope = this.scopeStack.length > 0 ? this.scopeStack[this.scopeStack.length - 1]! : ROOT_SCOPE;
    let scope = parentScope;
    if (declares) {
      let defaultNs = parentScope.defaultNs;
      let prefixes: Map<string, string> | undefined;
      for (let k = 0; k < raw.length; k += 2) {
        const name = raw[k]!;
        // Namespace names are URIs: surrounding whitespace is not part of them (as saxes does).
        const value = raw[k + 1]!.trim();
        if (name === 'xmlns') {
          if (value === NS_XML || value === NS_XMLNS) throw new Fault('not-well-formed', 'reserved namespace as default');
          defaultNs = value;
        } else if (name.startsWith('xmlns:')) {
          const prefix = name.slice(6);
          const parts = splitName(prefix);
          if (parts.prefix !== '') throw new Fault('not-well-formed', `bad prefix ${prefix}`);
          if (prefix === 'xmlns' || (prefix === 'xml' && value !== NS_XML) || (prefix !== 'xml' && (value === NS_XML || value === NS_XMLNS))) {
            throw new Fault('not-well-formed', `reserved prefix or namespace ${prefix}`);
          }
          if (value === '') throw new Fault('not-well-formed', `empty namespace for prefix ${prefix}`);
          prefixes ??= new Map(parentScope.prefixes);
          prefixes.set(prefix, value);
        }
      }
      scope = new Scope(defaultNs, prefixes ?? parentScope.prefixes);
    }
    const { prefix, local } = splitName(qname);
    if (prefix === 'xmlns') throw new Fault('not-well-formed', 'element with the xmlns prefix');
    const uri = prefix === '' ? (scope.defaultNs ?? '') : scope.prefixes.get(prefix);
    if (uri === undefined) throw new Fault('not-well-formed', `unbound namespace prefix ${prefix}`);

    const attrs: Attrs = {};
    if (this.started) {
      const parentNs = this.nsStack.length === 0 ? this.contentNs : this.nsStack[this.nsStack.length - 1]!;
      if (uri !== parentNs) attrs.xmlns = uri;
    }
    let expanded: string[] | undefined;
    for (let k = 0; k < raw.length; k += 2) {
      const name = raw[k]!;
      if (name.charCodeAt(0) === 0x78 && (name === 'xmlns' || name.startsWith('xmlns:'))) continue;
      const parts = splitName(name);
      if (parts.prefix !== '') {
        const attrUri = scope.prefixes.get(parts.prefix);
        if (attrUri === undefined) throw new Fault('not-well-formed', `unbound namespace prefix ${parts.prefix}`);
        const key = `${attrUri}|${parts.local}`;
        expanded ??= [];
        if (expanded.includes(key)) throw new Fault('not-well-formed', `duplicate attribute ${name}`);
        expanded.push(key);
        // Keep the declaration of a prefixed attribute's namespace on the element that uses it, so
        // the element still means the same once cut out of this stream and written into another.
        if (attrUri !== NS_XML) attrs[`xmlns:${parts.prefix}`] = attrUri;
      }
      attrs[name] = raw[k + 1]!;
    }

    if (!this.started) {
      this.started = true;
      this.rootName = qname;
      this.contentNs = scope.defaultNs ?? '';
      this.scopeStack = [scope];
      this.pos = close + 1;
      this.topStart = this.pos;
      this.checkSize(buf, start, close + 1, 'stream header');
      this.events.streamOpen({ name: local, ns: uri, contentNs: scope.defaultNs, prefix, attrs });
      if (selfClosing) {
        this.rootClosed = true;
        this.events.streamClose();
        this.stop();
      }
      return;
    }
    const el = new XmlElement(local, attrs);
    this.qnames.push(qname);
    if (this.stack.length === 0 && this.containers.length < this.containerDepth) {
      this.containers.push(el);
      this.nsStack.push(uri);
      this.scopeStack.push(scope);
      this.checkSize(buf, start, close + 1, 'start tag');
      this.topStart = this.pos;
      this.events.containerOpen?.(el, uri);
      if (selfClosing) this.closeContainer();
      return;
    }
    if (this.stack.length === 0) this.topStart = start;
    else this.stack[this.stack.length - 1]!.children.push(el);
    this.stack.push(el);
    this.nsStack.push(uri);
    this.scopeStack.push(scope);
    if (selfClosing) this.closeElement();
  }

  private closeElement(): void {
    const el = this.stack.pop()!;
    const ns = this.nsStack.pop()!;
    this.scopeStack.pop();
    this.qnames.pop();
    if (this.stack.length === 0) {
      this.checkSize(this.buf, this.topStart, this.pos, 'stanza');
      this.topStart = this.pos;
      this.events.stanza(el, ns);
    }
  }

  private closeContainer(): void {
    const el = this.containers.pop()!;
    this.nsStack.pop();
    this.scopeStack.pop();
    this.qnames.pop();
    this.topStart = this.pos;
    this.events.containerClose?.(el);
  }

  private checkSize(buf: string, start: number, end: number, what: string): void {
    const carried = this.carriedBytes;
    this.carriedBytes = 0;
    // Fast path: 4 bytes per character at most, so a short element cannot be over the limit.
    if (carried + (end - start) * 4 <= this.limits.maxStanzaBytes) return;
    if (carried + Buffer.byteLength(buf.slice(start, end)) > this.limits.maxStanzaBytes) {
      throw new Fault('policy-violation', `${what} larger than ${this.limits.maxStanzaBytes} bytes`);
    }
  }
}

/**
 * End of a tag name (attribute: true → an attribute name) starting at `from`: the first character
 * that is whitespace (JavaScript's \s), '/' or '>' — for attribute names also '=', a quote. Whether
 * the name is a valid XML name is checked later (splitName).
 */
function scanName(buf: string, from: number, attribute: boolean): number {
  let i = from;
  for (const length = buf.length; i < length; i++) {
    const c = buf.charCodeAt(i);
    if (c === 0x2f || c === 0x3e || c === 0x20 || (c >= 0x09 && c <= 0x0d)) break;
    if (attribute && (c === 0x3d || c === 0x22 || c === 0x27)) break;
    if (c >= 0x80 && NON_ASCII_SPACE.test(buf[i]!)) break;
  }
  return i;
}

/** Index of the first character at or after `from` that is not XML whitespace (space, tab, CR, LF). */
function skipXmlSpace(buf: string, from: number): number {
  let i = from;
  for (let c = buf.charCodeAt(i); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = buf.charCodeAt(++i));
  return i;
}

const NAME_CACHE = new Map<string, { prefix: string; local: string }>();
const ASCII_QNAME = /^(?:([A-Za-z_][\w.-]*):)?([A-Za-z_][\w.-]*)$/;

/** Splits and validates a qualified name (cached: the same few names recur in every stanza). */
function splitName(qname: string): { prefix: string; local: string } {
  let parts = NAME_CACHE.get(qname);
  if (parts) return parts;
  const m = ASCII_QNAME.exec(qname) ?? QNAME.exec(qname);
  if (!m) throw new Fault('not-well-formed', `bad name ${qname}`);
  parts = { prefix: m[1] ?? '', local: m[2]! };
  if (NAME_CACHE.size >= 2000) NAME_CACHE.clear();
  NAME_CACHE.set(qname, parts);
  return parts;
}

function checkChars(text: string): string {
  if (FORBIDDEN_CHAR.test(text)) throw new Fault('not-well-formed', 'character not allowed in XML');
  if (SURROGATE.test(text) && LONE_SURROGATE.test(text)) throw new Fault('not-well-formed', 'lone surrogate');
  return text;
}

function normalizeNewlines(text: string): string {
  return text.indexOf('\r') < 0 ? text : text.replace(/\r\n?/g, '\n');
}

function decodeReferences(text: string): string {
  if (text.indexOf('&') < 0) return text;
  REFERENCE.lastIndex = 0;
  return text.replace(REFERENCE, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new Fault('not-well-formed', "'&' not starting a reference");
    if (ref.charCodeAt(0) === 0x23 /* # */) {
      const code = ref[1] === 'x' ? (/^x[0-9a-fA-F]+$/.test(ref.slice(1)) ? parseInt(ref.slice(2), 16) : NaN) : /^[0-9]+$/.test(ref.slice(1)) ? parseInt(ref.slice(1), 10) : NaN;
      if (!isXmlChar(code)) throw new Fault('not-well-formed', `bad character reference &${ref};`);
      return String.fromCodePoint(code);
    }
    const value = PREDEFINED[ref];
    if (value === undefined) {
      if (QNAME.test(ref) && !ref.includes(':')) throw new Fault('restricted-xml', 'entity references other than the predefined ones are not allowed');
      throw new Fault('not-well-formed', `bad reference &${ref};`);
    }
    return value;
  });
}

function decodeText(raw: string): string {
  return decodeReferences(normalizeNewlines(checkChars(raw)));
}

/** Attribute-value normalisation (XML 1.0 §3.3.3): literal tab, CR, LF become spaces; references keep theirs. */
function decodeAttribute(raw: string): string {
  checkChars(raw);
  const spaced = /[\t\n\r]/.test(raw) ? raw.replace(/\r\n|[\t\n\r]/g, ' ') : raw;
  return decodeReferences(spaced);
}

function isXmlChar(code: number): boolean {
  return (
    code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff)
  );
}

/** Parses one complete XML element from a string (tests, stored stanzas, config). Throws on faults. */
export function parseXml(source: string, limits: XmlLimits = { ...DEFAULT_XML_LIMITS, maxStanzaBytes: Number.MAX_SAFE_INTEGER }): XmlElement {
  let result: XmlElement | undefined;
  let failure: string | undefined;
  const parser = new XmlStreamParser(
    {
      streamOpen() {},
      stanza(el) {
        if (result === undefined) result = el;
      },
      streamClose() {},
      fault(condition, text) {
        failure = `${condition}: ${text}`;
      },
    },
    limits,
  );
  parser.write('<wrapper>');
  parser.write(source);
  parser.write('</wrapper>');
  if (failure !== undefined) throw new Error(failure);
  if (result === undefined) throw new Error('no element');
  return result;
}
