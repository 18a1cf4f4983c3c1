// XEP-0030 Service Discovery (2.5.0) for the server and its accounts, with XEP-0128 extended info
// and the server's own XEP-0115 Entity Capabilities (1.6.0) in the stream features.
// What the server answers is what modules registered (m.feature, m.identity, m.discoItem,
// m.discoExtension, m.accountFeature); this module only serves it. Left out: contact addresses
// (XEP-0157), nodes other than the caps node; PEP answers for accounts' nodes through accountNodes().
import { z } from 'zod';
import { defineModule, x, type Jid, type MaybePromise, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { capsVerification } from '../server/protocol/xep0115.js';
import { stanzaError } from '../server/errors.js';

/** Answers for one disco node of the server's JID (null: not for this requester / no such node). */
export interface DiscoNodeHandlers {
  info?: (from: Jid) => MaybePromise<XmlElement | null>;
  items?: (from: Jid) => MaybePromise<XmlElement | null>;
}

/** What accounts' bare JIDs answer beyond the disco module's own (PEP nodes, XEP-0163 §9). */
export interface AccountDiscoProvider {
  /** disco#items of the account for `from`. */
  items?(username: string, from: Jid): Promise<XmlElement[]>;
  /** disco#info of a node of the account (null: not this provider's, or not for `from`). */
  info?(username: string, node: string, from: Jid): Promise<XmlElement | null>;
}

export interface DiscoService {
  hostNode(node: string, handlers: DiscoNodeHandlers): void;
  /** An identity of every account's bare JID besides account/registered (PEP: pubsub/pep). */
  accountIdentity(category: string, type: string): void;
  accountNodes(provider: AccountDiscoProvider): void;
}

declare module '../server/module-api.js' {
  interface Services {
    disco: DiscoService;
  }
}

async function answerNode(handler: ((from: Jid) => MaybePromise<XmlElement | null>) | undefined, node: string, from: Jid): Promise<XmlElement> {
  const answer = handler ? await handler(from) : null;
  if (!answer) throw stanzaError.itemNotFound('No such node');
  return answer.withAttrs({ node });
}

/** The XEP-0115 'node': the software's URI, shared by every Herald server. */
export const CAPS_NODE = 'https://herald.im';

export default defineModule({
  name: 'disco',
  xeps: [
    { xep: 30, version: '2.5.0', status: 'complete' },
    { xep: 115, version: '1.6.0', status: 'partial', note: "the server's own capabilities (stream feature, caps node)" },
    { xep: 128, version: '1.0.1', status: 'complete' },
  ],
  depends: ['roster'],
  config: z
    .object({
      name: z.string().min(1).default('Herald').describe('Name in the server identity (server/im) of disco#info'),
    })
    .strict(),
  setup(m) {
    const roster = m.service('roster');
    m.identity('server', 'im', m.config.name);
    m.feature(NS.DISCO_INFO);
    m.feature(NS.DISCO_ITEMS);
    m.accountFeature(NS.DISCO_INFO);
    m.accountFeature(NS.DISCO_ITEMS);

    // Registrations all happen during module setup, so the answer and its hash are built once,
    // on first use (after every module has loaded).
    let cached: { info: XmlElement; ver: string } | undefined;
    const hostInfo = () => {
      if (!cached) {
        const info = buildHostInfo();
        cached = { info, ver: capsVerification(info) };
      }
      return cached;
    };

    function buildHostInfo(): XmlElement {
      const query = x('query', { xmlns: NS.DISCO_INFO });
      const seen = new Set<string>();
      for (const { category, type, name } of m.disco.hostIdentities()) {
        // XEP-0115 §5.4: a category/type pair appears once (else the caps hash is invalid).
        if (seen.has(`${category}/${type}`)) continue;
        seen.add(`${category}/${type}`);
        query.append(x('identity', { category, type, name }));
      }
      for (const feature of m.disco.hostFeatures()) query.append(x('feature', { var: feature }));
      for (const form of m.disco.hostExtensions()) query.append(form.clone());
      return query;
    }

    m.streamFeature('post-auth', () => x('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CAPS_NODE, ver: hostInfo().ver }));

    // Nodes of the server's JID that other modules answer (ad-hoc commands, ...).
    const nodes = new Map<string, DiscoNodeHandlers>();
    const accountIdentities: { category: string; type: string }[] = [{ category: 'account', type: 'registered' }];
    const accountProviders: AccountDiscoProvider[] = [];
    m.provide('disco', {
      hostNode(node, handlers) {
        if (nodes.has(node)) throw new Error(`disco node ${node} is answered twice`);
        nodes.set(node, handlers);
      },
      accountIdentity: (category, type) => void accountIdentities.push({ category, type }),
      accountNodes: (provider) => void accountProviders.push(provider),
    });

    m.iq.get(
      NS.DISCO_INFO,
      'query',
      ({ payload, from }) => {
        const node = payload.attrs.node;
        const { info, ver } = hostInfo();
        if (node === undefined || node === '') return info.clone();
        // XEP-0115 §6.2: the caps node answers what the server answers itself.
        if (node === `${CAPS_NODE}#${ver}`) return info.clone().withAttrs({ node });
        return answerNode(nodes.get(node)?.info, node, from);
      },
      { scope: 'host' },
    );

    m.iq.get(
      NS.DISCO_ITEMS,
      'query',
      ({ payload, from }) => {
        const requested = payload.attrs.node;
        if (requested) return answerNode(nodes.get(requested)?.items, requested, from);
        const query = x('query', { xmlns: NS.DISCO_ITEMS });
        for (const { jid, name, node } of m.disco.hostItems()) query.append(x('item', { jid, name, node }));
        return query;
      },
      { scope: 'host' },
    );

    // XEP-0030 §8 (Security Considerations): an account's disco#info is for the account itself and
    // for entities that may see its presence (subscription 'from' or 'both'); everyone else gets
    // service-unavailable, so accounts cannot be harvested. Prosody's mod_disco does the same.
    m.iq.get(
      NS.DISCO_INFO,
      'query',
      async ({ from, username, payload }) => {
        const isOwner = from.local === username && from.domain === m.host;
        if (!isOwner) {
          const subscription = await roster.subscription(username, from.bareString);
          if (subscription !== 'from' && subscription !== 'both') throw stanzaError.serviceUnavailable();
        }
        const node = payload.attrs.node;
        if (node) {
          for (const provider of accountProviders) {
            const answer = await provider.info?.(username, node, from);
            if (answer) return answer.withAttrs({ node });
          }
          throw stanzaError.itemNotFound('No such node');
        }
        const query = x('query', { xmlns: NS.DISCO_INFO }, ...accountIdentities.map((identity) => x('identity', identity)));
        for (const feature of m.disco.accountFeatures()) query.append(x('feature', { var: feature }));
        for (const form of await m.disco.accountExtensions(username, from)) query.append(form);
        return query;
      },
      { scope: 'account' },
    );

    // XEP-0030 §8: items of an account are its available resources, which only subscribers may
    // see; Herald lists none for anyone (an empty result, as the XEP asks for the others). PEP
    // lists the nodes the requester may see (XEP-0163 §9.2).
    m.iq.get(
      NS.DISCO_ITEMS,
      'query',
      async ({ payload, username, from }) => {
        if (payload.attrs.node) throw stanzaError.itemNotFound('No such node');
        const query = x('query', { xmlns: NS.DISCO_ITEMS });
        for (const provider of accountProviders) if (provider.items) query.append(...(await provider.items(username, from)));
        return query;
      },
      { scope: 'account' },
    );
  },
});
