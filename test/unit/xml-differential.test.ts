// Differential test: Herald's XML stream parser against saxes (a conforming XML 1.0 parser, wrapped
// with the same XMPP rules in test/helpers/saxes-reference.ts). Random stanzas, then random
// mutations of them; both parsers must agree on accept/refuse and on every stanza they produce, and
// Herald's parser must give the same result however the input is split into reads.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { XmlStreamParser, type XmlLimits } from '../../server/xml/parser.js';
import { XmlStreamParser as ReferenceParser } from '../helpers/saxes-reference.js';
import { serialize } from '../../server/xml/element.js';

const LIMITS: XmlLimits = { maxStanzaBytes: 1 << 20, maxDepth: 200, maxAttributes: 200, maxAttributeLength: 1 << 20 };
const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

interface Outcome {
  stanzas: string[];
  fault: string | undefined;
  closed: boolean;
}

type ParserClass = typeof XmlStreamParser | typeof ReferenceParser;

function run(Parser: ParserClass, chunks: (string | Buffer)[]): Outcome {
  const out: Outcome = { stanzas: [], fault: undefined, closed: false };
  const parser = new Parser(
    {
      streamOpen: () => undefined,
      // saxes trims namespace names; we keep them as written. Compare them trimmed.
      stanza: (el, ns) => out.stanzas.push(`${ns.trim()} ${serialize(el).replace(/(xmlns(?::[^=]+)?=')\s*([^']*?)\s*'/g, "$1$2'")}`),
      streamClose: () => (out.closed = true),
      fault: (condition) => (out.fault ??= condition),
    },
    LIMITS,
  );
  for (const chunk of chunks) parser.write(chunk);
  return out;
}

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['message', 'body', 'x', 'a-b', 'a.b', '_u', 'é', 'nœud', 'q1', 'item'];
const TEXTS = ['hello', ' ', '\n', '&amp;', '&lt;', '&#x41;', '&#65;', '€', '😀', '>', ']]', 'a&quot;b', "it's", '\r\n', '\t'];
const VALUES = ['v', '', '&amp;', '&#x20;', '€', 'a b', '\t', '&apos;', '"', "'", '&lt;x&gt;'];

function generate(rand: () => number, depth = 0): string {
  const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)]!;
  const prefixed = rand() < 0.15;
  const name = pick(NAMES);
  const qname = prefixed ? `p:${name}` : name;
  let attrs = prefixed ? " xmlns:p='urn:p'" : '';
  if (rand() < 0.2) attrs += ` xmlns='urn:${pick(NAMES)}'`;
  const used = new Set<string>();
  const count = Math.floor(rand() * 3);
  for (let i = 0; i < count; i++) {
    const attrName = pick(['id', 'to', 'type', 'xml:lang', 'k']);
    if (used.has(attrName)) continue;
    used.add(attrName);
    const value = pick(VALUES);
    attrs += value.includes("'") ? ` ${attrName}="${value.replace(/"/g, '&quot;')}"` : ` ${attrName}='${value}'`;
  }
  if (depth > 3 || rand() < 0.3) return `<${qname}${attrs}/>`;
  let inner = '';
  const parts = Math.floor(rand() * 4);
  for (let i = 0; i < parts; i++) {
    const r = rand();
    if (r < 0.45) inner += pick(TEXTS);
    else if (r < 0.55) inner += `<![CDATA[${pick(['x<y', '&amp;', ']', ''])}]]>`;
    else inner += generate(rand, depth + 1);
  }
  return `<${qname}${attrs}>${inner}</${qname}>`;
}

const MUTATIONS = ['<', '>', '&', "'", '"', '=', '/', ' ', '!', '?', ';', '#', 'x', ':', ']]>', '<!--', '&#0;', '&#xD800;', '\u0001', 'xmlns:', '&foo;'];

function mutate(rand: () => number, input: string): string {
  let s = input;
  const n = 1 + Math.floor(rand() * 2);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (s.length + 1));
    const r = rand();
    const token = MUTATIONS[Math.floor(rand() * MUTATIONS.length)]!;
    if (r < 0.4) s = s.slice(0, at) + token + s.slice(at);
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + token + s.slice(at + 1);
  }
  return s;
}

function splitRandomly(rand: () => number, input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < input.length) {
    const size = 1 + Math.floor(rand() * Math.min(40, input.length - i));
    out.push(input.subarray(i, i + size));
    i += size;
  }
  return out;
}

describe('xml parser: differential against saxes', () => {
  test('valid random stanzas: same stanzas, whatever the read boundaries', () => {
    const rand = rng(Number(process.env.XML_DIFF_SEED ?? 1));
    for (let round = 0; round < 1500; round++) {
      const body = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => generate(rand)).join(' ');
      const input = HEADER + body;
      const ours = run(XmlStreamParser, [input]);
      const reference = run(ReferenceParser, [input]);
      assert.deepEqual(ours, reference, `round ${round}: ${input}`);
      const split = run(XmlStreamParser, splitRandomly(rand, Buffer.from(input)));
      assert.deepEqual(split, ours, `round ${round} split: ${input}`);
    }
  });

  test('mutated stanzas: both accept or both refuse, and agree on what they accept', () => {
    const rand = rng(Number(process.env.XML_DIFF_SEED ?? 1) + 1);
    let refused = 0;
    for (let round = 0; round < 4000; round++) {
      const input = HEADER + mutate(rand, generate(rand)) + '<presence/>';
      // As bytes, like the network gives them (a mutation may cut a surrogate pair: U+FFFD then).
      const ours = run(XmlStreamParser, [Buffer.from(input)]);
      const reference = run(ReferenceParser, [Buffer.from(input)]);
      const describe = `round ${round}: ${JSON.stringify(input.slice(HEADER.length))}\nours: ${JSON.stringify(ours)}\nsaxes: ${JSON.stringify(reference)}`;
      // What we accept, saxes accepts identically; what saxes accepts to the end, we accept.
      // (saxes sometimes neither refuses nor finishes — an unterminated comment, a stray '&' between
      // stanzas — where we refuse at once; that direction is allowed.)
      const referenceFinished = reference.fault === undefined && reference.stanzas.at(-1) === 'jabber:client <presence/>';
      if (ours.fault === undefined) assert.deepEqual(ours.stanzas, reference.stanzas, describe);
      else refused++;
      // saxes accepts a prefixed name whose local part starts with a digit (not an NCName); we don't.
      const badLocalName = /<\/?[^\s>/]*:[0-9.-]/.test(input.slice(HEADER.length));
      if (referenceFinished && !badLocalName) assert.equal(ours.fault, undefined, describe);
      if (reference.fault !== undefined) assert.notEqual(ours.fault, undefined, describe);
      // Split into reads: the same stanzas and the same verdict (with several faults in one input,
      // which one is met first may depend on where a read ends).
      const split = run(XmlStreamParser, splitRandomly(rand, Buffer.from(input)));
      assert.deepEqual(split.stanzas, ours.stanzas, `split ${describe}`);
      assert.equal(split.fault === undefined, ours.fault === undefined, `split ${describe}`);
    }
    assert.ok(refused > 500, `mutations should produce refusals (got ${refused})`);
  });
});
