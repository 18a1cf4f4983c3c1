// XEP-0059 Result Set Management (1.0): the <set/> a requester pages with, and the one a responder
// describes its page with. Used by MAM (XEP-0313), which pins the item ids to archive ids.
// Left out: nothing of the wire format; whether <index/> (§2.5, out-of-order paging) is honoured is
// up to each user of this codec.

import { x, type XmlElement } from '../xml/element.js';
import { StanzaError } from '../errors.js';

export const NS_RSM = 'http://jabber.org/protocol/rsm';

export interface RsmRequest {
  /** §2.1: the most items the requester wants in this page (0 = just the count, §2.7). */
  max?: number;
  /** §2.2: the page after this item. */
  after?: string;
  /** §2.3: the page before this item; '' (an empty <before/>) asks for the last page (§2.5). */
  before?: string;
  /** §2.6: the page starting at this position of the whole result set. */
  index?: number;
}

export interface RsmPage {
  /** The first and last items of the page (absent when it is empty, §2.7). */
  first?: string;
  /** §2.1: the position of `first` in the whole result set. */
  firstIndex?: number;
  last?: string;
  /** §2.7: the number of items in the whole result set. */
  count?: number;
}

/** Reads a requester's <set/>; a malformed one is a bad-request naming the element. */
export function parseRsm(set: XmlElement): RsmRequest {
  if (set.name !== 'set' || set.attrs.xmlns !== NS_RSM) throw new StanzaError('bad-request', 'not a result set');
  const request: RsmRequest = {};
  const max = set.getChild('max');
  if (max) request.max = nonNegative(max.text(), 'max');
  const index = set.getChild('index');
  if (index) request.index = nonNegative(index.text(), 'index');
  const after = set.getChild('after');
  if (after) {
    // §2.2: <after/> names an item; an empty one names nothing (only <before/> may be empty, §2.5).
    const id = after.text().trim();
    if (id === '') throw new StanzaError('bad-request', 'An RSM <after/> needs an item id');
    request.after = id;
  }
  const before = set.getChild('before');
  if (before) request.before = before.text().trim();
  return request;
}

/** The responder's <set/> (§2.1, §2.7): first (with its index), last and count, each when known. */
export function buildRsm(page: RsmPage): XmlElement {
  const set = x('set', { xmlns: NS_RSM });
  if (page.first !== undefined) {
    set.append(x('first', { index: page.firstIndex === undefined ? undefined : String(page.firstIndex) }, page.first));
  }
  if (page.last !== undefined) set.append(x('last', null, page.last));
  if (page.count !== undefined) set.append(x('count', null, String(page.count)));
  return set;
}

/** §2: <max/> and <index/> hold non-negative integers. */
function nonNegative(text: string, what: string): number {
  const value = text.trim();
  if (!/^\d{1,9}$/.test(value)) throw new StanzaError('bad-request', `RSM <${what}/> must be a non-negative integer`);
  return Number(value);
}

/** A requester's <set/>, for clients and tests. */
export function buildRsmRequest(request: RsmRequest): XmlElement {
  const set = x('set', { xmlns: NS_RSM });
  if (request.max !== undefined) set.append(x('max', null, String(request.max)));
  if (request.after !== undefined) set.append(x('after', null, request.after));
  if (request.before !== undefined) set.append(x('before', null, request.before === '' ? undefined : request.before));
  if (request.index !== undefined) set.append(x('index', null, String(request.index)));
  return set;
}
