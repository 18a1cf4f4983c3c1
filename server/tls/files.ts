// Where the server's certificate comes from: the configured PEM files, or a self-signed certificate
// generated once into the data directory (first start) and reused afterwards.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSelfSignedCertificate } from './selfsigned.js';

export interface CertificateFiles {
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
  /** True when this call generated a new self-signed certificate. */
  generated: boolean;
}

export function selfSignedPaths(dataDir: string): { certPath: string; keyPath: string } {
  return { certPath: join(dataDir, 'tls', 'herald.crt'), keyPath: join(dataDir, 'tls', 'herald.key') };
}

/** Domains a generated certificate covers: the domain and its subdomains (conference., push., ...). */
export function defaultCertificateDomains(domain: string): string[] {
  // A wildcard needs two labels under it (RFC 6125 §6.4.3): for 'localhost' name the services.
  if (domain.includes('.')) return [domain, `*.${domain}`];
  return [domain, ...['conference', 'pubsub', 'push', 'upload'].map((sub) => `${sub}.${domain}`)];
}

export function ensureCertificate(options: { domain: string; dataDir: string; cert?: string; key?: string }): CertificateFiles {
  if (options.cert !== undefined || options.key !== undefined) {
    if (options.cert === undefined || options.key === undefined) throw new Error('tls.cert and tls.key go together: set both or neither');
    return {
      certPem: readFileSync(options.cert, 'utf8'),
      keyPem: readFileSync(options.key, 'utf8'),
      certPath: options.cert,
      keyPath: options.key,
      generated: false,
    };
  }
  const { certPath, keyPath } = selfSignedPaths(options.dataDir);
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8'), certPath, keyPath, generated: false };
  }
  const { certPem, keyPem } = generateSelfSignedCertificate({ domains: defaultCertificateDomains(options.domain) });
  mkdirSync(join(options.dataDir, 'tls'), { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, keyPem, { mode: 0o600 });
  writeFileSync(certPath, certPem, { mode: 0o644 });
  return { certPem, keyPem, certPath, keyPath, generated: true };
}
