// Reference implementation for the differential test (test/unit/xml-differential.test.ts): the
// first XML stream parser of Herald, built on saxes. Not used by the server.
//
// saxes does the tokenizing (it is a conforming, non-validating XML 1.0 parser that never expands
// external or custom entities). This wrapper is where the XMPP rules and the hard limits live:
// - RFC 6120 §11.1: no comments, processing instructions, DTDs or non-predefined entity references
//   (restricted-xml);
// - RFC 6120 §11.6: UTF-8 only; invalid byte sequences are not-well-formed, a declared other
//   encoding is unsupported-encoding; a code point split across two reads is fine (streaming decoder);
// - limits on stanza size (in bytes of the wire encoding), element depth, attribute count and
//   attribute length (policy-violation), checked while data arrives so an endless tag or text never
//   piles up beyond the limit plus one read.
// After a fault the parser goes quiet: every further write is ignored.

import { SaxesParser, type SaxesTagNS } from 'saxes';
import { XmlElement, type Attrs } from '../../server/xml/element.js';

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

export type XmlFaultCondition =
  | 'not-well-formed'
  | 'restricted-xml'
  | 'policy-violation'
  | 'unsupported-encoding'
  | 'bad-format';

export interface StreamHeader {
  /** Local name of the root (`stream` for TCP streams, `open` for RFC 7395 framing). */
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
}

/** Thrown out of saxes to abandon the rest of a chunk after a reset or stop. */
const ABANDON = new Error('parser reset');

class Fault extends Error {
  constructor(readonly condition: XmlFaultCondition, message: string) {
    super(message);
  }
}

const NS_XML = 'http://www.w3.org/XML/1998/namespace';
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;

export class XmlStreamParser {
  private sax!: SaxesParser<{ xmlns: true; position: true }>;
  private decoder!: TextDecoder;
  private stack: XmlElement[] = [];
  private nsStack: string[] = [];
  private contentNs = '';
  private depth = 0;
  private attributeCount = 0;
  private dead = false;
  /** Set when a handler resets or stops the parser mid-chunk: the rest of that chunk is dropped. */
  private interrupted = false;

  // Byte accounting: `window` holds the decoded text not yet accounted for; positions are
  // saxes string indexes over everything fed since the last reset.
  private window = '';
  private windowStart = 0;
  private windowStartBytes = 0;
  private cursorIdx = 0;
  private cursorBytes = 0;
  /** Byte offset where the current top-level element (or inter-stanza gap) began. */
  private boundaryBytes = 0;
  /** True while only whitespace has arrived since the last boundary (keepalives must not add up). */
  private idle = false;
  /** saxes position of the last boundary. */
  private boundaryPos = 0;

  constructor(private readonly events: XmlStreamEvents, private readonly limits: XmlLimits = DEFAULT_XML_LIMITS) {
    this.reset();
  }

  /** Start a fresh XML document (stream restart after STARTTLS or SASL). Drops unparsed input. */
  reset(): void {
    this.interrupted = true;
    this.dead = false;
    this.decoder = new TextDecoder('utf-8', { fatal: true });
    this.stack = [];
    this.nsStack = [];
    this.contentNs = '';
    this.depth = 0;
    this.window = '';
    this.windowStart = 0;
    this.windowStartBytes = 0;
    this.cursorIdx = 0;
    this.cursorBytes = 0;
    this.boundaryBytes = 0;
    this.idle = false;
    this.boundaryPos = 0;
    this.sax = this.createSax();
  }

  /** Stop parsing for good (after a stream error, or when the connection closes). */
  stop(): void {
    this.dead = true;
    this.interrupted = true;
  }

  get stopped(): boolean {
    return this.dead;
  }

  write(chunk: Buffer | Uint8Array | string): void {
    if (this.dead) return;
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
    } else {
      try {
        text = this.decoder.decode(chunk, { stream: true });
      } catch {
        this.failWith('not-well-formed', 'invalid UTF-8');
        return;
      }
    }
    if (text.length === 0) return;
    this.interrupted = false;
    const sax = this.sax;
    this.window += text;
    try {
      sax.write(text);
    } catch (err) {
      if (err === ABANDON || (this.interrupted && !(err instanceof Fault))) return; // a handler reset or stopped us mid-chunk
      if (err instanceof Fault) this.failWith(err.condition, err.message);
      else this.failWith('not-well-formed', err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.interrupted || sax !== this.sax) return;
    // Whatever is still open has been growing since the last boundary: enforce the limit now,
    // so a never-ending tag or text cannot hold more than one read beyond it.
    const end = this.bytesAt(sax.position);
    // Keepalive whitespace after the last stanza moves the boundary, or it would add up.
    const idleTail = this.idle && this.depth === 1 && WHITESPACE_ONLY.test(this.window.slice(Math.max(0, this.boundaryPos - this.windowStart)));
    this.window = this.window.slice(this.cursorIdx);
    this.windowStart = sax.position;
    this.windowStartBytes = end;
    this.cursorIdx = 0;
    this.cursorBytes = end;
    const pending = this.window.length === 0 ? 0 : Buffer.byteLength(this.window);
    if (idleTail) {
      this.boundaryBytes = end + pending;
      this.boundaryPos = sax.position + this.window.length;
    } else {
      this.idle = false;
    }
    if (end + pending - this.boundaryBytes > this.limits.maxStanzaBytes) {
      this.failWith('policy-violation', `stanza larger than ${this.limits.maxStanzaBytes} bytes`);
    }
  }

  private failWith(condition: XmlFaultCondition, text: string): void {
    if (this.dead) return;
    this.stop();
    this.events.fault(condition, text);
  }

  private bytesAt(position: number): number {
    let idx = position - this.windowStart;
    if (idx < 0) idx = 0;
    if (idx > this.window.length) idx = this.window.length;
    if (idx > this.cursorIdx) {
      this.cursorBytes += Buffer.byteLength(this.window.slice(this.cursorIdx, idx));
      this.cursorIdx = idx;
    }
    return this.cursorBytes;
  }

  private createSax(): SaxesParser<{ xmlns: true; position: true }> {
    const sax = new SaxesParser({ xmlns: true, position: true });
    // Events still coming from this saxes after a reset (or a stop) belong to a dead document.
    const live = (): void => {
      if (this.dead || this.sax !== sax) throw ABANDON;
    };
    const restricted = (what: string) => () => {
      live();
      throw new Fault('restricted-xml', `${what} not allowed (RFC 6120 §11.1)`);
    };
    sax.on('doctype', restricted('DTD'));
    sax.on('comment', restricted('comment'));
    sax.on('processinginstruction', restricted('processing instruction'));
    sax.on('xmldecl', (decl) => {
      live();
      if (decl.encoding !== undefined && decl.encoding.toLowerCase() !== 'utf-8' && decl.encoding.toLowerCase() !== 'utf8') {
        throw new Fault('unsupported-encoding', `encoding ${decl.encoding} is not UTF-8`);
      }
    });
    sax.on('error', (err) => {
      live();
      const message = err.message;
      if (message.includes('undefined entity')) throw new Fault('restricted-xml', 'entity references other than the predefined ones are not allowed');
      if (message.includes('doctype')) throw new Fault('restricted-xml', 'DTD not allowed');
      throw new Fault('not-well-formed', message.replace(/^[^:]*:\d+:\d+: /, ''));
    });
    sax.on('opentagstart', () => {
      live();
      this.attributeCount = 0;
      if (this.depth + 1 > this.limits.maxDepth) throw new Fault('policy-violation', `elements nested deeper than ${this.limits.maxDepth}`);
    });
    sax.on('attribute', (attr) => {
      if (++this.attributeCount > this.limits.maxAttributes) throw new Fault('policy-violation', `more than ${this.limits.maxAttributes} attributes`);
      if (attr.value.length > this.limits.maxAttributeLength) throw new Fault('policy-violation', `attribute longer than ${this.limits.maxAttributeLength} characters`);
    });
    sax.on('opentag', (tag) => (live(), this.onOpenTag(tag)));
    sax.on('closetag', () => (live(), this.onCloseTag()));
    sax.on('text', (text) => (live(), this.onText(text)));
    sax.on('cdata', (text) => (live(), this.onText(text)));
    return sax;
  }

  private onOpenTag(tag: SaxesTagNS): void {
    this.depth++;
    if (this.depth === 1) {
      this.contentNs = tag.ns[''] ?? '';
      const attrs: Attrs = {};
      for (const key in tag.attributes) {
        const attr = tag.attributes[key]!;
        if (attr.prefix === 'xmlns' || attr.name === 'xmlns') continue;
        attrs[attr.name] = attr.value;
      }
      this.boundaryBytes = this.bytesAt(this.sax.position);
      this.boundaryPos = this.sax.position;
      this.idle = true;
      this.events.streamOpen({ name: tag.local, ns: tag.uri, contentNs: tag.ns[''], prefix: tag.prefix, attrs });
      return;
    }
    const parentNs = this.depth === 2 ? this.contentNs : this.nsStack[this.nsStack.length - 1]!;
    const attrs: Attrs = {};
    if (tag.uri !== parentNs) attrs.xmlns = tag.uri;
    for (const key in tag.attributes) {
      const attr = tag.attributes[key]!;
      if (attr.prefix === 'xmlns' || attr.name === 'xmlns') continue;
      attrs[attr.name] = attr.value;
      // Keep the declaration of a prefixed attribute's namespace on the element that uses it, so
      // the element still means the same once cut out of this stream and written into another.
      if (attr.prefix !== '' && attr.uri !== NS_XML) attrs[`xmlns:${attr.prefix}`] = attr.uri;
    }
    const el = new XmlElement(tag.local, attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
    this.nsStack.push(tag.uri);
  }

  private onCloseTag(): void {
    this.depth--;
    if (this.depth === 0) {
      this.events.streamClose();
      this.stop();
      return;
    }
    const el = this.stack.pop()!;
    const ns = this.nsStack.pop()!;
    if (this.depth === 1) {
      const end = this.bytesAt(this.sax.position);
      if (end - this.boundaryBytes > this.limits.maxStanzaBytes) {
        throw new Fault('policy-violation', `stanza larger than ${this.limits.maxStanzaBytes} bytes`);
      }
      this.boundaryBytes = end;
      this.boundaryPos = this.sax.position;
      this.idle = true;
      this.events.stanza(el, ns);
    }
  }

  private onText(text: string): void {
    if (this.depth <= 1) {
      // Between stanzas only whitespace is allowed (keepalives, pretty printing).
      if (!WHITESPACE_ONLY.test(text)) throw new Fault('bad-format', 'text between stanzas');
      this.boundaryBytes = this.bytesAt(this.sax.position - 1);
      this.boundaryPos = this.sax.position - 1;
      return;
    }
    if (text === '') return;
    const parent = this.stack[this.stack.length - 1]!;
    const children = parent.children;
    const last = children[children.length - 1];
    if (typeof last === 'string') children[children.length - 1] = last + text;
    else children.push(text);
  }
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
