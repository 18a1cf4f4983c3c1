// Shared by the wire tests of the small feature modules (disco, vcard, private, blocking, ...).
import assert from 'node:assert/strict';
import { matchElement, type XmppClient } from '../../bin/testing.js';
import { parseXml } from '../../server/xml/parser.js';
import type { XmlElement } from '../../server/xml/element.js';

/** Fails unless `el` matches the scansion-like pattern (see XmppClient.expect). */
export function assertMatches(el: XmlElement, pattern: string, options: { strict?: boolean } = {}): XmlElement {
  const mismatch = matchElement(parseXml(pattern), el, options.strict ?? false, '');
  assert.equal(mismatch, undefined, `${mismatch}\nexpected: ${pattern}\nreceived: ${el.toString()}`);
  return el;
}

/** Sends an IQ and checks its answer against a pattern (other stanzas may arrive meanwhile). */
export async function iqExpect(client: XmppClient, request: string, pattern: string, options: { strict?: boolean } = {}): Promise<XmlElement> {
  return assertMatches(await client.iq(request), pattern, options);
}

/** An error pattern: `<error type='…'><condition/></error>`, optionally with an application condition. */
export function stanzaErrorPattern(type: string, condition: string, extra = ''): string {
  return `<error type='${type}'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>${extra}</error>`;
}
