// XEP-0198 Stream Management bookkeeping, free of any I/O: the 'h' counters (which wrap at 2^32)
// and the queue of stanzas sent but not yet acknowledged. server/sm.ts builds the protocol on it.

import type { XmlElement } from './xml/element.js';

/** XEP-0198 §5: "h" counts modulo 2^32. */
export const H_MODULUS = 2 ** 32;

export function incrementH(h: number, by = 1): number {
  return (h + by) % H_MODULUS;
}

/** How many stanzas lie between two counter values (newer − older, modulo 2^32). */
export function distanceH(newer: number, older: number): number {
  return (((newer - older) % H_MODULUS) + H_MODULUS) % H_MODULUS;
}

export function isValidH(value: string | undefined): value is string {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return false;
  return Number(value) < H_MODULUS;
}

/** Stanzas we sent and the client has not acknowledged, oldest first. */
export class UnackedQueue {
  private items: XmlElement[] = [];
  private head = 0;
  /** Counter of the last stanza sent (our outbound 'h'). */
  sent = 0;
  /** Counter of the last stanza the client acknowledged. */
  acked = 0;

  constructor(initialSent = 0) {
    this.sent = initialSent;
    this.acked = initialSent;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(stanza: XmlElement): void {
    this.items.push(stanza);
    this.sent = incrementH(this.sent);
  }

  /**
   * Applies the client's <a h/>: drops what it acknowledged. Returns false when h acknowledges
   * more than we sent (XEP-0198 §4: a stream error, handled-count-too-high).
   */
  ack(h: number): boolean {
    const newlyAcked = distanceH(h, this.acked);
    if (newlyAcked > this.length) return false;
    this.head += newlyAcked;
    this.acked = h;
    // Compact now and then so a long-lived session does not keep a growing array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /** The unacknowledged stanzas, oldest first (for replay on resumption, or offline storage). */
  pending(): XmlElement[] {
    return this.items.slice(this.head);
  }

  /** Empties the queue, returning what it held. */
  drain(): XmlElement[] {
    const out = this.pending();
    this.items = [];
    this.head = 0;
    this.acked = this.sent;
    return out;
  }
}
