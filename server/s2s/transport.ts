// The socket under a server-to-server stream (RFC 6120): TCP with STARTTLS, or direct TLS
// (XEP-0368). Unlike the client transport (server/transports.ts) it works in both directions — the
// TLS client side for streams we open, the TLS server side asking for the peer's certificate for
// streams we accept — and its header is a jabber:server one declaring the dialback prefix
// (XEP-0220 §2.3.1: support for dialback is announced by declaring xmlns:db on the stream).

import type { Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect, type SecureContext } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { XmlElement, serialize } from '../xml/element.js';
import { escapeAttr } from '../xml/escape.js';
import { NS } from '../protocol/ns.js';
import { TickCorkedWriter, listenToSocket } from '../socket-io.js';

export const NS_DIALBACK = 'jabber:server:dialback';

export interface S2sTransportEvents {
  data(chunk: Buffer): void;
  closed(reason: string): void;
}

export interface S2sHeaderAttrs {
  from: string;
  to?: string;
  /** Only the receiving side names the stream. */
  id?: string;
}

export class S2sTransport {
  readonly remoteAddress: string;
  private socket: Socket;
  private secureNow: boolean;
  private events: S2sTransportEvents | undefined;
  private readonly writer = new TickCorkedWriter(() => this.socket);
  /** Set for a STARTTLS server-side socket, where Node leaves `authorized` unset (see startTlsServer). */
  private verified: { authorized: boolean; error: string | undefined } | undefined;

  constructor(socket: Socket, secure: boolean) {
    this.socket = socket;
    this.secureNow = secure;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
  }

  get secure(): boolean {
    return this.secureNow;
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.secureNow && this.socket instanceof TLSSocket ? this.socket : undefined;
  }

  /** Bytes written but not yet handed to the operating system. */
  get writableLength(): number {
    return this.socket.writableLength + this.writer.pendingLength;
  }

  /** Whether the peer's certificate chain verified against our CAs, and why not. */
  get peerVerification(): { authorized: boolean; error: string | undefined } {
    if (this.verified) return this.verified;
    const socket = this.tlsSocket;
    if (!socket) return { authorized: false, error: 'no TLS' };
    const error = socket.authorizationError as unknown;
    return { authorized: socket.authorized, error: error === null || error === undefined ? undefined : String(error) };
  }

  /** The certificate the peer presented, if any. */
  peerCertificate(): X509Certificate | undefined {
    return this.tlsSocket?.getPeerX509Certificate();
  }

  attach(events: S2sTransportEvents): void {
    this.events = events;
    this.listen(this.socket);
  }

  private listen(socket: Socket): void {
    listenToSocket(socket, () => this.events);
  }

  private detach(): Socket {
    const raw = this.socket;
    this.uncork();
    for (const event of ['data', 'end', 'close', 'error']) raw.removeAllListeners(event);
    return raw;
  }

  openStream(attrs: S2sHeaderAttrs): void {
    let header =
      `<?xml version='1.0'?><stream:stream xmlns='${NS.SERVER}' xmlns:stream='${NS.STREAMS}' xmlns:db='${NS_DIALBACK}'` +
      ` from='${escapeAttr(attrs.from)}' version='1.0' xml:lang='en'`;
    if (attrs.to !== undefined) header += ` to='${escapeAttr(attrs.to)}'`;
    if (attrs.id !== undefined) header += ` id='${escapeAttr(attrs.id)}'`;
    this.write(header + '>');
  }

  writeElement(el: XmlElement): boolean {
    return this.write(serialize(el));
  }

  keepalive(): void {
    this.write(' ');
  }

  closeStream(): void {
    this.write('</stream:stream>');
    this.uncork();
    this.socket.end();
  }

  /** Writes made in one tick go out as one TCP/TLS write. */
  private write(data: string): boolean {
    return this.writer.write(data);
  }

  private uncork(): void {
    this.writer.flush();
  }

  /**
   * STARTTLS on a stream we accepted (after <proceed/>). RFC 6120 §13.7.2: the peer's certificate
   * is asked for but not required here — whether it is good enough is decided per domain later
   * (SASL EXTERNAL, dialback policy), so a bad one must not break the handshake.
   */
  startTlsServer(context: SecureContext): Promise<void> {
    const raw = this.detach();
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: context,
      requestCert: true,
      rejectUnauthorized: false,
      SNICallback: (_name, cb) => cb(null, context),
    });
    return this.secured(secure, 'secure').then(() => {
      // COMPAT(node 20): `authorized` is set by tls.Server for the sockets it creates
      // (lib/_tls_wrap.js, onServerSocketSecure), never for a TLSSocket made for STARTTLS; this is
      // the same check. Without the handle the certificate counts as unverified.
      const handle = (secure as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
      const error = handle?.verifyError ? handle.verifyError() : new Error('verification unavailable');
      const code = error ? ((error as NodeJS.ErrnoException).code ?? error.message) : undefined;
      this.verified = { authorized: !error, error: code };
    });
  }

  /** STARTTLS on a stream we opened (after the peer's <proceed/>); SNI names the peer's domain. */
  startTlsClient(context: SecureContext, servername: string): Promise<void> {
    const raw = this.detach();
    const secure = tlsConnect({ socket: raw, secureContext: context, servername, rejectUnauthorized: false });
    return this.secured(secure, 'secureConnect');
  }

  /** Resolves once the handshake is done; a failed one rejects, and `closed` follows as for any socket. */
  private secured(secure: TLSSocket, event: 'secure' | 'secureConnect'): Promise<void> {
    this.socket = secure;
    this.listen(secure);
    return new Promise((resolve, reject) => {
      secure.once('error', reject);
      secure.once(event, () => {
        secure.off('error', reject);
        this.secureNow = true;
        resolve();
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
