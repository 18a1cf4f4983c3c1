// Reading a certificate the way `herald check` reports it: who it names, when it is valid, whether
// the key fits, and whether it covers each hosted domain as XMPP peers will check it (RFC 6120
// §13.7.2: DNS-IDs with RFC 6125 wildcard rules, plus XmppAddr for older peers).
//
// Left out: chain building and trust-store verification (a peer's job, and Node's at handshake
// time), OCSP and revocation.

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import {
  SIGNATURE_ALGORITHMS, parseCertName, parseCertificateDer, type CertName, type ParsedCertificate,
} from './x509.js';

export interface CertificateInfo {
  /** Subject distinguished name as OpenSSL prints it, e.g. 'CN=example.com'. */
  subject: string;
  /** dNSName, iPAddress and XmppAddr SANs (the subject CN when there is no dNSName), deduplicated. */
  domains: string[];
  validFrom: Date;
  validTo: Date;
  /** Issuer equals subject and the certificate's own key verifies its signature. */
  selfSigned: boolean;
  /** Present when a key was given. */
  keyMatches?: boolean;
  /** SHA-256 of the DER, colon-separated upper-case hex. */
  fingerprint256: string;
  /** e.g. 'ecdsa-with-SHA256', or the dotted OID when unknown. */
  signatureAlgorithm: string;
}

/** Problems found within this many days of expiry are reported as warnings. */
export const EXPIRY_WARNING_DAYS = 14;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Describes the first certificate in `certPem`; throws when it or `keyPem` cannot be parsed. */
export function inspectCertificate(certPem: string, keyPem?: string): CertificateInfo {
  const x509 = new X509Certificate(certPem);
  const parsed = parseCertificateDer(x509.raw);
  const info: CertificateInfo = {
    subject: x509.subject,
    domains: namedDomains(x509, parsed),
    validFrom: parsed.validFrom,
    validTo: parsed.validTo,
    selfSigned: isSelfSigned(x509),
    fingerprint256: x509.fingerprint256,
    signatureAlgorithm: SIGNATURE_ALGORITHMS[parsed.signatureAlgorithm] ?? parsed.signatureAlgorithm,
  };
  if (keyPem !== undefined) info.keyMatches = x509.checkPrivateKey(createPrivateKey(keyPem));
  return info;
}

/**
 * Whether a peer connecting to `domain` would accept this certificate's names: RFC 6125 matching
 * (wildcard only as the whole left-most label, one label deep) or an XmppAddr equal to the domain.
 */
export function certificateCoversDomain(certPem: string, domain: string): boolean {
  let name: CertName;
  try {
    name = parseCertName(domain);
  } catch {
    return false;
  }
  const x509 = new X509Certificate(certPem);
  return covers(x509, parseCertificateDer(x509.raw), name);
}

/**
 * Human-readable problems with a certificate and key for serving `domains`; empty when all is
 * well. Near expiry gives a 'warning: …' entry. `keyPem` undefined skips the key checks.
 */
export function certificateProblems(
  certPem: string, keyPem: string | undefined, domains: string[], now = new Date(),
): string[] {
  const problems: string[] = [];
  const key = keyPem === undefined ? undefined : attempt(() => createPrivateKey(keyPem));
  if (key instanceof Error) problems.push(`private key cannot be read: ${key.message}`);
  const cert = attempt(() => {
    const x509 = new X509Certificate(certPem);
    return { x509, parsed: parseCertificateDer(x509.raw) };
  });
  if (cert instanceof Error) return [`certificate cannot be read: ${cert.message}`, ...problems];
  problems.push(...validityProblems(cert.parsed, now));
  for (const domain of domains) {
    const name = attempt(() => parseCertName(domain));
    if (name instanceof Error) problems.push(name.message);
    else if (!covers(cert.x509, cert.parsed, name)) {
      const named = namedDomains(cert.x509, cert.parsed).join(', ') || 'nothing';
      problems.push(`certificate does not cover ${domain} (it names ${named})`);
    }
  }
  if (key && !(key instanceof Error) && !keyMatches(cert.x509, key)) {
    problems.push('private key does not match the certificate');
  }
  return problems;
}

function validityProblems(parsed: ParsedCertificate, now: Date): string[] {
  const { validFrom, validTo } = parsed;
  if (now > validTo) return [`certificate expired on ${formatDate(validTo)}`];
  if (now < validFrom) return [`certificate is not valid until ${formatDate(validFrom)}`];
  const daysLeft = (validTo.getTime() - now.getTime()) / DAY_MS;
  if (daysLeft < EXPIRY_WARNING_DAYS) {
    return [`warning: certificate expires in ${Math.floor(daysLeft)} days, on ${formatDate(validTo)}`];
  }
  return [];
}

function covers(x509: X509Certificate, parsed: ParsedCertificate, name: CertName): boolean {
  if (name.ip !== 0) return x509.checkIP(name.ascii) !== undefined;
  const san = parsed.subjectAltNames;
  if (name.wildcard) return san.dns.some((dns) => dns.toLowerCase() === name.ascii);
  // RFC 6125 §6.4.3: partial-label wildcards ('w*.example.com') are NOT RECOMMENDED; refuse them.
  if (x509.checkHost(name.ascii, { partialWildcards: false }) !== undefined) return true;
  return san.xmppAddr.some((addr) => sameDomain(addr, name));
}

function sameDomain(text: string, name: CertName): boolean {
  const other = attempt(() => parseCertName(text));
  return !(other instanceof Error) && other.ascii === name.ascii;
}

function namedDomains(x509: X509Certificate, parsed: ParsedCertificate): string[] {
  const { dns, ip, xmppAddr } = parsed.subjectAltNames;
  const commonName = dns.length === 0 ? /^CN=(.*)$/m.exec(x509.subject)?.[1] : undefined;
  const all = [...dns, ...ip, ...xmppAddr, ...(commonName ? [commonName] : [])];
  const seen = new Set<string>();
  return all.filter((domain) => {
    const key = attempt(() => parseCertName(domain).ascii);
    const id = key instanceof Error ? domain : key;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function isSelfSigned(x509: X509Certificate): boolean {
  // Not checkIssued(): OpenSSL also demands keyCertSign there, which a leaf certificate lacks.
  return x509.issuer === x509.subject && attempt(() => x509.verify(x509.publicKey)) === true;
}

function keyMatches(x509: X509Certificate, key: KeyObject): boolean {
  return attempt(() => x509.checkPrivateKey(key)) === true;
}

function attempt<T>(fn: () => T): T | Error {
  try {
    return fn();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function formatDate(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
