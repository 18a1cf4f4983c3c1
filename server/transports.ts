// What carries a client stream: a TCP socket (STARTTLS), a TLS socket (XEP-0368 direct TLS), or a
// WebSocket (RFC 7395). The stream logic (server/c2s.ts) is the same over all of them; only the
// framing differs: TCP streams open with <stream:stream> and close with </stream:stream>; WebSocket
// streams send one complete element per message and open and close with <open/> and <close/>.

import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { WebSocket } from 'ws';
import { XmlElement, serialize } from './xml/element.js';
import { escapeAttr } from './xml/escape.js';
import { NS } from './protocol/ns.js';
import { TickCorkedWriter, listenToSocket } from './socket-io.js';

export interface TransportEvents {
  /** Bytes from a socket, or one complete message from a WebSocket. */
  data(chunk: Buffer | string): void;
  /** The connection is gone. */
  closed(reason: string): void;
  /** A batch of writes is about to go out (over WebSocket: just went out): the stream may append to it. */
  beforeFlush?(): void;
  /** Called after a batch of writes went to the socket (write-queue limits). */
  afterFlush?(): void;
}

export interface StreamHeaderAttrs {
  id: string;
  from: string;
  to?: string;
}

export interface StreamTransport {
  readonly kind: 'tcp' | 'tls' | 'websocket';
  readonly remoteAddress: string;
  /** Encrypted (TLS) — or, for WebSocket, on a connection we trust as such (see WebSocketTransport). */
  readonly secure: boolean;
  /** The TLS socket, for channel binding; undefined without TLS on our side. */
  readonly tlsSocket: TLSSocket | undefined;
  readonly canStartTls: boolean;
  /** Unsent bytes queued for this connection. */
  readonly writableLength: number;
  attach(events: TransportEvents): void;
  /** The stream header (TCP) or <open/> (WebSocket). */
  openStream(attrs: StreamHeaderAttrs): void;
  /** A top-level element, framed for this transport. */
  writeElement(el: XmlElement): boolean;
  /** Whitespace keepalive (TCP) or a ping frame (WebSocket). */
  keepalive(): void;
  /**
   * </stream:stream> or <close/>, then a graceful close. `peerClosedFirst`: the peer's closing tag
   * came first, so nothing more is expected from it. True when the connection closed at once.
   */
  closeStream(peerClosedFirst?: boolean): boolean;
  /** Resolves when everything written so far has been handed to the operating system. */
  flushed(): Promise<void>;
  setReading(on: boolean): void;
  /** STARTTLS: wraps the socket; `onSecure` runs once the handshake is done. */
  startTls(context: SecureContext, onSecure: () => void): void;
  destroy(): void;
}

const STREAM_CLOSE = '</stream:stream>';

/** TCP with STARTTLS, or a direct TLS socket. Writes made in one tick go out as one TCP/TLS write. */
export class SocketTransport implements StreamTransport {
  kind: 'tcp' | 'tls';
  readonly remoteAddress: string;
  readonly canStartTls: boolean;
  private socket: Socket;
  private events: TransportEvents | undefined;
  private secureNow: boolean;
  private readonly writer = new TickCorkedWriter(() => this.socket, () => this.events);

  constructor(socket: Socket, directTls: boolean) {
    this.socket = socket;
    this.kind = directTls ? 'tls' : 'tcp';
    this.secureNow = directTls;
    this.canStartTls = !directTls;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    socket.setNoDelay(true);
  }

  get secure(): boolean {
    return this.secureNow;
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.secureNow && this.socket instanceof TLSSocket ? this.socket : undefined;
  }

  get writableLength(): number {
    return this.socket.writableLength + this.writer.pendingLength;
  }

  attach(events: TransportEvents): void {
    this.events = events;
    this.listen(this.socket);
  }

  private listen(socket: Socket): void {
    listenToSocket(socket, () => this.events);
  }

  openStream(attrs: StreamHeaderAttrs): void {
    let header =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'" +
      ` id='${escapeAttr(attrs.id)}' from='${escapeAttr(attrs.from)}' version='1.0' xml:lang='en'`;
    if (attrs.to !== undefined) header += ` to='${escapeAttr(attrs.to)}'`;
    this.write(header + '>');
  }

  writeElement(el: XmlElement): boolean {
    return this.write(serialize(el));
  }

  keepalive(): void {
    this.write(' ');
  }

  closeStream(peerClosedFirst = false): boolean {
    this.write(STREAM_CLOSE);
    this.uncork();
    // RFC 6120 §4.4: once the peer has closed its stream and ours is written, both are closed and
    // the TCP connection can go (close() sends our FIN behind the data). Saves the shutdown(), the
    // wait for the peer's FIN and its read: 3 of the 21 socket system calls of a login, each costly on a
    // VM. Only when the write went out whole (nothing queued that destroy() would drop), and not
    // over TLS, whose end() sends the close_notify alert.
    if (peerClosedFirst && this.kind === 'tcp' && this.socket.writableLength === 0) {
      this.socket.destroy();
      return true;
    }
    this.socket.end();
    return false;
  }

  protected write(data: string): boolean {
    return this.writer.write(data);
  }

  private uncork(): void {
    this.writer.flush();
  }

  flushed(): Promise<void> {
    this.uncork(); // this tick's writes first: the empty write below queues behind them
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      if (socket.destroyed || !socket.writable) return reject(new Error('connection closed'));
      socket.write('', (err) => (err ? reject(err) : resolve()));
    });
  }

  setReading(on: boolean): void {
    if (on) this.socket.resume();
    else this.socket.pause();
  }

  startTls(context: SecureContext, onSecure: () => void): void {
    this.uncork(); // <proceed/> must go out in the clear, before the handshake
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('end');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    const secure = new TLSSocket(raw, { isServer: true, secureContext: context, SNICallback: (_name, cb) => cb(null, context) });
    this.socket = secure;
    this.listen(secure);
    secure.once('secure', () => {
      this.secureNow = true;
      this.kind = 'tls';
      onSecure();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * RFC 7395 XMPP over WebSocket. Each message holds exactly one element; stanzas carry
 * xmlns='jabber:client' and stream-namespace elements declare their prefix (RFC 7395 §3.3.3).
 * `secure` is true for wss:// and for connections from a trusted proxy address (a TLS-terminating
 * reverse proxy on the same host is the usual deployment).
 */
export class WebSocketTransport implements StreamTransport {
  readonly kind = 'websocket' as const;
  readonly canStartTls = false;
  private events: TransportEvents | undefined;
  private sent = 0;
  private done = 0;
  private waiters: { upTo: number; resolve(): void; reject(err: Error): void }[] = [];
  private closing = false;

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    readonly secure: boolean,
    readonly tlsSocket: TLSSocket | undefined,
  ) {}

  get writableLength(): number {
    return this.ws.bufferedAmount;
  }

  attach(events: TransportEvents): void {
    this.events = events;
    this.ws.on('message', (data, isBinary) => {
      // RFC 7395 §3.2: text frames only.
      const text = isBinary ? null : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      if (text === null) {
        this.ws.close(1003, 'text frames only');
        return;
      }
      events.data(text);
    });
    this.ws.on('close', (code) => {
      this.failWaiters();
      events.closed(code === 1000 || code === 1001 ? 'websocket closed' : `websocket closed (${code})`);
    });
    this.ws.on('error', () => undefined);
  }

  openStream(attrs: StreamHeaderAttrs): void {
    let open = `<open xmlns='${NS.FRAMING}' id='${escapeAttr(attrs.id)}' from='${escapeAttr(attrs.from)}' version='1.0' xml:lang='en'`;
    if (attrs.to !== undefined) open += ` to='${escapeAttr(attrs.to)}'`;
    this.send(open + '/>');
  }

  writeElement(el: XmlElement): boolean {
    let out = el;
    if (el.attrs.xmlns === undefined) {
      if (el.name.startsWith('stream:')) out = el.withAttrs({ 'xmlns:stream': NS.STREAMS });
      else out = el.withAttrs({ xmlns: NS.CLIENT });
    }
    return this.send(serialize(out));
  }

  keepalive(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  closeStream(): boolean {
    if (this.closing) return false;
    this.closing = true;
    this.send(`<close xmlns='${NS.FRAMING}'/>`);
    this.ws.close(1000);
    return false;
  }

  private send(data: string): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    const seq = ++this.sent;
    this.ws.send(data, (err) => {
      if (err) return;
      this.done = Math.max(this.done, seq);
      this.waiters = this.waiters.filter((w) => (w.upTo <= this.done ? (w.resolve(), false) : true));
    });
    // Every message is a batch of its own; what the stream appends (an ack request) follows it.
    this.events?.beforeFlush?.();
    this.events?.afterFlush?.();
    return true;
  }

  flushed(): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.reject(new Error('connection closed'));
    if (this.done >= this.sent) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ upTo: this.sent, resolve, reject }));
  }

  private failWaiters(): void {
    for (const w of this.waiters) w.reject(new Error('connection closed'));
    this.waiters = [];
  }

  setReading(on: boolean): void {
    if (on) this.ws.resume();
    else this.ws.pause();
  }

  startTls(): void {
    throw new Error('no STARTTLS over WebSocket');
  }

  destroy(): void {
    this.ws.terminate();
  }
}
