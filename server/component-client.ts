// XEP-0114 Jabber Component Protocol (1.6) from the component's side: Herald connects to another
// XMPP server's component port (Prosody's 5347, say), names its domain, answers the stream id with
// the handshake digest of the shared secret, and then exchanges stanzas on that one stream — every
// stanza for the domain comes in, everything from it goes out. `herald appserver` runs the app
// server this way (bin/appserver.ts); tests use it as a component of a Herald.
//
// A lost connection is reopened with exponential backoff, also after the server refused the
// handshake (the other side's config may be fixed meanwhile); `lastError` says what went wrong.
// Nothing is queued while disconnected: send() returns false and the caller decides.

import { connect as netConnect } from 'node:net';
import { x, type XmlElement } from './xml/element.js';
import { XmlStreamParser, DEFAULT_XML_LIMITS, type StreamHeader, type XmlLimits } from './xml/parser.js';
import { NS } from './protocol/ns.js';
import { NS_COMPONENT_ACCEPT, handshakeDigest } from './protocol/xep0114.js';
import { ComponentTransport } from './component.js';
import type { Logger } from './log.js';

export interface ComponentClientOptions {
  /** The XMPP server's address and component port. */
  host: string;
  port: number;
  /** The component's domain, as configured on the server. */
  domain: string;
  secret: string;
  log: Logger;
  limits?: XmlLimits;
  /** Reconnection: the first delay, doubled after each failed attempt up to the maximum; false: none. */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number } | false;
  /** Connect and handshake within this time, or the attempt counts as failed. */
  connectTimeoutMs?: number;
  /** Whitespace keepalive after this much silence (RFC 6120 §4.6.1), so dead links are noticed. */
  keepaliveMs?: number;
}

export interface ComponentClientHandlers {
  /** A stanza from the server (both addresses set). */
  stanza(el: XmlElement): void;
  connected?(): void;
  disconnected?(reason: string): void;
}

const DEFAULT_MIN_DELAY_MS = 1_000;
const DEFAULT_MAX_DELAY_MS = 60_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_KEEPALIVE_MS = 60_000;
const CLOSE_GRACE_MS = 2_000;

type Phase = 'header' | 'handshake' | 'open' | 'closing' | 'closed';

export class ComponentClient {
  /** The stream error (condition) or socket problem that ended the last attempt. */
  lastError: string | undefined;
  private link: Link | undefined;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];

  constructor(private readonly options: ComponentClientOptions, private readonly handlers: ComponentClientHandlers) {}

  get domain(): string {
    return this.options.domain;
  }

  /** Connected and authenticated: stanzas flow. */
  get connected(): boolean {
    return this.link?.phase === 'open';
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Writes a stanza to the server; false when not connected. */
  send(stanza: XmlElement): boolean {
    const link = this.link;
    if (!link || link.phase !== 'open') return false;
    link.transport.writeElement(stanza);
    link.lastWrite = Date.now();
    return true;
  }

  /** Resolves once connected (at once when connected already); rejects after `timeoutMs`. */
  whenConnected(timeoutMs = 10_000): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`component ${this.domain} not connected within ${timeoutMs} ms${this.lastError ? ` (last error: ${this.lastError})` : ''}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
    });
  }

  /** Closes the stream (</stream:stream>) and stops reconnecting; resolves once the socket is gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const link = this.link;
    if (!link) return;
    await link.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const { options } = this;
    const log = options.log;
    log.debug({ host: options.host, port: options.port, domain: options.domain }, 'component connecting');
    this.link = new Link(options, {
      stanza: (el) => this.handlers.stanza(el),
      open: () => {
        this.failures = 0;
        this.lastError = undefined;
        log.info({ host: options.host, port: options.port, domain: options.domain }, 'component connected');
        for (const wake of this.waiters.splice(0)) wake();
        this.handlers.connected?.();
      },
      gone: (reason, wasOpen, error) => {
        this.link = undefined;
        if (error !== undefined) this.lastError = error;
        if (wasOpen) {
          // An orderly stop() is not a loss worth a warning.
          if (this.stopped) log.info({ domain: options.domain, reason }, 'component connection closed');
          else log.warn({ domain: options.domain, reason }, 'component connection lost');
          this.handlers.disconnected?.(reason);
        }
        this.scheduleReconnect(reason);
      },
    });
  }

  private scheduleReconnect(reason: string): void {
    const reconnect = this.options.reconnect;
    if (this.stopped || reconnect === false) return;
    const min = reconnect?.minDelayMs ?? DEFAULT_MIN_DELAY_MS;
    const max = reconnect?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    const delay = Math.min(max, min * 2 ** Math.min(this.failures, 20));
    this.failures++;
    // A refused handshake is a configuration problem on one side or the other: worth an error.
    const level = this.lastError === 'not-authorized' || this.lastError === 'host-unknown' ? 'error' : 'info';
    this.options.log[level]({ domain: this.options.domain, reason, retry_ms: delay }, 'component not connected; retrying');
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }
}

interface LinkEvents {
  stanza(el: XmlElement): void;
  open(): void;
  /** The connection is gone; `error` names a stream error or socket failure, if there was one. */
  gone(reason: string, wasOpen: boolean, error: string | undefined): void;
}

/** One connection attempt and, once the handshake succeeded, the stream. */
class Link {
  phase: Phase = 'header';
  readonly transport: ComponentTransport;
  private readonly parser: XmlStreamParser;
  private readonly log: Logger;
  private wasOpen = false;
  private error: string | undefined;
  private reason = 'connection closed';
  /** When something was last written (keepalives fill silence only). */
  lastWrite = Date.now();
  private readonly connectTimer: NodeJS.Timeout;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly options: ComponentClientOptions, private readonly events: LinkEvents) {
    this.log = options.log;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.parser = new XmlStreamParser(
      {
        streamOpen: (header) => this.onStreamOpen(header),
        stanza: (el, ns) => this.onElement(el, ns),
        streamClose: () => this.onServerClose(),
        fault: (condition, text) => {
          this.error = condition;
          this.log.warn({ condition, text }, 'component stream: bad XML from the server');
          this.transport.destroy();
        },
      },
      options.limits ?? DEFAULT_XML_LIMITS,
    );
    // Written before the connection is up: the socket holds it until then.
    const socket = netConnect({ host: options.host, port: options.port });
    socket.setKeepAlive(true, 60_000);
    this.transport = new ComponentTransport(socket, false);
    this.transport.attach({ data: (chunk) => this.parser.write(chunk), closed: (reason) => this.onClosed(reason) });
    this.transport.openConnecting(options.domain);
    this.connectTimer = setTimeout(() => {
      if (this.phase === 'open') return;
      this.error = 'connection-timeout';
      this.reason = 'no handshake in time';
      this.transport.destroy();
    }, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.connectTimer.unref();
  }

  private onStreamOpen(header: StreamHeader): void {
    const id = header.attrs.id;
    if (header.contentNs !== NS_COMPONENT_ACCEPT || id === undefined || id === '') {
      // Without a stream id there is nothing to hash; a stream error may follow (host-unknown, ...).
      if (header.contentNs !== NS_COMPONENT_ACCEPT) this.log.warn({ ns: header.contentNs }, 'component stream: the server answered with another namespace');
      this.phase = 'handshake';
      return;
    }
    this.phase = 'handshake';
    // XEP-0114 §3 step 3: SHA1(stream id + secret), lowercase hex.
    this.transport.writeElement(x('handshake', null, handshakeDigest(id, this.options.secret)));
  }

  private onElement(el: XmlElement, ns: string): void {
    if (ns === NS.STREAMS && el.name === 'error') {
      const condition = el.elements().find((child) => child.attrs.xmlns === NS.STREAM_ERRORS)?.name ?? 'undefined-condition';
      const text = el.getChildText('text', NS.STREAM_ERRORS);
      this.error = condition;
      this.reason = `stream error: ${condition}`;
      this.log[this.phase === 'open' && condition === 'system-shutdown' ? 'info' : 'warn']({ condition, text, domain: this.options.domain }, 'component stream error from the server');
      void this.close();
      return;
    }
    // COMPAT: servers may write stanzas with xmlns='jabber:client' (their own namespace) on the stream.
    const content = ns === NS_COMPONENT_ACCEPT || ns === NS.CLIENT || ns === NS.SERVER;
    if (!content) return;
    if (this.phase === 'handshake' && el.name === 'handshake' && ns === NS_COMPONENT_ACCEPT) {
      this.phase = 'open';
      this.wasOpen = true;
      clearTimeout(this.connectTimer);
      const interval = this.options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
      this.keepaliveTimer = setInterval(() => {
        if (this.phase === 'open' && Date.now() - this.lastWrite >= interval) this.transport.keepalive();
      }, Math.max(1000, Math.floor(interval / 2)));
      this.keepaliveTimer.unref();
      this.events.open();
      return;
    }
    if (this.phase === 'open' && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) {
      delete el.attrs.xmlns; // inside Herald, top-level stanzas carry none
      this.events.stanza(el);
    }
  }

  private onServerClose(): void {
    if (this.reason === 'connection closed') this.reason = 'closed by the server';
    if (this.phase === 'closing') {
      this.transport.destroy();
      return;
    }
    void this.close();
  }

  /** </stream:stream>, then wait (briefly) for the server's and the socket's end. */
  close(): Promise<void> {
    if (this.phase !== 'closing' && this.phase !== 'closed') {
      this.phase = 'closing';
      this.transport.closeStream();
      setTimeout(() => this.transport.destroy(), CLOSE_GRACE_MS).unref();
    }
    return this.closed;
  }

  private onClosed(reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.parser.stop();
    clearTimeout(this.connectTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.reason === 'connection closed') this.reason = reason;
    if (this.error === undefined && reason.startsWith('socket error')) this.error = reason;
    this.resolveClosed();
    this.events.gone(this.reason, this.wasOpen, this.error);
  }
}
