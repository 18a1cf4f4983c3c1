// The load generator's XMPP client: one raw socket, the login sequence as a small state machine
// (stream header → [STARTTLS → TLS] → SASL SCRAM-SHA-1 in two round trips → stream restart → bind),
// then whatever the benchmark needs. Kept minimal so that thousands of them in one process cost
// little: no element trees, frames are matched as strings (bench/frames.ts).

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { BenchScram } from './scram.js';
import { FrameSplitter, attribute, childText, elementName } from './frames.js';

export interface LoginTarget {
  host: string;
  port: number;
  domain: string;
}

export interface LoginRequest {
  username: string;
  password: string;
  resource: string;
  /** Negotiate STARTTLS before SASL. */
  starttls: boolean;
  /** Give up (and reject) when the login has not finished by then. Default 30 s. */
  timeoutMs?: number;
}

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';

type Phase = 'features' | 'proceed' | 'challenge' | 'success' | 'bind' | 'online' | 'closed';

// One TLS context for every connection: building one per tls.connect() (the default) costs more
// than the handshake itself. Full handshakes every time: no session resumption.
let tlsContext: SecureContext | undefined;

// Login deadlines are checked by one sweeping timer rather than one timer per login.
const loggingIn = new Set<BenchClient>();
let sweeper: NodeJS.Timeout | undefined;

function watchLogin(client: BenchClient): void {
  loggingIn.add(client);
  sweeper ??= setInterval(() => {
    const now = performance.now();
    for (const c of loggingIn) c.checkDeadline(now);
    if (loggingIn.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }, 500);
}

export class BenchClient {
  jid = '';
  /** Called for each element once online (messages, presences, IQ answers). */
  onElement: ((raw: string) => void) | undefined;
  /** Called once the connection is gone. */
  onClose: (() => void) | undefined;
  /** Elements received once online. */
  received = 0;

  private socket: Socket | TLSSocket;
  private readonly frames: FrameSplitter;
  private phase: Phase = 'features';
  private secure = false;
  private authenticated = false;
  private scram: BenchScram | undefined;
  private resolveLogin!: (client: BenchClient) => void;
  private rejectLogin!: (err: Error) => void;
  private readonly loginDone: Promise<BenchClient>;
  private readonly deadline: number;

  private constructor(private readonly target: LoginTarget, private readonly request: LoginRequest) {
    this.loginDone = new Promise((resolve, reject) => {
      this.resolveLogin = resolve;
      this.rejectLogin = reject;
    });
    this.frames = new FrameSplitter({
      open: () => {},
      element: (raw) => this.onFrame(raw),
      // After our close(): the server's answering </stream:stream>; the TCP connection can go.
      close: () => (this.phase === 'closed' ? this.socket.destroy() : this.fail(new Error('server closed the stream'))),
    });
    this.socket = netConnect({ host: target.host, port: target.port });
    this.socket.setNoDelay(true);
    this.attach(this.socket);
    this.socket.once('connect', () => this.openStream());
    this.deadline = performance.now() + (request.timeoutMs ?? 30_000);
    watchLogin(this);
  }

  /** Fails the login once its deadline has passed. */
  checkDeadline(now: number): void {
    if (now > this.deadline) this.fail(new Error(`login timed out in phase ${this.phase}`));
  }

  /** Connects and logs in; resolves once the resource is bound. */
  static login(target: LoginTarget, request: LoginRequest): Promise<BenchClient> {
    return new BenchClient(target, request).loginDone;
  }

  send(data: string): void {
    if (this.phase !== 'closed') this.socket.write(data);
  }

  /**
   * Ends the stream politely (RFC 6120 §4.4): `</stream:stream>`, then the TCP connection is
   * closed once the server's `</stream:stream>` (or its FIN) has come. Nothing waits for that.
   */
  close(): void {
    if (this.phase === 'closed') return;
    this.socket.write('</stream:stream>');
    this.phase = 'closed';
  }

  /** Drops the socket at once. */
  destroy(): void {
    this.phase = 'closed';
    this.socket.destroy();
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.frames.write(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('end', () => {
      if (!socket.writableEnded) socket.end();
    });
    socket.on('close', () => {
      this.fail(new Error('connection closed'));
      this.onClose?.();
    });
  }

  private fail(err: Error): void {
    loggingIn.delete(this);
    if (this.phase !== 'online' && this.phase !== 'closed') this.rejectLogin(err);
    if (this.phase !== 'closed') {
      this.phase = 'closed';
      this.socket.destroy();
    }
  }

  private openStream(): void {
    this.socket.write(
      `<?xml version='1.0'?><stream:stream to='${this.target.domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`,
    );
  }

  private onFrame(raw: string): void {
    if (this.phase === 'online') {
      this.received++;
      this.onElement?.(raw);
      return;
    }
    const name = elementName(raw);
    if (name === 'stream:error' || name === 'failure') {
      this.fail(new Error(`login failed at ${this.phase}: ${raw.slice(0, 300)}`));
      return;
    }
    switch (this.phase) {
      case 'features':
        return this.onFeatures(raw);
      case 'proceed':
        if (name === 'proceed') return this.startTls();
        break;
      case 'challenge':
        if (name === 'challenge') return this.onChallenge(raw);
        break;
      case 'success':
        if (name === 'success') return this.onSuccess(raw);
        break;
      case 'bind':
        if (name === 'iq' && attribute(raw, 'id') === 'bind') return this.onBound(raw);
        break;
    }
    this.fail(new Error(`unexpected ${name} while waiting for ${this.phase}`));
  }

  private onFeatures(raw: string): void {
    if (!this.secure && this.request.starttls) {
      if (!raw.includes(NS_TLS)) return this.fail(new Error('no STARTTLS offered'));
      this.phase = 'proceed';
      this.socket.write(`<starttls xmlns='${NS_TLS}'/>`);
      return;
    }
    if (!this.authenticated) {
      if (!raw.includes('>SCRAM-SHA-1<')) return this.fail(new Error('SCRAM-SHA-1 not offered'));
      this.scram = new BenchScram(this.request.username, this.request.password);
      this.phase = 'challenge';
      this.socket.write(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-1'>${this.scram.first()}</auth>`);
      return;
    }
    if (!raw.includes(NS_BIND)) return this.fail(new Error('no bind offered'));
    this.phase = 'bind';
    this.socket.write(`<iq type='set' id='bind'><bind xmlns='${NS_BIND}'><resource>${this.request.resource}</resource></bind></iq>`);
  }

  private startTls(): void {
    const raw = this.socket as Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('end');
    raw.removeAllListeners('error');
    raw.on('error', () => {}); // reported by the TLS socket
    this.frames.reset();
    tlsContext ??= createSecureContext({ minVersion: 'TLSv1.2' });
    const secure = tlsConnect({ socket: raw, servername: this.target.domain, rejectUnauthorized: false, secureContext: tlsContext });
    this.socket = secure;
    this.attach(secure);
    secure.once('secureConnect', () => {
      this.secure = true;
      this.phase = 'features';
      this.openStream();
    });
  }

  private onChallenge(raw: string): void {
    let response: string;
    try {
      response = this.scram!.final(childTextOf(raw));
    } catch (err) {
      return this.fail(err as Error);
    }
    this.phase = 'success';
    this.socket.write(`<response xmlns='${NS_SASL}'>${response}</response>`);
  }

  private onSuccess(raw: string): void {
    if (!this.scram!.verify(childTextOf(raw))) return this.fail(new Error('bad server signature'));
    this.authenticated = true;
    this.phase = 'features';
    // RFC 6120 §6.4.6: the stream restarts after SASL success.
    this.frames.reset();
    this.openStream();
  }

  private onBound(raw: string): void {
    if (attribute(raw, 'type') !== 'result') return this.fail(new Error(`bind failed: ${raw.slice(0, 300)}`));
    this.jid = childText(raw, 'jid') ?? '';
    this.phase = 'online';
    loggingIn.delete(this);
    this.resolveLogin(this);
  }
}

/** The text inside a top-level element such as `<challenge xmlns='...'>base64</challenge>`. */
function childTextOf(raw: string): string {
  const gt = raw.indexOf('>');
  if (raw.charCodeAt(gt - 1) === 47) return '';
  return raw.slice(gt + 1, raw.lastIndexOf('<'));
}
