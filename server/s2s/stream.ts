// What incoming and outgoing server-to-server streams share: the XML parser with the c2s limits,
// stream errors (sent and received), the closing handshake of RFC 6120 §4.4, whitespace
// keepalives, the idle timeout (`s2s.idle_timeout`) and the bound on unsent output.

import { randomBytes } from 'node:crypto';
import { XmlStreamParser, type StreamHeader } from '../xml/parser.js';
import type { XmlElement } from '../xml/element.js';
import { NS } from '../protocol/ns.js';
import { StreamError } from '../errors.js';
import type { Logger } from '../log.js';
import type { S2sTransport } from './transport.js';
import type { S2sManager } from './manager.js';

export type S2sPhase = 'connecting' | 'header' | 'open' | 'closing' | 'closed';
export type AuthMethod = 'sasl-external' | 'dialback' | 'dialback-certificate';

/** Waiting this long for the peer's </stream:stream> after ours (RFC 6120 §4.4 allows a timeout). */
const CLOSE_GRACE_MS = 5_000;

export abstract class S2sStream {
  readonly connId = randomBytes(4).toString('hex');
  readonly log: Logger;
  readonly openedAt = Date.now();
  protected transport: S2sTransport | undefined;
  protected readonly parser: XmlStreamParser;
  protected phase: S2sPhase = 'connecting';
  protected closeReason = 'connection closed';
  /** The stream id of the current stream (ours on streams we accept, the peer's on those we open). */
  streamId = '';
  private idleTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lastRead = Date.now();
  private readonly onGone: (() => void)[] = [];

  constructor(protected readonly manager: S2sManager, readonly direction: 'in' | 'out', log: Logger) {
    this.log = log.child({ s2s: direction, conn: this.connId });
    const limits = manager.limits;
    this.parser = new XmlStreamParser(
      {
        streamOpen: (header) => this.onStreamOpen(header),
        stanza: (el, ns) => this.onTopLevel(el, ns),
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
  }

  get closed(): boolean {
    return this.phase === 'closing' || this.phase === 'closed';
  }

  get secure(): boolean {
    return this.transport?.secure ?? false;
  }

  get remoteAddress(): string {
    return this.transport?.remoteAddress ?? 'none';
  }

  protected abstract onStreamOpen(header: StreamHeader): void;
  protected abstract onElement(el: XmlElement, ns: string): void;
  /** The connection is gone (after a close, an error, or a lost socket). */
  protected abstract onClosed(reason: string): void;
  /** RFC 6120 §4.9.1.1: a stream error needs a stream header first; the receiving side may owe one. */
  protected ensureHeader(): void {}

  protected attachTransport(transport: S2sTransport): void {
    this.transport = transport;
    transport.attach({
      data: (chunk) => {
        this.lastRead = Date.now();
        this.parser.write(chunk);
      },
      closed: (reason) => this.transportClosed(reason),
    });
    const interval = this.manager.config.keepalive_interval;
    this.keepaliveTimer = setInterval(() => this.keepalive(interval), Math.max(1000, Math.floor(interval / 2)));
    this.keepaliveTimer.unref();
  }

  private keepalive(interval: number): void {
    // RFC 6120 §4.6.1: whitespace after a period of silence keeps NATs open and finds dead links.
    if (this.phase === 'open' && Date.now() - this.lastRead >= interval) this.transport?.keepalive();
  }

  private onTopLevel(el: XmlElement, ns: string): void {
    if (ns === NS.STREAMS && el.name === 'error') {
      const condition = el.elements().find((child) => child.attrs.xmlns === NS.STREAM_ERRORS)?.name ?? 'undefined-condition';
      // A peer going down or timing us out is not misbehaving; anything else is worth a warning.
      const routine = condition === 'system-shutdown' || condition === 'connection-timeout' || condition === 'reset';
      this.log[routine ? 'info' : 'warn']({ condition, text: el.getChildText('text', NS.STREAM_ERRORS) }, 's2s stream error from peer');
      this.peerStreamError(condition);
      this.closeReason = `stream error from peer: ${condition}`;
      this.closeStream();
      return;
    }
    this.onElement(el, ns);
  }

  /** Outgoing streams turn a peer's stream error into bounces; see S2sOutgoing. */
  protected peerStreamError(_condition: string): void {}

  /** Writes a top-level element (nothing once closed); a peer that does not read is dropped. */
  protected write(el: XmlElement): void {
    const transport = this.transport;
    if (!transport || this.phase === 'closed') return;
    transport.writeElement(el);
    if (transport.writableLength > this.manager.limits.max_write_queue && !this.closed) {
      this.log.warn({ queued: transport.writableLength }, 's2s peer is not reading; closing');
      this.closeReason = 'write queue full';
      this.phase = 'closing';
      transport.destroy();
    }
  }

  /** Stanza traffic, in or out: the connection is in use (restarts the idle timer). */
  protected touch(): void {
    this.idleTimer?.refresh();
  }

  protected armIdleTimer(): void {
    if (this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      if (this.closed) return;
      this.log.info({ idle_ms: this.manager.config.idle_timeout }, 's2s connection idle; closing');
      this.closeReason = 'idle';
      this.close();
    }, this.manager.config.idle_timeout);
    this.idleTimer.unref();
  }

  /** A stream error, then the closing handshake. */
  fail(error: StreamError): void {
    if (this.closed) return;
    this.ensureHeader();
    // Ending a stream for shutdown, silence or policy is routine; anything else answers peer misbehaviour.
    const routine = ['system-shutdown', 'connection-timeout', 'policy-violation'].includes(error.condition);
    this.log[routine ? 'info' : 'warn']({ condition: error.condition, text: error.text }, 's2s stream error sent');
    this.write(error.toElement());
    this.closeReason = `stream error: ${error.condition}`;
    this.closeStream();
  }

  /** A clean close: </stream:stream>, then wait (briefly) for the peer's. */
  close(): void {
    if (this.closed) return;
    this.ensureHeader();
    this.closeStream();
  }

  protected closeStream(): void {
    if (this.closed) return;
    this.phase = 'closing';
    this.beforeClose();
    const transport = this.transport;
    if (!transport) {
      this.transportClosed(this.closeReason);
      return;
    }
    transport.closeStream();
    setTimeout(() => transport.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Runs once when the stream starts closing (the stream leaves the manager's tables here). */
  protected beforeClose(): void {}

  private onPeerClose(): void {
    if (this.phase === 'closing') {
      this.transport?.destroy();
      return;
    }
    this.closeReason = this.closeReason === 'connection closed' ? 'closed by peer' : this.closeReason;
    this.closeStream();
  }

  protected transportClosed(reason: string): void {
    if (this.phase === 'closed') return;
    if (this.closeReason === 'connection closed') this.closeReason = reason;
    const wasClosing = this.phase === 'closing';
    this.phase = 'closed';
    if (!wasClosing) this.beforeClose();
    this.parser.stop();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.onClosed(this.closeReason);
    for (const fn of this.onGone.splice(0)) fn();
  }

  /** Server shutdown: close now, resolve when the socket is gone (or after the grace period). */
  shutdown(error: StreamError): Promise<void> {
    if (this.phase === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => resolve();
      this.onGone.push(done);
      this.fail(error);
      if (!this.transport) done();
    });
  }

}

/** 'valid' in the sense of RFC 6120 §4.7.5: a stream header claims XMPP 1.0 or later. */
export function isVersion1(version: string | undefined): boolean {
  return version !== undefined && /^\d+\.\d+$/.test(version) && Number(version.split('.')[0]) >= 1;
}
