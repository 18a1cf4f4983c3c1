// The app server's XEP-0050 commands, compatible with the historic mod_push / oshiya interface
// (DESIGN.md §4 "Push interface details"): register-push-<backend> (fcm also as gcm),
// list-push-registrations and unregister-push. Each runs in one stage (the form sent with the
// first execute, as historic clients do) or in two (an execute without a form gets the form).
// Registrations belong to the requester's bare JID.
import type { Jid, LocalComponent, ModuleContext, Services } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { field, formValue, formValues, type DataForm, type FormField } from '../../server/protocol/xep0004.js';
import type { AdhocResponse } from '../adhoc.js';
import type { BackendName, PushBackend, PushRegistration } from './backend.js';
import type { Registrations } from './registrations.js';

export interface CommandDeps {
  adhoc: Services['adhoc'];
  /** Where the commands live: the server's own JID, or the app server's component. */
  target: 'host' | LocalComponent;
  registrations: Registrations;
  backends: ReadonlyMap<BackendName, PushBackend>;
  /** The push service's JID, handed to clients with each registration. */
  pushServiceJid: string;
  maxDevices: number;
  /** May this requester use the app server? */
  allowed(from: Jid): boolean;
  log: ModuleContext['log'];
}

/** Command node → backend, with the name clients show. Every backend has one, configured or not. */
const REGISTER_COMMANDS: { node: string; backend: BackendName; name: string }[] = [
  { node: 'register-push-apns', backend: 'apns', name: 'Register an Apple device (APNs)' },
  { node: 'register-push-fcm', backend: 'fcm', name: 'Register an Android device (Firebase Cloud Messaging)' },
  // COMPAT(mod_push, oshiya): FCM's old name, still sent by older Android clients.
  { node: 'register-push-gcm', backend: 'fcm', name: 'Register an Android device (GCM, now FCM)' },
  { node: 'register-push-webpush', backend: 'webpush', name: 'Register a browser (Web Push)' },
  { node: 'register-push-ubuntu', backend: 'ubuntu', name: 'Register an Ubuntu Touch device (UBports push)' },
  { node: 'register-push-wns', backend: 'wns', name: 'Register a Windows device (WNS)' },
  { node: 'register-push-unifiedpush', backend: 'unifiedpush', name: 'Register a UnifiedPush distributor' },
  { node: 'register-push-sandbox', backend: 'sandbox', name: 'Register a test device (sandbox: no vendor, pushes shown at /push/inbox)' },
];

const MAX_DEVICE_TEXT = 256;

export function registerCommands(deps: CommandDeps): void {
  const { adhoc, target, allowed } = deps;
  for (const command of REGISTER_COMMANDS) {
    const backend = deps.backends.get(command.backend);
    adhoc.register(target, {
      node: command.node,
      name: command.name,
      // Only configured backends are offered; asking for another one gets a clear answer below.
      listed: backend !== undefined,
      allowed,
      run: ({ from, form }) => {
        if (!backend) throw stanzaError.serviceUnavailable(`The ${command.backend} push backend is not configured on this server`);
        return registerDevice(deps, backend, command.name, from, form);
      },
    });
  }
  adhoc.register(target, { node: 'list-push-registrations', name: 'List my devices registered for push', allowed, run: ({ from }) => listRegistrations(deps, from) });
  adhoc.register(target, { node: 'unregister-push', name: 'Unregister devices from push', allowed, run: ({ from, form }) => unregister(deps, from, form) });
}

async function registerDevice(deps: CommandDeps, backend: PushBackend, title: string, from: Jid, form: DataForm | undefined): Promise<AdhocResponse> {
  if (form?.type !== 'submit') {
    const fields = [...backend.fields, field('device-id', 'text-single', { label: 'Device ID (default: your resource)' }), field('device-name', 'text-single', { label: 'Device name' })];
    return { status: 'executing', form: { type: 'form', title, fields } };
  }
  const data = backend.parseRegistration(form);
  const deviceId = deviceText(form, 'device-id') ?? (from.resource || 'default');
  const deviceName = deviceText(form, 'device-name');
  const owner = from.bareString;
  const { registration, replaced } = await deps.registrations.register({ owner, backend: backend.name, deviceId, deviceName, data }, deps.maxDevices);
  deps.log.info({ owner, backend: backend.name, device_id: deviceId, node: registration.node, replaced: replaced?.node }, 'push device registered');
  const fields: FormField[] = [
    field('jid', 'jid-single', { label: 'Push service', values: [deps.pushServiceJid] }),
    field('node', 'text-single', { label: 'Node', values: [registration.node] }),
    field('secret', 'text-private', { label: 'Secret', values: [registration.secret] }),
    ...(backend.resultFields?.() ?? []),
  ];
  return { status: 'completed', form: { type: 'result', title: 'Registered', fields } };
}

async function listRegistrations(deps: CommandDeps, from: Jid): Promise<AdhocResponse> {
  const registrations = await deps.registrations.list(from.bareString);
  // No registrations: an empty form (DESIGN.md §4), not an error.
  if (registrations.length === 0) return { status: 'completed', form: { type: 'result', fields: [] } };
  const row = (r: PushRegistration): FormField[] => [
    { var: 'device-id', values: [r.deviceId] },
    { var: 'device-name', values: r.deviceName !== undefined ? [r.deviceName] : [] },
    { var: 'node', values: [r.node] },
  ];
  const reported = [
    field('device-id', 'text-single', { label: 'Device ID' }),
    field('device-name', 'text-single', { label: 'Device name' }),
    field('node', 'text-single', { label: 'Node' }),
  ];
  return { status: 'completed', form: { type: 'result', title: 'Devices registered for push', fields: [], reported, items: registrations.map(row) } };
}

async function unregister(deps: CommandDeps, from: Jid, form: DataForm | undefined): Promise<AdhocResponse> {
  const owner = from.bareString;
  if (form?.type !== 'submit') {
    const mine = await deps.registrations.list(owner);
    const options = mine.map((r) => ({ label: r.deviceName !== undefined ? `${r.deviceName} (${r.deviceId})` : r.deviceId, value: r.node }));
    const fields = [field('device-id', 'text-single', { label: 'Device ID' }), field('nodes', 'list-multi', { label: 'Or these registrations', options })];
    return { status: 'executing', form: { type: 'form', title: 'Unregister devices from push', fields } };
  }
  const deviceId = deviceText(form, 'device-id');
  const nodes = new Set(formValues(form, 'nodes').filter((node) => node !== ''));
  if (deviceId === undefined && nodes.size === 0) throw stanzaError.badRequest('Give a device-id or nodes');
  // Only the requester's own registrations can match; unknown nodes are simply not in the answer.
  const gone = await deps.registrations.removeWhere(owner, (r) => r.deviceId === deviceId || nodes.has(r.node));
  if (gone.length > 0) deps.log.info({ owner, nodes: gone.length }, 'push devices unregistered');
  return { status: 'completed', form: { type: 'result', fields: [field('nodes', 'list-multi', { label: 'Removed', values: gone })] } };
}

function deviceText(form: DataForm, name: string): string | undefined {
  const value = formValue(form, name)?.trim();
  if (value === undefined || value === '') return undefined;
  if (value.length > MAX_DEVICE_TEXT) throw stanzaError.notAcceptable(`${name} is too long`);
  return value;
}
