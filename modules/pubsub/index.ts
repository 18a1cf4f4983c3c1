// XEP-0060 Publish-Subscribe (1.26.0): the module's two services, on one engine (engine.ts, owner.ts,
// requests.ts; the 'pep' module in pep.ts runs the same engine per account).
//  - push.<domain> (disco identity pubsub/push), XEP-0357 Push Notifications (0.4.1): its nodes
//    belong to the app server's device registrations; a user's server publishes a notification to
//    a node with the node's secret in publish-options, and the service hands it to the app server,
//    whose answer (delivered, token gone, try later) becomes the answer to the publish. Push nodes
//    are their own kind (nodes.ts): no items, no subscribers, publish only.
//  - pubsub.<domain> (pubsub/service): general leaf nodes users create and own (service.ts).
import { z } from 'zod';
import { defineModule, type Jid, type LocalComponent, type XmlElement } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { NodeTable, hashSecret, secretMatches, type NodeKind, type NodeRecord } from './nodes.js';
import { NS_PUBSUB, PUBSUB_FEATURES, optionValue, parsePublish, publishResult, pubsubCondition, type PublishRequest } from './publish.js';
import { startService } from './service.js';

export const NS_PUSH_0 = 'urn:xmpp:push:0';

/** A XEP-0357 notification published to a push node, after the secret was checked. */
export interface PushPublish {
  node: string;
  /** Bare JID of the account the node's device belongs to. */
  owner: string;
  itemId: string;
  /** `<notification xmlns='urn:xmpp:push:0'>`, usually with an urn:xmpp:push:summary form. */
  notification: XmlElement;
  /** Who published: the user's server. */
  publisher: Jid;
}

/** Delivers a push; resolves when delivered, throws a StanzaError that becomes the publish's error. */
export type PushPublishHandler = (publish: PushPublish) => Promise<void>;

export interface PubsubService {
  /** The push service's JID (push.<domain> by default). */
  readonly jid: string;
  /** Its component, for a module that serves more on the same JID (an app server configured there). */
  readonly component: LocalComponent;
  /** Creates a push node guarded by `secret`, owned by `owner` (a bare JID). */
  createPushNode(node: string, secret: string, owner: string): Promise<void>;
  /** Deletes a push node; false when there was none. */
  deletePushNode(node: string): Promise<boolean>;
  /** The bare JID owning a push node; undefined when there is no such node. */
  pushNodeOwner(node: string): Promise<string | undefined>;
  /** Sets who delivers what is published to push nodes (the app server). */
  onPublish(handler: PushPublishHandler): void;
}

declare module '../../server/module-api.js' {
  interface Services {
    pubsub: PubsubService;
  }
}

export default defineModule({
  name: 'pubsub',
  xeps: [
    {
      xep: 60,
      version: '1.26.0',
      status: 'partial',
      note: 'leaf nodes with open, presence, roster and whitelist access; no collections, authorize access model, pending subscriptions or leases',
    },
    { xep: 357, version: '0.4.1', status: 'partial', note: 'the push service (pubsub/push) the app server sits behind' },
  ],
  depends: ['roster'],
  config: z
    .object({
      push_service: z
        .string()
        .min(1)
        .default('push')
        .describe('Domain of the embedded XEP-0357 push service: a label (push → push.<domain>) or a full domain'),
      service: z
        .string()
        .min(1)
        .default('pubsub')
        .describe('Domain of the general publish-subscribe service: a label (pubsub → pubsub.<domain>) or a full domain'),
      service_enabled: z.boolean().default(true).describe('Run the general publish-subscribe service'),
      node_creation: z
        .enum(['local', 'anyone', 'nobody'])
        .default('local')
        .describe("Who may create nodes on the general service: 'local' (accounts of this server), 'anyone' (remote users too) or 'nobody'"),
      max_items: z.number().int().min(1).max(100_000).default(1000).describe("Most items a node of the general service keeps (what max_items 'max' means)"),
      default_max_items: z.number().int().min(1).max(100_000).default(20).describe('Items a new node of the general service keeps unless configured otherwise'),
    })
    .strict(),
  setup(m) {
    if (m.config.service_enabled) {
      if (m.config.default_max_items > m.config.max_items) throw new Error('modules.pubsub.default_max_items is larger than max_items');
      startService(m, m.service('roster'), {
        domain: m.config.service,
        nodeCreation: m.config.node_creation,
        maxItems: m.config.max_items,
        defaults: { max_items: m.config.default_max_items },
      });
    }
    const nodes = new NodeTable(m.store.map<NodeRecord>('nodes'));
    const component = m.component(m.config.push_service);
    let pushHandler: PushPublishHandler | undefined;

    component.identities.push({ category: 'pubsub', type: 'push', name: 'Push notifications' });
    component.features.add(NS_PUSH_0);
    for (const feature of PUBSUB_FEATURES) component.features.add(feature);
    m.discoItem(component.domain, 'Push notifications');

    // How each kind of node on the push service takes a publish (push nodes are the one kind there;
    // leaf nodes live on pubsub.<domain> and in PEP, on the engine).
    const publishTo: { [K in NodeKind]: (request: PublishRequest, node: Extract<NodeRecord, { kind: K }>, from: Jid) => Promise<void> } = {
      async push(request, node, from) {
        // XEP-0357 §8: the secret is what keeps strangers from pushing to a device; a publish
        // without it, or with another one, is refused before anything about the node is revealed.
        if (!secretMatches(optionValue(request.options, 'secret'), node.secretHash)) {
          m.log.debug({ node: request.node, publisher: from.toString() }, 'push publish with a wrong or missing secret');
          throw stanzaError.forbidden('Wrong or missing secret in publish-options');
        }
        const notification = request.payload;
        if (notification?.name !== 'notification' || notification.attrs.xmlns !== NS_PUSH_0) {
          throw stanzaError.badRequest('A push node takes <notification xmlns="urn:xmpp:push:0"/>', { app: pubsubCondition('invalid-payload') });
        }
        if (!pushHandler) throw stanzaError.serviceUnavailable('No app server is running');
        await pushHandler({ node: request.node, owner: node.owner, itemId: request.itemId, notification, publisher: from });
      },
    };

    // XEP-0060 §7.1 publish; XEP-0357 §5: the user's server publishes the notification with the
    // node's secret in publish-options.
    component.iq('set', NS_PUBSUB, 'pubsub', async ({ payload, from }) => {
      const request = parsePublish(payload);
      const node = await nodes.get(request.node);
      if (!node) throw stanzaError.itemNotFound('No such node');
      await publishTo[node.kind](request, node, from);
      return publishResult(request.node, request.itemId);
    });

    m.provide('pubsub', {
      jid: component.domain,
      component,
      async createPushNode(node, secret, owner) {
        if (await nodes.get(node)) throw stanzaError.conflict('The node exists');
        await nodes.put(node, { kind: 'push', owner, secretHash: hashSecret(secret), createdAt: Date.now() });
      },
      deletePushNode: (node) => nodes.delete(node),
      async pushNodeOwner(node) {
        const record = await nodes.get(node);
        return record?.kind === 'push' ? record.owner : undefined;
      },
      onPublish(handler) {
        if (pushHandler) throw new Error('a push publish handler is set already');
        pushHandler = handler;
      },
    });
  },
});
