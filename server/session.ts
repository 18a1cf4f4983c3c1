// A bound client resource: what the router delivers to. It lives as long as the resource does,
// which with stream management (XEP-0198) can outlast the TCP connection that bound it: the
// connection is behind `SessionOutput`, the session itself only knows how to hand stanzas on.

import { randomId } from './random.js';
import type { Jid } from './jid.js';
import type { XmlElement } from './xml/element.js';
import type { StreamError } from './errors.js';
import type { Logger } from './log.js';
import { isStanza, type SmState } from './sm.js';

/** What a session writes through: the c2s stream (TCP, TLS, WebSocket) or, later, an SM queue. */
export interface SessionOutput {
  /** Serializes and writes; false when the connection is gone. */
  write(stanza: XmlElement): boolean;
  /** Resolves once everything written so far has reached the socket (or rejects when it cannot). */
  flushed(): Promise<void>;
  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void;
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly kind: 'tcp' | 'tls' | 'websocket';
}

/** What a session needs from the server, so sessions stay free of hook plumbing. */
export interface SessionHost {
  /** Runs the 'stanza:out' interceptors; false when one held the stanza back or dropped it. */
  outboundFilter(session: Session, stanza: XmlElement): boolean;
  /** A stanza was queued for a hibernated session (XEP-0198). */
  stanzaQueued(session: Session, stanza: XmlElement): void;
  /** Ends a session that has no connection (a hibernated one). */
  endSession(session: Session, reason: string): void;
  /** Changes the XEP-0198 resume window of a session (counted from hibernation). */
  extendHibernation(session: Session, windowMs: number): void;
}

export type SessionState = 'live' | 'hibernated' | 'closed';

export class Session {
  readonly id = randomId(6);
  readonly username: string;
  readonly resource: string;
  readonly host: string;
  readonly bareJid: string;
  readonly fullJid: string;
  private logger: Logger | undefined;
  state: SessionState = 'live';

  // Presence state (owned by the presence module, read by the router for RFC 6121 §8 delivery).
  /** Has sent available presence (initial presence) and not yet unavailable. */
  available = false;
  priority = 0;
  /** Last available presence broadcast by this resource. */
  presence: XmlElement | undefined;
  /** Has requested the roster (an "interested resource", RFC 6121 §2.1.6). */
  interested = false;

  /** Per-module state, indexed by slot number (see ModuleContext.sessionSlot). */
  readonly slots: unknown[] = [];

  /** XEP-0198 state once the client enabled stream management. */
  sm: SmState | undefined;

  constructor(
    readonly jid: Jid,
    private output: SessionOutput,
    private readonly server: SessionHost,
    private readonly parentLog: Logger,
  ) {
    this.username = jid.local;
    this.resource = jid.resource;
    this.host = jid.domain;
    this.bareJid = jid.bareString;
    this.fullJid = jid.toString();
  }

  /** This session's logger (bound to its id and JID), made on first use: most sessions never log at the default level. */
  get log(): Logger {
    return (this.logger ??= this.parentLog.child({ sid: this.id, jid: this.fullJid }));
  }

  /** Info-level events of every session (bound, closed, ...): the level is checked before a logger is made. */
  logInfo(fields: Record<string, unknown>, message: string): void {
    if (this.parentLog.isLevelEnabled('info')) this.log.info(fields, message);
  }

  get connection(): SessionOutput {
    return this.output;
  }

  /** Swaps the connection under this session (stream resumption). */
  attach(output: SessionOutput): void {
    this.output = output;
  }

  /** Delivers a stanza to this resource, through the 'stanza:out' interceptors. */
  send(stanza: XmlElement): boolean {
    if (this.state === 'closed') return false;
    if (!this.server.outboundFilter(this, stanza)) return true; // held back or dropped by a module
    return this.deliver(stanza);
  }

  /** Writes without running 'stanza:out' (replies the session asked for, replays). */
  sendRaw(stanza: XmlElement): boolean {
    if (this.state === 'closed') return false;
    return this.deliver(stanza);
  }

  private deliver(stanza: XmlElement): boolean {
    const sm = this.sm;
    if (sm && isStanza(stanza)) {
      // XEP-0198: every stanza sent is kept until acknowledged; while hibernated it only queues.
      sm.queue.push(stanza);
      if (this.state === 'hibernated') {
        this.server.stanzaQueued(this, stanza);
        return true;
      }
    } else if (this.state === 'hibernated') {
      return false;
    }
    return this.output.write(stanza);
  }

  /** Resolves when everything sent so far has been written to the socket. */
  flushed(): Promise<void> {
    if (this.state !== 'live') return Promise.reject(new Error(`session is ${this.state}`));
    return this.output.flushed();
  }

  /**
   * Gives this session a different XEP-0198 resume window (push-enabled sessions wait longer for
   * their device to come back). No effect without resumable stream management.
   */
  extendHibernation(windowMs: number): void {
    this.server.extendHibernation(this, windowMs);
  }

  /** Ends the session: a live one with a stream error (or a clean close), a hibernated one at once. */
  close(error?: StreamError): void {
    if (this.state === 'hibernated') this.server.endSession(this, error ? `stream error: ${error.condition}` : 'closed');
    else if (this.state === 'live') this.output.close(error);
  }
}
