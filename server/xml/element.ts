// The in-memory XML element every stanza travels as. Small on purpose: the router, SM and carbons
// only read a stanza's attributes and its first children's (name, xmlns), so this is a plain tree
// with a few lookups and a serializer, nothing more.
//
// Namespace model: an element's namespace is its `xmlns` attribute, or its parent's when absent.
// Top-level stanzas carry no `xmlns` inside Herald: the stream they are written to (jabber:client,
// jabber:server, jabber:component:accept) supplies it, so one element can cross c2s and s2s unchanged.

import { escapeAttr, escapeText } from './escape.js';

export type XmlNode = XmlElement | string;
export type Attrs = Record<string, string>;

export class XmlElement {
  name: string;
  attrs: Attrs;
  children: XmlNode[];

  constructor(name: string, attrs?: Attrs | null, children?: XmlNode[]) {
    this.name = name;
    this.attrs = attrs ?? {};
    this.children = children ?? [];
  }

  /** The namespace declared on this element (not inherited). */
  get xmlns(): string | undefined {
    return this.attrs.xmlns;
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** First child element with this name (and namespace, when given; children that declare no
   * namespace match only when `xmlns` is omitted). */
  getChild(name: string, xmlns?: string): XmlElement | undefined {
    for (const child of this.children) {
      if (typeof child !== 'string' && child.name === name && (xmlns === undefined || child.attrs.xmlns === xmlns)) {
        return child;
      }
    }
    return undefined;
  }

  getChildren(name: string, xmlns?: string): XmlElement[] {
    const out: XmlElement[] = [];
    for (const child of this.children) {
      if (typeof child !== 'string' && child.name === name && (xmlns === undefined || child.attrs.xmlns === xmlns)) {
        out.push(child);
      }
    }
    return out;
  }

  /** First child element in this namespace, whatever its name (the payload of an IQ, say). */
  getChildByNs(xmlns: string): XmlElement | undefined {
    for (const child of this.children) {
      if (typeof child !== 'string' && child.attrs.xmlns === xmlns) return child;
    }
    return undefined;
  }

  /** Child elements, skipping text nodes. */
  elements(): XmlElement[] {
    const out: XmlElement[] = [];
    for (const child of this.children) if (typeof child !== 'string') out.push(child);
    return out;
  }

  firstElement(): XmlElement | undefined {
    for (const child of this.children) if (typeof child !== 'string') return child;
    return undefined;
  }

  /** Concatenated text of the direct text children. */
  text(): string {
    let out = '';
    for (const child of this.children) if (typeof child === 'string') out += child;
    return out;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  /** Appends a child and returns it, for building nested trees top-down. */
  c(name: string, attrs?: Attrs | null): XmlElement {
    const child = new XmlElement(name, attrs);
    this.children.push(child);
    return child;
  }

  append(...nodes: (XmlNode | undefined | null | false)[]): this {
    for (const node of nodes) if (node !== undefined && node !== null && node !== false) this.children.push(node);
    return this;
  }

  /** Appends a text node, returns this. */
  t(text: string): this {
    this.children.push(text);
    return this;
  }

  removeChildren(name: string, xmlns?: string): this {
    this.children = this.children.filter(
      (child) => typeof child === 'string' || child.name !== name || (xmlns !== undefined && child.attrs.xmlns !== xmlns),
    );
    return this;
  }

  /** Deep copy: stanzas are shared between recipients, so anything that edits one clones first. */
  clone(): XmlElement {
    return new XmlElement(
      this.name,
      { ...this.attrs },
      this.children.map((child) => (typeof child === 'string' ? child : child.clone())),
    );
  }

  /** Shallow copy with new attributes merged in (children shared: they are not edited). */
  withAttrs(attrs: Attrs): XmlElement {
    const merged: Attrs = { ...this.attrs };
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (value === undefined) delete merged[key];
      else merged[key] = value;
    }
    return new XmlElement(this.name, merged, this.children);
  }

  toString(): string {
    return serialize(this);
  }
}

/** Builder: `x('iq', { type: 'result', id }, x('query', { xmlns: NS }))`. Undefined attributes are skipped. */
export function x(name: string, attrs?: Record<string, string | undefined> | null, ...children: (XmlNode | undefined | null | false)[]): XmlElement {
  const clean: Attrs = {};
  if (attrs) {
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (value !== undefined) clean[key] = value;
    }
  }
  const el = new XmlElement(name, clean);
  for (const child of children) if (child !== undefined && child !== null && child !== false) el.children.push(child);
  return el;
}

export function serialize(el: XmlElement): string {
  let out = '<' + el.name;
  const attrs = el.attrs;
  for (const key in attrs) {
    const value = attrs[key];
    if (value !== undefined) out += ' ' + key + "='" + escapeAttr(value) + "'";
  }
  const children = el.children;
  if (children.length === 0) return out + '/>';
  out += '>';
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    out += typeof child === 'string' ? escapeText(child) : serialize(child);
  }
  return out + '</' + el.name + '>';
}

/** Structural equality (attribute order ignored), used by tests and by dedup logic. */
export function elementsEqual(a: XmlElement, b: XmlElement): boolean {
  if (a.name !== b.name) return false;
  const ak = Object.keys(a.attrs);
  const bk = Object.keys(b.attrs);
  if (ak.length !== bk.length) return false;
  for (const key of ak) if (a.attrs[key] !== b.attrs[key]) return false;
  if (a.children.length !== b.children.length) return false;
  for (let i = 0; i < a.children.length; i++) {
    const ca = a.children[i]!;
    const cb = b.children[i]!;
    if (typeof ca === 'string' || typeof cb === 'string') {
      if (ca !== cb) return false;
    } else if (!elementsEqual(ca, cb)) return false;
  }
  return true;
}
