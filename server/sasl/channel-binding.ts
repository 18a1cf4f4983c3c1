// Channel-binding data for the SCRAM -PLUS mechanisms: tls-exporter (RFC 9266) and
// tls-server-end-point (RFC 5929 §4). tls-unique is deliberately absent: it is broken for TLS 1.3
// and for TLS 1.2 without extended master secret (RFC 9266 §1).

import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/**
 * tls-exporter (RFC 9266 §2): 32 bytes of exporter keying material with the label
 * "EXPORTER-Channel-Binding" and an empty context. Null unless the connection is TLS 1.3: on TLS 1.2
 * the exporter is only safe with extended master secret, which Node cannot tell us about.
 */
export function tlsExporter(socket: TLSSocket): Buffer | null {
  if (socket.getProtocol() !== 'TLSv1.3') return null;
  try {
    return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  } catch {
    return null;                                   // handshake not finished or socket gone
  }
}

/**
 * tls-server-end-point (RFC 5929 §4.1): the hash of the server's certificate (DER), with the hash of
 * the certificate's signature algorithm, except that MD5 and SHA-1 are replaced by SHA-256. The
 * signature algorithm is read from the certificate unless `signatureAlgorithmOid` is given. For
 * algorithms with no single hash (Ed25519, Ed448, unknown ones) RFC 5929 leaves the value undefined;
 * like other servers we use SHA-256. Compute it once per certificate, not per connection.
 * Throws when `certDer` is not a DER certificate and no OID is given.
 */
export function tlsServerEndPoint(certDer: Buffer, signatureAlgorithmOid?: string): Buffer {
  const hash = endPointHash(certDer, signatureAlgorithmOid);
  return createHash(hash).update(certDer).digest();
}

const RSA_PSS = '1.2.840.113549.1.1.10';

/** Signature algorithm OIDs → the hash they use. */
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5',        // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha1',       // sha1WithRSAEncryption
  '1.3.14.3.2.29': 'sha1',              // sha1WithRSA (OIW)
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',          // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha1',          // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224',   // dsa-with-sha224
  '2.16.840.1.101.3.4.3.2': 'sha256',   // dsa-with-sha256
};

/** Hash algorithm OIDs, as found in RSASSA-PSS parameters. */
const DIGEST: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

function endPointHash(certDer: Buffer, givenOid: string | undefined): string {
  const algorithm = givenOid === undefined || givenOid === RSA_PSS ? signatureAlgorithm(certDer) : undefined;
  const oid = givenOid ?? algorithm?.oid ?? '';
  // RFC 4055 §3.1: RSASSA-PSS names its hash in the parameters; absent means SHA-1.
  const hash = oid === RSA_PSS ? pssHash(certDer, algorithm?.params) : SIGNATURE_HASH[oid];
  // RFC 5929 §4.1: "if the certificate's signatureAlgorithm uses a single hash function, and that
  // hash function is either MD5 or SHA-1, then use SHA-256".
  return hash === undefined || hash === 'md5' || hash === 'sha1' ? 'sha256' : hash;
}

function pssHash(der: Buffer, params: Tlv | undefined): string {
  if (params === undefined || params.tag !== 0x30) return 'sha1';
  const first = params.start < params.end ? readTlv(der, params.start) : undefined;
  if (first?.tag !== 0xa0) return 'sha1';             // [0] hashAlgorithm, DEFAULT sha1
  const algId = readTlv(der, first.start);
  const oid = readTlv(der, algId.start);
  return DIGEST[decodeOid(der.subarray(oid.start, oid.end))] ?? 'unknown';
}

interface Tlv { tag: number; start: number; end: number }

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue } */
function signatureAlgorithm(der: Buffer): { oid: string; params: Tlv | undefined } {
  const cert = expect(readTlv(der, 0), 0x30);
  const tbs = expect(readTlv(der, cert.start), 0x30);
  const algId = expect(readTlv(der, tbs.end), 0x30);
  const oid = expect(readTlv(der, algId.start), 0x06);
  const params = oid.end < algId.end ? readTlv(der, oid.end) : undefined;
  return { oid: decodeOid(der.subarray(oid.start, oid.end)), params };
}

function expect(tlv: Tlv, tag: number): Tlv {
  if (tlv.tag !== tag) throw new Error('tls-server-end-point: not a DER certificate');
  return tlv;
}

/** One DER tag-length-value at `offset` (definite lengths only, as DER requires). */
function readTlv(der: Buffer, offset: number): Tlv {
  const tag = der[offset];
  let len = der[offset + 1];
  let start = offset + 2;
  if (tag === undefined || len === undefined) throw new Error('tls-server-end-point: truncated DER');
  if (len > 0x80 && len <= 0x84) {
    const count = len - 0x80;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + (der[start + i] ?? 0);
    start += count;
  } else if (len >= 0x80) {
    throw new Error('tls-server-end-point: unsupported DER length');
  }
  if (start + len > der.length) throw new Error('tls-server-end-point: truncated DER');
  return { tag, start, end: start + len };
}

/** X.690 §8.19: first byte = 40·arc1 + arc2, then base-128 arcs with a continuation bit. */
function decodeOid(bytes: Buffer): string {
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b % 128);
    if (b >= 128) continue;
    if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
    else arcs.push(value);
    value = 0;
  }
  return arcs.join('.');
}
