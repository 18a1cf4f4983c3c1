// XEP-0049 Private XML Storage (1.2): arbitrary XML an account keeps on the server, stored per
// namespace of the stored element(s). Another module may keep a namespace in step with its own
// data through the 'private' service (bookmarks: storage:bookmarks ↔ PEP, XEP-0402 §5.3).
import { z } from 'zod';
import { defineModule, parseXml, x, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { stanzaError } from '../server/errors.js';

/** A module that keeps one namespace in step with other data. */
export interface PrivateNamespaceHandler {
  /** The answer to a get, given what is stored (undefined: nothing); undefined answers what is stored. */
  get(username: string, stored: XmlElement[] | undefined): Promise<XmlElement[] | undefined>;
  /** A set stored these elements. */
  stored(username: string, elements: XmlElement[]): Promise<void>;
}

export interface PrivateService {
  handle(ns: string, handler: PrivateNamespaceHandler): void;
  /** What is stored under a namespace (undefined: nothing). */
  get(username: string, ns: string): Promise<XmlElement[] | undefined>;
}

declare module '../server/module-api.js' {
  interface Services {
    private: PrivateService;
  }
}

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
    const handlers = new Map<string, PrivateNamespaceHandler>();
    const load = async (username: string, ns: string) => (await storage.get(username, ns))?.map((xml) => parseXml(xml));
    m.provide('private', {
      handle(ns, handler) {
        if (handlers.has(ns)) throw new Error(`private XML namespace ${ns} is handled twice`);
        handlers.set(ns, handler);
      },
      get: load,
    });
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
        const ns = checkedNamespace(element);
        const stored = await load(username, ns);
        const answer = (await handlers.get(ns)?.get(username, stored)) ?? stored;
        // Nothing stored: the element asked for comes back empty, as the XEP's clients expect.
        const children = answer ?? [element.clone()];
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
        for (const [ns, elements] of byNamespace) {
          await storage.set(username, ns, elements);
          await handlers.get(ns)?.stored(username, elements.map((xml) => parseXml(xml)));
        }
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
