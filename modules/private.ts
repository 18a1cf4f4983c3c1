// XEP-0049 Private XML Storage (1.2): arbitrary XML an account keeps on the server, stored per
// namespace of the stored element(s). Left out: syncing storage:bookmarks with PEP (XEP-0411).
import { z } from 'zod';
import { defineModule, parseXml, x, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { stanzaError } from '../server/errors.js';

/**
 * Namespaces that would make stored data look like stanzas or nest this protocol. XEP-0049 §2.3
 * lets servers refuse reserved namespaces with not-acceptable; these three are refused always.
 */
const REFUSED_NAMESPACES = new Set<string>([NS.CLIENT, NS.SERVER, NS.PRIVATE]);

export default defineModule({
  name: 'private',
  xeps: [{ xep: 49, version: '1.2', status: 'complete' }],
  config: z.object({}).strict(),
  setup(m) {
    // namespace → the serialized elements stored under it (§2.3: a set MAY carry several).
    const storage = m.store.map<string[]>('private');
    m.feature(NS.PRIVATE);
    m.accountFeature(NS.PRIVATE);

    // Scope 'self' for get and set: another account's data gets forbidden from the router
    // (§2.3: "the server MUST return a Forbidden or Service Unavailable error").
    m.iq.get(
      NS.PRIVATE,
      'query',
      async ({ payload, username }) => {
        const [element, ...more] = payload.elements();
        if (!element) throw missingElement();
        // §2.3: "A client MUST NOT query for more than one namespace in a single IQ get request."
        if (more.length > 0) throw stanzaError.badRequest('Ask for one namespace at a time');
        const stored = await storage.get(username, checkedNamespace(element));
        // Nothing stored: the element asked for comes back empty, as the XEP's clients expect.
        const children = stored ? stored.map((xml) => parseXml(xml)) : [element.clone()];
        return x('query', { xmlns: NS.PRIVATE }, ...children);
      },
      { scope: 'self' },
    );

    m.iq.set(
      NS.PRIVATE,
      'query',
      async ({ payload, username }) => {
        const elements = payload.elements();
        if (elements.length === 0) throw missingElement();
        const byNamespace = new Map<string, string[]>();
        for (const element of elements) {
          const ns = checkedNamespace(element);
          const list = byNamespace.get(ns) ?? [];
          list.push(element.toString());
          byNamespace.set(ns, list);
        }
        for (const [ns, elements] of byNamespace) await storage.set(username, ns, elements);
        m.log.debug({ user: username, namespaces: byNamespace.size }, 'private xml stored');
      },
      { scope: 'self' },
    );
  },
});

// §2.3: "At least one child element with a proper namespace MUST be included; otherwise the
// server MUST respond with a Not Acceptable error." (Its "Bad Format" for a get without a child
// has no RFC 6120 condition; not-acceptable covers both.)
const missingElement = () => stanzaError.notAcceptable('Name the namespace with a child element');

/** The namespace to store an element under, or not-acceptable when it has none or a refused one. */
function checkedNamespace(element: XmlElement): string {
  // A child without its own xmlns is in jabber:iq:private: no proper namespace for stored data.
  const ns = element.attrs.xmlns;
  if (ns === undefined || ns === '' || REFUSED_NAMESPACES.has(ns)) throw stanzaError.notAcceptable('This namespace cannot be stored');
  return ns;
}
