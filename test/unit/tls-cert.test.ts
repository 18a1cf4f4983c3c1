import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import {
  DerError, bitString, boolean, children, decodeOid, decodeTime, explicit, fromPem, ia5String,
  implicit, integer, namedBits, nul, octetString, oid, printableString, readDer, seq, set, time,
  toPem, utf8String,
} from '../../server/tls/der.js';
import { generateSelfSignedCertificate } from '../../server/tls/selfsigned.js';
import { certificateCoversDomain, certificateProblems, inspectCertificate } from '../../server/tls/inspect.js';
import { OID, parseCertificateDer } from '../../server/tls/x509.js';

const hex = (buf: Buffer): string => buf.toString('hex').replace(/(..)(?!$)/g, '$1 ');
const DAY_MS = 24 * 60 * 60 * 1000;
const KEY_TYPES = ['ec', 'rsa'] as const;

// One certificate per key type for the read-only tests: RSA key generation costs ~100 ms.
const DOMAINS = ['localhost', 'example.com', '*.muc.example.com'];
const generated = {
  ec: generateSelfSignedCertificate({ domains: DOMAINS }),
  rsa: generateSelfSignedCertificate({ domains: DOMAINS, keyType: 'rsa' }),
};

describe('tls: DER encoder', () => {
  test('INTEGER gets a leading zero when the top bit is set, and none otherwise', () => {
    assert.equal(hex(integer(Buffer.from([0x80]))), '02 02 00 80');
    assert.equal(hex(integer(128n)), '02 02 00 80');
    assert.equal(hex(integer(0)), '02 01 00');
    assert.equal(hex(integer(127)), '02 01 7f');
    assert.equal(hex(integer(256)), '02 02 01 00');
    assert.equal(hex(integer(Buffer.from([0, 0, 1]))), '02 01 01');
    assert.equal(hex(integer(Buffer.alloc(0))), '02 01 00');
  });

  test('negative INTEGERs are minimal two\'s complement', () => {
    assert.equal(hex(integer(-1)), '02 01 ff');
    assert.equal(hex(integer(-128)), '02 01 80');
    assert.equal(hex(integer(-129n)), '02 02 ff 7f');
    assert.equal(hex(integer(-256)), '02 02 ff 00');
  });

  test('OIDs encode the first two arcs together and the rest base 128', () => {
    assert.equal(hex(oid('1.2.840.10045.2.1')), '06 07 2a 86 48 ce 3d 02 01');
    assert.equal(hex(oid('2.5.29.17')), '06 03 55 1d 11');
    assert.equal(hex(oid('1.3.6.1.5.5.7.8.5')), '06 08 2b 06 01 05 05 07 08 05');
    assert.equal(hex(oid('2.999.3')), '06 03 88 37 03');
  });

  test('malformed OIDs are refused', () => {
    for (const bad of ['', '1', '3.1', '1.40', '1.2.', '1.02', 'a.b']) {
      assert.throws(() => oid(bad), DerError, bad);
    }
  });

  test('times are UTCTime before 2050 and GeneralizedTime from 2050, without milliseconds', () => {
    assert.equal(time(new Date('2024-03-05T06:07:08.999Z')).toString('latin1'), '\x17\x0d240305060708Z');
    assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('latin1'), '\x17\x0d491231235959Z');
    assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
    assert.equal(time(new Date('1949-12-31T23:59:59Z')).toString('latin1'), '\x18\x0f19491231235959Z');
  });

  test('lengths of 128 and more use the minimal long form', () => {
    assert.equal(hex(octetString(Buffer.alloc(127)).subarray(0, 2)), '04 7f');
    assert.equal(hex(octetString(Buffer.alloc(200)).subarray(0, 3)), '04 81 c8');
    assert.equal(hex(octetString(Buffer.alloc(300)).subarray(0, 4)), '04 82 01 2c');
  });

  test('primitive types and tagging match X.690 examples', () => {
    assert.equal(hex(boolean(true)), '01 01 ff');
    assert.equal(hex(boolean(false)), '01 01 00');
    assert.equal(hex(nul()), '05 00');
    assert.equal(hex(bitString(Buffer.from([0xa0]), 5)), '03 02 05 a0');
    assert.equal(hex(namedBits([0, 2])), '03 02 05 a0');     // digitalSignature, keyEncipherment
    assert.equal(hex(namedBits([0])), '03 02 07 80');
    assert.equal(hex(namedBits([8])), '03 03 07 00 80');
    assert.equal(hex(utf8String('é')), '0c 02 c3 a9');
    assert.equal(hex(printableString('Herald 1')), '13 08 48 65 72 61 6c 64 20 31');
    assert.equal(hex(explicit(0, integer(2))), 'a0 03 02 01 02');
    assert.equal(hex(implicit(2, ia5String('a'))), '82 01 61');
    assert.equal(hex(implicit(0, seq(integer(1)))), 'a0 03 02 01 01');
    assert.equal(hex(seq()), '30 00');
  });

  test('SET OF sorts its members', () => {
    assert.equal(hex(set(integer(2), integer(1))), '31 06 02 01 01 02 01 02');
  });

  test('strings outside their character set are refused', () => {
    assert.throws(() => printableString('a@b'), DerError);
    assert.throws(() => ia5String('bücher'), DerError);
  });

  test('PEM armour wraps at 64 characters and reads back', () => {
    const der = seq(octetString(Buffer.alloc(100, 7)));
    const pem = toPem('TEST', der);
    assert.match(pem, /^-----BEGIN TEST-----\n[A-Za-z0-9+/]{64}\n/);
    assert.deepEqual(fromPem('TEST', pem), der);
    assert.throws(() => fromPem('CERTIFICATE', pem), DerError);
  });
});

describe('tls: DER reader', () => {
  test('OIDs and times read back as written', () => {
    for (const dotted of ['1.2.840.10045.4.3.2', '2.5.4.3', '2.999.3', '1.2.3.18446744073709551617']) {
      assert.equal(decodeOid(readDer(oid(dotted))), dotted);
    }
    for (const iso of ['2024-03-05T06:07:08.000Z', '2050-01-01T00:00:00.000Z', '1950-01-01T00:00:00.000Z']) {
      assert.equal(decodeTime(readDer(time(new Date(iso)))).toISOString(), iso);
    }
  });

  test('a SEQUENCE walks into its children', () => {
    const node = readDer(seq(integer(5), seq(nul()), explicit(3, boolean(true))));
    const [first, second, third] = children(node);
    assert.equal(hex(first?.raw ?? Buffer.alloc(0)), '02 01 05');
    assert.equal(second?.constructed, true);
    assert.equal(third?.tagClass, 2);
    assert.equal(third?.tagNumber, 3);
  });

  test('indefinite, truncated, non-minimal and trailing encodings are refused', () => {
    assert.throws(() => readDer(Buffer.from('30800000', 'hex')), /indefinite/);
    assert.throws(() => readDer(Buffer.from('3005020101', 'hex')), /truncated/);
    assert.throws(() => readDer(Buffer.from('04810100', 'hex')), /non-minimal/);
    assert.throws(() => readDer(Buffer.from('050000', 'hex')), /trailing/);
  });

  test('the signatureAlgorithm OID of a generated certificate is ECDSA or RSA with SHA-256', () => {
    const read = (pem: string): string => {
      const [, algorithm] = children(readDer(fromPem('CERTIFICATE', pem)));
      return decodeOid(children(algorithm ?? assert.fail('no algorithm'))[0] ?? assert.fail('no OID'));
    };
    assert.equal(read(generated.ec.certPem), '1.2.840.10045.4.3.2');
    assert.equal(read(generated.rsa.certPem), '1.2.840.113549.1.1.11');
  });
});

for (const keyType of KEY_TYPES) {
  describe(`tls: self-signed ${keyType} certificate`, () => {
    const { certPem, keyPem } = generated[keyType];
    const x509 = new X509Certificate(certPem);

    test('parses as X.509 v3 with CN = first domain, issuer = subject, not a CA', () => {
      assert.equal(x509.subject, 'CN=localhost');
      assert.equal(x509.issuer, x509.subject);
      assert.equal(x509.ca, false);
      assert.equal(x509.publicKey.asymmetricKeyType, keyType);
      assert.ok(x509.verify(x509.publicKey));
      assert.match(x509.serialNumber, /^[0-7][0-9A-F]{31}$/);  // 16 octets, positive
    });

    test('checkHost passes for each domain and fails for others', () => {
      for (const host of ['localhost', 'example.com', 'muc.example.com', 'room.muc.example.com']) {
        assert.notEqual(x509.checkHost(host), undefined, host);   // returns the SAN that matched
      }
      for (const host of ['example.org', 'a.example.com', 'x.room.muc.example.com']) {
        assert.equal(x509.checkHost(host), undefined, host);
      }
    });

    test('the key is PKCS#8 and matches the certificate', () => {
      assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.equal(x509.checkPrivateKey(createPrivateKey(keyPem)), true);
    });

    test('validity runs from an hour ago to 3650 days ahead', () => {
      const now = Date.now();
      const from = new Date(x509.validFrom).getTime();
      const to = new Date(x509.validTo).getTime();
      assert.ok(Math.abs(from - (now - 3600_000)) < 60_000, x509.validFrom);
      assert.ok(Math.abs(to - (now + 3650 * DAY_MS)) < 60_000, x509.validTo);
    });

    test('SANs list every DNS name, the bare wildcard base and XmppAddr/SRV-IDs', () => {
      const san = parseCertificateDer(x509.raw).subjectAltNames;
      assert.deepEqual(san.dns, ['localhost', 'example.com', '*.muc.example.com', 'muc.example.com']);
      assert.deepEqual(san.xmppAddr, ['localhost', 'example.com', 'muc.example.com']);
      assert.ok(san.srvName.includes('_xmpp-server.example.com'));
      assert.ok(san.srvName.includes('_xmpp-client.example.com'));
      assert.match(x509.subjectAltName ?? '', /DNS:\*\.muc\.example\.com/);
      assert.match(x509.subjectAltName ?? '', /othername:XmppAddr:example\.com/);
    });

    test('extensions: CA:false and key usage critical, server+client auth, SKI from the key', () => {
      const { extensions } = parseCertificateDer(x509.raw);
      assert.deepEqual(extensions.get(OID.basicConstraints), { critical: true, value: Buffer.from('3000', 'hex') });
      const usage = keyType === 'rsa' ? '03 02 05 a0' : '03 02 07 80';
      assert.equal(hex(extensions.get(OID.keyUsage)?.value ?? Buffer.alloc(0)), usage);
      assert.equal(extensions.get(OID.keyUsage)?.critical, true);
      assert.deepEqual(x509.keyUsage, [OID.serverAuth, OID.clientAuth]);  // Node names EKU keyUsage
      const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
      const [, bits] = children(readDer(spki));
      const ski = createHash('sha1').update(bits?.value.subarray(1) ?? Buffer.alloc(0)).digest();
      assert.deepEqual(extensions.get(OID.subjectKeyIdentifier)?.value, octetString(ski));
    });

    test('a TLS client trusting the certificate completes a verified handshake to localhost', async (t) => {
      const socket = await handshake(t, { certPem, keyPem }, { ca: certPem, servername: 'localhost' });
      assert.equal(socket.authorized, true);
      assert.equal(socket.getPeerX509Certificate()?.fingerprint256, x509.fingerprint256);
    });

    test('a TLS client asking for a name not in the certificate fails with ERR_TLS_CERT_ALTNAME_INVALID', async (t) => {
      await assert.rejects(
        handshake(t, { certPem, keyPem }, { ca: certPem, servername: 'example.org' }),
        { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
      );
    });

    test('the certificate also authenticates a TLS client (clientAuth, for s2s SASL EXTERNAL)', async (t) => {
      const socket = await handshake(
        t, { certPem, keyPem, requestCert: true },
        { ca: certPem, servername: 'example.com', cert: certPem, key: keyPem },
      );
      assert.equal(socket.authorized, true);
    });
  });
}

describe('tls: generateSelfSignedCertificate options', () => {
  test('days sets the end of validity', () => {
    const { certPem } = generateSelfSignedCertificate({ domains: ['example.com'], days: 30 });
    const info = inspectCertificate(certPem);
    assert.ok(Math.abs(info.validTo.getTime() - (Date.now() + 30 * DAY_MS)) < 60_000);
  });

  test('IDN and IP domains become A-label dNSNames and iPAddress SANs', () => {
    const { certPem } = generateSelfSignedCertificate({ domains: ['Bücher.example.', '127.0.0.1', '::1'] });
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.subject, 'CN=xn--bcher-kva.example');
    assert.deepEqual(inspectCertificate(certPem).domains, ['xn--bcher-kva.example', '127.0.0.1', '::1']);
    assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(certificateCoversDomain(certPem, 'bücher.example'), true);
    assert.equal(certificateCoversDomain(certPem, '::1'), true);
  });

  test('no domains, bad names and inverted validity are refused', () => {
    assert.throws(() => generateSelfSignedCertificate({ domains: [] }), /at least one domain/);
    for (const bad of ['exa mple.com', '-x.example', 'a..b', '*.com', 'w*.example.com', '*']) {
      assert.throws(() => generateSelfSignedCertificate({ domains: [bad] }), /not a valid domain/, bad);
    }
    const now = Date.now();
    assert.throws(() => generateSelfSignedCertificate({
      domains: ['example.com'], notBefore: new Date(now), notAfter: new Date(now - 1000),
    }), /ends before it starts/);
  });
});

describe('tls: inspectCertificate', () => {
  test('a generated certificate reports its names, dates, key match and fingerprint', () => {
    const { certPem, keyPem } = generated.ec;
    const info = inspectCertificate(certPem, keyPem);
    const x509 = new X509Certificate(certPem);
    assert.equal(info.subject, 'CN=localhost');
    assert.deepEqual(info.domains, ['localhost', 'example.com', '*.muc.example.com', 'muc.example.com']);
    assert.equal(info.validFrom.getTime(), new Date(x509.validFrom).getTime());
    assert.equal(info.validTo.getTime(), new Date(x509.validTo).getTime());
    assert.equal(info.selfSigned, true);
    assert.equal(info.keyMatches, true);
    assert.equal(info.fingerprint256, x509.fingerprint256);
    assert.equal(info.signatureAlgorithm, 'ecdsa-with-SHA256');
  });

  test('another key does not match; no key leaves keyMatches out', () => {
    assert.equal(inspectCertificate(generated.ec.certPem, generated.rsa.keyPem).keyMatches, false);
    assert.equal('keyMatches' in inspectCertificate(generated.ec.certPem), false);
  });

  test('a certificate signed by another key is not self-signed', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const certPem = buildCertificate({ dns: ['example.com'], signer: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
    assert.equal(inspectCertificate(certPem).selfSigned, false);
  });

  test('unparseable PEM throws', () => {
    assert.throws(() => inspectCertificate('not a certificate'));
  });
});

describe('tls: certificateCoversDomain', () => {
  const { certPem } = generated.ec;

  test('wildcards cover exactly one label, never the bare domain by themselves', () => {
    const wildcardOnly = buildCertificate({ dns: ['*.example.com'] });
    assert.equal(certificateCoversDomain(wildcardOnly, 'chat.example.com'), true);
    assert.equal(certificateCoversDomain(wildcardOnly, 'CHAT.Example.com'), true);
    assert.equal(certificateCoversDomain(wildcardOnly, 'example.com'), false);
    assert.equal(certificateCoversDomain(wildcardOnly, 'a.chat.example.com'), false);
    assert.equal(certificateCoversDomain(certPem, 'room.muc.example.com'), true);
    assert.equal(certificateCoversDomain(certPem, 'muc.example.com'), true);   // the bare form we add
  });

  test('partial-label wildcards are not honoured', () => {
    const partial = buildCertificate({ dns: ['w*.example.com'] });
    assert.equal(certificateCoversDomain(partial, 'www.example.com'), false);
  });

  test('an XmppAddr SAN alone covers its domain', () => {
    const xmppOnly = buildCertificate({ dns: [], xmppAddr: ['chat.example.net'] });
    assert.equal(certificateCoversDomain(xmppOnly, 'chat.example.net'), true);
    assert.equal(certificateCoversDomain(xmppOnly, 'example.net'), false);
  });

  test('other domains and invalid names are not covered', () => {
    assert.equal(certificateCoversDomain(certPem, 'example.org'), false);
    assert.equal(certificateCoversDomain(certPem, 'exa mple.com'), false);
  });
});

describe('tls: certificateProblems', () => {
  const { certPem, keyPem } = generated.ec;

  test('a fresh certificate, its key and its domains give no problems', () => {
    assert.deepEqual(certificateProblems(certPem, keyPem, ['localhost', 'example.com', 'conf.muc.example.com']), []);
    assert.deepEqual(certificateProblems(generated.rsa.certPem, generated.rsa.keyPem, ['example.com']), []);
  });

  test('an expired certificate is reported as expired', () => {
    const now = Date.now();
    const expired = generateSelfSignedCertificate({
      domains: ['example.com'], notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS),
    });
    const problems = certificateProblems(expired.certPem, expired.keyPem, ['example.com']);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^certificate expired on \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
  });

  test('the `now` argument decides expiry and not-yet-valid', () => {
    const later = new Date(Date.now() + 4000 * DAY_MS);
    assert.match(certificateProblems(certPem, keyPem, [], later)[0] ?? '', /^certificate expired/);
    const earlier = new Date(Date.now() - DAY_MS);
    assert.match(certificateProblems(certPem, keyPem, [], earlier)[0] ?? '', /^certificate is not valid until/);
  });

  test('a certificate expiring within 14 days gives a warning', () => {
    const soon = generateSelfSignedCertificate({ domains: ['example.com'], days: 10 });
    const problems = certificateProblems(soon.certPem, soon.keyPem, ['example.com']);
    assert.deepEqual(problems.map((p) => p.replace(/on .*/, 'on …')), ['warning: certificate expires in 9 days, on …']);
  });

  test('a domain the certificate does not name is reported with what it does name', () => {
    const problems = certificateProblems(certPem, keyPem, ['example.com', 'example.org']);
    assert.deepEqual(problems, [
      'certificate does not cover example.org (it names localhost, example.com, *.muc.example.com, muc.example.com)',
    ]);
  });

  test('a key from another pair is reported as not matching', () => {
    const other = generateSelfSignedCertificate({ domains: ['example.com'] });
    assert.deepEqual(certificateProblems(certPem, other.keyPem, ['example.com']), ['private key does not match the certificate']);
    assert.deepEqual(certificateProblems(certPem, generated.rsa.keyPem, []), ['private key does not match the certificate']);
  });

  test('unparseable certificate and key PEM are reported', () => {
    const problems = certificateProblems('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'junk', ['example.com']);
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? '', /^certificate cannot be read: /);
    assert.match(problems[1] ?? '', /^private key cannot be read: /);
    assert.deepEqual(certificateProblems(certPem, undefined, ['example.com']), []);
  });
});

// ---------------------------------------------------------------------------------------------

interface ServerSide { certPem: string; keyPem: string; requestCert?: boolean }

/** A TLS handshake on loopback; resolves with the client socket once verified, rejects otherwise. */
async function handshake(t: TestContext, server: ServerSide, client: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const tlsServer = tls.createServer({
    cert: server.certPem, key: server.keyPem, requestCert: server.requestCert ?? false,
    rejectUnauthorized: server.requestCert ?? false, ca: server.requestCert ? server.certPem : undefined,
  }, (socket) => socket.end());
  tlsServer.on('tlsClientError', () => {});                 // the refused-name test aborts on purpose
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  t.after(() => tlsServer.close());
  const { port } = tlsServer.address() as AddressInfo;
  const socket = tls.connect({ host: '127.0.0.1', port, ...client });
  t.after(() => socket.destroy());
  await once(socket, 'secureConnect');
  return socket;
}

/** A hand-built self-signed EC certificate with exactly the SANs given (signed by `signer` if set). */
function buildCertificate(opts: { dns: string[]; xmppAddr?: string[]; signer?: string }): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const name = seq(set(seq(oid(OID.commonName), utf8String('test'))));
  const sans = [
    ...opts.dns.map((dns) => implicit(2, ia5String(dns))),
    ...(opts.xmppAddr ?? []).map((addr) => implicit(0, seq(oid(OID.xmppAddr), explicit(0, utf8String(addr))))),
  ];
  const now = Date.now();
  const tbs = seq(
    explicit(0, integer(2)), integer(1), algorithm, name,
    seq(time(new Date(now - DAY_MS)), time(new Date(now + DAY_MS))), name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(seq(oid(OID.subjectAltName), octetString(seq(...sans))))),
  );
  const key = opts.signer ? createPrivateKey(opts.signer) : privateKey;
  return toPem('CERTIFICATE', seq(tbs, algorithm, bitString(sign('sha256', tbs, { key, dsaEncoding: 'der' }))));
}
