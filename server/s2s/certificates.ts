// Certificates on server-to-server links (RFC 6120 §13.7.2, RFC 6125): our certificate serves as
// server and client certificate, and a peer's certificate counts as valid for a domain when it
// chains to a trusted CA (Node's bundled roots plus `s2s.ca_file`) and names the domain as a DNS-ID
// (wildcards per RFC 6125 §6.4.3) or an XmppAddr. A valid certificate allows SASL EXTERNAL
// (XEP-0178) and answers dialback requests at once; an invalid one leaves dialback, unless
// `s2s.require_valid_certificates` forbids that.

import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type DetailedPeerCertificate, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { certificateCoversDomain } from '../tls/inspect.js';
import type { S2sTransport } from './transport.js';

export type CertificateStatus = 'valid' | 'untrusted' | 'name-mismatch' | 'none' | 'no-tls';

/** Reads `s2s.ca_file` (PEM, one or more certificates); throws with the path when unreadable. */
export function readExtraCas(caFile: string | undefined): string[] {
  if (caFile === undefined) return [];
  let text: string;
  try {
    text = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new Error(`s2s.ca_file ${caFile} cannot be read: ${(err as Error).message}`);
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`s2s.ca_file ${caFile} holds no PEM certificate`);
  return blocks.map((block) => `${block}\n`);
}

/**
 * The trust configuration: one TLS context for both directions (our certificate and key, and the
 * CAs peers' certificates are checked against), built once per certificate since the root list
 * makes it costly.
 */
export class S2sTrust {
  readonly cas: string[];
  private cached: { credentials: object; context: SecureContext } | undefined;
  private anchors: Set<string> | undefined;

  constructor(extraCas: string[]) {
    this.cas = [...rootCertificates, ...extraCas];
  }

  context(credentials: { cert: string; key: string }): SecureContext {
    if (this.cached?.credentials !== credentials) {
      const context = createSecureContext({ cert: credentials.cert, key: credentials.key, ca: this.cas, minVersion: 'TLSv1.2' });
      this.cached = { credentials, context };
    }
    return this.cached.context;
  }

  /** SHA-256 fingerprints of the trusted CAs (parsed on first use). */
  isAnchor(cert: X509Certificate): boolean {
    this.anchors ??= new Set(this.cas.flatMap((pem) => {
      try {
        return [new X509Certificate(pem).fingerprint256];
      } catch {
        return [];
      }
    }));
    return this.anchors.has(cert.fingerprint256);
  }

  /** What the peer's certificate proves about `domain` (callers cache it per stream). */
  status(transport: S2sTransport, domain: string): CertificateStatus {
    const socket = transport.tlsSocket;
    if (!socket) return 'no-tls';
    let cert: X509Certificate | undefined;
    try {
      cert = transport.peerCertificate();
    } catch {
      cert = undefined;
    }
    if (!cert) return 'none';
    // rejectUnauthorized is off on purpose; the verification result still tells whether the chain verified.
    const { authorized, error } = transport.peerVerification;
    // COMPAT(Let's Encrypt, 2026): public CAs no longer put clientAuth in server certificates, so
    // OpenSSL's client purpose check refuses them as client certificates. Like Prosody, accept them
    // on s2s when the chain holds without that check.
    if (!authorized && !(error === 'INVALID_PURPOSE' && this.chainHolds(socket.getPeerCertificate(true)))) return 'untrusted';
    try {
      return certificateCoversDomain(cert.toString(), domain) ? 'valid' : 'name-mismatch';
    } catch {
      return 'name-mismatch';
    }
  }

  /**
   * The peer's chain as Node completed it from our CA store: every link signed by the next, every
   * certificate within its validity, every issuer a CA, ending at one of our trust anchors.
   */
  private chainHolds(leaf: DetailedPeerCertificate): boolean {
    const now = Date.now();
    let current: DetailedPeerCertificate = leaf;
    for (let depth = 0; depth < 8; depth++) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(current.raw);
      } catch {
        return false;
      }
      if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return false;
      if (this.isAnchor(cert)) return depth > 0 || cert.ca;
      const next = current.issuerCertificate;
      if (!next || next === current || next.raw === undefined) return false;
      let issuer: X509Certificate;
      try {
        issuer = new X509Certificate(next.raw);
      } catch {
        return false;
      }
      if (!issuer.ca || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return false;
      current = next;
    }
    return false;
  }
}

/** Why a certificate is not valid, for logs ('DEPTH_ZERO_SELF_SIGNED_CERT', ...). */
export function certificateProblem(transport: S2sTransport): string | undefined {
  return transport.peerVerification.error;
}
