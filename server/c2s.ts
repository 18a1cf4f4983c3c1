// Client-to-server streams (RFC 6120): stream headers and features, STARTTLS (§5), SASL (§6, in
// server/c2s-sasl.ts), resource binding (§7), stream management (XEP-0198, state in server/sm.ts),
// then stanzas into the router. The same over TCP with STARTTLS, direct TLS (XEP-0368) and
// WebSocket (RFC 7395): server/transports.ts frames the output. One C2sStream per connection; once
// bound (or resumed) it is the SessionOutput of its Session.
//
// Incoming elements are handled strictly in order: when a handler is asynchronous (SASL, storage),
// the next element waits, and reading pauses if too many pile up.

import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { randomId } from './random.js';
import type { HeraldServer } from './server.js';
import { XmlStreamParser, type StreamHeader, type XmlFaultCondition } from './xml/parser.js';
import { XmlElement, x } from './xml/element.js';
import { NS } from './protocol/ns.js';
import { StanzaError, StreamError, errorReply, mayReplyWithError, stanzaError } from './errors.js';
import { tryParseJid, normalizeResourcepart, makeJid, type Jid } from './jid.js';
import { Session, type SessionOutput } from './session.js';
import { TokenBucket } from './limits.js';
import type { Logger } from './log.js';
import { SaslNegotiation } from './c2s-sasl.js';
import { SocketTransport, type StreamTransport } from './transports.js';
import { NS_SM, SmState, isStanza, negotiatedWindow } from './sm.js';
import { incrementH, isValidH } from './sm-counters.js';
import type { StreamInfo } from './module-api.js';

/** Listens for client connections (TCP with STARTTLS, or direct TLS) on the configured interfaces. */
export async function listenC2s(server: HeraldServer, port: number, directTls: boolean): Promise<NetServer[]> {
  const onSocket = (socket: Socket) => new C2sStream(server, new SocketTransport(socket, directTls)).start();
  const make = (): NetServer =>
    directTls
      ? createTlsServer(
          { ...server.tlsServerOptions(), ALPNProtocols: ['xmpp-client'] },
          onSocket,
        )
      : createNetServer(onSocket);
  return listenOn(make, server.config.listen.interfaces, port, server.log, directTls ? 'c2s_direct_tls' : 'c2s');
}

/** Binds one server per address ('*' = all, 'localhost' = 127.0.0.1 and ::1); port 0 picks one port for all. */
export async function listenOn(make: () => NetServer, interfaces: string[], port: number, log: Logger, what: string): Promise<NetServer[]> {
  const addresses = interfaces.flatMap((i) => (i === 'localhost' ? ['127.0.0.1', '::1'] : i === '*' ? [undefined] : [i]));
  const servers: NetServer[] = [];
  let chosen = port;
  for (const address of addresses) {
    const srv = make();
    srv.on('error', (err) => log.error({ err, listener: what }, 'listener error'));
    try {
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port: chosen, host: address, ipv6Only: address === '::1' }, () => {
          srv.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      // ::1 may be missing (IPv6 off); that alone must not stop the server.
      if (address === '::1' && (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') continue;
      for (const s of servers) s.close();
      throw err;
    }
    const bound = srv.address();
    if (chosen === 0 && bound && typeof bound === 'object') chosen = bound.port;
    servers.push(srv);
  }
  log.info({ listener: what, port: chosen, addresses: addresses.map((a) => a ?? '*') }, 'listening');
  return servers;
}

type Phase = 'header' | 'open' | 'closing' | 'closed';
/** Connection ids in logs: a counter is enough to tell connections apart. */
let connectionCounter = 0;
const MAX_PENDING_ELEMENTS = 64;
const CLOSE_GRACE_MS = 5_000;
const BIND_RESOURCE_BYTES = 6;
/** Unacknowledged stanzas are asked about after this long even below sm_ack_after. */
const SM_ACK_DELAY_MS = 2_000;
/** RFC 7395 framing: the parser reads WebSocket messages inside this implicit root. */
const WEBSOCKET_ROOT = `<stream xmlns='${NS.CLIENT}'>`;

export class C2sStream implements SessionOutput {
  readonly remoteAddress: string;
  private readonly connectionNumber = ++connectionCounter;
  private logger: Logger | undefined;
  private readonly parser: XmlStreamParser;
  private readonly sasl: SaslNegotiation;
  private readonly framed: boolean;
  private phase: Phase = 'header';
  private headerSent = false;
  private streamId = '';
  host: string;
  private username: string | undefined;
  private session: Session | undefined;
  private busy = false;
  private readonly pending: { el: XmlElement; ns: string }[] = [];
  private readonly bucket: TokenBucket | undefined;
  /** When start() ran: the authentication deadline counts from here (see sweep()). */
  private startedAt = 0;
  private lastKeepalive = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private lastRead = Date.now();
  /** Reading is paused while the read rate is exceeded, or while too many elements wait: resume only when neither holds. */
  private rateLimited = false;
  private backlogged = false;
  /** The client ended the stream while elements still waited to be handled. */
  private closeWhenDrained = false;
  /** Elements completed by the current WebSocket message (RFC 7395: exactly one). */
  private elementsInMessage = 0;
  private closeReason = 'connection closed';
  /** Identifies this connection to pre-auth IQ handlers (PreAuthIqRequest.stream). */
  private readonly preAuthKey = {};
  /** Closed with </stream:stream> or a stream error: the session ends rather than hibernates. */
  private endedCleanly = false;
  /** Made only when server shutdown waits for this connection (most never need one). */
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  private counted = false;

  constructor(
    private readonly server: HeraldServer,
    readonly transport: StreamTransport,
  ) {
    this.remoteAddress = transport.remoteAddress;
    this.host = server.domain;
    this.framed = transport.kind === 'websocket';
    const limits = server.config.limits;
    this.parser = new XmlStreamParser(
      {
        streamOpen: (header) => {
          if (!this.framed) this.onStreamOpen(header);
        },
        stanza: (el, ns) => this.onElement(el, ns),
        streamClose: () => this.onStreamClose(),
        fault: (condition, text) => this.onXmlFault(condition, text),
      },
      {
        maxStanzaBytes: limits.max_stanza_size,
        maxDepth: limits.max_xml_depth,
        maxAttributes: limits.max_attributes,
        maxAttributeLength: limits.max_attribute_length,
      },
    );
    if (this.framed) this.parser.write(WEBSOCKET_ROOT);
    this.bucket = server.limiter.isExempt(this.remoteAddress) ? undefined : new TokenBucket(limits.read_rate, limits.read_burst);
    this.sasl = new SaslNegotiation(server, {
      host: () => this.host,
      transport,
      log: () => this.log,
      write: (el) => this.writeElement(el),
      tooManyFailures: () => this.fail(new StreamError('policy-violation', 'Too many failed authentication attempts')),
      succeeded: (username) => this.authSucceeded(username),
      stillOpen: () => this.phase === 'open',
    });
  }

  /**
   * This connection's logger (bound to its number and address). Made on first use: at the default
   * level most connections never log, and a pino child per connection was ~1 % of a login.
   */
  get log(): Logger {
    return (this.logger ??= this.server.log.child({ conn: this.connectionNumber.toString(36), ip: this.remoteAddress }));
  }

  /** Info-level events of every connection (opened, closed): checked first, so as not to make a logger for nothing. */
  private logInfo(fields: Record<string, unknown>, message: string): void {
    if (this.server.log.isLevelEnabled('info')) this.log.info(fields, message);
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get kind(): 'tcp' | 'tls' | 'websocket' {
    return this.transport.kind;
  }

  start(): void {
    this.server.streams.add(this);
    this.transport.attach({
      data: (chunk) => this.onData(chunk),
      closed: (reason) => this.onTransportClosed(reason),
      beforeFlush: () => this.maybeRequestAck(),
      afterFlush: () => this.checkWriteQueue(),
    });
    if (!this.server.limiter.openConnection(this.remoteAddress)) {
      this.log.warn('too many connections from this address');
      this.fail(new StreamError('policy-violation', 'Too many connections from your address'));
      return;
    }
    this.counted = true;
    this.logInfo({ transport: this.transport.kind }, 'connection opened');
    this.startedAt = Date.now();
  }

  private onData(chunk: Buffer | string): void {
    this.lastRead = Date.now();
    if (this.bucket) {
      const wait = this.bucket.take(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length);
      if (wait > 0 && !this.rateLimited) {
        // Over read_rate: this chunk is parsed, then nothing more is read until the bucket refills.
        this.rateLimited = true;
        this.updateReading();
        setTimeout(() => {
          this.rateLimited = false;
          this.updateReading();
        }, wait).unref();
      }
    }
    if (!this.framed) {
      this.parser.write(chunk);
      return;
    }
    // RFC 7395 §3.3.3: every message is exactly one complete element.
    this.elementsInMessage = 0;
    this.parser.write(chunk);
    if (this.parser.stopped || this.phase === 'closed' || this.phase === 'closing') return;
    if (!this.parser.idle || this.elementsInMessage !== 1) {
      this.fail(new StreamError('not-well-formed', 'A WebSocket message must hold exactly one complete element'));
    }
  }

  private updateReading(): void {
    if (this.phase === 'closed') return;
    this.transport.setReading(!(this.rateLimited || this.backlogged));
  }

  /**
   * The time checks of this stream, made by the server's one sweep timer for all of them
   * (HeraldServer.sweepStreams) rather than by two timers per connection, which every login made
   * and cleared: the authentication deadline, and the keepalive.
   */
  sweep(now: number): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    const c2s = this.server.config.c2s;
    if (this.username === undefined && now - this.startedAt >= c2s.auth_timeout) {
      this.fail(new StreamError('connection-timeout', 'Authentication took too long'));
      return;
    }
    // RFC 6120 §4.6.1: whitespace keepalive after a period of silence (a ping frame over WebSocket),
    // repeated at most every half interval (and not more often than every second) while it lasts.
    if (this.phase !== 'open' || now - this.lastRead < c2s.keepalive_interval) return;
    if (now - this.lastKeepalive < Math.max(1000, c2s.keepalive_interval / 2)) return;
    this.lastKeepalive = now;
    this.transport.keepalive();
  }

  // ---- stream header and features ----

  private onStreamOpen(header: StreamHeader): void {
    const to = header.attrs.to;
    const requested = to !== undefined ? tryParseJid(to) : null;
    if (requested && requested.local === '' && requested.resource === '' && this.server.hosts.has(requested.domain)) {
      this.host = requested.domain;
    }
    this.streamId = randomId(12);
    this.sendHeader(header);
    this.phase = 'open';
    if (!this.framed) {
      if (header.name !== 'stream' || header.ns !== NS.STREAMS) {
        return this.fail(new StreamError('invalid-namespace', 'Expected a stream in http://etherx.jabber.org/streams'));
      }
      if (header.contentNs !== NS.CLIENT) return this.fail(new StreamError('invalid-namespace', 'The content namespace must be jabber:client'));
    }
    const version = header.attrs.version;
    if (version === undefined || !/^\d+\.\d+$/.test(version) || Number(version.split('.')[0]) < 1) {
      return this.fail(new StreamError('unsupported-version', 'XMPP 1.0 streams only'));
    }
    if (to === undefined) {
      // RFC 6120 §4.7.2: a client SHOULD say whom it talks to; serving one domain, we know anyway.
    } else if (!requested || requested.local !== '' || requested.resource !== '' || !this.server.hosts.has(requested.domain)) {
      return this.fail(new StreamError('host-unknown', 'This server does not serve that domain'));
    }
    if (header.attrs.from !== undefined && !tryParseJid(header.attrs.from)) {
      return this.fail(new StreamError('invalid-from', 'The from attribute is not a valid JID'));
    }
    if (this.framed && !this.transport.secure && this.server.config.c2s.require_encryption) {
      // No STARTTLS over WebSocket (RFC 7395 §3.7): encryption is wss:// or a trusted proxy's.
      return this.fail(new StreamError('policy-violation', 'Use wss:// (TLS) for this server'));
    }
    this.sendFeatures();
  }

  private sendHeader(header?: StreamHeader): void {
    if (this.headerSent) return;
    this.headerSent = true;
    const fromClient = header?.attrs.from !== undefined ? tryParseJid(header.attrs.from) : null;
    this.transport.openStream({
      id: this.streamId || randomId(12),
      from: this.host,
      ...(fromClient && { to: fromClient.toString() }),
    });
  }

  private streamInfo(): StreamInfo {
    return { host: this.host, secure: this.transport.secure, remoteAddress: this.remoteAddress, username: this.username };
  }

  private sendFeatures(): void {
    const features = x('stream:features');
    const c2s = this.server.config.c2s;
    if (!this.username) {
      if (this.transport.canStartTls && !this.transport.secure) {
        const starttls = features.c('starttls', { xmlns: NS.TLS });
        if (c2s.require_encryption) {
          // RFC 6120 §5.3.1: TLS mandatory-to-negotiate: offer nothing else yet.
          starttls.c('required');
          this.writeElement(features);
          return;
        }
      }
      features.append(...this.sasl.features());
      features.append(...this.server.streamFeaturesFor('pre-auth', this.streamInfo()));
    } else {
      features.c('bind', { xmlns: NS.BIND });
      // RFC 6121 appendix E / RFC 3921 sessions: advertised as optional for old clients.
      features.c('session', { xmlns: NS.SESSION }).c('optional');
      features.c('sm', { xmlns: NS_SM });
      features.append(...this.server.streamFeaturesFor('post-auth', this.streamInfo()));
    }
    this.writeElement(features);
  }

  // ---- incoming elements ----

  private onElement(el: XmlElement, ns: string): void {
    if (this.framed && ++this.elementsInMessage > 1) {
      return this.fail(new StreamError('not-well-formed', 'A WebSocket message must hold exactly one complete element'));
    }
    if (this.framed && ns === NS.FRAMING) return this.onFramingElement(el);
    if (this.phase !== 'open') {
      if (this.framed && this.phase === 'header') this.fail(new StreamError('bad-format', 'Open the stream with <open/> first'));
      return;
    }
    if (this.busy) {
      this.pending.push({ el, ns });
      if (this.pending.length >= MAX_PENDING_ELEMENTS && !this.backlogged) {
        this.backlogged = true;
        this.updateReading();
      }
      return;
    }
    this.dispatch(el, ns);
  }

  /** RFC 7395 §3.3: <open/> starts (or restarts) the stream, <close/> ends it. */
  private onFramingElement(el: XmlElement): void {
    if (el.name === 'open' && this.phase === 'header') {
      const attrs = { ...el.attrs };
      delete attrs.xmlns;
      this.onStreamOpen({ name: 'open', ns: NS.FRAMING, contentNs: NS.CLIENT, prefix: '', attrs });
    } else if (el.name === 'close') {
      this.onStreamClose();
    } else {
      this.fail(new StreamError('bad-format', `Unexpected framing element ${el.name}`));
    }
  }

  private dispatch(el: XmlElement, ns: string): void {
    let result: void | Promise<void>;
    try {
      result = this.handleElement(el, ns);
    } catch (err) {
      this.internalError(err);
      return;
    }
    if (result instanceof Promise) {
      this.busy = true;
      result
        .catch((err: unknown) => this.internalError(err))
        .finally(() => {
          this.busy = false;
          this.drain();
        });
    }
  }

  private drain(): void {
    while (!this.busy && this.pending.length > 0 && this.phase === 'open') {
      const next = this.pending.shift()!;
      this.dispatch(next.el, next.ns);
    }
    if (this.backlogged && this.pending.length < MAX_PENDING_ELEMENTS / 2 && this.phase === 'open') {
      this.backlogged = false;
      this.updateReading();
    }
    if (this.closeWhenDrained && !this.busy && this.pending.length === 0) this.closeStream(true);
  }

  /**
   * Drops elements that arrived before a stream restart (STARTTLS, SASL success) and still wait
   * for an earlier asynchronous step: RFC 6120 §5.4.3.3 and §6.4.6 — they belong to the old stream,
   * and acting on them would let plaintext injected before TLS, or data pipelined before
   * authentication, run in the new one.
   */
  private discardPending(): void {
    this.pending.length = 0;
    if (this.backlogged) {
      this.backlogged = false;
      this.updateReading();
    }
  }

  private internalError(err: unknown): void {
    this.log.error({ err }, 'error while handling an element');
    this.fail(new StreamError('internal-server-error'));
  }

  private handleElement(el: XmlElement, ns: string): void | Promise<void> {
    if (ns === NS.TLS && el.name === 'starttls') return this.startTls();
    if (!this.username) {
      if (ns === NS.SASL) return this.sasl.handle(el);
      if (!this.transport.secure && this.server.config.c2s.require_encryption) {
        return this.fail(new StreamError('policy-violation', 'Use STARTTLS first'));
      }
      if (ns === NS.CLIENT && el.name === 'iq') return this.handlePreAuthIq(el);
      return this.fail(new StreamError('not-authorized', 'Authenticate first'));
    }
    if (ns === NS_SM) return this.handleSm(el);
    const session = this.session;
    if (ns !== NS.CLIENT) {
      const handler = session ? this.server.streamElements.get(`${ns} ${el.name}`) : undefined;
      if (handler && session) return handler(session, el);
      return this.fail(new StreamError('unsupported-stanza-type', `No support for ${el.name} in ${ns}`));
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      return this.fail(new StreamError('unsupported-stanza-type', `Unknown stanza ${el.name}`));
    }
    if (!session) return this.handleUnbound(el);
    // XEP-0198: 'h' counts every stanza handled, the refused ones too.
    if (session.sm) session.sm.inbound = incrementH(session.sm.inbound);
    if (el.name === 'iq' && el.attrs.type === 'set' && this.isForServer(el)) {
      const payload = el.firstElement();
      if (payload?.name === 'session' && payload.attrs.xmlns === NS.SESSION) {
        // RFC 3921 §3 session establishment, sent after bind by older clients: a no-op now
        // (RFC 6121 appendix E), but it must still be answered or they wait forever.
        session.sendRaw(x('iq', { type: 'result', id: el.attrs.id, from: el.attrs.to }));
        return;
      }
      if (payload?.name === 'bind' && payload.attrs.xmlns === NS.BIND) {
        // One resource per stream (RFC 6120 §7.1); a client that may not bind gets not-allowed
        // (§7.6.2.2). Prosody refuses a second bind on a stream the same way (type cancel).
        this.replyError(el, stanzaError.notAllowed('A resource is already bound to this stream'));
        return;
      }
    }
    return this.handleStanza(el, session);
  }

  /** No 'to', or 'to' our domain: addressed to the server itself (bind, session). */
  private isForServer(el: XmlElement): boolean {
    const to = el.attrs.to;
    if (to === undefined) return true;
    const jid = tryParseJid(to);
    return jid !== null && jid.local === '' && jid.resource === '' && jid.domain === this.host;
  }

  // ---- STARTTLS (RFC 6120 §5) ----

  private startTls(): void {
    if (this.transport.secure || this.username || !this.transport.canStartTls) {
      // Already encrypted (or authenticated, or a WebSocket): §5.4.2.2 failure, then close.
      this.writeElement(x('failure', { xmlns: NS.TLS }));
      this.closeStream();
      return;
    }
    this.writeElement(x('proceed', { xmlns: NS.TLS }));
    this.discardPending();
    // Anything the client sent after <starttls/> in the clear is dropped (no command injection).
    this.parser.reset();
    this.phase = 'header';
    this.transport.startTls(this.server.secureContext, () => {
      this.headerSent = false;
      this.log.debug({ protocol: this.transport.tlsSocket?.getProtocol() }, 'TLS established');
    });
  }

  // ---- after SASL success ----

  private authSucceeded(username: string): void {
    this.username = username;
    // RFC 6120 §6.4.6: the stream restarts; anything else in this read is discarded.
    this.parser.reset();
    if (this.framed) this.parser.write(WEBSOCKET_ROOT);
    this.discardPending();
    this.headerSent = false;
    this.phase = 'header';
  }

  // ---- pre-auth IQs (in-band registration) ----

  private async handlePreAuthIq(el: XmlElement): Promise<void> {
    const type = el.attrs.type;
    const payload = el.firstElement();
    const reply = (answer: XmlElement) => this.writeElement(answer);
    if ((type !== 'get' && type !== 'set') || !payload || el.attrs.id === undefined) {
      if (mayReplyWithError(el)) reply(errorReply(el, stanzaError.badRequest()));
      return;
    }
    const handler = this.server.preAuthIq.get(`${type} ${payload.name} ${payload.attrs.xmlns ?? ''}`);
    if (!handler) {
      reply(errorReply(el, stanzaError.serviceUnavailable()));
      return;
    }
    try {
      const result = await handler({ stanza: el, payload, host: this.host, remoteAddress: this.remoteAddress, secure: this.transport.secure, stream: this.preAuthKey });
      reply(x('iq', { type: 'result', id: el.attrs.id }, result ?? undefined));
    } catch (err) {
      if (err instanceof StanzaError) reply(errorReply(el, err));
      else {
        this.log.error({ err }, 'pre-auth IQ handler failed');
        reply(errorReply(el, stanzaError.internalServerError()));
      }
    }
  }

  // ---- resource binding (RFC 6120 §7) ----

  private handleUnbound(el: XmlElement): void {
    const type = el.attrs.type;
    const payload = el.firstElement();
    if (el.name === 'iq' && type === 'set' && payload?.name === 'bind' && payload.attrs.xmlns === NS.BIND) return this.bind(el, payload);
    if (el.name === 'iq' && type === 'set' && payload?.name === 'session' && payload.attrs.xmlns === NS.SESSION) {
      this.writeElement(x('iq', { type: 'result', id: el.attrs.id }));
      return;
    }
    // RFC 6120 §7.1: no stanzas before a resource is bound.
    this.fail(new StreamError('not-authorized', 'Bind a resource first'));
  }

  private bind(iq: XmlElement, payload: XmlElement): void {
    const id = iq.attrs.id;
    const requested = payload.getChildText('resource');
    let resource: string;
    try {
      resource = requested !== undefined && requested.trim() !== '' ? normalizeResourcepart(requested) : randomId(BIND_RESOURCE_BYTES);
    } catch {
      this.writeElement(errorReply(iq, stanzaError.badRequest('Invalid resource')));
      return;
    }
    const bare = `${this.username}@${this.host}`;
    const existing = this.server.sessions.resourcesOf(bare);
    const replacing = existing.some((s) => s.resource === resource);
    if (!replacing && existing.length >= this.server.config.c2s.max_resources) {
      this.writeElement(errorReply(iq, stanzaError.resourceConstraint('Too many resources connected')));
      return;
    }
    const jid = makeJid(this.username!, this.host, resource);
    const session = new Session(jid, this, this.server.sessionHost, this.server.log);
    this.session = session;
    // The result goes out first: anything modules send on 'session:bound' must come after it.
    this.writeElement(x('iq', { type: 'result', id }, x('bind', { xmlns: NS.BIND }, x('jid', null, jid.toString()))));
    session.logInfo({ transport: this.transport.kind }, 'session bound');
    this.server.bindSession(session);
  }

  // ---- stream management (XEP-0198) ----

  private handleSm(el: XmlElement): void {
    const session = this.session;
    switch (el.name) {
      case 'enable': {
        // §3: after binding, once.
        if (!session || session.sm) return this.smFailed('unexpected-request');
        const resumable = el.attrs.resume === 'true' || el.attrs.resume === '1';
        const sm = new SmState(resumable, negotiatedWindow(el.attrs.max, this.server.config.c2s));
        session.sm = sm;
        if (sm.id !== undefined) this.server.resumable.add(sm.id, session);
        this.writeElement(
          x('enabled', { xmlns: NS_SM, id: sm.id, resume: resumable ? 'true' : undefined, max: resumable ? String(Math.floor(sm.resumeWindow / 1000)) : undefined }),
        );
        return;
      }
      case 'resume':
        return this.resume(el);
      case 'r':
        if (!session?.sm) return this.fail(new StreamError('unsupported-stanza-type', 'Stream management is not enabled'));
        this.writeElement(x('a', { xmlns: NS_SM, h: String(session.sm.inbound) }));
        return;
      case 'a': {
        const sm = session?.sm;
        if (!sm) return this.fail(new StreamError('unsupported-stanza-type', 'Stream management is not enabled'));
        if (!isValidH(el.attrs.h)) return this.fail(new StreamError('bad-format', "An <a/> needs a valid 'h'"));
        if (!sm.queue.ack(Number(el.attrs.h))) return this.handledCountTooHigh(Number(el.attrs.h), sm.queue.sent);
        sm.ackRequested = false;
        return;
      }
      default:
        return this.fail(new StreamError('unsupported-stanza-type', `Unknown stream management element ${el.name}`));
    }
  }

  /** XEP-0198 §5: <resume previd h/> after authentication, instead of binding. */
  private resume(el: XmlElement): void {
    if (this.session) return this.smFailed('unexpected-request');
    const previd = el.attrs.previd;
    if (previd === undefined || !isValidH(el.attrs.h)) return this.smFailed('bad-request');
    const h = Number(el.attrs.h);
    const result = this.server.resumeSession(previd, h, this.username!, this.host, this);
    if (result === 'item-not-found') return this.smFailed('item-not-found');
    if (result === 'handled-count-too-high') return this.smFailed('undefined-condition');
    const session = result;
    const sm = session.sm!;
    this.session = session;
    this.writeElement(x('resumed', { xmlns: NS_SM, previd, h: String(sm.inbound) }));
    // Exactly what the client has not acknowledged, in order, once (they stay queued until acked).
    for (const stanza of sm.queue.pending()) this.write(stanza);
    this.server.sessionResumed(session);
  }

  private smFailed(condition: string, h?: number): void {
    this.writeElement(x('failed', { xmlns: NS_SM, h: h === undefined ? undefined : String(h) }, x(condition, { xmlns: NS.STANZA_ERRORS })));
  }

  private handledCountTooHigh(h: number, sent: number): void {
    // XEP-0198 §4: acknowledging more than was sent is a stream error naming both counts.
    const error = new StreamError('undefined-condition', 'You acknowledged more stanzas than were sent');
    this.log.warn({ h, sent }, 'ack for more than was sent');
    this.fail(error, x('handled-count-too-high', { xmlns: NS_SM, h: String(h), 'send-count': String(sent) }));
  }

  /** Asks for an ack once enough is unacknowledged, or soon after anything is (XEP-0198 §4). */
  private maybeRequestAck(): void {
    const sm = this.session?.sm;
    if (!sm || sm.ackRequested || sm.queue.length === 0 || this.phase !== 'open' || this.session!.connection !== this) return;
    if (sm.queue.length < this.server.config.c2s.sm_ack_after) {
      if (!this.ackTimer) {
        this.ackTimer = setTimeout(() => {
          this.ackTimer = undefined;
          this.requestAck();
        }, SM_ACK_DELAY_MS);
        this.ackTimer.unref();
      }
      return;
    }
    this.requestAck();
  }

  private requestAck(): void {
    const sm = this.session?.sm;
    if (!sm || sm.ackRequested || sm.queue.length === 0 || this.phase !== 'open' || this.session!.connection !== this) return;
    sm.ackRequested = true;
    sm.ackRequestedAt = Date.now();
    this.transport.writeElement(x('r', { xmlns: NS_SM }));
    // No answer in time: the connection is dead even if TCP has not noticed (a phone gone quiet).
    const requestedAt = sm.ackRequestedAt;
    setTimeout(() => {
      if (sm.ackRequested && sm.ackRequestedAt === requestedAt && this.session?.connection === this && this.phase === 'open') {
        this.log.info('no ack in time; treating the connection as lost');
        this.closeReason = 'ack timeout';
        this.transport.destroy();
      }
    }, this.server.config.c2s.sm_ack_timeout).unref();
  }

  // ---- stanzas (RFC 6120 §8) ----

  private handleStanza(el: XmlElement, session: Session): void | Promise<void> {
    // §8.1.2.1: the server stamps 'from'; a client may only name itself.
    const fromAttr = el.attrs.from;
    if (fromAttr !== undefined && fromAttr !== session.fullJid) {
      const claimed = tryParseJid(fromAttr);
      if (!claimed || (claimed.toString() !== session.fullJid && claimed.toString() !== session.bareJid)) {
        return this.fail(new StreamError('invalid-from', 'You may only send as yourself'));
      }
    }
    el.attrs.from = session.fullJid;

    let to: Jid;
    const toAttr = el.attrs.to;
    if (toAttr !== undefined) {
      const parsed = tryParseJid(toAttr);
      if (!parsed) return this.replyError(el, stanzaError.jidMalformed());
      to = parsed;
    } else {
      to = session.jid.bare;
    }

    if (el.name === 'iq') {
      const type = el.attrs.type;
      if (el.attrs.id === undefined) return this.replyError(el, stanzaError.badRequest('IQ without id'));
      if (type === 'get' || type === 'set') {
        // §8.2.3: exactly one payload child.
        if (el.elements().length !== 1) return this.replyError(el, stanzaError.badRequest('An IQ request carries exactly one child'));
      } else if (type !== 'result' && type !== 'error') {
        return this.replyError(el, stanzaError.badRequest('Unknown IQ type'));
      }
    } else if (el.name === 'presence') {
      const type = el.attrs.type;
      if (type !== undefined && !PRESENCE_TYPES.has(type)) return this.replyError(el, stanzaError.badRequest('Unknown presence type'));
    }

    const stopped = this.server.hooks.run('stanza:in', { stanza: el, session }, (err) => {
      if (err instanceof StanzaError) this.replyError(el, err);
      else {
        this.log.error({ err }, 'stanza:in handler failed');
        this.replyError(el, stanzaError.internalServerError());
      }
    });
    if (stopped === true) return;
    if (stopped === false) return this.server.router.route(el, session.jid, to, { kind: 'c2s', session });
    return stopped.then((done) => {
      if (!done) this.server.router.route(el, session.jid, to, { kind: 'c2s', session });
    });
  }

  /** An error for a stanza this client sent, back to it (counted by SM like any stanza). */
  private replyError(el: XmlElement, error: StanzaError): void {
    if (!mayReplyWithError(el)) return;
    const reply = errorReply(el, error);
    delete reply.attrs.to; // it goes back on this stream, to the sender
    if (el.attrs.to === undefined) delete reply.attrs.from;
    if (this.session) this.session.sendRaw(reply);
    else this.writeElement(reply);
  }

  // ---- output ----

  /** SessionOutput.write: a stanza for the client. */
  write(stanza: XmlElement): boolean {
    if (this.phase === 'closed' || this.phase === 'closing') return false;
    return this.transport.writeElement(stanza);
  }

  private writeElement(el: XmlElement): void {
    if (this.phase === 'closed') return;
    this.transport.writeElement(el);
  }

  /** limits.max_write_queue bounds what a client leaves unread (measured once a batch went out). */
  private checkWriteQueue(): void {
    if (this.transport.writableLength > this.server.config.limits.max_write_queue && this.phase === 'open') {
      this.log.warn({ queued: this.transport.writableLength }, 'client is not reading; closing');
      this.phase = 'closing';
      this.closeReason = 'write queue full';
      this.transport.destroy();
    }
  }

  flushed(): Promise<void> {
    return this.transport.flushed();
  }

  // ---- closing ----

  /** SessionOutput.close: ends the stream, with a stream error when given. */
  close(error?: StreamError): void {
    if (error) this.fail(error);
    else this.closeStream();
  }

  /** Server shutdown: the error, then wait (briefly) for the socket to close. */
  shutdown(error: StreamError): Promise<void> {
    this.closedPromise ??= this.phase === 'closed' ? Promise.resolve() : new Promise((resolve) => (this.resolveClosed = resolve));
    this.fail(error);
    return this.closedPromise;
  }

  private fail(error: StreamError, appCondition?: XmlElement): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.sendHeader();
    this.logInfo({ condition: error.condition, text: error.text }, 'stream error');
    const el = error.toElement();
    if (appCondition) el.append(appCondition);
    this.writeElement(el);
    this.closeReason = `stream error: ${error.condition}`;
    this.closeStream();
  }

  /** `peerClosedFirst`: the client's </stream:stream> came first (see StreamTransport.closeStream). */
  private closeStream(peerClosedFirst = false): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.sendHeader();
    this.phase = 'closing';
    this.endedCleanly = true;
    this.parser.stop();
    // RFC 6120 §4.4: wait for the peer's </stream:stream> (or its FIN), but not forever.
    if (!this.transport.closeStream(peerClosedFirst)) setTimeout(() => this.transport.destroy(), CLOSE_GRACE_MS).unref();
    this.endSession();
  }

  private onStreamClose(): void {
    this.closeReason = 'closed by client';
    if (this.phase === 'closing') {
      this.transport.destroy();
      return;
    }
    // Stanzas sent before </stream:stream> still count: finish those waiting behind an
    // asynchronous step first (drain() closes once they are done).
    if (this.busy || this.pending.length > 0) {
      this.closeWhenDrained = true;
      return;
    }
    this.closeStream(true);
  }

  private onXmlFault(condition: XmlFaultCondition, text: string): void {
    this.fail(new StreamError(condition, text));
  }

  private onTransportClosed(reason: string): void {
    if (this.phase === 'closed') return;
    if (this.closeReason === 'connection closed') this.closeReason = reason;
    this.phase = 'closed';
    this.parser.stop();
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.counted) this.server.limiter.closeConnection(this.remoteAddress);
    this.server.streams.delete(this);
    this.endSession();
    this.logInfo({ reason: this.closeReason }, 'connection closed');
    this.resolveClosed?.();
  }

  /** The connection is done: a clean end closes the session, a lost connection may hibernate it. */
  private endSession(): void {
    const session = this.session;
    if (!session || session.connection !== this) return;
    this.session = undefined;
    if (this.endedCleanly) this.server.endSession(session, this.closeReason);
    else this.server.connectionLost(session, this.closeReason);
  }
}

const PRESENCE_TYPES = new Set(['unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error']);
