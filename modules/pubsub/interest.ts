// Who wants an account's PEP events: XEP-0163 §4 "filtered notifications". Each resource that sends
// the account presence (its own resources, and contacts subscribed to it) announces entity
// capabilities (XEP-0115); the features behind its 'ver' say which nodes it wants ('<node>+notify').
// The features come from a disco#info query to that resource, cached by verification string once
// the hash checks out (XEP-0115 §5.4), so one query serves every client of the same software.
import { x, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { capsVerification } from '../../server/protocol/xep0115.js';

export interface Caps {
  hash: string | undefined;
  node: string;
  ver: string;
}

export type Features = ReadonlySet<string>;

/** The <c xmlns='http://jabber.org/protocol/caps'/> of a presence, if it has a usable one. */
export function capsOf(presence: XmlElement): Caps | undefined {
  const c = presence.getChild('c', NS.CAPS);
  const node = c?.attrs.node;
  const ver = c?.attrs.ver;
  if (!c || !node || !ver) return undefined;
  return { hash: c.attrs.hash, node, ver };
}

/** Sends a disco#info get and resolves with the answer (result or error). */
export type DiscoQuery = (stanza: XmlElement) => Promise<XmlElement>;

export class CapsCache {
  private readonly known = new Map<string, Features>();
  private readonly pending = new Map<string, Promise<Features | undefined>>();

  constructor(
    private readonly query: DiscoQuery,
    private readonly limit: number,
  ) {}

  /** The features behind `caps` of the resource `jid`, asking it (as `asker`) unless known. */
  features(caps: Caps, jid: string, asker: string): Promise<Features | undefined> {
    const key = `${caps.hash ?? ''}\n${caps.hash ? '' : caps.node}\n${caps.ver}`;
    const known = this.known.get(key);
    if (known) return Promise.resolve(known);
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.ask(caps, jid, asker, key).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async ask(caps: Caps, jid: string, asker: string, key: string): Promise<Features | undefined> {
    // XEP-0115 §6.2: the query names the node and ver the entity announced.
    const answer = await this.query(x('iq', { type: 'get', from: asker, to: jid }, x('query', { xmlns: NS.DISCO_INFO, node: `${caps.node}#${caps.ver}` })));
    const query = answer.attrs.type === 'result' ? answer.getChild('query', NS.DISCO_INFO) : undefined;
    if (!query) return undefined;
    const features: Features = new Set(query.getChildren('feature').map((feature) => feature.attrs.var ?? ''));
    // §5.4: cache only when the answer hashes to the announced ver (a legacy 'ver' without
    // 'hash' is a version label per node, cached as such). A mismatch still serves this resource.
    const algorithm = caps.hash === 'sha-1' || caps.hash === 'sha-256' ? caps.hash : undefined;
    if (caps.hash === undefined || (algorithm && capsVerification(query, algorithm) === caps.ver)) this.remember(key, features);
    return features;
  }

  private remember(key: string, features: Features): void {
    if (this.known.size >= this.limit) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
    this.known.set(key, features);
  }
}

interface Entry {
  ver: string;
  features: Features;
}

/** Per account: the resources that sent it presence with caps, and their features. */
export class InterestTable {
  private readonly byOwner = new Map<string, Map<string, Entry>>();

  get(owner: string, jid: string): Entry | undefined {
    return this.byOwner.get(owner)?.get(jid);
  }

  set(owner: string, jid: string, entry: Entry): void {
    let table = this.byOwner.get(owner);
    if (!table) this.byOwner.set(owner, (table = new Map()));
    table.set(jid, entry);
  }

  remove(owner: string, jid: string): void {
    const table = this.byOwner.get(owner);
    if (!table) return;
    table.delete(jid);
    if (table.size === 0) this.byOwner.delete(owner);
  }

  /** Drops every resource of a bare JID (unavailable from the bare JID, subscription gone). */
  removeBare(owner: string, bare: string): void {
    const table = this.byOwner.get(owner);
    if (!table) return;
    for (const jid of [...table.keys()]) if (jid === bare || jid.startsWith(`${bare}/`)) table.delete(jid);
    if (table.size === 0) this.byOwner.delete(owner);
  }

  forget(owner: string): void {
    this.byOwner.delete(owner);
  }

  /** Drops one resource from every account's table (its session ended). */
  removeResourceEverywhere(jid: string): void {
    for (const owner of [...this.byOwner.keys()]) this.remove(owner, jid);
  }

  /** Drops a bare JID's resources from every account's table (the account behind it was deleted). */
  removeEverywhere(bare: string): void {
    for (const owner of [...this.byOwner.keys()]) this.removeBare(owner, bare);
  }

  /** Full JIDs whose features include `feature` (a '<node>+notify'). */
  interestedIn(owner: string, feature: string): string[] {
    const out: string[] = [];
    for (const [jid, entry] of this.byOwner.get(owner) ?? []) if (entry.features.has(feature)) out.push(jid);
    return out;
  }
}
