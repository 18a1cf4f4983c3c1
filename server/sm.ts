// XEP-0198 Stream Management (1.6.1): acks both ways, and sessions that outlive their connection.
//
// A session with resumption enabled whose connection is lost without </stream:stream> (TCP reset,
// timeout, TLS error, no ack in time) hibernates: it stays registered, presence stays, and what is
// sent to it queues. A new connection may resume it within the resume window: it then gets exactly
// the stanzas it had not acknowledged, in order, once. If nobody resumes, the session ends: queued
// messages go to the account's other resources or offline storage (nothing is lost), IQ requests
// get their error, and unavailable presence is broadcast ('session:closed').
//
// The 'session:hibernated', 'session:queued', 'session:resumed' and 'session:closed' hooks are what
// the push module (XEP-0357) builds on: push mode is a hibernated session.
//
//   live ──connection lost──▶ hibernated ──<resume/>──▶ live
//     │                          │
//     └──</stream>, error──▶ closed ◀──timeout, queue full, replaced

import { randomId } from './random.js';
import { UnackedQueue } from './sm-counters.js';
import type { Session } from './session.js';
import type { XmlElement } from './xml/element.js';

export const NS_SM = 'urn:xmpp:sm:3';

export interface SmConfig {
  /** Resume window offered when the client does not ask for one (ms). */
  resume_timeout: number;
  /** Longest resume window a client may ask for (ms). */
  max_resume_timeout: number;
  /** Stanzas queued for a hibernated session before it is ended. */
  sm_max_queue: number;
  /** Unacknowledged stanzas after which the server asks for an ack. */
  sm_ack_after: number;
  /** A requested ack that does not come within this time means the connection is dead (ms). */
  sm_ack_timeout: number;
}

/** Stream management state of one session. */
export class SmState {
  /** Resumption id (XEP-0198 §5 'id'); undefined when resumption was not asked for. */
  readonly id: string | undefined;
  /** Resume window (ms). Push-enabled sessions may be given a longer one (extendHibernation). */
  resumeWindow: number;
  /** 'h' of the stanzas received from the client and handled. */
  inbound = 0;
  /** Stanzas sent and not yet acknowledged. */
  readonly queue = new UnackedQueue();
  /** An <r/> is out and its <a/> has not come back. */
  ackRequested = false;
  ackRequestedAt = 0;
  hibernationTimer: NodeJS.Timeout | undefined;
  hibernatedAt = 0;

  constructor(resumable: boolean, resumeWindow: number) {
    this.id = resumable ? randomId(18) : undefined;
    this.resumeWindow = resumeWindow;
  }

  get resumable(): boolean {
    return this.id !== undefined;
  }
}

/** Only message, presence and iq count for XEP-0198. */
export function isStanza(el: XmlElement): boolean {
  return (el.name === 'message' || el.name === 'presence' || el.name === 'iq') && el.attrs.xmlns === undefined;
}

/** The resume window for an <enable max=''/> request: the client's wish, bounded by ours (XEP-0198 §5). */
export function negotiatedWindow(requested: string | undefined, config: SmConfig): number {
  const seconds = requested !== undefined && /^\d{1,9}$/.test(requested) ? Number(requested) : undefined;
  if (seconds === undefined || seconds === 0) return config.resume_timeout;
  return Math.min(seconds * 1000, config.max_resume_timeout);
}

/** Resumable sessions by resumption id. */
export class ResumptionRegistry {
  private readonly byId = new Map<string, Session>();

  add(id: string, session: Session): void {
    this.byId.set(id, session);
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  remove(id: string, session: Session): void {
    if (this.byId.get(id) === session) this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }
}
