// A small raw-XML XMPP client: Herald's own tests, the load generator and integration testers use it
// (`import { XmppClient } from 'herald/testing'`). It speaks exactly what it is told, so tests can
// send broken input too, and it checks what comes back with scansion-like patterns:
//   - listed attributes must match, unlisted ones are ignored; '{any}' matches any value;
//   - each listed child must match a distinct received child, in order; extra ones are ignored
//     unless { strict: true };
//   - text is compared trimmed, '{any}' matches any text.

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureVersion, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { XmlStreamParser, parseXml, type StreamHeader } from './xml/parser.js';
import { XmlElement, serialize } from './xml/element.js';
import { NS } from './protocol/ns.js';
import { ScramClient } from './sasl/scram-client.js';
import { tlsExporter, tlsServerEndPoint } from './sasl/channel-binding.js';
import type { ChannelBindingType, ScramHash } from './sasl/mechanism.js';

export interface ClientConnectOptions {
  host?: string;
  /** TCP port (ignored with `websocket`). */
  port: number;
  /** Connect over WebSocket (RFC 7395) to this ws:// or wss:// URL instead of TCP. */
  websocket?: string;
  /** The XMPP domain (stream 'to'). */
  domain: string;
  /** Direct TLS (XEP-0368) instead of plain TCP. */
  directTls?: boolean;
  /** Accept the server's certificate without checking it (self-signed test servers). Default true. */
  insecure?: boolean;
  ca?: string;
  timeoutMs?: number;
  /** TLS versions the client accepts (force TLSv1.2 to test tls-server-end-point). */
  tlsMinVersion?: SecureVersion;
  tlsMaxVersion?: SecureVersion;
  /** ALPN protocols for direct TLS; default ['xmpp-client']. */
  alpnProtocols?: string[];
}

/** How a SCRAM attempt binds to the channel (tests of the server's checks need the wrong ways too). */
export interface SaslAttemptOptions {
  /** Channel-binding type for -PLUS; default tls-exporter on TLS 1.3, else tls-server-end-point. */
  channelBinding?: ChannelBindingType;
  /** Send this as the channel-binding data instead of the real value. */
  channelBindingData?: Buffer;
  /** GS2 flag for a non-PLUS mechanism: 'n' (default) or 'y' ("I could bind, but you can't"). */
  gs2Flag?: 'n' | 'y';
}

export interface LoginOptions extends ClientConnectOptions {
  username: string;
  password: string;
  resource?: string;
  mechanism?: 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS' | 'PLAIN';
  /** Skip STARTTLS (servers that allow plaintext). */
  noTls?: boolean;
  /** Send initial presence after binding. */
  presence?: boolean;
  /** Channel-binding type for the -PLUS mechanisms. */
  channelBinding?: ChannelBindingType;
}

export interface ExpectOptions {
  timeoutMs?: number;
  strict?: boolean;
}

/** A WebSocket (RFC 7395) dressed as the socket XmppClient reads and writes: each message is a 'data' event. */
class WebSocketLink extends EventEmitter {
  destroyed = false;
  constructor(private readonly ws: WebSocket, readonly encrypted: boolean) {
    super();
    ws.on('message', (data) => this.emit('data', Buffer.isBuffer(data) ? data.toString('utf8') : String(data)));
    ws.on('close', () => {
      this.destroyed = true;
      this.emit('close');
    });
    ws.on('error', (err) => this.emit('error', err));
  }
  write(data: string | Buffer): boolean {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(typeof data === 'string' ? data : data.toString('utf8'));
    return true;
  }
  destroy(): void {
    this.destroyed = true;
    this.ws.terminate();
  }
}

const WEBSOCKET_ROOT = `<stream xmlns='${NS.CLIENT}'>`;

export class XmppClient {
  /** Everything received, in order (stanzas and stream-level elements). */
  readonly received: XmlElement[] = [];
  header: StreamHeader | undefined;
  features: XmlElement | undefined;
  jid = '';
  /** The stream error the server sent, once it did. */
  streamError: XmlElement | undefined;
  closed = false;

  private socket: Socket | TLSSocket;
  private parser: XmlStreamParser;
  private queue: XmlElement[] = [];
  private waiters: { resolve: () => void; timer?: NodeJS.Timeout }[] = [];
  private closeWaiters: (() => void)[] = [];
  private readonly timeoutMs: number;
  private serverClosedStream = false;

  /** Over WebSocket (RFC 7395) rather than TCP. */
  readonly websocket: boolean;

  private constructor(socket: Socket | TLSSocket, readonly options: ClientConnectOptions) {
    this.socket = socket;
    this.websocket = options.websocket !== undefined;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.parser = this.makeParser();
    this.listen(socket);
  }

  /** Opens a TCP (or direct TLS) connection and the stream; waits for the stream features. */
  static async connect(options: ClientConnectOptions): Promise<XmppClient> {
    const client = await XmppClient.open(options);
    await client.openStream();
    return client;
  }

  /** Opens the TCP (or direct TLS) connection only: no stream header sent yet (tests of hostile input). */
  static async open(options: ClientConnectOptions): Promise<XmppClient> {
    if (options.websocket !== undefined) {
      const url = options.websocket;
      const ws = new WebSocket(url, 'xmpp', { rejectUnauthorized: !(options.insecure ?? true), ca: options.ca });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
      });
      return new XmppClient(new WebSocketLink(ws, url.startsWith('wss:')) as unknown as Socket, options);
    }
    const host = options.host ?? '127.0.0.1';
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = options.directTls
        ? tlsConnect({ host, port: options.port, ...tlsOptions(options), ALPNProtocols: options.alpnProtocols ?? ['xmpp-client'] }, () => resolve(s))
        : netConnect({ host, port: options.port }, () => resolve(s));
      s.once('error', reject);
    });
    return new XmppClient(socket, options);
  }

  /** connect + STARTTLS + SASL + bind (+ initial presence). */
  static async login(options: LoginOptions): Promise<XmppClient> {
    const client = await XmppClient.connect(options);
    if (!options.directTls && !options.noTls && options.websocket === undefined) await client.startTls();
    await client.authenticate(options.username, options.password, options.mechanism ?? 'SCRAM-SHA-1', { channelBinding: options.channelBinding });
    await client.bind(options.resource);
    if (options.presence) {
      client.send('<presence/>');
    }
    return client;
  }

  get secure(): boolean {
    return 'encrypted' in this.socket && this.socket.encrypted === true;
  }

  get rawSocket(): Socket {
    return this.socket;
  }

  /** True once the server sent </stream:stream>. */
  get streamClosedByServer(): boolean {
    return this.serverClosedStream;
  }

  private makeParser(): XmlStreamParser {
    const parser = new XmlStreamParser(
      {
        streamOpen: (header) => {
          if (!this.websocket) this.header = header;
        },
        stanza: (el, ns) => {
          if (this.websocket && ns === NS.FRAMING) {
            if (el.name === 'open') this.header = { name: 'open', ns, contentNs: NS.CLIENT, prefix: '', attrs: el.attrs };
            if (el.name === 'close') this.serverClosedStream = true;
            this.notify();
            return;
          }
          if (ns === NS.STREAMS && el.name === 'error') this.streamError = el;
          if (ns === NS.STREAMS && el.name === 'features') {
            this.features = el;
            this.notify();
            return;
          }
          this.received.push(el);
          this.queue.push(el);
          this.notify();
        },
        streamClose: () => {
          this.serverClosedStream = true;
          this.notify();
        },
        fault: (condition, text) => {
          this.socket.destroy(new Error(`client parser: ${condition}: ${text}`));
        },
      },
      { maxStanzaBytes: 64 * 1024 * 1024, maxDepth: 1000, maxAttributes: 1000, maxAttributeLength: 1024 * 1024 },
    );
    if (this.websocket) parser.write(WEBSOCKET_ROOT);
    return parser;
  }

  private listen(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.parser.write(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.notify();
      for (const fn of this.closeWaiters.splice(0)) fn();
    });
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }

  private async waitUntil<T>(check: () => T | undefined, what: string, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0 || (this.closed && check() === undefined)) {
        throw new Error(`timed out waiting for ${what}${this.closed ? ' (connection closed)' : ''}\n${this.describeRecent()}`);
      }
      await new Promise<void>((resolve) => {
        const waiter: { resolve: () => void; timer?: NodeJS.Timeout } = { resolve };
        waiter.timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve();
        }, left);
        this.waiters.push(waiter);
      });
    }
  }

  private describeRecent(): string {
    const recent = this.received.slice(-20).map((el) => '  ' + serialize(el));
    return recent.length ? `last received:\n${recent.join('\n')}` : 'nothing received';
  }

  /** Sends a stream header (ours, or the one given) and waits for the features; throws on a stream error. */
  async openStream(header?: string): Promise<void> {
    this.features = undefined;
    this.header = undefined;
    const standard = this.websocket
      ? `<open xmlns='${NS.FRAMING}' to='${this.options.domain}' version='1.0'/>`
      : `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${this.options.domain}' version='1.0' xml:lang='en'>`;
    this.sendRaw(header ?? standard);
    await this.waitUntil(() => this.features ?? (this.streamError ? null : undefined), 'stream features').then((f) => {
      if (f === null) throw new Error(`stream error: ${serialize(this.streamError!)}`);
    });
  }

  async startTls(): Promise<void> {
    this.sendRaw(`<starttls xmlns='${NS.TLS}'/>`);
    const answer = await this.next();
    if (answer.name !== 'proceed') throw new Error(`STARTTLS refused: ${serialize(answer)}`);
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: raw, ...tlsOptions(this.options) }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.parser = this.makeParser();
    this.listen(secure);
    await this.openStream();
  }

  /** SASL with SCRAM (or PLAIN); then the stream restart. */
  async authenticate(username: string, password: string, mechanism: LoginOptions['mechanism'] = 'SCRAM-SHA-1', options: SaslAttemptOptions = {}): Promise<void> {
    const result = await this.tryAuthenticate(username, password, mechanism, options);
    if (result.name !== 'success') throw new Error(`authentication failed: ${serialize(result)}`);
    this.jid = `${username}@${this.options.domain}`;
    await this.restartStream();
  }

  /** The stream restart after SASL success (RFC 6120 §6.4.6): a fresh parser and a new header. */
  async restartStream(): Promise<void> {
    this.parser.reset();
    if (this.websocket) this.parser.write(WEBSOCKET_ROOT);
    await this.openStream();
  }

  /** One SASL attempt; returns the <success/> or <failure/> element without restarting. */
  async tryAuthenticate(username: string, password: string, mechanism: LoginOptions['mechanism'] = 'SCRAM-SHA-1', options: SaslAttemptOptions = {}): Promise<XmlElement> {
    if (mechanism === 'PLAIN') {
      this.sendRaw(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${Buffer.from(`\0${username}\0${password}`).toString('base64')}</auth>`);
      return this.next();
    }
    const hash: ScramHash = mechanism!.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1';
    const plus = mechanism!.endsWith('-PLUS');
    let channelBinding: { type: string; data: Buffer } | 'n' | 'y' = options.gs2Flag ?? 'n';
    if (plus) {
      const type = options.channelBinding ?? (this.tlsProtocol === 'TLSv1.3' ? 'tls-exporter' : 'tls-server-end-point');
      const data = options.channelBindingData ?? this.channelBindingData(type);
      if (!data) throw new Error(`no ${type} channel binding on this connection`);
      channelBinding = { type, data };
    }
    const scram = new ScramClient(hash, username, password, { channelBinding });
    this.sendRaw(`<auth xmlns='${NS.SASL}' mechanism='${mechanism}'>${scram.first().toString('base64')}</auth>`);
    const challenge = await this.next();
    if (challenge.name !== 'challenge') return challenge;
    this.sendRaw(`<response xmlns='${NS.SASL}'>${scram.final(Buffer.from(challenge.text(), 'base64')).toString('base64')}</response>`);
    const outcome = await this.next();
    if (outcome.name === 'success' && !scram.verify(Buffer.from(outcome.text(), 'base64'))) throw new Error('server signature did not verify');
    return outcome;
  }

  /** The negotiated TLS version ('TLSv1.3', ...), or undefined on plain TCP. */
  get tlsProtocol(): string | undefined {
    return this.secure ? ((this.socket as TLSSocket).getProtocol() ?? undefined) : undefined;
  }

  /**
   * Channel-binding data as the client computes it: tls-exporter (RFC 9266), or tls-server-end-point
   * (RFC 5929 §4.1: the hash of the certificate the server presented). Null when unavailable.
   */
  channelBindingData(type: ChannelBindingType): Buffer | null {
    if (!this.secure) return null;
    const socket = this.socket as TLSSocket;
    if (type === 'tls-exporter') return tlsExporter(socket);
    const raw = socket.getPeerCertificate().raw as Buffer | undefined;
    return raw ? tlsServerEndPoint(raw) : null;
  }

  async bind(resource?: string): Promise<string> {
    const id = randomBytes(4).toString('hex');
    this.sendRaw(`<iq type='set' id='${id}'><bind xmlns='${NS.BIND}'>${resource ? `<resource>${resource}</resource>` : ''}</bind></iq>`);
    const result = await this.next();
    const jid = result.getChild('bind', NS.BIND)?.getChildText('jid');
    if (result.attrs.type !== 'result' || !jid) throw new Error(`bind failed: ${serialize(result)}`);
    this.jid = jid;
    return jid;
  }

  send(stanza: string | XmlElement): void {
    this.sendRaw(typeof stanza === 'string' ? stanza : serialize(stanza));
  }

  sendRaw(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** The next received element, whatever it is. */
  async next(timeoutMs?: number): Promise<XmlElement> {
    return this.waitUntil(() => this.queue.shift(), 'a stanza', timeoutMs);
  }

  /** The next received element must match the pattern. */
  async expect(pattern: string | XmlElement, options: ExpectOptions = {}): Promise<XmlElement> {
    const expected = typeof pattern === 'string' ? parseXml(pattern) : pattern;
    const got = await this.waitUntil(() => this.queue.shift(), `a stanza matching ${serialize(expected)}`, options.timeoutMs);
    const mismatch = matchElement(expected, got, options.strict ?? false, '');
    if (mismatch) {
      throw new Error(`stanza does not match (${mismatch})\nexpected: ${serialize(expected)}\nreceived: ${serialize(got)}\n${this.describeRecent()}`);
    }
    return got;
  }

  /** Skips received elements until one matches (they stay in `received`). */
  async waitFor(pattern: string | XmlElement, options: ExpectOptions = {}): Promise<XmlElement> {
    const expected = typeof pattern === 'string' ? parseXml(pattern) : pattern;
    return this.waitUntil(
      () => {
        while (this.queue.length > 0) {
          const el = this.queue.shift()!;
          if (!matchElement(expected, el, options.strict ?? false, '')) return el;
        }
        return undefined;
      },
      `a stanza matching ${serialize(expected)}`,
      options.timeoutMs,
    );
  }

  /** Fails when anything arrives within `ms`. */
  async expectNothing(ms = 200): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length > 0) throw new Error(`expected nothing, received: ${serialize(this.queue[0]!)}`);
  }

  /** Sends an IQ and resolves with the answer that has the same id. */
  async iq(stanza: string | XmlElement, timeoutMs?: number): Promise<XmlElement> {
    const el = typeof stanza === 'string' ? parseXml(stanza) : stanza;
    el.attrs.id ??= randomBytes(4).toString('hex');
    const id = el.attrs.id;
    this.send(el);
    return this.waitUntil(
      () => {
        const index = this.queue.findIndex((r) => r.name === 'iq' && r.attrs.id === id && (r.attrs.type === 'result' || r.attrs.type === 'error'));
        return index < 0 ? undefined : this.queue.splice(index, 1)[0];
      },
      `the answer to IQ ${id}`,
      timeoutMs,
    );
  }

  /** Waits for the stream error and the end of the connection. */
  async expectStreamError(condition: string, timeoutMs?: number): Promise<XmlElement> {
    const error = await this.waitUntil(() => this.streamError, `stream error ${condition}`, timeoutMs);
    const got = error.firstElement()?.name;
    if (got !== condition) throw new Error(`expected stream error ${condition}, got ${serialize(error)}`);
    await this.waitUntil(() => (this.serverClosedStream || this.closed ? true : undefined), 'the stream to close', timeoutMs);
    return error;
  }

  /** Clean close: </stream:stream>, wait for the server's, then the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.sendRaw(this.websocket ? `<close xmlns='${NS.FRAMING}'/>` : '</stream:stream>');
    await this.waitUntil(() => (this.closed || this.serverClosedStream ? true : undefined), 'the server to close', 2000).catch(() => undefined);
    this.socket.destroy();
  }

  /** Loses the connection without </stream:stream> (what a phone leaving coverage does). */
  dropTcp(): void {
    this.socket.destroy();
  }

  /** Resolves when the socket has closed; rejects after `timeoutMs` (default: the client's timeout). */
  waitClosed(timeoutMs = this.timeoutMs): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms\n${this.describeRecent()}`)), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function tlsOptions(options: ClientConnectOptions) {
  return {
    servername: options.domain,
    rejectUnauthorized: !(options.insecure ?? true),
    ca: options.ca,
    ...(options.tlsMinVersion && { minVersion: options.tlsMinVersion }),
    ...(options.tlsMaxVersion && { maxVersion: options.tlsMaxVersion }),
  };
}

/** Returns undefined when `actual` matches `expected`, else a short reason. */
export function matchElement(expected: XmlElement, actual: XmlElement, strict: boolean, path: string): string | undefined {
  const here = `${path}/${expected.name}`;
  if (expected.name !== actual.name) return `${here}: element name ${actual.name}`;
  for (const [key, value] of Object.entries(expected.attrs)) {
    const got = actual.attrs[key];
    if (got === undefined) return `${here}: missing attribute ${key}`;
    if (value !== '{any}' && got !== value) return `${here}: attribute ${key}='${got}'`;
  }
  if (strict) {
    for (const key of Object.keys(actual.attrs)) if (!(key in expected.attrs)) return `${here}: unexpected attribute ${key}`;
  }
  const expectedChildren = expected.elements();
  const expectedText = expected.text().trim();
  if (expectedText !== '' && expectedText !== '{any}' && actual.text().trim() !== expectedText) {
    return `${here}: text '${actual.text().trim()}'`;
  }
  const actualChildren = actual.elements();
  let from = 0;
  for (const child of expectedChildren) {
    let found = -1;
    let reason: string | undefined;
    for (let i = from; i < actualChildren.length; i++) {
      const r = matchElement(child, actualChildren[i]!, strict, here);
      if (r === undefined) {
        found = i;
        break;
      }
      reason ??= r;
    }
    if (found < 0) return reason ?? `${here}: missing child ${child.name}`;
    from = found + 1;
  }
  if (strict && actualChildren.length !== expectedChildren.length) return `${here}: ${actualChildren.length} children, expected ${expectedChildren.length}`;
  return undefined;
}
