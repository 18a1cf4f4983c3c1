// A minimal XMPP frame splitter for the load generator: cuts the server's output into top-level
// elements (as raw strings) without building trees, so the generator stays cheap enough that the
// server, not the generator, is what a benchmark measures.
//
// It relies on what Herald writes (a trusted peer, not arbitrary XML): no comments, CDATA or PIs
// after the XML declaration, and '<' / '>' always escaped inside text and attribute values (see
// server/xml/escape.ts). Herald's own tests use the real parser (server/xml/parser.ts).

export interface FrameEvents {
  /** The server's stream header (`<stream:stream ...>`), raw. */
  open(header: string): void;
  /** One complete top-level element, raw. */
  element(raw: string): void;
  /** `</stream:stream>` */
  close(): void;
}

export class FrameSplitter {
  /** Unconsumed input; when inside an element, it starts at that element's '<'. */
  private buffer = '';
  /** Nesting depth inside the element being assembled (0 between elements). */
  private depth = 0;
  /** Where scanning resumes inside `buffer`. */
  private resumeAt = 0;
  /** Bumped by reset(), so a handler that resets stops the loop that called it. */
  private generation = 0;

  constructor(private readonly events: FrameEvents) {}

  /** Forgets everything (stream restart after STARTTLS or SASL success). */
  reset(): void {
    this.buffer = '';
    this.depth = 0;
    this.resumeAt = 0;
    this.generation++;
  }

  write(chunk: string): void {
    const buf = this.buffer.length === 0 ? chunk : this.buffer + chunk;
    const generation = this.generation;
    let pos = this.resumeAt;
    let consumed = 0;
    let elementStart = 0;
    for (;;) {
      if (buf.charCodeAt(pos) !== 60 /* < */) pos = buf.indexOf('<', pos);
      if (pos < 0) break;
      const tagEnd = buf.indexOf('>', pos);
      if (tagEnd < 0) break;
      const second = buf.charCodeAt(pos + 1);
      if (this.depth === 0) {
        elementStart = pos;
        if (second === 63 /* ? */) {
          pos = consumed = tagEnd + 1;
          continue;
        }
        if (buf.startsWith('<stream:stream', pos)) {
          pos = consumed = tagEnd + 1;
          this.events.open(buf.slice(elementStart, tagEnd + 1));
          if (this.generation !== generation) return;
          continue;
        }
        if (buf.startsWith('</stream:stream', pos)) {
          pos = consumed = tagEnd + 1;
          this.events.close();
          if (this.generation !== generation) return;
          continue;
        }
      }
      if (second === 47 /* / */) this.depth--;
      else if (buf.charCodeAt(tagEnd - 1) !== 47) this.depth++;
      pos = tagEnd + 1;
      if (this.depth === 0) {
        consumed = pos;
        this.events.element(buf.slice(elementStart, pos));
        if (this.generation !== generation) return; // a handler reset us: the rest belongs to a dead stream
      }
    }
    // Between elements everything scanned is spent; inside one, keep it from its '<'.
    if (this.depth === 0) consumed = pos < 0 ? buf.length : pos;
    else consumed = elementStart;
    this.buffer = consumed === 0 ? buf : buf.slice(consumed);
    this.resumeAt = (pos < 0 ? buf.length : pos) - consumed;
  }
}

/** The element's local name as written (`message`, `stream:features`, `iq`). */
export function elementName(raw: string): string {
  let end = 1;
  while (end < raw.length) {
    const c = raw.charCodeAt(end);
    if (c === 32 || c === 62 || c === 47 || c === 9 || c === 10 || c === 13) break;
    end++;
  }
  return raw.slice(1, end);
}

/** An attribute of the element's start tag (first occurrence in `raw`; fine for top-level attributes that come first). */
export function attribute(raw: string, name: string): string | undefined {
  const tagEnd = raw.indexOf('>');
  for (const quote of ["'", '"']) {
    const key = ` ${name}=${quote}`;
    const at = raw.indexOf(key);
    if (at >= 0 && at < tagEnd) {
      const valueStart = at + key.length;
      return raw.slice(valueStart, raw.indexOf(quote, valueStart));
    }
  }
  return undefined;
}

/** Text content of the first `<name>` child (no entity decoding: bench payloads are plain ASCII). */
export function childText(raw: string, name: string): string | undefined {
  const open = raw.indexOf(`<${name}`);
  if (open < 0) return undefined;
  const gt = raw.indexOf('>', open);
  if (raw.charCodeAt(gt - 1) === 47) return '';
  const close = raw.indexOf(`</${name}>`, gt);
  return close < 0 ? undefined : raw.slice(gt + 1, close);
}
