// XEP-0357 Push Notifications (0.4.1), the app server: devices register through ad-hoc commands
// compatible with the historic mod_push / oshiya interface (commands.ts), get a node and secret on
// the embedded push service (modules/pubsub), and what is published there goes to the device's
// vendor through a backend (backends/, delivery.ts). The app server's JID is the server's own
// domain unless `jid` names another; its disco identity is app-server/<name>.
// Who may register: local accounts, and with `allow_remote` users of other servers too (over
// federation, or the server this app server is a component of: `herald appserver` turns it on).
// Registrations are keyed by the requester's bare JID either way.
import { z } from 'zod';
import { defineModule, duration, type Jid, type LocalComponent, type ModuleContext, type Services } from '../../server/module-api.js';
import type { BackendName, PushBackend } from './backend.js';
import { BACKENDS } from './backends/index.js';
import { SandboxBackend } from './backends/sandbox.js';
import { registerCommands } from './commands.js';
import { createDelivery } from './delivery.js';
import { serveSandboxInbox } from './inbox.js';
import { Registrations } from './registrations.js';

const backendSections = Object.fromEntries(BACKENDS.map((backend) => [backend.name, backend.schema])) as Record<BackendName, z.ZodType<unknown>>;

const appserverConfig = z
  .object({
    jid: z
      .string()
      .regex(/^[^@/\s]+$/, 'a domain, without @ or /')
      .optional()
      .meta({ description: "The app server's JID (where the register-push-* commands are): a label (→ <label>.<domain>) or a domain; absent: the server's own domain", example: 'appserver.example.org' }),
    name: z.string().regex(/^[a-z0-9._-]+$/i, 'letters, digits, dot, dash, underscore').default('herald').describe("Type of the app server's disco identity: app-server/<name>"),
    allow_remote: z.boolean().default(false).describe('Let users of other servers register devices (over federation; `herald appserver` component mode always does)'),
    max_devices: z.number().int().min(1).max(1000).default(20).describe('Devices one account may register; registering another one beyond that is refused'),
    retry_attempts: z.number().int().min(1).max(10).default(3).describe('Delivery attempts when a vendor says "try later" (429, 5xx, network), before the publish gets a wait error'),
    retry_delay: duration().prefault('1s').describe('Wait before the first retry, doubled for each further one (longer when the vendor asks for it)'),
    retry_max_delay: duration().prefault('10s').describe('Longest wait between attempts; a vendor asking for longer gets the wait error at once'),
    max_retrying: z.number().int().min(1).max(100_000).default(1000).describe('Deliveries waiting for a retry at once; beyond that, publishes get wait/resource-constraint at once'),
    ...backendSections,
  })
  .strict();
type AppserverConfig = z.output<typeof appserverConfig>;

export default defineModule({
  name: 'appserver',
  xeps: [{ xep: 357, version: '0.4.1', status: 'partial', note: 'the app server: register-push-* commands (mod_push/oshiya interface) and vendor backends' }],
  depends: ['adhoc', 'pubsub'],
  config: appserverConfig,
  setup(m) {
    const pubsub = m.service('pubsub');
    const backends = createBackends(m);
    const sandbox = backends.get('sandbox');
    const registrations = new Registrations(m.store.map('registrations'), pubsub, (registration) => {
      if (sandbox instanceof SandboxBackend) sandbox.forget(registration.node);
    });

    registerCommands({
      adhoc: m.service('adhoc'),
      target: appServerAddress(m, pubsub),
      registrations,
      backends,
      pushServiceJid: pubsub.jid,
      maxDevices: m.config.max_devices,
      allowed: (from: Jid) => from.local !== '' && (m.config.allow_remote || m.server.hosts.has(from.domain)),
      log: m.log,
    });
    const delivery = createDelivery({
      registrations,
      backends,
      retry: { attempts: m.config.retry_attempts, delayMs: m.config.retry_delay, maxDelayMs: m.config.retry_max_delay, maxWaiting: m.config.max_retrying },
      log: m.log,
    });
    pubsub.onPublish(delivery.handler);
    if (sandbox instanceof SandboxBackend) serveSandboxInbox(m as ModuleContext<unknown>, sandbox, registrations);

    // An account that goes takes its devices along (its nodes would otherwise stay publishable).
    m.on('user:deleted', async ({ username }) => {
      await registrations.removeWhere(`${username}@${m.host}`, () => true);
    });
    m.onStop(async () => {
      delivery.stop();
      for (const backend of backends.values()) await backend.close?.();
    });
  },
});

/** The configured backends: a section that is present and not `enabled: false`. */
function createBackends(m: ModuleContext<AppserverConfig>): Map<BackendName, PushBackend> {
  const out = new Map<BackendName, PushBackend>();
  const sections = m.config as unknown as Record<string, unknown>;
  for (const definition of BACKENDS) {
    const section = sections[definition.name];
    if (section === undefined || (section as { enabled?: unknown }).enabled === false) continue;
    try {
      out.set(definition.name, definition.create(section as object, { log: m.log.child({ backend: definition.name }), dataDir: m.dataDir }));
    } catch (err) {
      throw new Error(`modules.appserver.${definition.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  m.log.debug({ backends: [...out.keys()] }, 'push backends configured');
  return out;
}

/** Where the commands live, with the app-server/<name> identity: the domain, or a component. */
function appServerAddress(m: ModuleContext<AppserverConfig>, pubsub: Services['pubsub']): 'host' | LocalComponent {
  const jid = m.config.jid?.toLowerCase();
  if (jid === undefined || jid === m.host) {
    m.identity('app-server', m.config.name);
    return 'host';
  }
  const domain = jid.includes('.') ? jid : `${jid}.${m.host}`;
  let component: LocalComponent;
  if (domain === pubsub.jid) {
    component = pubsub.component; // app server and push service on one JID, as many deployments do
  } else {
    component = m.component(domain);
    m.discoItem(domain, 'Push app server');
  }
  component.identities.push({ category: 'app-server', type: m.config.name });
  return component;
}
