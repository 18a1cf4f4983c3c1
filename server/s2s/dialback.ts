// XEP-0220 Server Dialback (v1.1.1) pieces shared by both directions: the key (XEP-0185), the
// <db:result/> and <db:verify/> elements, and the dialback error conditions of §2.4.
//
// A key proves that a stream claiming to come from a domain was opened by a server that knows
// that domain's secret: the receiving server asks the domain's authoritative server (found through
// DNS, or s2s.host_map) whether the key is right for (receiving domain, originating domain, stream id).

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { x, type XmlElement } from '../xml/element.js';
import { NS } from '../protocol/ns.js';
import { NS_DIALBACK } from './transport.js';

export { NS_DIALBACK };
export const NS_DIALBACK_FEATURE = 'urn:xmpp:features:dialback';

/** §2.4 table: the conditions a dialback error may carry. */
export type DialbackError =
  | 'item-not-found'
  | 'remote-connection-failed'
  | 'remote-server-not-found'
  | 'remote-server-timeout'
  | 'policy-violation'
  | 'not-authorized'
  | 'forbidden'
  | 'not-acceptable'
  | 'internal-server-error';

/** What a verification came to: the key is right, wrong, or could not be checked. */
export type Verdict = { type: 'valid' } | { type: 'invalid' } | { type: 'error'; condition: DialbackError };

/** Dialback keys: XEP-0185 §3, HMAC-SHA256 keyed with SHA-256 of a secret only this server knows. */
export class DialbackKeys {
  private readonly hashedSecret: string;

  constructor(secret: string | Buffer = randomBytes(32)) {
    // XEP-0185: key = HMAC-SHA256(SHA256(Secret), {Receiving Server, ' ', Originating Server, ' ', Stream ID}),
    // with SHA256(Secret) in hex as the HMAC key, as XEP-0220's worked example computes it. (Only
    // this server ever checks its own keys, so this choice needs no agreement with peers.)
    this.hashedSecret = createHash('sha256').update(secret).digest('hex');
  }

  generate(receiving: string, originating: string, streamId: string): string {
    return createHmac('sha256', this.hashedSecret).update(`${receiving} ${originating} ${streamId}`).digest('hex');
  }

  verify(receiving: string, originating: string, streamId: string, key: string): boolean {
    const expected = Buffer.from(this.generate(receiving, originating, streamId));
    const given = Buffer.from(key.trim().toLowerCase());
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

export function dbResult(from: string, to: string, content: { key: string } | { type: 'valid' | 'invalid' } | { error: DialbackError }): XmlElement {
  if ('key' in content) return x('db:result', { from, to }, content.key);
  if ('type' in content) return x('db:result', { from, to, type: content.type });
  return x('db:result', { from, to, type: 'error' }, errorChild(content.error));
}

export function dbVerify(from: string, to: string, id: string, content: { key: string } | { type: 'valid' | 'invalid' } | { error: DialbackError }): XmlElement {
  if ('key' in content) return x('db:verify', { from, to, id }, content.key);
  if ('type' in content) return x('db:verify', { from, to, id, type: content.type });
  return x('db:verify', { from, to, id, type: 'error' }, errorChild(content.error));
}

/**
 * §2.4: the <error/> of a dialback element is qualified by jabber:server (the stream's default
 * namespace, as written here) and holds a stanza error condition.
 */
function errorChild(condition: DialbackError): XmlElement {
  const type = condition === 'remote-server-timeout' ? 'wait' : condition === 'not-authorized' || condition === 'forbidden' ? 'auth' : 'cancel';
  return x('error', { type }, x(condition, { xmlns: NS.STANZA_ERRORS }));
}

/** The condition inside a received dialback error ('undefined-condition' when there is none). */
export function errorCondition(el: XmlElement): string {
  const error = el.getChild('error');
  const condition = error?.elements().find((child) => child.attrs.xmlns === NS.STANZA_ERRORS);
  return condition?.name ?? 'undefined-condition';
}

/** The stream features offering dialback with error handling (§2.4.1). */
export function dialbackFeature(): XmlElement {
  return x('dialback', { xmlns: NS_DIALBACK_FEATURE }, x('errors'));
}
