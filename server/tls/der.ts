// A minimal ASN.1 DER (ITU-T X.690) encoder and reader: just enough to build an X.509 v3
// certificate (RFC 5280) and to walk one. Encoders return the complete TLV as a Buffer, so a
// structure is written as nested calls: seq(integer(2n), oid('2.5.4.3'), …).
//
// Deliberately left out: tag numbers above 30 when encoding, REAL, BER indefinite lengths (the
// reader refuses them: DER forbids them), and any schema layer. Arithmetic instead of bit operators
// (ESLint no-bitwise).

/** Tag classes, as the top two bits of the identifier octet. */
export const TagClass = { UNIVERSAL: 0, APPLICATION: 1, CONTEXT: 2, PRIVATE: 3 } as const;

/** Universal tag numbers used here. */
export const Tag = {
  BOOLEAN: 1,
  INTEGER: 2,
  BIT_STRING: 3,
  OCTET_STRING: 4,
  NULL: 5,
  OID: 6,
  UTF8_STRING: 12,
  SEQUENCE: 16,
  SET: 17,
  PRINTABLE_STRING: 19,
  IA5_STRING: 22,
  UTC_TIME: 23,
  GENERALIZED_TIME: 24,
} as const;

const CONSTRUCTED = 0x20;

/** Thrown by the reader on malformed or non-DER input. */
export class DerError extends Error {
  override name = 'DerError';
}

// ---------------------------------------------------------------------------------------------
// Encoder

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);          // X.690 §8.1.3.4: short form
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 + bytes.length, ...bytes]);       // §10.1: long form, minimal octets
}

/** One TLV from an identifier octet and contents (tag numbers 0–30 only). */
export function tlv(identifier: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.from([identifier]), encodeLength(contents.length), contents]);
}

function universal(tagNumber: number, contents: Buffer, constructed = false): Buffer {
  return tlv(tagNumber + (constructed ? CONSTRUCTED : 0), contents);
}

export function seq(...items: Buffer[]): Buffer {
  return universal(Tag.SEQUENCE, Buffer.concat(items), true);
}

/** SET OF: X.690 §11.6 requires the encodings sorted as octet strings. */
export function set(...items: Buffer[]): Buffer {
  return universal(Tag.SET, Buffer.concat([...items].sort(Buffer.compare)), true);
}

/**
 * INTEGER. A Buffer is an unsigned big-endian magnitude (leading zeros are stripped and one 0x00
 * added when the top bit is set, so it stays positive); numbers and bigints may be negative.
 */
export function integer(value: Buffer | bigint | number): Buffer {
  if (Buffer.isBuffer(value)) return universal(Tag.INTEGER, unsignedContents(value));
  const n = BigInt(value);
  return universal(Tag.INTEGER, n >= 0n ? unsignedContents(bigintToBytes(n)) : negativeContents(n));
}

function unsignedContents(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.length === 0 ? Buffer.from([0]) : magnitude.subarray(start);
  // X.690 §8.3.2: the first nine bits may not be all ones or all zeros; a set top bit means negative.
  return (trimmed[0] ?? 0) >= 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

function negativeContents(n: bigint): Buffer {
  let octets = 1;
  while (n < -(2n ** BigInt(8 * octets - 1))) octets++;      // smallest two's-complement width
  const bytes = bigintToBytes(2n ** BigInt(8 * octets) + n);
  return Buffer.concat([Buffer.alloc(octets - bytes.length, 0xff), bytes]);
}

function bigintToBytes(n: bigint): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0n; v /= 256n) bytes.unshift(Number(v % 256n));
  return Buffer.from(bytes.length > 0 ? bytes : [0]);
}

/** OBJECT IDENTIFIER from dotted form, e.g. '1.2.840.10045.2.1'. */
export function oid(dotted: string): Buffer {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(dotted)) throw new DerError(`bad OID '${dotted}'`);
  const arcs = dotted.split('.').map((arc) => BigInt(arc));
  const [first = 0n, second = 0n, ...rest] = arcs;
  // X.690 §8.19.4: the first two arcs share one subidentifier, 40·X + Y (Y < 40 unless X = 2).
  if (first < 2n && second >= 40n) throw new DerError(`bad OID '${dotted}'`);
  const bytes = [first * 40n + second, ...rest].flatMap(base128);
  return universal(Tag.OID, Buffer.from(bytes));
}

function base128(n: bigint): number[] {
  const out = [Number(n % 128n)];
  for (let v = n / 128n; v > 0n; v /= 128n) out.unshift(Number(v % 128n) + 0x80);
  return out;
}

export function utf8String(text: string): Buffer {
  return universal(Tag.UTF8_STRING, Buffer.from(text, 'utf8'));
}

/** PrintableString: A–Z a–z 0–9 space ' ( ) + , - . / : = ? only (X.680 §41.4). */
export function printableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw new DerError(`not a PrintableString: '${text}'`);
  return universal(Tag.PRINTABLE_STRING, Buffer.from(text, 'ascii'));
}

export function ia5String(text: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new DerError(`not an IA5String: '${text}'`);
  return universal(Tag.IA5_STRING, Buffer.from(text, 'ascii'));
}

/**
 * A certificate time. RFC 5280 §4.1.2.5: UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime
 * (YYYYMMDDHHMMSSZ) from 2050 and before 1950. Milliseconds are dropped: DER allows none.
 */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? utcTime(date) : generalizedTime(date);
}

export function utcTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 1950 || year >= 2050) throw new DerError(`UTCTime cannot hold year ${year}`);
  return universal(Tag.UTC_TIME, Buffer.from(`${timeDigits(date).slice(2)}Z`, 'ascii'));
}

export function generalizedTime(date: Date): Buffer {
  return universal(Tag.GENERALIZED_TIME, Buffer.from(`${timeDigits(date)}Z`, 'ascii'));
}

function timeDigits(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new DerError('invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new DerError(`year ${year} out of range`);
  const two = (n: number): string => String(n).padStart(2, '0');
  return String(year).padStart(4, '0') + two(date.getUTCMonth() + 1) + two(date.getUTCDate())
    + two(date.getUTCHours()) + two(date.getUTCMinutes()) + two(date.getUTCSeconds());
}

/** BIT STRING with `unusedBits` (0–7) padding bits at the end of the last octet. */
export function bitString(data: Buffer, unusedBits = 0): Buffer {
  if (unusedBits < 0 || unusedBits > 7 || (data.length === 0 && unusedBits !== 0)) {
    throw new DerError(`bad unused-bit count ${unusedBits}`);
  }
  return universal(Tag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), data]));
}

/**
 * A named-bit BIT STRING (e.g. KeyUsage) from the positions set, bit 0 being the most significant
 * bit of the first octet. X.690 §11.2.2: trailing zero bits are removed.
 */
export function namedBits(positions: number[]): Buffer {
  const length = positions.length === 0 ? 0 : Math.max(...positions) + 1;
  const data = Buffer.alloc(Math.ceil(length / 8));
  for (const bit of positions) {
    const index = Math.floor(bit / 8);
    data[index] = (data[index] ?? 0) + 2 ** (7 - (bit % 8));
  }
  return bitString(data, data.length * 8 - length);
}

export function octetString(data: Buffer): Buffer {
  return universal(Tag.OCTET_STRING, data);
}

/** BOOLEAN; X.690 §11.1: TRUE is 0xff in DER. */
export function boolean(value: boolean): Buffer {
  return universal(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

export function nul(): Buffer {
  return universal(Tag.NULL, Buffer.alloc(0));
}

/** [n] EXPLICIT: a constructed context-specific wrapper around a complete encoding. */
export function explicit(tagNumber: number, inner: Buffer): Buffer {
  return tlv(contextIdentifier(tagNumber, true), inner);
}

/**
 * [n] IMPLICIT: replaces the tag of a complete encoding, keeping its contents and its
 * primitive/constructed form (e.g. implicit(2, ia5String(name)) is a dNSName).
 */
export function implicit(tagNumber: number, inner: Buffer): Buffer {
  const node = readTlv(inner);
  return tlv(contextIdentifier(tagNumber, node.constructed), node.value);
}

function contextIdentifier(tagNumber: number, constructed: boolean): number {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw new DerError(`tag number ${tagNumber} unsupported`);
  }
  return 0x80 + (constructed ? CONSTRUCTED : 0) + tagNumber;
}

/** PEM armour, base64 in 64-character lines (RFC 7468). */
export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with this label. */
export function fromPem(label: string, pem: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`).exec(pem);
  if (!match?.[1]) throw new DerError(`no ${label} PEM block`);
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}

// ---------------------------------------------------------------------------------------------
// Reader

/** One decoded TLV. `value` and `raw` are views into the input, not copies. */
export interface DerNode {
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  /** Contents octets. */
  value: Buffer;
  /** The whole encoding: identifier, length and contents. */
  raw: Buffer;
}

/** Reads the TLV starting at `offset`. */
export function readTlv(input: Buffer, offset = 0): DerNode {
  let pos = offset;
  const next = (): number => {
    const byte = input[pos++];
    if (byte === undefined) throw new DerError('truncated DER');
    return byte;
  };
  const identifier = next();
  let tagNumber = identifier % 32;
  if (tagNumber === 31) {                                     // §8.1.2.4: high tag number form
    tagNumber = 0;
    for (let byte = next(); ; byte = next()) {
      tagNumber = tagNumber * 128 + (byte % 128);
      if (byte < 0x80) break;
    }
  }
  const length = readLength(next);
  const start = pos;
  if (start + length > input.length) throw new DerError('truncated DER');
  return {
    tagClass: Math.floor(identifier / 64),
    constructed: Math.floor(identifier / 32) % 2 === 1,
    tagNumber,
    value: input.subarray(start, start + length),
    raw: input.subarray(offset, start + length),
  };
}

function readLength(next: () => number): number {
  const first = next();
  if (first < 0x80) return first;
  if (first === 0x80) throw new DerError('indefinite length is not DER');
  const count = first - 0x80;
  if (count > 4) throw new DerError('length too large');
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + next();
  if (length < 0x80) throw new DerError('non-minimal length');
  return length;
}

/** The children of a constructed node, in order. */
export function children(node: DerNode): DerNode[] {
  if (!node.constructed) throw new DerError('primitive node has no children');
  const out: DerNode[] = [];
  for (let offset = 0; offset < node.value.length;) {
    const child = readTlv(node.value, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

/** Reads a whole buffer as exactly one TLV. */
export function readDer(input: Buffer): DerNode {
  const node = readTlv(input);
  if (node.raw.length !== input.length) throw new DerError('trailing data after DER value');
  return node;
}

export function isUniversal(node: DerNode, tagNumber: number): boolean {
  return node.tagClass === TagClass.UNIVERSAL && node.tagNumber === tagNumber;
}

export function isContext(node: DerNode, tagNumber: number): boolean {
  return node.tagClass === TagClass.CONTEXT && node.tagNumber === tagNumber;
}

/** An OBJECT IDENTIFIER node's dotted form. */
export function decodeOid(node: DerNode): string {
  if (!isUniversal(node, Tag.OID) || node.value.length === 0) throw new DerError('not an OID');
  const subids: bigint[] = [];
  let current = 0n;
  for (const byte of node.value) {
    current = current * 128n + BigInt(byte % 128);
    if (byte < 0x80) {
      subids.push(current);
      current = 0n;
    }
  }
  if ((node.value[node.value.length - 1] ?? 0) >= 0x80) throw new DerError('truncated OID');
  const [head = 0n, ...rest] = subids;
  const first = head < 80n ? head / 40n : 2n;
  return [first, head - first * 40n, ...rest].join('.');
}

/** A UTCTime or GeneralizedTime node (the 'Z' forms DER requires) as a Date. */
export function decodeTime(node: DerNode): Date {
  const text = node.value.toString('ascii');
  let match: RegExpExecArray | null;
  let year: number;
  if (isUniversal(node, Tag.UTC_TIME) && (match = /^(\d\d)(\d{10})Z$/.exec(text))) {
    const yy = Number(match[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;                  // RFC 5280 §4.1.2.5.1
  } else if (isUniversal(node, Tag.GENERALIZED_TIME) && (match = /^(\d{4})(\d{10})Z$/.exec(text))) {
    year = Number(match[1]);
  } else {
    throw new DerError(`bad time '${text}'`);
  }
  const [mo, d, h, mi, s] = (match[2]?.match(/\d\d/g) ?? []).map(Number);
  const date = new Date(0);                                  // not Date.UTC: it maps years 0–99 to 19xx
  date.setUTCFullYear(year, (mo ?? 1) - 1, d);
  date.setUTCHours(h ?? 0, mi, s, 0);
  return date;
}

/** A string node (UTF8String, PrintableString, IA5String) as text. */
export function decodeString(node: DerNode): string {
  return node.value.toString(isUniversal(node, Tag.UTF8_STRING) ? 'utf8' : 'latin1');
}
