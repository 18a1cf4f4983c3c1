// XEP-0115 Entity Capabilities (1.6.0) §5.1: the verification string of a disco#info answer.
// Pure, so the disco module (the server's own caps) and tests (the XEP's §5.2 and §5.3 examples)
// share it. Only what generation needs; checking a peer's ver (§5.4) comes with a caps cache.

import { createHash } from 'node:crypto';
import type { XmlElement } from '../xml/element.js';
import { NS } from './ns.js';

/**
 * The 'ver' for a disco#info <query/> (its identities, features and XEP-0128 forms), hashed with
 * `hash` ('sha-1' unless told; the XEP's mandatory-to-implement algorithm) and base64-encoded.
 */
export function capsVerification(query: XmlElement, hash: 'sha-1' | 'sha-256' = 'sha-1'): string {
  let s = '';
  // §5.1 steps 2–3: identities as category/type/lang/name, sorted by category, type, then lang.
  const identities = query.getChildren('identity').map((identity) => ({
    sortKey: [identity.attrs.category ?? '', identity.attrs.type ?? '', identity.attrs['xml:lang'] ?? ''],
    text: `${identity.attrs.category ?? ''}/${identity.attrs.type ?? ''}/${identity.attrs['xml:lang'] ?? ''}/${identity.attrs.name ?? ''}`,
  }));
  identities.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  for (const identity of identities) s += identity.text + '<';
  // Steps 4–5: features.
  const features = query.getChildren('feature').map((feature) => feature.attrs.var ?? '');
  for (const feature of features.sort(octetCompare)) s += feature + '<';
  // Steps 6–7: forms sorted by FORM_TYPE; in each, fields but FORM_TYPE sorted by var, values sorted.
  const forms: { type: string; fields: XmlElement[] }[] = [];
  for (const form of query.getChildren('x', NS.DATA_FORMS)) {
    const fields = form.getChildren('field');
    const formType = fields.find((field) => field.attrs.var === 'FORM_TYPE')?.getChildText('value');
    // A form without FORM_TYPE has no place in the string (§5.4 has receivers ignore it).
    if (formType !== undefined) forms.push({ type: formType, fields: fields.filter((field) => field.attrs.var !== 'FORM_TYPE') });
  }
  forms.sort((a, b) => octetCompare(a.type, b.type));
  for (const form of forms) {
    s += form.type + '<';
    form.fields.sort((a, b) => octetCompare(a.attrs.var ?? '', b.attrs.var ?? ''));
    for (const field of form.fields) {
      s += (field.attrs.var ?? '') + '<';
      const values = field.getChildren('value').map((value) => value.text());
      for (const value of values.sort(octetCompare)) s += value + '<';
    }
  }
  // Steps 8–9: UTF-8, hashed, base64 without whitespace.
  return createHash(hash === 'sha-1' ? 'sha1' : 'sha256').update(s, 'utf8').digest('base64');
}

/** "i;octet" collation (RFC 4790 §9.3): compares the UTF-8 bytes, not UTF-16 code units. */
function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    const order = octetCompare(a[i]!, b[i]!);
    if (order !== 0) return order;
  }
  return 0;
}
