// Client-to-server streams (RFC 6120): stream headers and features, STARTTLS (§5), SASL (§6),
// resource binding (§7), then stanzas into the router. Over TCP with STARTTLS, or direct TLS
// (XEP-0368). One C2sStream per connection; once bound it is the SessionOutput of its Session.
//
// Incoming elements are handled strictly in order: when a handler is asynchronous (SASL, storage),
// the next element waits, and reading pauses if too many pile up.

import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { HeraldServer } from './server.js';
import { XmlStreamParser, type StreamHeader, type XmlFaultCondition } from './xml/parser.js';
import { XmlElement, x, serialize } from './xml/element.js';
import { escapeAttr } from './xml/escape.js';
import { NS } from './protocol/ns.js';
import { StanzaError, StreamError, errorReply, mayReplyWithError, stanzaError } from './errors.js';
import { tryParseJid, normalizeResourcepart, normalizeLocalpart, makeJid, type Jid } from './jid.js';
import { Session, type SessionOutput } from './session.js';
import { TokenBucket } from './limits.js';
import type { Logger } from './log.js';
import { plain } from './sasl/plain.js';
import { scramSha1, scramSha1Plus, scramSha256, scramSha256Plus } from './sasl/scram.js';
import { tlsExporter } from './sasl/channel-binding.js';
import type { ChannelBindingType, SaslContext, SaslMechanismFactory, SaslMechanismSession, SaslStep, ScramHash } from './sasl/mechanism.js';
import type { StreamInfo } from './module-api.js';

/** Listens for client connections on all configured interfaces; resolves once listening. */
export async function listenC2s(server: HeraldServer, port: number, directTls: boolean): Promise<NetServer[]> {
  const onSocket = (socket: Socket) => {
    const stream = new C2sStream(server, socket, directTls);
    stream.start();
  };
  const make = (): NetServer =>
    directTls
      ? createTlsServer(
          {
            SNICallback: (_name, cb) => cb(null, server.secureContext),
            secureContext: server.secureContext,
            ALPNProtocols: ['xmpp-client'],
            minVersion: 'TLSv1.2',
          },
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
const MAX_PENDING_ELEMENTS = 64;
const CLOSE_GRACE_MS = 5_000;
const BIND_RESOURCE_BYTES = 6;

const SCRAM_MECHANISMS: SaslMechanismFactory[] = [scramSha256Plus, scramSha1Plus, scramSha256, scramSha1];

export class C2sStream implements SessionOutput {
  readonly transport: 'tcp' | 'tls';
  readonly remoteAddress: string;
  private socket: Socket;
  private secureNow: boolean;
  private readonly parser: XmlStreamParser;
  private readonly log: Logger;
  private phase: Phase = 'header';
  private headerSent = false;
  private streamId = '';
  private host: string;
  private username: string | undefined;
  private session: Session | undefined;
  private sasl: { mechanism: string; exchange: SaslMechanismSession } | undefined;
  private authFailures = 0;
  /** The client tried -PLUS with a channel binding we do not offer (see SaslContext.acceptYFlag). */
  private clientLacksOurChannelBindings = false;
  private unsupportedBindingThisAttempt = false;
  private busy = false;
  private readonly pending: { el: XmlElement; ns: string }[] = [];
  private readonly bucket: TokenBucket | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lastRead = Date.now();
  /** Reading is paused while the read rate is exceeded, or while too many elements wait: resume only when neither holds. */
  private rateLimited = false;
  private backlogged = false;
  /** The client sent </stream:stream> while elements still waited to be handled. */
  private closeWhenDrained = false;
  private corked = false;
  private closeReason = 'connection closed';
  private closedPromise: Promise<void>;
  private resolveClosed!: () => void;
  private counted = false;

  constructor(private readonly server: HeraldServer, socket: Socket, directTls: boolean) {
    this.socket = socket;
    this.secureNow = directTls;
    this.transport = directTls ? 'tls' : 'tcp';
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.host = server.domain;
    this.log = server.log.child({ conn: randomBytes(4).toString('hex'), ip: this.remoteAddress });
    const limits = server.config.limits;
    this.parser = new XmlStreamParser(
      {
        streamOpen: (header) => this.onStreamOpen(header),
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
    this.bucket = server.limiter.isExempt(this.remoteAddress) ? undefined : new TokenBucket(limits.read_rate, limits.read_burst);
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get secure(): boolean {
    return this.secureNow;
  }

  start(): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.server.streams.add(this);
    if (!this.server.limiter.openConnection(this.remoteAddress)) {
      this.log.warn('too many connections from this address');
      this.attachSocket(socket);
      this.fail(new StreamError('policy-violation', 'Too many connections from your address'));
      return;
    }
    this.counted = true;
    this.log.info({ transport: this.transport }, 'connection opened');
    this.attachSocket(socket);
    const c2s = this.server.config.c2s;
    this.authTimer = setTimeout(() => {
      if (!this.username) this.fail(new StreamError('connection-timeout', 'Authentication took too long'));
    }, c2s.auth_timeout);
    this.authTimer.unref();
    this.keepaliveTimer = setInterval(() => this.keepalive(), Math.max(1000, Math.floor(c2s.keepalive_interval / 2)));
    this.keepaliveTimer.unref();
  }

  private attachSocket(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.closeReason = `socket error: ${err.message}`;
      this.log.debug({ err: err.message }, 'socket error');
    });
    socket.on('close', () => this.onSocketClosed());
    socket.on('end', () => {
      // The peer half-closed without </stream:stream>: nothing more will come.
      if (this.phase !== 'closed') this.socket.end();
    });
  }

  private onData(chunk: Buffer): void {
    this.lastRead = Date.now();
    if (this.bucket) {
      const wait = this.bucket.take(chunk.length);
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
    this.parser.write(chunk);
  }

  private updateReading(): void {
    if (this.phase === 'closed') return;
    if (this.rateLimited || this.backlogged) this.socket.pause();
    else this.socket.resume();
  }

  private keepalive(): void {
    if (this.phase !== 'open') return;
    // RFC 6120 §4.6.1: whitespace keepalive after a period of silence.
    if (Date.now() - this.lastRead >= this.server.config.c2s.keepalive_interval) this.writeRaw(' ');
  }

  // ---- stream header and features ----

  private onStreamOpen(header: StreamHeader): void {
    const expectedName = header.name === 'stream' && header.ns === NS.STREAMS;
    const to = header.attrs.to;
    const requested = to !== undefined ? tryParseJid(to) : null;
    if (requested && requested.local === '' && requested.resource === '' && this.server.hosts.has(requested.domain)) {
      this.host = requested.domain;
    }
    this.streamId = randomBytes(12).toString('base64url');
    this.sendHeader(header);
    this.phase = 'open';
    if (!expectedName) return this.fail(new StreamError('invalid-namespace', 'Expected a stream in http://etherx.jabber.org/streams'));
    if (header.contentNs !== NS.CLIENT) return this.fail(new StreamError('invalid-namespace', 'The content namespace must be jabber:client'));
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
    this.sendFeatures();
  }

  private sendHeader(header?: StreamHeader): void {
    if (this.headerSent) return;
    this.headerSent = true;
    const fromClient = header?.attrs.from !== undefined ? tryParseJid(header.attrs.from) : null;
    let out =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'" +
      ` id='${this.streamId || randomBytes(12).toString('base64url')}' from='${escapeAttr(this.host)}' version='1.0' xml:lang='en'`;
    if (fromClient) out += ` to='${escapeAttr(fromClient.toString())}'`;
    this.writeRaw(out + '>');
  }

  private streamInfo(): StreamInfo {
    return { host: this.host, secure: this.secureNow, remoteAddress: this.remoteAddress, username: this.username };
  }

  private sendFeatures(): void {
    const features = x('stream:features');
    const c2s = this.server.config.c2s;
    if (!this.username) {
      if (!this.secureNow) {
        const starttls = features.c('starttls', { xmlns: NS.TLS });
        if (c2s.require_encryption) {
          // RFC 6120 §5.3.1: TLS mandatory-to-negotiate: offer nothing else yet.
          starttls.c('required');
          this.writeElement(features);
          return;
        }
      }
      const mechanisms = features.c('mechanisms', { xmlns: NS.SASL });
      for (const mech of this.offeredMechanisms()) mechanisms.c('mechanism').t(mech.name);
      const cbTypes = this.channelBindingTypes();
      if (cbTypes.length > 0) {
        // XEP-0440: tell the client which channel bindings we can verify.
        const cb = features.c('sasl-channel-binding', { xmlns: NS.SASL_CB });
        for (const type of cbTypes) cb.c('channel-binding', { type });
      }
      features.append(...this.server.streamFeaturesFor('pre-auth', this.streamInfo()));
    } else {
      features.c('bind', { xmlns: NS.BIND });
      // RFC 6121 appendix E / RFC 3921 sessions: advertised as optional for old clients.
      features.c('session', { xmlns: NS.SESSION }).c('optional');
      features.append(...this.server.streamFeaturesFor('post-auth', this.streamInfo()));
    }
    this.writeElement(features);
  }

  private offeredMechanisms(): SaslMechanismFactory[] {
    const out: SaslMechanismFactory[] = [];
    const cb = this.channelBindingTypes().length > 0;
    for (const mech of SCRAM_MECHANISMS) {
      if (mech.name.endsWith('-PLUS') && !cb) continue;
      out.push(mech);
    }
    // PLAIN only ever over TLS: it sends the password itself.
    if (this.secureNow && this.server.config.c2s.allow_plain_auth) out.push(plain);
    return out;
  }

  private channelBindingTypes(): ChannelBindingType[] {
    if (!(this.socket instanceof TLSSocket) || !this.secureNow) return [];
    const types: ChannelBindingType[] = [];
    if (this.socket.getProtocol() === 'TLSv1.3') types.push('tls-exporter');
    if (this.server.serverEndPoint) types.push('tls-server-end-point');
    return types;
  }

  // ---- incoming elements ----

  private onElement(el: XmlElement, ns: string): void {
    if (this.phase !== 'open') return;
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
    if (this.closeWhenDrained && !this.busy && this.pending.length === 0) this.closeStream();
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
      if (ns === NS.SASL) return this.handleSasl(el);
      if (!this.secureNow && this.server.config.c2s.require_encryption) {
        return this.fail(new StreamError('policy-violation', 'Use STARTTLS first'));
      }
      if (ns === NS.CLIENT && el.name === 'iq') return this.handlePreAuthIq(el);
      return this.fail(new StreamError('not-authorized', 'Authenticate first'));
    }
    if (ns !== NS.CLIENT) {
      return this.fail(new StreamError('unsupported-stanza-type', `No support for ${el.name} in ${ns}`));
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      return this.fail(new StreamError('unsupported-stanza-type', `Unknown stanza ${el.name}`));
    }
    if (!this.session) return this.handleUnbound(el);
    if (el.name === 'iq' && el.attrs.type === 'set' && this.isForServer(el)) {
      const payload = el.firstElement();
      if (payload?.name === 'session' && payload.attrs.xmlns === NS.SESSION) {
        // RFC 3921 §3 session establishment, sent after bind by older clients: a no-op now
        // (RFC 6121 appendix E), but it must still be answered or they wait forever.
        this.writeElement(x('iq', { type: 'result', id: el.attrs.id, from: el.attrs.to }));
        return;
      }
      if (payload?.name === 'bind' && payload.attrs.xmlns === NS.BIND) {
        // One resource per stream (RFC 6120 §7.1); a client that may not bind gets not-allowed
        // (§7.6.2.2). Prosody refuses a second bind on a stream the same way (type cancel).
        const reply = errorReply(el, stanzaError.notAllowed('A resource is already bound to this stream'));
        delete reply.attrs.to;
        this.writeElement(reply);
        return;
      }
    }
    return this.handleStanza(el, this.session);
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
    if (this.secureNow || this.username) {
      // Already encrypted (or authenticated): §5.4.2.2 failure, then close.
      this.writeElement(x('failure', { xmlns: NS.TLS }));
      this.closeStream();
      return;
    }
    this.writeElement(x('proceed', { xmlns: NS.TLS }));
    this.uncork();
    this.discardPending();
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('end');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    // Anything the client sent after <starttls/> in the clear is dropped (no command injection).
    this.parser.reset();
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.server.secureContext,
      SNICallback: (_name, cb) => cb(null, this.server.secureContext),
    });
    this.socket = secure;
    this.attachSocket(secure);
    secure.once('secure', () => {
      this.secureNow = true;
      this.headerSent = false;
      this.phase = 'header';
      this.log.debug({ protocol: secure.getProtocol() }, 'TLS established');
    });
    secure.on('error', (err) => {
      if (!this.secureNow) this.log.info({ err: err.message }, 'TLS handshake failed');
    });
  }

  // ---- SASL (RFC 6120 §6) ----

  private async handleSasl(el: XmlElement): Promise<void> {
    if (el.name === 'abort') {
      this.sasl = undefined;
      return this.saslFailure('aborted', undefined, false);
    }
    if (el.name === 'auth') {
      if (!this.secureNow && this.server.config.c2s.require_encryption) return this.saslFailure('encryption-required', 'Use STARTTLS first', false);
      if (this.server.limiter.authBlocked(this.remoteAddress)) {
        return this.saslFailure('temporary-auth-failure', 'Too many failed logins from your address; try later', false);
      }
      const name = el.attrs.mechanism ?? '';
      const mech = this.offeredMechanisms().find((m) => m.name === name);
      if (!mech) return this.saslFailure('invalid-mechanism', undefined, false);
      this.sasl = { mechanism: name, exchange: mech.start(this.saslContext()) };
      return this.saslStep(el.text());
    }
    if (el.name === 'response') {
      if (!this.sasl) return this.saslFailure('malformed-request', 'No authentication in progress', false);
      return this.saslStep(el.text());
    }
    return this.fail(new StreamError('unsupported-stanza-type', `Unknown SASL element ${el.name}`));
  }

  private async saslStep(text: string): Promise<void> {
    const trimmed = text.trim();
    let data: Buffer;
    if (trimmed === '' || trimmed === '=') data = Buffer.alloc(0);
    else if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 !== 0) {
      this.sasl = undefined;
      return this.saslFailure('incorrect-encoding', undefined, true);
    } else data = Buffer.from(trimmed, 'base64');
    const exchange = this.sasl!;
    this.unsupportedBindingThisAttempt = false;
    const step: SaslStep = await exchange.exchange.step(data);
    if (this.phase !== 'open' || this.sasl !== exchange) return;
    if (step.kind === 'challenge') {
      this.writeElement(x('challenge', { xmlns: NS.SASL }, step.data.length > 0 ? step.data.toString('base64') : '='));
      return;
    }
    this.sasl = undefined;
    // A -PLUS attempt with a binding type we lack is not a password guess: it does not count.
    if (step.kind === 'failure') return this.saslFailure(step.condition, step.text, !this.unsupportedBindingThisAttempt);
    this.authSucceeded(step.username, step.data, exchange.mechanism);
  }

  private saslFailure(condition: string, text: string | undefined, counts: boolean): void {
    const failure = x('failure', { xmlns: NS.SASL }, x(condition));
    if (text) failure.append(x('text', { 'xml:lang': 'en' }, text));
    this.writeElement(failure);
    if (!counts) return;
    this.server.limiter.recordAuthFailure(this.remoteAddress);
    this.authFailures++;
    this.log.info({ condition, failures: this.authFailures }, 'authentication failed');
    // RFC 6120 §6.4.5: a reasonable number of retries, then a stream error.
    if (this.authFailures >= this.server.config.c2s.max_auth_failures) {
      this.fail(new StreamError('policy-violation', 'Too many failed authentication attempts'));
    }
  }

  private authSucceeded(username: string, data: Buffer | undefined, mechanism: string): void {
    this.username = username;
    if (this.authTimer) clearTimeout(this.authTimer);
    this.writeElement(x('success', { xmlns: NS.SASL }, data && data.length > 0 ? data.toString('base64') : undefined));
    this.log.info({ user: username, mechanism }, 'authenticated');
    // RFC 6120 §6.4.6: the stream restarts; anything else in this read is discarded.
    this.parser.reset();
    this.discardPending();
    this.headerSent = false;
    this.phase = 'header';
  }

  private saslContext(): SaslContext {
    const accounts = this.server.store.accounts;
    const host = this.host;
    const socket = this.socket;
    const types = this.channelBindingTypes();
    return {
      getScramCredentials: async (username: string, hash: ScramHash) => (await accounts.get(host, username))?.credentials[hash] ?? null,
      verifyPassword: (username, password) => this.server.verifyPassword(username, password),
      normalizeUsername: (username) => normalizeLocalpart(username),
      channelBinding: (type) => {
        if (!(socket instanceof TLSSocket)) return null;
        if (type === 'tls-exporter') return tlsExporter(socket);
        return this.server.serverEndPoint;
      },
      channelBindingTypes: types,
      plusOffered: types.length > 0,
      domain: host,
      acceptYFlag: this.clientLacksOurChannelBindings && this.server.config.c2s.channel_binding_fallback,
      onUnsupportedChannelBinding: () => {
        this.clientLacksOurChannelBindings = true;
        this.unsupportedBindingThisAttempt = true;
      },
    };
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
      const result = await handler({ stanza: el, payload, host: this.host, remoteAddress: this.remoteAddress, secure: this.secureNow });
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
      resource = requested !== undefined && requested.trim() !== '' ? normalizeResourcepart(requested) : randomBytes(BIND_RESOURCE_BYTES).toString('base64url');
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
    const session = new Session(jid, this, this.server.outboundFilter, this.server.log);
    this.session = session;
    // The result goes out first: anything modules send on 'session:bound' must come after it.
    this.writeElement(x('iq', { type: 'result', id }, x('bind', { xmlns: NS.BIND }, x('jid', null, jid.toString()))));
    session.log.info({ transport: this.transport }, 'session bound');
    this.server.bindSession(session);
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

  private replyError(el: XmlElement, error: StanzaError): void {
    if (!mayReplyWithError(el)) return;
    const reply = errorReply(el, error);
    delete reply.attrs.to; // it goes back on this stream, to the sender
    if (el.attrs.to === undefined) delete reply.attrs.from;
    this.writeElement(reply);
  }

  // ---- output ----

  write(stanza: XmlElement): boolean {
    if (this.phase === 'closed' || this.phase === 'closing') return false;
    return this.writeRaw(serialize(stanza));
  }

  private writeElement(el: XmlElement): void {
    this.writeRaw(serialize(el));
  }

  private writeRaw(data: string): boolean {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return false;
    if (!this.corked) {
      // Coalesce everything written in one tick into one TCP/TLS write.
      this.corked = true;
      socket.cork();
      process.nextTick(() => this.uncork());
    }
    socket.write(data);
    return true;
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    const socket = this.socket;
    socket.uncork();
    // limits.max_write_queue bounds what the client leaves unread: measure it once this tick's
    // writes were offered to the socket, not while they were still being gathered (a burst of
    // offline messages to a client that reads fine must not count as a slow reader).
    if (socket.writableLength > this.server.config.limits.max_write_queue && this.phase === 'open') {
      this.log.warn({ queued: socket.writableLength }, 'client is not reading; closing');
      this.phase = 'closing';
      this.closeReason = 'write queue full';
      socket.destroy();
    }
  }

  flushed(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      if (socket.destroyed || !socket.writable) return reject(new Error('connection closed'));
      socket.write('', (err) => (err ? reject(err) : resolve()));
    });
  }

  // ---- closing ----

  /** SessionOutput.close: ends the stream, with a stream error when given. */
  close(error?: StreamError): void {
    if (error) this.fail(error);
    else this.closeStream();
  }

  /** Server shutdown: the error, then wait (briefly) for the socket to close. */
  shutdown(error: StreamError): Promise<void> {
    this.fail(error);
    return this.closedPromise;
  }

  private fail(error: StreamError): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.sendHeader();
    this.log.info({ condition: error.condition, text: error.text }, 'stream error');
    this.writeElement(error.toElement());
    this.closeReason = `stream error: ${error.condition}`;
    this.closeStream();
  }

  private closeStream(): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.sendHeader();
    this.phase = 'closing';
    this.parser.stop();
    this.writeRaw('</stream:stream>');
    this.uncork();
    this.socket.end();
    // RFC 6120 §4.4: wait for the peer's </stream:stream>, but not forever.
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.endSession();
  }

  private onStreamClose(): void {
    this.closeReason = 'closed by client';
    if (this.phase === 'closing') {
      this.socket.destroy();
      return;
    }
    // Stanzas sent before </stream:stream> still count: finish those waiting behind an
    // asynchronous step first (drain() closes once they are done).
    if (this.busy || this.pending.length > 0) {
      this.closeWhenDrained = true;
      return;
    }
    this.closeStream();
  }

  private onXmlFault(condition: XmlFaultCondition, text: string): void {
    this.fail(new StreamError(condition, text));
  }

  private onSocketClosed(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.parser.stop();
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.counted) this.server.limiter.closeConnection(this.remoteAddress);
    this.server.streams.delete(this);
    this.endSession();
    this.log.info({ reason: this.closeReason }, 'connection closed');
    this.resolveClosed();
  }

  private endSession(): void {
    const session = this.session;
    if (!session || session.connection !== this) return;
    this.session = undefined;
    this.server.endSession(session, this.closeReason);
  }
}

const PRESENCE_TYPES = new Set(['unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error']);
