// Whether a peer's client certificate is valid for its domain (server/s2s/certificates.ts), over a
// real STARTTLS-style handshake between two transports on loopback.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as netConnect } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { S2sTransport } from '../../server/s2s/transport.js';
import { S2sTrust, type CertificateStatus } from '../../server/s2s/certificates.js';
import { generateSelfSignedCertificate } from '../../server/tls/selfsigned.js';
import { createTestCa, type IssuedCertificate } from '../wire/s2s-helpers.js';

const ca = createTestCa();
const serverCert = ca.issue(['b.test']);

/** The receiving side's verdict on `client` presented as a client certificate, for `domain`. */
async function statusOf(client: IssuedCertificate | undefined, domain: string, trust = new S2sTrust([ca.certPem])): Promise<CertificateStatus> {
  const context = trust.context({ cert: serverCert.certPem, key: serverCert.keyPem });
  return new Promise((resolve, reject) => {
    const server = createServer((raw) => {
      const transport = new S2sTransport(raw, false);
      transport.attach({ data: () => undefined, closed: () => undefined });
      transport.startTlsServer(context).then(() => {
        resolve(trust.status(transport, domain));
        transport.destroy();
        server.close();
      }, reject);
    });
    server.listen(0, '127.0.0.1', () => {
      const raw = netConnect((server.address() as { port: number }).port, '127.0.0.1', () => {
        const options = client ? { secureContext: createSecureContext({ cert: client.certPem, key: client.keyPem }) } : {};
        tlsConnect({ socket: raw, servername: 'b.test', rejectUnauthorized: false, ...options }).on('error', () => undefined);
      });
    });
  });
}

describe('s2s certificates: peer certificate status', () => {
  test('issued by a trusted CA for the domain → valid', async () => {
    assert.equal(await statusOf(ca.issue(['a.test']), 'a.test'), 'valid');
  });

  test('a wildcard covers one label below it, not the domain two levels down', async () => {
    const cert = ca.issue(['a.test', '*.a.test']);
    assert.equal(await statusOf(cert, 'conference.a.test'), 'valid');
    assert.equal(await statusOf(cert, 'x.conference.a.test'), 'name-mismatch');
  });

  test('trusted, but for another domain → name-mismatch', async () => {
    assert.equal(await statusOf(ca.issue(['c.test']), 'a.test'), 'name-mismatch');
  });

  test('without the clientAuth usage, from a trusted CA → valid (as public CAs issue them now)', async () => {
    assert.equal(await statusOf(ca.issue(['a.test'], { serverAuthOnly: true }), 'a.test'), 'valid');
  });

  test('without the clientAuth usage, from a CA that is not trusted → untrusted', async () => {
    const other = createTestCa('Not Trusted');
    assert.equal(await statusOf(other.issue(['a.test'], { serverAuthOnly: true }), 'a.test'), 'untrusted');
    assert.equal(await statusOf(other.issue(['a.test']), 'a.test'), 'untrusted');
  });

  test('self-signed → untrusted; no certificate at all → none', async () => {
    assert.equal(await statusOf(generateSelfSignedCertificate({ domains: ['a.test'] }), 'a.test'), 'untrusted');
    assert.equal(await statusOf(undefined, 'a.test'), 'none');
  });

  test('the extra CA is what makes it trusted: without s2s.ca_file the same certificate is untrusted', async () => {
    assert.equal(await statusOf(ca.issue(['a.test']), 'a.test', new S2sTrust([])), 'untrusted');
  });
});
