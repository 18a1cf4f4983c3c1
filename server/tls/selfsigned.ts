// Self-signed X.509 v3 server certificates (RFC 5280) built with node:crypto alone, so a fresh
// machine with only Node can serve STARTTLS and direct TLS out of the box. The certificate names
// every domain the way XMPP peers look for it (RFC 6120 §13.7.1.2): a DNS-ID per domain, plus an
// XmppAddr (RFC 6120 §13.7.1.4) and SRV-IDs (RFC 4985) for each non-wildcard domain, as Prosody's
// generated certificates do.
//
// Left out: CA certificates and chains, CSRs, key types beyond ECDSA P-256 and RSA 2048.

import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  bitString, boolean, explicit, ia5String, implicit, integer, namedBits, nul, octetString, oid,
  readDer, children, seq, set, time, toPem, utf8String,
} from './der.js';
import { OID, ipBytes, parseCertName, type CertName } from './x509.js';

export interface SelfSignedOptions {
  /** Domains to cover; the first is the subject CN. '*.example.com' wildcards and IP literals work. */
  domains: string[];
  /** Validity in days from now (default 3650). */
  days?: number;
  /** 'ec' (ECDSA P-256, default) or 'rsa' (RSA 2048). */
  keyType?: 'ec' | 'rsa';
  /** Overrides the start of validity (default: an hour ago, to tolerate clock skew). For tests. */
  notBefore?: Date;
  /** Overrides the end of validity (default: `days` from now). For tests. */
  notAfter?: Date;
}

export interface SelfSignedCertificate {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2 } as const;

/** Generates a key pair and a self-signed server certificate for `domains`. */
export function generateSelfSignedCertificate(opts: SelfSignedOptions): SelfSignedCertificate {
  const names = uniqueNames(opts.domains);
  const first = names[0];
  if (!first) throw new Error('a certificate needs at least one domain');
  const keyType = opts.keyType ?? 'ec';
  const { privateKey, publicKey } = keyType === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - 60 * 60 * 1000);
  const notAfter = opts.notAfter ?? new Date(now + (opts.days ?? 3650) * DAY_MS);
  if (!(notAfter > notBefore)) throw new Error('certificate validity ends before it starts');

  // RFC 5758 §3.2: ecdsa-with-SHA256 has absent parameters; RFC 4055 §5: RSA ones carry NULL.
  const algorithm = keyType === 'rsa'
    ? seq(oid(OID.sha256WithRsaEncryption), nul())
    : seq(oid(OID.ecdsaWithSha256));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = seq(set(seq(oid(OID.commonName), utf8String(first.ascii))));  // A-label, as in the SAN
  const tbs = seq(
    explicit(0, integer(2)),                                  // v3
    integer(serialNumber()),
    algorithm,
    name,                                                     // issuer = subject: self-signed
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, seq(...extensions(names, spki, keyType))),
  );
  const signature = signTbs(tbs, privateKey, keyType);
  return {
    certPem: toPem('CERTIFICATE', seq(tbs, algorithm, bitString(signature))),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function signTbs(tbs: Buffer, key: KeyObject, keyType: 'ec' | 'rsa'): Buffer {
  // X.509 carries ECDSA signatures as the DER Ecdsa-Sig-Value (RFC 5480 §2.2), not IEEE P1363.
  return keyType === 'rsa' ? sign('sha256', tbs, key) : sign('sha256', tbs, { key, dsaEncoding: 'der' });
}

/** RFC 5280 §4.1.2.2: positive, at most 20 octets; CA/B Forum asks for 64+ random bits. */
function serialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) % 127) + 1;                  // 1..127: positive, exactly 16 octets
  return serial;
}

/** Domains in order, plus the bare domain after each wildcard, without duplicates. */
function uniqueNames(domains: string[]): CertName[] {
  const seen = new Map<string, CertName>();
  for (const domain of domains) {
    const name = parseCertName(domain);
    const expanded = name.wildcard ? [name, parseCertName(name.ascii.slice(2))] : [name];
    for (const item of expanded) if (!seen.has(item.ascii)) seen.set(item.ascii, item);
  }
  return [...seen.values()];
}

function extensions(names: CertName[], spki: Buffer, keyType: 'ec' | 'rsa'): Buffer[] {
  // RFC 5480 §3 does not allow keyEncipherment with id-ecPublicKey; RSA needs it for the TLS 1.2
  // RSA key-exchange suites.
  const usage = keyType === 'rsa'
    ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment]
    : [KEY_USAGE.digitalSignature];
  return [
    extension(OID.basicConstraints, true, seq()),             // cA DEFAULT FALSE: empty SEQUENCE
    extension(OID.keyUsage, true, namedBits(usage)),
    // clientAuth too: the same certificate authenticates us on s2s links (SASL EXTERNAL, XEP-0178).
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))),
    // RFC 5280 §4.2.1.6: non-critical, since the subject is not empty.
    extension(OID.subjectAltName, false, seq(...generalNames(names))),
  ];
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // critical BOOLEAN DEFAULT FALSE: DER leaves a default value out.
  return seq(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function generalNames(names: CertName[]): Buffer[] {
  const dns = names.filter((n) => n.ip === 0).map((n) => implicit(2, ia5String(n.ascii)));
  const ips = names.flatMap((n) => (n.ip === 0 ? [] : [implicit(7, octetString(ipBytes(n.ascii, n.ip)))]));
  const xmpp = names.filter((n) => n.ip === 0 && !n.wildcard).flatMap((n) => [
    otherName(OID.xmppAddr, utf8String(n.unicode)),
    otherName(OID.srvName, ia5String(`_xmpp-client.${n.ascii}`)),
    otherName(OID.srvName, ia5String(`_xmpp-server.${n.ascii}`)),
  ]);
  return [...dns, ...ips, ...xmpp];
}

/** otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }. */
function otherName(typeId: string, value: Buffer): Buffer {
  return implicit(0, seq(oid(typeId), explicit(0, value)));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's value. */
function keyIdentifier(spki: Buffer): Buffer {
  const [, subjectPublicKey] = children(readDer(spki));
  if (!subjectPublicKey) throw new Error('unexpected SubjectPublicKeyInfo');
  return createHash('sha1').update(subjectPublicKey.value.subarray(1)).digest();
}
