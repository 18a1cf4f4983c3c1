// IQ handlers, registered per (type, payload namespace, payload name) as in ejabberd's
// gen_iq_handler, for one of three scopes:
//   'host'    — IQs to the server's domain (ping, version, disco of the server, ...);
//   'account' — IQs to a user's bare JID, from anyone (vCard, disco of an account, last activity);
//   'self'    — IQs a user sends to its own account (roster, private storage, blocking), i.e.
//               with no 'to' or 'to' = own bare JID. Others get 'forbidden'... or nothing: see below.
// An IQ a client sends with no 'to' is tried as 'self', then 'account', then 'host' (RFC 6120 §10.3.3:
// handled by the server on behalf of the account; ping and version fall through to the server).

import type { Jid } from './jid.js';
import type { XmlElement } from './xml/element.js';
import type { Session } from './session.js';
import type { MaybePromise } from './hooks.js';

export type IqScope = 'host' | 'account' | 'self';
export type IqType = 'get' | 'set';

export interface IqRequest {
  /** The whole <iq/>. */
  stanza: XmlElement;
  /** Its single child element (the payload). */
  payload: XmlElement;
  from: Jid;
  /** Where the IQ was addressed (the domain, or the account's bare JID). */
  to: Jid;
  /** The local session that sent it, when it came from one of ours. */
  session: Session | undefined;
  /** For 'account' and 'self' handlers: the localpart of the account addressed. */
  username: string;
}

/** Returns the result payload, or nothing for an empty result. Throw a StanzaError to fail. */
export type IqHandler = (request: IqRequest) => MaybePromise<XmlElement | void | undefined>;

export interface IqRegistration {
  scope: IqScope;
  owner: string;
}

export class IqRegistry {
  private readonly handlers = new Map<string, { handler: IqHandler; owner: string }>();

  private static key(scope: IqScope, type: IqType, ns: string, name: string): string {
    return `${scope} ${type} ${name} ${ns}`;
  }

  register(scope: IqScope, type: IqType, ns: string, name: string, handler: IqHandler, owner: string): void {
    const key = IqRegistry.key(scope, type, ns, name);
    const existing = this.handlers.get(key);
    if (existing) throw new Error(`IQ ${type} ${name} ${ns} (${scope}) is handled by ${existing.owner} already`);
    this.handlers.set(key, { handler, owner });
  }

  find(scope: IqScope, type: IqType, ns: string, name: string): IqHandler | undefined {
    return this.handlers.get(IqRegistry.key(scope, type, ns, name))?.handler;
  }

  /** Namespaces with a handler in a scope (for disco features). */
  namespaces(scope: IqScope): Set<string> {
    const out = new Set<string>();
    for (const key of this.handlers.keys()) {
      const [s, , , ns] = key.split(' ');
      if (s === scope && ns) out.add(ns);
    }
    return out;
  }
}
