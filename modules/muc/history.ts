// XEP-0045 §7.2.14-15 discussion history: the last `historylength` messages of a room, each stamped
// with XEP-0203 delay from the room JID, and the joining occupant's <history/> limits (maxchars,
// maxstanzas, seconds, since). Which messages count as history follows Prosody: a body, an
// encrypted payload, a chat marker or a store hint; never one marked no-store.
import { parseXml, x, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { dateTime } from '../../server/protocol/xep0082.js';
import type { StoredHistory } from './types.js';

/** What the joining occupant asked for (§7.2.15); absent attributes are undefined. */
export interface HistoryRequest {
  maxchars?: number;
  maxstanzas?: number;
  /** Only messages sent at or after this time (ms), from 'seconds' and 'since'. */
  since?: number;
}

interface Entry {
  /** The message as broadcast (from room/nick, no 'to') plus its delay stamp. */
  stanza: XmlElement;
  stamp: number;
  /** Serialized length, computed when a maxchars request first needs it. */
  chars?: number;
}

export class History {
  private entries: Entry[] = [];

  constructor(private limit: number) {}

  get size(): number {
    return this.entries.length;
  }

  setLimit(limit: number): void {
    this.limit = limit;
    this.trim();
  }

  /** Keeps a broadcast message; `roomJid` stamps it (§7.2.14: "the 'from' attribute MUST be set to the JID of the room itself"). */
  add(stanza: XmlElement, roomJid: string, stamp = Date.now()): void {
    if (this.limit === 0) return;
    const copy = stanza.clone();
    delete copy.attrs.to;
    copy.append(x('delay', { xmlns: NS.DELAY, from: roomJid, stamp: dateTime(new Date(stamp)) }));
    this.entries.push({ stanza: copy, stamp });
    this.trim();
  }

  /**
   * The messages to send to a joining occupant, oldest first. §7.2.15: "The service MUST send the
   * smallest amount of traffic that meets any combination of the above criteria" and "complete
   * message stanzas only". Without any limit, the room's default (`fallback`) messages go out.
   */
  select(request: HistoryRequest, fallback: number, to: string): XmlElement[] {
    const maxstanzas = request.maxstanzas ?? (request.maxchars === undefined && request.since === undefined ? fallback : Infinity);
    let count = 0;
    let chars = 0;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i]!;
      if (count + 1 > maxstanzas) break;
      if (request.since !== undefined && entry.stamp < request.since) break;
      if (request.maxchars !== undefined) {
        entry.chars ??= entry.stanza.toString().length;
        chars += entry.chars + to.length + 6; // the to='' the copy gets
        if (chars > request.maxchars) break;
      }
      count++;
    }
    return this.entries.slice(this.entries.length - count).map((e) => e.stanza.withAttrs({ to }));
  }

  toStored(): StoredHistory {
    return { entries: this.entries.map((e) => ({ xml: e.stanza.toString(), stamp: e.stamp })) };
  }

  load(stored: StoredHistory): void {
    this.entries = stored.entries.map((e) => ({ stanza: parseXml(e.xml), stamp: e.stamp }));
    this.trim();
  }

  private trim(): void {
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
  }
}

/** The <history/> of a join presence's <x xmlns='…muc'/>; unreadable attributes are ignored. */
export function parseHistoryRequest(mucX: XmlElement | undefined, now = Date.now()): HistoryRequest {
  const history = mucX?.getChild('history');
  if (!history) return {};
  const request: HistoryRequest = {};
  const int = (name: string) => {
    const value = history.attrs[name];
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
  };
  request.maxchars = int('maxchars');
  request.maxstanzas = int('maxstanzas');
  const seconds = int('seconds');
  const sinceAttr = history.attrs.since;
  const since = sinceAttr !== undefined ? Date.parse(sinceAttr) : NaN;
  const candidates = [seconds !== undefined ? now - seconds * 1000 : NaN, since].filter((t) => !Number.isNaN(t));
  if (candidates.length > 0) request.since = Math.max(...candidates);
  for (const key of Object.keys(request) as (keyof HistoryRequest)[]) if (request[key] === undefined) delete request[key];
  return request;
}

/** Whether a broadcast message belongs in the history (Prosody's muc-message-is-historic). */
export function isHistoric(stanza: XmlElement): boolean {
  if (stanza.getChild('no-store', NS.HINTS) || stanza.getChild('no-permanent-store', NS.HINTS)) return false;
  if (stanza.getChild('store', NS.HINTS)) return true;
  if (stanza.getChild('body')) return true;
  if (stanza.getChild('encryption', 'urn:xmpp:eme:0')) return true;
  return stanza.getChildByNs(NS.CHAT_MARKERS_0) !== undefined;
}
