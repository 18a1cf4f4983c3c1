// XEP-0114 Jabber Component Protocol (1.6): what both ends of a component stream put on the wire —
// the stream headers of jabber:component:accept and the handshake digest. The stream logic lives in
// server/component.ts (the server accepting components) and server/component-client.ts (Herald
// connecting to another server as a component).

import { createHash, timingSafeEqual } from 'node:crypto';
import { escapeAttr } from '../xml/escape.js';
import { NS } from './ns.js';

export const NS_COMPONENT_ACCEPT = NS.COMPONENT;

/**
 * §3 step 1: the component opens the stream naming the domain it serves. No `version`: the
 * protocol predates XMPP 1.0 streams (no features, no SASL).
 */
export function componentStreamHeader(to: string): string {
  return `<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT_ACCEPT}' xmlns:stream='${NS.STREAMS}' to='${escapeAttr(to)}'>`;
}

/** §3 step 2: the server's answer, from = the component's domain, with the stream id the digest uses. */
export function serverStreamHeader(from: string, id: string): string {
  return `<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT_ACCEPT}' xmlns:stream='${NS.STREAMS}' from='${escapeAttr(from)}' id='${escapeAttr(id)}'>`;
}

/**
 * §3 step 3: "the component MUST send a handshake element ... the XML character data of the
 * handshake element is computed according to the following algorithm: 1. Concatenate the Stream ID
 * received from the server with the shared secret. 2. Hash the concatenated string according to the
 * SHA1 algorithm, i.e., SHA1( concat (sid, password)). 3. Ensure that the hash output is in hexadecimal
 * format, not binary or base64. 4. Convert the hash output to all lowercase characters."
 */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1').update(streamId + secret, 'utf8').digest('hex');
}

/** The server's check of a handshake: case-insensitive hex (as Prosody compares), in constant time. */
export function handshakeMatches(supplied: string, streamId: string, secret: string): boolean {
  const expected = Buffer.from(handshakeDigest(streamId, secret), 'utf8');
  const given = Buffer.from(supplied.trim().toLowerCase(), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
