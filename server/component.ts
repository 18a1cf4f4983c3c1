// External components, XEP-0114 Jabber Component Protocol (1.6), the server side
// (jabber:component:accept): a trusted program (a gateway, a bot platform, Herald's own app server in
// `herald appserver` mode) connects on listen.component, names the domain it serves, proves it knows
// that domain's shared secret (`components:` in the config), and from then on the router hands it
// every stanza for that domain, and routes what it sends as coming from that domain.
//
// Each configured domain sits in the router's component table (server.components) from startup, as
// Prosody's `Component "domain"` does: while its component is not connected, stanzas for it are
// answered with service-unavailable instead of going to federation, and never dropped in silence.
// Left out: the jabber:component:connect direction (the server connecting to the component), and
// TLS on the component port, which XEP-0114 does not define (the listener binds to localhost by
// default: listen.component_interfaces).

import { randomBytes } from 'node:crypto';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { HeraldServer } from './server.js';
import { ConfigError } from './server.js';
import { listenOn } from './c2s.js';
import { SocketTransport } from './transports.js';
import { XmlStreamParser, type StreamHeader } from './xml/parser.js';
import { x, type XmlElement } from './xml/element.js';
import { NS } from './protocol/ns.js';
import { NS_COMPONENT_ACCEPT, componentStreamHeader, handshakeMatches, serverStreamHeader } from './protocol/xep0114.js';
import { StreamError, stanzaError } from './errors.js';
import { normalizeDomainpart, tryParseJid } from './jid.js';
import type { RouteEvent } from './hooks.js';
import type { ComponentRoute } from './components.js';
import type { Logger } from './log.js';

/** A component that has not completed the handshake by then is disconnected. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Waiting this long for the peer's </stream:stream> after ours (RFC 6120 §4.4 allows a timeout). */
const CLOSE_GRACE_MS = 5_000;
const PRESENCE_TYPES = new Set(['unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error']);
const IQ_TYPES = new Set(['get', 'set', 'result', 'error']);

/** A TCP socket speaking jabber:component:accept; both ends (server/component-client.ts) use it. */
export class ComponentTransport extends SocketTransport {
  /** The server's stream header (XEP-0114 §3 step 2). */
  openAccepted(from: string, id: string): void {
    this.write(serverStreamHeader(from, id));
  }

  /** The component's stream header (XEP-0114 §3 step 1). */
  openConnecting(to: string): void {
    this.write(componentStreamHeader(to));
  }
}

/** One configured component domain in the router's table, with its connection while one is up. */
export class ExternalComponent implements ComponentRoute {
  stream: ComponentStream | undefined;

  constructor(readonly domain: string, readonly secret: string) {}

  route(event: RouteEvent): void {
    const stream = this.stream;
    if (!stream) {
      // As Prosody's mod_component: bounced, of type wait — the component may come back, and a
      // user's server (our push module, say) should retry rather than give the address up.
      throw stanzaError.serviceUnavailable('The component is not connected', { type: 'wait' });
    }
    stream.deliver(event);
  }
}

/** The configured components, the listener, and their streams. */
export class ExternalComponents {
  readonly log: Logger;
  private readonly byDomain = new Map<string, ExternalComponent>();
  private readonly streams = new Set<ComponentStream>();

  constructor(readonly server: HeraldServer) {
    this.log = server.log.child({ mod: 'component' });
  }

  /** Puts the configured domains into the router's table (at startup); throws ConfigError for a bad one. */
  register(): void {
    const server = this.server;
    for (const [key, settings] of Object.entries(server.config.components)) {
      let domain: string;
      try {
        domain = normalizeDomainpart(key);
      } catch (err) {
        throw new ConfigError(`components.${key}`, `not a valid domain (${(err as Error).message})`);
      }
      if (server.hosts.has(domain)) throw new ConfigError(`components.${key}`, 'is a domain this server serves itself');
      if (this.byDomain.has(domain)) throw new ConfigError(`components.${key}`, `is configured twice (as ${domain})`);
      const component = new ExternalComponent(domain, settings.secret);
      this.byDomain.set(domain, component);
      server.components.set(domain, component);
    }
  }

  /** The configured component domains. */
  get domains(): string[] {
    return [...this.byDomain.keys()];
  }

  get(domain: string): ExternalComponent | undefined {
    return this.byDomain.get(domain);
  }

  /** True while a component is connected and authenticated for the domain. */
  isConnected(domain: string): boolean {
    return this.byDomain.get(domain)?.stream !== undefined;
  }

  /** Ends a component's connection (admin, tests); false when none was connected. */
  disconnect(domain: string, error = new StreamError('reset', 'Disconnected by the administrator')): boolean {
    const stream = this.byDomain.get(domain)?.stream;
    if (!stream) return false;
    stream.fail(error);
    return true;
  }

  /** Listens on listen.component_interfaces; port 0 picks a free port (tests). */
  listen(port: number): Promise<NetServer[]> {
    const accept = (socket: Socket) => {
      socket.setKeepAlive(true, 60_000);
      const stream = new ComponentStream(this, new ComponentTransport(socket, false));
      this.streams.add(stream);
      stream.start();
    };
    return listenOn(() => createNetServer(accept), this.server.config.listen.component_interfaces, port, this.log, 'component');
  }

  streamClosed(stream: ComponentStream): void {
    this.streams.delete(stream);
  }

  async stop(): Promise<void> {
    const error = new StreamError('system-shutdown', 'Server is shutting down');
    await Promise.allSettled([...this.streams].map((stream) => stream.shutdown(error)));
  }
}

type Phase = 'header' | 'handshake' | 'open' | 'closing' | 'closed';

/** One connection on the component port. */
export class ComponentStream {
  readonly log: Logger;
  private readonly server: HeraldServer;
  private readonly parser: XmlStreamParser;
  private readonly remoteAddress: string;
  private phase: Phase = 'header';
  private readonly streamId = randomBytes(12).toString('hex');
  private headerSent = false;
  /** The configured component the stream header named. */
  private component: ExternalComponent | undefined;
  /** The handshake succeeded: stanzas are accepted (also while closing). */
  private authenticated = false;
  /** This stream is the component's connection in the router's table. */
  private attached = false;
  private counted = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private closeReason = 'connection closed';
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly manager: ExternalComponents, private readonly transport: ComponentTransport) {
    this.server = manager.server;
    this.remoteAddress = transport.remoteAddress;
    this.log = manager.log.child({ conn: randomBytes(4).toString('hex'), ip: this.remoteAddress });
    const limits = this.server.config.limits;
    // The c2s limits on stanza size and XML shape. No read_rate: a component is a trusted service
    // that may carry a whole gateway's traffic (Prosody's mod_limits leaves components alone too).
    this.parser = new XmlStreamParser(
      {
        streamOpen: (header) => this.onStreamOpen(header),
        stanza: (el, ns) => this.onElement(el, ns),
        streamClose: () => this.onPeerClose(),
        fault: (condition, text) => this.fail(new StreamError(condition, text)),
      },
      {
        maxStanzaBytes: limits.max_stanza_size,
        maxDepth: limits.max_xml_depth,
        maxAttributes: limits.max_attributes,
        maxAttributeLength: limits.max_attribute_length,
      },
    );
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  start(): void {
    this.transport.attach({
      data: (chunk) => this.parser.write(chunk),
      closed: (reason) => this.onTransportClosed(reason),
      afterFlush: () => this.checkWriteQueue(),
    });
    const limiter = this.server.limiter;
    if (!limiter.openConnection(this.remoteAddress)) {
      this.log.warn('too many component connections from this address');
      return this.fail(new StreamError('policy-violation', 'Too many connections from your address'));
    }
    this.counted = true;
    if (limiter.authBlocked(this.remoteAddress)) {
      this.log.warn('component connection from an address with too many failed handshakes');
      return this.fail(new StreamError('policy-violation', 'Too many failed handshakes from your address'));
    }
    this.log.info('component connection opened');
    this.handshakeTimer = setTimeout(() => {
      if (!this.authenticated) this.fail(new StreamError('connection-timeout', 'Handshake took too long'));
    }, HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
  }

  // ---- stream header and handshake (XEP-0114 §3) ----

  private onStreamOpen(header: StreamHeader): void {
    const to = header.attrs.to;
    const requested = to !== undefined ? tryParseJid(to) : null;
    const domain = requested && requested.local === '' && requested.resource === '' ? requested.domain : undefined;
    this.component = domain !== undefined ? this.manager.get(domain) : undefined;
    this.sendHeader();
    this.phase = 'handshake';
    if (header.name !== 'stream' || header.ns !== NS.STREAMS) return this.fail(new StreamError('invalid-namespace', 'Expected a stream in http://etherx.jabber.org/streams'));
    if (header.contentNs !== NS_COMPONENT_ACCEPT) return this.fail(new StreamError('invalid-namespace', `The content namespace must be ${NS_COMPONENT_ACCEPT}`));
    // As Prosody: the component must say which domain it is.
    if (to === undefined) return this.fail(new StreamError('improper-addressing', "The stream header lacks 'to'"));
    // XEP-0114 §3: a domain the server does not know as a component → host-unknown.
    if (!this.component) {
      this.log.warn({ domain: to }, 'component connection for a domain that is not configured');
      return this.fail(new StreamError('host-unknown', 'No component is configured for that domain'));
    }
    this.log.debug({ domain: this.component.domain }, 'component stream opened');
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.transport.openAccepted(this.component?.domain ?? this.server.domain, this.streamId);
  }

  private handshake(el: XmlElement): void {
    const component = this.component!;
    if (!handshakeMatches(el.text(), this.streamId, component.secret)) {
      this.server.limiter.recordAuthFailure(this.remoteAddress);
      this.log.warn({ domain: component.domain }, 'component handshake failed: wrong secret');
      // XEP-0114 §3: "the server MUST ... return a <not-authorized/> stream error".
      return this.fail(new StreamError('not-authorized', 'Given token does not match calculated token'));
    }
    if (component.stream) {
      // The connected one stays (Prosody's default, "kick_new"): a second instance started by
      // mistake must not cut off the one that works.
      this.log.warn({ domain: component.domain }, 'second component connection for a connected domain refused');
      return this.fail(new StreamError('conflict', 'A component is connected for this domain already'));
    }
    component.stream = this;
    this.authenticated = true;
    this.attached = true;
    this.phase = 'open';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.transport.writeElement(x('handshake'));
    this.log.info({ domain: component.domain }, 'component connected');
  }

  // ---- elements ----

  private onElement(el: XmlElement, ns: string): void {
    if (ns === NS.STREAMS && el.name === 'error') {
      const condition = el.elements().find((child) => child.attrs.xmlns === NS.STREAM_ERRORS)?.name ?? 'undefined-condition';
      this.log.warn({ condition }, 'stream error from component');
      this.closeReason = `stream error from component: ${condition}`;
      return this.closeStream();
    }
    if (this.phase === 'handshake') {
      // Nothing but the handshake before it (XEP-0114 §3): stanzas from an unproven peer are refused.
      if (ns === NS_COMPONENT_ACCEPT && el.name === 'handshake') return this.handshake(el);
      return this.fail(new StreamError('not-authorized', 'Send the handshake first'));
    }
    // RFC 6120 §4.4: what the peer sent before seeing our </stream:stream> is still handled.
    if ((this.phase !== 'open' && this.phase !== 'closing') || !this.authenticated) return;
    // COMPAT: some component libraries write stanzas with xmlns='jabber:client'; Prosody takes them too.
    if ((ns !== NS_COMPONENT_ACCEPT && ns !== NS.CLIENT) || (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq')) {
      return this.fail(new StreamError('unsupported-stanza-type', `Unexpected ${el.name} element`));
    }
    delete el.attrs.xmlns;
    this.onStanza(el);
  }

  private onStanza(el: XmlElement): void {
    const component = this.component!;
    // Addressing as between servers (RFC 6120 §4.9.3.7): both addresses, from the component's own domain.
    if (el.attrs.from === undefined || el.attrs.to === undefined) {
      return this.fail(new StreamError('improper-addressing', "Stanzas from a component need 'from' and 'to'"));
    }
    const from = tryParseJid(el.attrs.from);
    if (!from || from.domain !== component.domain) {
      this.log.warn({ domain: component.domain, claimed: from?.domain ?? el.attrs.from }, 'component sent from a domain not its own');
      return this.fail(new StreamError('invalid-from', `A component may only send from ${component.domain}`));
    }
    el.attrs.from = from.toString();
    const to = tryParseJid(el.attrs.to);
    if (!to) return this.server.router.bounce(el, stanzaError.jidMalformed());
    if (!this.valid(el)) return;
    this.server.router.route(el, from, to, { kind: 'component', domain: component.domain });
  }

  /** The stanza rules of RFC 6120 §8 that concern the receiver: IQ id, type and payload; presence type. */
  private valid(el: XmlElement): boolean {
    const type = el.attrs.type;
    let problem: string | undefined;
    if (el.name === 'iq') {
      if (el.attrs.id === undefined || type === undefined || !IQ_TYPES.has(type)) problem = 'IQ without a valid id or type';
      else if ((type === 'get' || type === 'set') && el.elements().length !== 1) problem = 'An IQ request carries exactly one child';
    } else if (el.name === 'presence' && type !== undefined && !PRESENCE_TYPES.has(type)) {
      problem = 'Unknown presence type';
    }
    if (problem === undefined) return true;
    this.server.router.bounce(el, stanzaError.badRequest(problem));
    return false;
  }

  // ---- output ----

  /** A stanza the router has for the component's domain. */
  deliver(event: RouteEvent): void {
    const { stanza } = event;
    // Between server and component both addresses are always written (the router's stanzas have them).
    if (stanza.attrs.from === undefined) stanza.attrs.from = event.from.toString();
    if (stanza.attrs.to === undefined) stanza.attrs.to = event.to.toString();
    this.transport.writeElement(stanza);
  }

  /** limits.max_write_queue bounds what a component leaves unread. */
  private checkWriteQueue(): void {
    if (this.phase !== 'open' || this.transport.writableLength <= this.server.config.limits.max_write_queue) return;
    this.log.warn({ queued: this.transport.writableLength }, 'component is not reading; closing');
    this.closeReason = 'write queue full';
    this.detach();
    this.phase = 'closing';
    this.transport.destroy();
  }

  // ---- closing ----

  fail(error: StreamError): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.sendHeader();
    this.log.info({ condition: error.condition, text: error.text }, 'component stream error');
    this.transport.writeElement(error.toElement());
    this.closeReason = `stream error: ${error.condition}`;
    this.closeStream();
  }

  private closeStream(): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.sendHeader();
    this.phase = 'closing';
    // From now on stanzas for the domain bounce; what the component still sends is handled.
    this.detach();
    this.transport.closeStream();
    setTimeout(() => this.transport.destroy(), CLOSE_GRACE_MS).unref();
  }

  private onPeerClose(): void {
    if (this.phase === 'closing') {
      this.transport.destroy();
      return;
    }
    this.closeReason = 'closed by component';
    this.closeStream();
  }

  /** Server shutdown: the error, then wait (briefly) for the socket to close. */
  shutdown(error: StreamError): Promise<void> {
    this.fail(error);
    return this.closed;
  }

  /** The domain's stanzas no longer come here. */
  private detach(): void {
    if (!this.attached) return;
    this.attached = false;
    const component = this.component!;
    if (component.stream === this) component.stream = undefined;
    this.log.info({ domain: component.domain, reason: this.closeReason }, 'component disconnected');
  }

  private onTransportClosed(reason: string): void {
    if (this.phase === 'closed') return;
    if (this.closeReason === 'connection closed') this.closeReason = reason;
    this.phase = 'closed';
    this.parser.stop();
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.detach();
    if (this.counted) this.server.limiter.closeConnection(this.remoteAddress);
    this.manager.streamClosed(this);
    this.log.info({ reason: this.closeReason }, 'component connection closed');
    this.resolveClosed();
  }
}
