// Reads an XEP-0227 file as a stream of hosts and users, one <user> element at a time, so a host
// with tens of thousands of accounts never sits in memory whole (DESIGN.md §5). Built on Herald's
// own XML parser (server/xml/parser.ts) with <host> as a "container" level, so its users arrive as
// complete elements, and with limits raised for files (a user with a big vCard or PEP avatar).
//
// What an export may contain beyond plain elements:
// - XInclude (XEP-0227 §5: "An importing server MUST support <include/> elements having an 'href'
//   attribute containing a relative URI, having no 'parse' attribute, and having no 'xpointer'
//   attribute"): followed relative to the including file, at any level, loops refused. ejabberd
//   splits every export this way (main file → one file per host).
// - Comments: Herald's stream parser refuses them (RFC 6120 §11.1), so they are cut out before it
//   sees the text; a file edited by hand may well have some.
// Errors name the file and line: the line where the failing element starts, or where the XML
// stopped being well-formed. Lines are counted in the bytes fed to the parser, a line at a time.

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { XmlStreamParser, type StreamHeader, type XmlLimits } from '../../server/xml/parser.js';
import { XmlElement } from '../../server/xml/element.js';
import { NS_XINCLUDE, NS_XINCLUDE_OLD, PieFormatError, isPieNamespace } from './format.js';

export interface PieHostEvent {
  kind: 'host';
  /** The 'jid' attribute as written. */
  jid: string;
  file: string;
  line: number;
}

export interface PieUserEvent {
  kind: 'user';
  /** The enclosing host's 'jid' attribute as written. */
  host: string;
  /** The <user/> element with all its children (XIncludes inside it already followed). */
  element: XmlElement;
  file: string;
  line: number;
}

/** An element the format does not define where it stands (XEP-0227: ignore it, tell the operator). */
export interface PieIgnoredEvent {
  kind: 'ignored';
  what: string;
  file: string;
  line: number;
}

export type PieEvent = PieHostEvent | PieUserEvent | PieIgnoredEvent;

/** A user element may carry a large vCard photo or PEP avatar; a file is trusted more than a socket. */
export const IMPORT_XML_LIMITS: XmlLimits = {
  maxStanzaBytes: 64 * 1024 * 1024,
  maxDepth: 128,
  maxAttributes: 256,
  maxAttributeLength: 1024 * 1024,
};

const MAX_INCLUDE_DEPTH = 16;
/** Longest piece fed at once when a line is longer (ejabberd writes a whole host on one line). */
const MAX_PIECE = 64 * 1024;
const GT = 0x3e;
const LF = 0x0a;

/** Where an included document stands, which decides the roots it may have. */
type Level = 'top' | 'server' | 'host';
const ALLOWED_ROOTS: Record<Level, string[]> = { top: ['server-data', 'host'], server: ['server-data', 'host'], host: ['user'] };

type Action =
  | PieEvent
  | { kind: 'include'; href: string; level: Level; host: string | undefined; line: number };

interface Origin {
  file: string;
  line: number;
}

/** The hosts and users of an XEP-0227 file, in document order, includes followed. */
export function readPieFile(path: string): AsyncGenerator<PieEvent> {
  return readDocument(resolve(path), 'top', undefined, []);
}

async function* readDocument(path: string, level: Level, host: string | undefined, chain: string[], origin?: Origin): AsyncGenerator<PieEvent> {
  if (chain.includes(path)) throw new PieFormatError(origin!.file, origin!.line, `xi:include of ${path} loops back to a file that includes it`);
  if (chain.length >= MAX_INCLUDE_DEPTH) throw new PieFormatError(origin!.file, origin!.line, `xi:include nested deeper than ${MAX_INCLUDE_DEPTH} files`);
  const within = [...chain, path];
  const doc = new DocumentParser(path, level, host);
  for await (const piece of linePieces(path, origin)) {
    doc.feed(piece.bytes, piece.endsLine);
    for (const action of doc.takeActions()) {
      if (action.kind === 'include') {
        const target = includeTarget(path, action.href, action.line);
        yield* readDocument(target, action.level, action.host, within, { file: path, line: action.line });
      } else if (action.kind === 'user') {
        await expandIncludes(action.element, path, action.line, within);
        yield action;
      } else {
        yield action;
      }
    }
  }
  doc.end();
}

/**
 * Feeds one document to the parser and turns its events into actions. Everything here is
 * synchronous (the parser calls back inside write()); the generator above does the awaiting.
 */
class DocumentParser {
  private readonly parser: XmlStreamParser;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly comments = new CommentFilter();
  private actions: Action[] = [];
  private failure: PieFormatError | undefined;
  /** Line of the piece being fed (1-based). */
  private line = 1;
  /** Line where the element now being read began (set once the parser leaves the idle state). */
  private elementStart: number | undefined;
  private rootKind: string | undefined;
  private closed = false;
  private currentHost: string | undefined;
  private insideIgnored = false;
  /** The last <user/> read whole, to say where a fault is in a file that is one long line. */
  private lastUser: { name: string; line: number } | undefined;
  /** A document whose root is <user/>: the root rebuilt from its header and children. */
  private userRoot: { element: XmlElement; line: number; contentNs: string | undefined; ns: string } | undefined;

  constructor(private readonly file: string, private readonly level: Level, private readonly host: string | undefined) {
    this.parser = new XmlStreamParser(
      {
        streamOpen: (header) => this.onRoot(header),
        containerOpen: (el, ns) => this.onContainer(el, ns),
        containerClose: () => {
          this.currentHost = undefined;
          this.insideIgnored = false;
        },
        stanza: (el, ns) => this.onElement(el, ns),
        streamClose: () => this.onRootClose(),
        fault: (condition, text) => this.fail(this.afterLastUser(faultReason(condition, text))),
      },
      IMPORT_XML_LIMITS,
    );
  }

  feed(bytes: Buffer, endsLine: boolean): void {
    let text: string;
    try {
      text = this.decoder.decode(bytes, { stream: true });
    } catch {
      throw new PieFormatError(this.file, this.line, 'not valid UTF-8');
    }
    text = this.comments.filter(text);
    if (this.closed) {
      if (!/^\s*$/.test(text)) throw new PieFormatError(this.file, this.line, 'content after the root element');
    } else if (text !== '') {
      this.parser.write(text);
      if (this.failure) throw this.failure;
      if (this.elementStart === undefined && !this.parser.idle) this.elementStart = this.line;
    }
    if (endsLine) this.line++;
  }

  takeActions(): Action[] {
    const out = this.actions;
    this.actions = [];
    return out;
  }

  end(): void {
    try {
      this.decoder.decode();
    } catch {
      throw new PieFormatError(this.file, this.line, 'not valid UTF-8 (the file ends inside a character)');
    }
    const lastLine = Math.max(1, this.line - 1);
    if (this.rootKind === undefined) throw new PieFormatError(this.file, lastLine, 'no root element: this is not an XEP-0227 file');
    if (!this.closed) throw new PieFormatError(this.file, lastLine, `the file ends before </${this.rootKind}> (truncated?)`);
  }

  /**
   * ejabberd writes a whole host on one line, where "line 1" alone says little: a fault on the
   * line of the last complete user also names that user.
   */
  private afterLastUser(reason: string): string {
    return this.lastUser?.line === this.line ? `${reason}, after <user name='${this.lastUser.name}'/>` : reason;
  }

  private fail(reason: string, line = this.line): void {
    this.failure ??= new PieFormatError(this.file, line, reason);
    this.parser.stop();
  }

  /** Where the element just completed began: reset for the next one. */
  private startLine(): number {
    const line = this.elementStart ?? this.line;
    this.elementStart = undefined;
    return line;
  }

  private onRoot(header: StreamHeader): void {
    const line = this.startLine();
    const allowed = ALLOWED_ROOTS[this.level];
    if (!isPieNamespace(header.ns) || !allowed.includes(header.name)) {
      const expected = allowed.map((name) => `<${name}/>`).join(' or ');
      return this.fail(`the root element is <${header.name}/> in '${header.ns}'; expected ${expected} in urn:xmpp:pie:0 (XEP-0227)`, line);
    }
    this.rootKind = header.name;
    if (header.name === 'server-data') {
      this.parser.containerDepth = 1; // <host/> elements are containers, their <user/>s the elements read
    } else if (header.name === 'host') {
      const jid = header.attrs.jid;
      if (!jid) return this.fail("<host/> without a 'jid' attribute", line);
      this.currentHost = jid;
      this.actions.push({ kind: 'host', jid, file: this.file, line });
    } else {
      const element = new XmlElement('user', { ...header.attrs });
      this.userRoot = { element, line, contentNs: header.contentNs, ns: header.ns };
    }
  }

  private onContainer(el: XmlElement, ns: string): void {
    const line = this.startLine();
    if (el.name === 'host' && isPieNamespace(ns)) {
      const jid = el.attrs.jid;
      if (!jid) return this.fail("<host/> without a 'jid' attribute", line);
      this.currentHost = jid;
      this.actions.push({ kind: 'host', jid, file: this.file, line });
    } else if (isInclude(el, ns)) {
      this.include(el, 'server', line);
    } else {
      this.insideIgnored = true;
      this.actions.push({ kind: 'ignored', what: describe(el, ns, 'server-data'), file: this.file, line });
    }
  }

  private onElement(el: XmlElement, ns: string): void {
    const line = this.startLine();
    if (this.userRoot) {
      // A user file: its root's children, re-attached under an element that states its namespace.
      if (el.attrs.xmlns === undefined && this.userRoot.contentNs !== this.userRoot.ns) el.attrs.xmlns = ns;
      this.userRoot.element.children.push(el);
      return;
    }
    if (this.insideIgnored) return;
    if (el.name === 'user' && isPieNamespace(ns)) {
      // Whitespace between a user's children is formatting (its content is elements only).
      el.children = el.children.filter((child) => typeof child !== 'string' || child.trim() !== '');
      this.lastUser = { name: el.attrs.name ?? '', line: this.line };
      this.actions.push({ kind: 'user', host: this.currentHost!, element: el, file: this.file, line });
    } else if (isInclude(el, ns)) {
      this.include(el, 'host', line);
    } else {
      this.actions.push({ kind: 'ignored', what: describe(el, ns, 'host'), file: this.file, line });
    }
  }

  private onRootClose(): void {
    this.closed = true;
    if (!this.userRoot) return;
    if (this.host === undefined) return this.fail('a <user/> file can only be read through the <host/> that includes it', this.userRoot.line);
    this.actions.push({ kind: 'user', host: this.host, element: this.userRoot.element, file: this.file, line: this.userRoot.line });
  }

  private include(el: XmlElement, level: Level, line: number): void {
    const problem = unsupportedInclude(el);
    if (problem) return this.fail(problem, line);
    this.actions.push({ kind: 'include', href: el.attrs.href!, level, host: level === 'host' ? this.currentHost : undefined, line });
  }
}

/** The parser's words, for a file: its stanza limit is IMPORT_XML_LIMITS's limit on one <user/>. */
function faultReason(condition: string, text: string): string {
  if (condition === 'restricted-xml') return text.replace(/ \(RFC 6120 §11\.1\)$/, '');
  const tooLarge = /^stanza larger than (\d+) bytes$/.exec(text);
  if (tooLarge) return `a <user/> larger than ${tooLarge[1]} bytes, the most one account's data (message archive included) may take up in a file`;
  return `${text} (${condition})`;
}

function isInclude(el: XmlElement, ns: string): boolean {
  return el.name === 'include' && (ns === NS_XINCLUDE || ns === NS_XINCLUDE_OLD);
}

/** XEP-0227 §5 requires the plain kind; the others are refused rather than misread. */
function unsupportedInclude(el: XmlElement): string | undefined {
  if (!el.attrs.href) return "xi:include without 'href'";
  if (el.attrs.parse !== undefined && el.attrs.parse !== 'xml') return `xi:include with parse='${el.attrs.parse}' is not supported`;
  if (el.attrs.xpointer !== undefined) return 'xi:include with xpointer is not supported';
  return undefined;
}

/** An href relative to the including file (a relative URI), as a local path. */
function includeTarget(including: string, href: string, line: number): string {
  let url: URL;
  try {
    url = new URL(href, pathToFileURL(including));
  } catch {
    throw new PieFormatError(including, line, `xi:include href '${href}' is not a URI`);
  }
  if (url.protocol !== 'file:') throw new PieFormatError(including, line, `xi:include href '${href}': only local files can be included`);
  return fileURLToPath(url);
}

function describe(el: XmlElement, ns: string, parent: string): string {
  return `<${el.name} xmlns='${ns}'/> in <${parent}/>`;
}

/** Follows XIncludes inside a user element (rare: exporters split per host or per user). */
async function expandIncludes(el: XmlElement, file: string, line: number, chain: string[]): Promise<void> {
  for (let i = 0; i < el.children.length; i++) {
    const child = el.children[i]!;
    if (typeof child === 'string') continue;
    if (child.name === 'include' && (child.attrs.xmlns === NS_XINCLUDE || child.attrs.xmlns === NS_XINCLUDE_OLD)) {
      const problem = unsupportedInclude(child);
      if (problem) throw new PieFormatError(file, line, problem);
      const target = includeTarget(file, child.attrs.href!, line);
      if (chain.includes(target) || chain.length >= MAX_INCLUDE_DEPTH) throw new PieFormatError(file, line, `xi:include of ${target} loops or nests too deep`);
      const included = await readWholeElement(target, { file, line });
      await expandIncludes(included, target, 1, [...chain, target]);
      el.children[i] = included;
    } else {
      await expandIncludes(child, file, line, chain);
    }
  }
}

/** A small included document as one element (its root, stating its namespace). */
async function readWholeElement(path: string, origin: Origin): Promise<XmlElement> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(path));
  } catch (err) {
    throw new PieFormatError(origin.file, origin.line, `cannot read included ${path}: ${(err as Error).message}`);
  }
  let root: XmlElement | undefined;
  let contentNs: string | undefined;
  let failure: string | undefined;
  let closed = false;
  const parser = new XmlStreamParser(
    {
      streamOpen(header) {
        root = new XmlElement(header.name, { ...header.attrs, xmlns: header.ns });
        contentNs = header.contentNs;
      },
      stanza(el, ns) {
        if (el.attrs.xmlns === undefined && contentNs !== root!.attrs.xmlns) el.attrs.xmlns = ns;
        root!.children.push(el);
      },
      streamClose() {
        closed = true;
      },
      fault(condition, reason) {
        failure = `${reason} (${condition})`;
      },
    },
    IMPORT_XML_LIMITS,
  );
  parser.write(new CommentFilter().filter(text));
  if (failure !== undefined || !root || !closed) {
    throw new PieFormatError(origin.file, origin.line, `included ${path}: ${failure ?? 'not a complete XML document'}`);
  }
  return root;
}

/**
 * The file's bytes in pieces that end at a newline (so every piece is one line, and line numbers
 * are exact), or, for very long lines, after a '>' (so no comment or CDATA marker is cut in two).
 */
async function* linePieces(path: string, origin: Origin | undefined): AsyncGenerator<{ bytes: Buffer; endsLine: boolean }> {
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  let carry: Buffer | undefined;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = undefined;
      let pos = 0;
      while (pos < buf.length) {
        const newline = buf.indexOf(LF, pos);
        if (newline >= 0 && newline - pos < MAX_PIECE) {
          yield { bytes: buf.subarray(pos, newline + 1), endsLine: true };
          pos = newline + 1;
          continue;
        }
        if (newline < 0 && buf.length - pos < MAX_PIECE) {
          carry = buf.subarray(pos);
          break;
        }
        let cut = buf.lastIndexOf(GT, pos + MAX_PIECE - 1);
        if (cut < pos) cut = pos + MAX_PIECE - 1;
        yield { bytes: buf.subarray(pos, cut + 1), endsLine: false };
        pos = cut + 1;
      }
    }
  } catch (err) {
    if (!origin) throw err;
    throw new PieFormatError(origin.file, origin.line, `cannot read included ${path}: ${(err as Error).message}`);
  } finally {
    stream.destroy();
  }
  if (carry) yield { bytes: carry, endsLine: false };
}

/**
 * Removes XML comments from text fed in order (state kept between pieces), leaving CDATA sections
 * alone. Comments cannot occur inside tags or attribute values, so this is all it takes.
 */
export class CommentFilter {
  private state: 'text' | 'comment' | 'cdata' = 'text';

  filter(text: string): string {
    if (this.state === 'text' && text.indexOf('<!') < 0) return text;
    let out = '';
    let i = 0;
    while (i < text.length) {
      if (this.state === 'comment') {
        const end = text.indexOf('-->', i);
        if (end < 0) return out;
        this.state = 'text';
        i = end + 3;
      } else if (this.state === 'cdata') {
        const end = text.indexOf(']]>', i);
        if (end < 0) return out + text.slice(i);
        out += text.slice(i, end + 3);
        this.state = 'text';
        i = end + 3;
      } else {
        const open = text.indexOf('<!', i);
        if (open < 0) return out + text.slice(i);
        if (text.startsWith('<!--', open)) {
          out += text.slice(i, open);
          this.state = 'comment';
          i = open + 4;
        } else if (text.startsWith('<![CDATA[', open)) {
          out += text.slice(i, open + 9);
          this.state = 'cdata';
          i = open + 9;
        } else {
          out += text.slice(i, open + 2);
          i = open + 2;
        }
      }
    }
    return out;
  }
}
