// Helpers for the message archive (XEP-0313) wire tests: queries that collect their result
// messages and <fin/>, and the small setups the stories share.
import assert from 'node:assert/strict';
import type { XmppClient } from '../../bin/testing.js';
import type { XmlElement } from '../../server/xml/element.js';

export const MAM = 'urn:xmpp:mam:2';
export const SID = 'urn:xmpp:sid:0';
export const RSM = 'http://jabber.org/protocol/rsm';
export const FORWARD = 'urn:xmpp:forward:0';
export const CARBONS = 'urn:xmpp:carbons:2';
export const HINTS = 'urn:xmpp:hints';

export interface QueryOptions {
  /** Form fields (FORM_TYPE is added); an array gives several values. */
  fields?: Record<string, string | string[]>;
  /** The RSM <set/> content, e.g. `<max>2</max><after>ID</after>`. */
  rsm?: string;
  flip?: boolean;
  to?: string;
  queryId?: string;
}

export interface QueryAnswer {
  /** The result messages, in the order received. */
  results: XmlElement[];
  /** The IQ answer (result or error). */
  iq: XmlElement;
  /** Archive ids of the results, in the order received. */
  ids: string[];
  /** Bodies of the forwarded messages, in the order received. */
  bodies: string[];
  fin: XmlElement | undefined;
  /** <fin/>'s RSM: first, its index, last, count. */
  first: string | undefined;
  firstIndex: string | undefined;
  last: string | undefined;
  count: string | undefined;
  complete: string | undefined;
}

let counter = 0;

export function queryXml(options: QueryOptions = {}, id = `mam${++counter}`): string {
  const queryId = options.queryId ?? `q${counter}`;
  const fields = Object.entries(options.fields ?? {})
    .map(([name, value]) => `<field var='${name}'>${(Array.isArray(value) ? value : [value]).map((v) => `<value>${v}</value>`).join('')}</field>`)
    .join('');
  const form = options.fields ? `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field>${fields}</x>` : '';
  const set = options.rsm !== undefined ? `<set xmlns='${RSM}'>${options.rsm}</set>` : '';
  const to = options.to ? ` to='${options.to}'` : '';
  return `<iq type='set' id='${id}'${to}><query xmlns='${MAM}' queryid='${queryId}'>${form}${set}${options.flip ? '<flip-page/>' : ''}</query></iq>`;
}

/**
 * Sends a query and reads what follows until its IQ answer: every stanza before it must be one of
 * its result messages (XEP-0313 §4.2: the results, then the IQ result).
 */
export async function query(client: XmppClient, options: QueryOptions = {}): Promise<QueryAnswer> {
  const id = `mam${++counter}`;
  const queryId = options.queryId ?? `q${counter}`;
  client.send(queryXml({ ...options, queryId }, id));
  const results: XmlElement[] = [];
  for (;;) {
    const el = await client.next();
    if (el.name === 'iq' && el.attrs.id === id) return answerOf(results, el);
    const result = el.name === 'message' ? el.getChild('result', MAM) : undefined;
    assert.ok(result, `unexpected stanza during the query: ${el.toString()}`);
    assert.equal(result.attrs.queryid, queryId, el.toString());
    results.push(el);
  }
}

function answerOf(results: XmlElement[], iq: XmlElement): QueryAnswer {
  const fin = iq.getChild('fin', MAM);
  const set = fin?.getChild('set', RSM);
  return {
    results,
    iq,
    ids: results.map((r) => r.getChild('result', MAM)!.attrs.id!),
    bodies: results.map((r) => forwardedOf(r).getChildText('body') ?? ''),
    fin,
    first: set?.getChildText('first'),
    firstIndex: set?.getChild('first')?.attrs.index,
    last: set?.getChildText('last'),
    count: set?.getChildText('count'),
    complete: fin?.attrs.complete,
  };
}

/** The archived message inside a result. */
export function forwardedOf(result: XmlElement): XmlElement {
  const message = result.getChild('result', MAM)?.getChild('forwarded', FORWARD)?.getChild('message');
  assert.ok(message, `no forwarded message in ${result.toString()}`);
  return message;
}

/** The stanza-ids a message carries, as 'by id'. */
export function stanzaIds(message: XmlElement): { by: string; id: string }[] {
  return message.getChildren('stanza-id', SID).map((s) => ({ by: s.attrs.by ?? '', id: s.attrs.id ?? '' }));
}

/** The next message with a body that `client` receives (other stanzas are skipped). */
export async function nextMessage(client: XmppClient): Promise<XmlElement> {
  for (;;) {
    const el = await client.next();
    if (el.name === 'message' && (el.getChild('body') || el.getChild('sent', CARBONS) || el.getChild('received', CARBONS))) return el;
  }
}

export async function ok(client: XmppClient, request: string): Promise<XmlElement> {
  const answer = await client.iq(request);
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
