// Helpers for the MUC wire tests (test/wire/muc-*.test.ts): entering, creating and configuring
// rooms, and the XEP-0045 payloads the assertions use.
import assert from 'node:assert/strict';
import type { TestServer, XmppClient } from '../../bin/testing.js';
import type { XmlElement } from '../../server/xml/element.js';

export const MUC = 'http://jabber.org/protocol/muc';
export const MUC_USER = 'http://jabber.org/protocol/muc#user';
export const MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const SERVICE = 'conference.localhost';
export const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** room@conference.localhost (or room@…/nick). */
export function roomJid(room: string, nick?: string): string {
  return `${room}@${SERVICE}${nick === undefined ? '' : `/${nick}`}`;
}

/** An error pattern for expect(): type and condition. */
export function err(type: string, condition: string): string {
  return `<error type='${type}'><${condition} xmlns='${STANZAS}'/></error>`;
}

export interface EnterOptions {
  password?: string;
  /** Attributes of <history/>, e.g. "maxstanzas='2'". */
  history?: string;
  /** Extra children of the presence (show, status). */
  extra?: string;
}

/** The join presence (XEP-0045 §7.2.1). */
export function enterStanza(room: string, nick: string, options: EnterOptions = {}): string {
  const password = options.password !== undefined ? `<password>${options.password}</password>` : '';
  const history = options.history !== undefined ? `<history ${options.history}/>` : '';
  return `<presence to='${roomJid(room, nick)}'>${options.extra ?? ''}<x xmlns='${MUC}'>${password}${history}</x></presence>`;
}

/**
 * Enters a room and reads the whole entry sequence: the others' presences, the self-presence (110),
 * history messages, then the subject. Returns them.
 */
export async function enter(client: XmppClient, room: string, nick: string, options: EnterOptions = {}): Promise<{ others: XmlElement[]; self: XmlElement; history: XmlElement[]; subject: XmlElement }> {
  client.send(enterStanza(room, nick, options));
  const others: XmlElement[] = [];
  let self: XmlElement | undefined;
  const history: XmlElement[] = [];
  for (;;) {
    const el = await client.next();
    if (el.name === 'presence' && el.attrs.type === 'error') throw new Error(`entering ${room} failed: ${el.toString()}`);
    if (el.name === 'presence' && !self) {
      const codes = statusCodes(el);
      if (codes.includes('110')) self = el;
      else others.push(el);
      continue;
    }
    if (el.name === 'message' && el.getChild('subject') && !el.getChild('body')) return { others, self: self!, history, subject: el };
    if (el.name === 'message') history.push(el);
  }
}

/** Creates a room (locked, status 201) and makes it an instant room, or configures it with `config` fields. */
export async function createRoom(client: XmppClient, room: string, nick: string, config?: Record<string, string | string[]>): Promise<void> {
  const { self } = await enter(client, room, nick);
  assert.ok(statusCodes(self).includes('201'), `room ${room} existed already: ${self.toString()}`);
  const answer = await client.iq(`<iq type='set' to='${roomJid(room)}'><query xmlns='${MUC_OWNER}'>${config ? submitForm(config) : `<x xmlns='jabber:x:data' type='submit'/>`}</query></iq>`);
  assert.equal(answer.attrs.type, 'result', answer.toString());
}

/** A muc#roomconfig submit form with these fields. */
export function submitForm(fields: Record<string, string | string[]>): string {
  const out = [`<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>`];
  for (const [name, value] of Object.entries(fields)) {
    const values = (Array.isArray(value) ? value : [value]).map((v) => `<value>${v}</value>`).join('');
    out.push(`<field var='${name.includes('#') ? name : `muc#roomconfig_${name}`}'>${values}</field>`);
  }
  return `<x xmlns='jabber:x:data' type='submit'>${out.join('')}</x>`;
}

/** Sends an owner configuration form; returns the answer. */
export function configure(client: XmppClient, room: string, fields: Record<string, string | string[]>): Promise<XmlElement> {
  return client.iq(`<iq type='set' to='${roomJid(room)}'><query xmlns='${MUC_OWNER}'>${submitForm(fields)}</query></iq>`);
}

/** A muc#admin set with these items (attributes as text, e.g. "nick='x' role='none'"). */
export function adminSet(client: XmppClient, room: string, ...items: string[]): Promise<XmlElement> {
  return client.iq(`<iq type='set' to='${roomJid(room)}'><query xmlns='${MUC_ADMIN}'>${items.map((i) => (i.startsWith('<') ? i : `<item ${i}/>`)).join('')}</query></iq>`);
}

export function adminGet(client: XmppClient, room: string, item: string): Promise<XmlElement> {
  return client.iq(`<iq type='get' to='${roomJid(room)}'><query xmlns='${MUC_ADMIN}'><item ${item}/></query></iq>`);
}

export function say(client: XmppClient, room: string, body: string, id?: string): void {
  client.send(`<message type='groupchat' to='${roomJid(room)}'${id ? ` id='${id}'` : ''}><body>${body}</body></message>`);
}

/** The status codes of a presence's muc#user payload. */
export function statusCodes(el: XmlElement): string[] {
  return (el.getChild('x', MUC_USER)?.getChildren('status') ?? []).map((s) => s.attrs.code ?? '');
}

/** The muc#user <item/> of a presence. */
export function itemOf(el: XmlElement): XmlElement | undefined {
  return el.getChild('x', MUC_USER)?.getChild('item');
}

/** Logs in several users (resource 'r1'), each available (initial presence sent and reflected). */
export async function users(server: TestServer, ...names: string[]): Promise<XmppClient[]> {
  return Promise.all(names.map((name) => available(server, name, 'r1')));
}

/** Logs in and sends initial presence (so messages to the bare JID reach the session). */
export async function available(server: TestServer, name: string, resource: string): Promise<XmppClient> {
  const client = await server.login(name, { resource });
  client.send('<presence/>');
  await client.waitFor(`<presence from='${name}@localhost/${resource}'/>`);
  return client;
}

/** Waits for the next presence from an occupant JID (skipping other stanzas). */
export function presenceFrom(client: XmppClient, room: string, nick: string, type?: string): Promise<XmlElement> {
  return client.waitFor(`<presence from='${roomJid(room, nick)}'${type ? ` type='${type}'` : ''}/>`);
}
