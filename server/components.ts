// Services with their own domain inside the process: push.<domain>, conference.<domain>,
// pubsub.<domain>, upload.<domain>. The router hands every stanza addressed to such a domain to its
// LocalComponent, which answers disco#info/items from what was registered and dispatches IQs by
// payload, like the server's own IQ registry. (External XEP-0114 components, issue "Federation",
// plug into the same router table with a connection behind them.)

import type { XmlElement } from './xml/element.js';
import { x } from './xml/element.js';
import type { Jid } from './jid.js';
import type { MaybePromise, RouteEvent } from './hooks.js';
import type { IqHandler } from './iq.js';
import { NS } from './protocol/ns.js';
import { stanzaError } from './errors.js';

/** What the router needs of anything that owns a domain other than the server's. */
export interface ComponentRoute {
  readonly domain: string;
  /** Handles a stanza addressed to this domain; the router bounces what throws a StanzaError. */
  route(event: RouteEvent, reply: (stanza: XmlElement) => void): MaybePromise<void>;
}

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

export type StanzaHandler = (event: RouteEvent) => MaybePromise<void>;

export class LocalComponent implements ComponentRoute {
  readonly identities: DiscoIdentity[] = [];
  readonly features = new Set<string>([NS.DISCO_INFO, NS.DISCO_ITEMS]);
  readonly items: { jid: string; name?: string; node?: string }[] = [];
  /** disco#info extensions (XEP-0128 forms). */
  readonly extensions: XmlElement[] = [];
  private readonly iqHandlers = new Map<string, IqHandler>();
  private messageHandler: StanzaHandler | undefined;
  private presenceHandler: StanzaHandler | undefined;
  /** Answers disco#info for a node (null: no such node); without one, nodes are item-not-found. */
  infoNode: ((node: string, from: Jid) => MaybePromise<XmlElement | null>) | undefined;
  /** Answers disco#items for a node, or for the component itself when node is undefined. */
  itemsQuery: ((node: string | undefined, from: Jid) => MaybePromise<XmlElement | null>) | undefined;
  /**
   * IQ requests to an address with a localpart (room@conference.<domain>, room@…/nick) go here
   * instead of the registrations above, disco included: such a component serves those entities
   * itself (MUC rooms and their occupants).
   */
  entityIq: IqHandler | undefined;

  constructor(readonly domain: string) {}

  iq(type: 'get' | 'set', ns: string, name: string, handler: IqHandler): void {
    const key = `${type} ${name} ${ns}`;
    if (this.iqHandlers.has(key)) throw new Error(`${this.domain}: IQ ${key} is handled twice`);
    this.iqHandlers.set(key, handler);
    this.features.add(ns);
  }

  onMessage(handler: StanzaHandler): void {
    this.messageHandler = handler;
  }

  onPresence(handler: StanzaHandler): void {
    this.presenceHandler = handler;
  }

  async route(event: RouteEvent, reply: (stanza: XmlElement) => void): Promise<void> {
    const { stanza } = event;
    if (stanza.name === 'message') {
      if (this.messageHandler) return this.messageHandler(event);
      if (stanza.attrs.type !== 'error') throw stanzaError.serviceUnavailable();
      return;
    }
    if (stanza.name === 'presence') {
      if (this.presenceHandler) await this.presenceHandler(event);
      return;
    }
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return; // results are matched by the router (sendIq)
    const payload = stanza.firstElement();
    if (!payload) throw stanzaError.badRequest();
    const ns = payload.attrs.xmlns ?? '';
    let result: XmlElement | void | undefined;
    const session = event.origin.kind === 'c2s' ? event.origin.session : undefined;
    if (this.entityIq && event.to.local !== '') result = await this.entityIq({ stanza, payload, from: event.from, to: event.to, session, username: event.to.local });
    else if (type === 'get' && ns === NS.DISCO_INFO && payload.name === 'query') result = await this.discoInfo(payload, event.from);
    else if (type === 'get' && ns === NS.DISCO_ITEMS && payload.name === 'query') result = await this.discoItems(payload, event.from);
    else {
      const handler = this.iqHandlers.get(`${type} ${payload.name} ${ns}`);
      if (!handler) throw stanzaError.serviceUnavailable();
      result = await handler({ stanza, payload, from: event.from, to: event.to, session, username: event.to.local });
    }
    reply(x('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, result ?? undefined));
  }

  private async discoInfo(query: XmlElement, from: Jid): Promise<XmlElement> {
    const node = query.attrs.node;
    if (node !== undefined) {
      const answer = this.infoNode ? await this.infoNode(node, from) : null;
      if (!answer) throw stanzaError.itemNotFound();
      return answer;
    }
    const out = x('query', { xmlns: NS.DISCO_INFO });
    for (const id of this.identities) out.append(x('identity', { category: id.category, type: id.type, name: id.name }));
    for (const feature of [...this.features].sort()) out.append(x('feature', { var: feature }));
    out.append(...this.extensions);
    return out;
  }

  private async discoItems(query: XmlElement, from: Jid): Promise<XmlElement> {
    const node = query.attrs.node;
    if (this.itemsQuery) {
      const answer = await this.itemsQuery(node, from);
      if (!answer) throw stanzaError.itemNotFound();
      return answer;
    }
    if (node !== undefined) throw stanzaError.itemNotFound();
    const out = x('query', { xmlns: NS.DISCO_ITEMS });
    for (const item of this.items) out.append(x('item', { jid: item.jid, name: item.name, node: item.node }));
    return out;
  }
}
