// Shared by the s2s tests: a throw-away CA that signs leaf certificates (SASL EXTERNAL needs a chain
// both servers trust), a raw server-to-server peer for hostile input, and a DNS stub on loopback
// that answers SRV and address queries (for s2s.dns_servers).

import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bitString, boolean, children, explicit, ia5String, implicit, integer, namedBits, octetString, oid, readDer, seq, set, time, toPem, utf8String,
} from '../../server/tls/der.js';
import { OID } from '../../server/tls/x509.js';
import { XmlStreamParser, parseXml, type StreamHeader } from '../../server/xml/parser.js';
import { serialize, type XmlElement } from '../../server/xml/element.js';
import { matchElement } from '../../server/client.js';
import { NS } from '../../server/protocol/ns.js';

export interface TestContextLike {
  after(fn: () => unknown): void;
}

// ---------------------------------------------------------------------------------------------
// A test CA (X.509 v3, RFC 5280), ECDSA P-256

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export interface TestCa {
  certPem: string;
  /** A leaf certificate for these domains (serverAuth + clientAuth unless told otherwise, DNS and XmppAddr SANs). */
  issue(domains: string[], options?: { serverAuthOnly?: boolean }): IssuedCertificate;
  /** Writes the CA and leaf certificates as files (removed after the test); returns the paths. */
  files(t: TestContextLike, leaves: Record<string, IssuedCertificate>): { caFile: string; cert(name: string): { cert: string; key: string } };
}

const ALGORITHM = seq(oid(OID.ecdsaWithSha256));

export function createTestCa(name = 'Herald Test CA'): TestCa {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caName = seq(set(seq(oid(OID.commonName), utf8String(name))));
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const caCert = signCertificate(caKeys.privateKey, caName, caName, caSpki, [
    extension(OID.basicConstraints, true, seq(boolean(true))),
    extension(OID.keyUsage, true, namedBits([5, 6])), // keyCertSign, cRLSign
    extension(OID.subjectKeyIdentifier, false, octetString(keyId(caSpki))),
  ]);
  const certPem = toPem('CERTIFICATE', caCert);
  return {
    certPem,
    issue(domains, options = {}) {
      const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
      const subject = seq(set(seq(oid(OID.commonName), utf8String(domains[0]!))));
      const sans = domains.flatMap((domain) => [
        implicit(2, ia5String(domain)),
        ...(domain.startsWith('*.') ? [] : [implicit(0, seq(oid(OID.xmppAddr), explicit(0, utf8String(domain))))]),
      ]);
      const der = signCertificate(caKeys.privateKey, caName, subject, spki, [
        extension(OID.basicConstraints, true, seq()),
        extension(OID.keyUsage, true, namedBits([0])),
        extension(OID.extKeyUsage, false, options.serverAuthOnly ? seq(oid(OID.serverAuth)) : seq(oid(OID.serverAuth), oid(OID.clientAuth))),
        extension(OID.subjectKeyIdentifier, false, octetString(keyId(spki))),
        extension(OID.subjectAltName, false, seq(...sans)),
      ]);
      return { certPem: toPem('CERTIFICATE', der), keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    },
    files(t, leaves) {
      const dir = mkdtempSync(join(tmpdir(), 'herald-ca-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const caFile = join(dir, 'ca.pem');
      writeFileSync(caFile, certPem);
      const paths: Record<string, { cert: string; key: string }> = {};
      for (const [leafName, leaf] of Object.entries(leaves)) {
        paths[leafName] = { cert: join(dir, `${leafName}.crt`), key: join(dir, `${leafName}.key`) };
        writeFileSync(paths[leafName].cert, leaf.certPem);
        writeFileSync(paths[leafName].key, leaf.keyPem);
      }
      return { caFile, cert: (leafName) => paths[leafName]! };
    },
  };
}

function signCertificate(issuerKey: KeyObject, issuer: Buffer, subject: Buffer, spki: Buffer, extensions: Buffer[]): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! % 127) + 1;
  const tbs = seq(
    explicit(0, integer(2)),
    integer(serial),
    ALGORITHM,
    issuer,
    seq(time(new Date(Date.now() - 3_600_000)), time(new Date(Date.now() + 30 * 86_400_000))),
    subject,
    spki,
    explicit(3, seq(...extensions)),
  );
  return seq(tbs, ALGORITHM, bitString(sign('sha256', tbs, { key: issuerKey, dsaEncoding: 'der' })));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function keyId(spki: Buffer): Buffer {
  const [, key] = children(readDer(spki));
  return createHash('sha1').update(key!.value.subarray(1)).digest();
}

// ---------------------------------------------------------------------------------------------
// A raw server-to-server peer

export const DIALBACK_NS = 'jabber:server:dialback';

/** Speaks exactly what it is told on a jabber:server stream, and checks what comes back. */
export class S2sPeer {
  header: StreamHeader | undefined;
  features: XmlElement | undefined;
  streamError: XmlElement | undefined;
  serverClosedStream = false;
  closed = false;
  private socket: Socket | TLSSocket;
  private parser!: XmlStreamParser;
  private readonly queue: XmlElement[] = [];
  private waiters: (() => void)[] = [];

  private constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    this.listen(socket);
  }

  static async connect(t: TestContextLike, port: number): Promise<S2sPeer> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    const peer = new S2sPeer(socket);
    t.after(() => peer.socket.destroy());
    return peer;
  }

  private listen(socket: Socket): void {
    this.parser = new XmlStreamParser({
      streamOpen: (header) => {
        this.header = header;
        this.notify();
      },
      stanza: (el, ns) => {
        if (ns === NS.STREAMS && el.name === 'features') this.features = el;
        else if (ns === NS.STREAMS && el.name === 'error') this.streamError = el;
        else this.queue.push(el);
        this.notify();
      },
      streamClose: () => {
        this.serverClosedStream = true;
        this.notify();
      },
      fault: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => this.parser.write(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  private notify(): void {
    for (const fn of this.waiters.splice(0)) fn();
  }

  private async until<T>(check: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (Date.now() >= deadline || this.closed) throw new Error(`timed out waiting for ${what}${this.closed ? ' (connection closed)' : ''}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(data: string): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Sends a jabber:server stream header (undefined leaves an attribute out) and waits for the features. */
  async openStream(attrs: Record<string, string | undefined>): Promise<XmlElement> {
    this.features = undefined;
    this.header = undefined;
    const rendered = Object.entries({ version: '1.0', ...attrs })
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => ` ${k}='${v}'`)
      .join('');
    this.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAMS}' xmlns:db='${DIALBACK_NS}'${rendered}>`);
    return this.until(() => this.features ?? (this.streamError ? (null as unknown as XmlElement) : undefined), 'stream features');
  }

  /** STARTTLS, presenting `credentials` as the client certificate, then a new stream with `attrs`. */
  async startTls(attrs: Record<string, string | undefined>, credentials?: IssuedCertificate): Promise<XmlElement> {
    this.send(`<starttls xmlns='${NS.TLS}'/>`);
    const proceed = await this.next();
    if (proceed.name !== 'proceed') throw new Error(`STARTTLS refused: ${serialize(proceed)}`);
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect(
        { socket: raw, servername: attrs.to, rejectUnauthorized: false, ...(credentials && { cert: credentials.certPem, key: credentials.keyPem }) },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
    return this.openStream(attrs);
  }

  /** SASL EXTERNAL and the stream restart; resolves with the new features. */
  async authenticateExternal(attrs: Record<string, string | undefined>): Promise<XmlElement> {
    this.send(`<auth xmlns='${NS.SASL}' mechanism='EXTERNAL'>${Buffer.from(attrs.from ?? '').toString('base64')}</auth>`);
    const outcome = await this.next();
    if (outcome.name !== 'success') throw new Error(`EXTERNAL failed: ${serialize(outcome)}`);
    this.parser.reset();
    return this.openStream(attrs);
  }

  async next(timeoutMs?: number): Promise<XmlElement> {
    return this.until(() => this.queue.shift(), 'an element', timeoutMs);
  }

  async expect(pattern: string, timeoutMs?: number): Promise<XmlElement> {
    const expected = parseXml(pattern);
    const got = await this.next(timeoutMs);
    const mismatch = matchElement(expected, got, false, '');
    if (mismatch) throw new Error(`element does not match (${mismatch})\nexpected: ${pattern}\nreceived: ${serialize(got)}`);
    return got;
  }

  /** The server's stream error (its first child's name), then the end of the stream. */
  async expectStreamError(condition: string, timeoutMs?: number): Promise<void> {
    const error = await this.until(() => this.streamError, `stream error ${condition}`, timeoutMs);
    const got = error.elements()[0]?.name;
    if (got !== condition) throw new Error(`expected stream error ${condition}, got ${serialize(error)}`);
    await this.until(() => (this.serverClosedStream || this.closed ? true : undefined), 'the stream to close', timeoutMs);
  }

  async expectClosed(timeoutMs?: number): Promise<void> {
    await this.until(() => (this.serverClosedStream || this.closed ? true : undefined), 'the stream to close', timeoutMs);
  }
}

// ---------------------------------------------------------------------------------------------
// A DNS stub (RFC 1035 over UDP): SRV, A and AAAA answers from a table, NXDOMAIN for the rest

export interface DnsRecords {
  srv?: Record<string, { priority: number; weight: number; port: number; target: string }[]>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
}

export interface DnsStub {
  /** 'ip:port' for s2s.dns_servers. */
  address: string;
  /** Names queried so far, as 'TYPE name'. */
  queries: string[];
  close(): void;
}

const TYPE = { A: 1, AAAA: 28, SRV: 33 } as const;

export async function startDnsStub(t: TestContextLike | undefined, records: DnsRecords): Promise<DnsStub> {
  const socket: UdpSocket = createSocket('udp4');
  const queries: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const question = readQuestion(msg);
    if (!question) return;
    const { name, type, end } = question;
    queries.push(`${type === TYPE.SRV ? 'SRV' : type === TYPE.A ? 'A' : type === TYPE.AAAA ? 'AAAA' : type} ${name}`);
    const answers = answer(records, name.toLowerCase(), type);
    const known = answers !== undefined;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    const rd = msg[2]! % 2; // recursion desired, copied
    header[2] = 0x84 + rd; // QR, AA
    header[3] = 0x80 + (known ? 0 : 3); // RA; NXDOMAIN when the name is unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers?.length ?? 0, 6);
    socket.send(Buffer.concat([header, msg.subarray(12, end), ...(answers ?? [])]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const stub: DnsStub = { address: `127.0.0.1:${socket.address().port}`, queries, close: () => socket.close() };
  t?.after(() => stub.close());
  return stub;
}

function readQuestion(msg: Buffer): { name: string; type: number; end: number } | undefined {
  const labels: string[] = [];
  let pos = 12;
  while (pos < msg.length) {
    const length = msg[pos]!;
    pos++;
    if (length === 0) break;
    labels.push(msg.toString('ascii', pos, pos + length));
    pos += length;
  }
  if (pos + 4 > msg.length) return undefined;
  return { name: labels.join('.'), type: msg.readUInt16BE(pos), end: pos + 4 };
}

/** Answer records for a name, [] when the name exists with other types only, undefined when unknown. */
function answer(records: DnsRecords, name: string, type: number): Buffer[] | undefined {
  const srv = records.srv?.[name];
  const a = records.a?.[name];
  const aaaa = records.aaaa?.[name];
  if (!srv && !a && !aaaa) return undefined;
  if (type === TYPE.SRV && srv) {
    return srv.map((r) => {
      const data = Buffer.alloc(6);
      data.writeUInt16BE(r.priority, 0);
      data.writeUInt16BE(r.weight, 2);
      data.writeUInt16BE(r.port, 4);
      return rr(TYPE.SRV, Buffer.concat([data, encodeName(r.target)]));
    });
  }
  if (type === TYPE.A && a) return a.map((ip) => rr(TYPE.A, Buffer.from(ip.split('.').map(Number))));
  if (type === TYPE.AAAA && aaaa) return aaaa.map(() => rr(TYPE.AAAA, Buffer.from([...Array<number>(15).fill(0), 1])));
  return [];
}

function rr(type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

function encodeName(name: string): Buffer {
  if (name === '.' || name === '') return Buffer.from([0]);
  return Buffer.concat([...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A loopback server that accepts connections and never says anything (for timeouts). */
export async function silentServer(t: TestContextLike): Promise<number> {
  const { createServer } = await import('node:net');
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}
