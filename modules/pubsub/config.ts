// XEP-0060 node configuration (§8.2, the pubsub#node_config form of §16.4.4), as a typed record:
// the form a node owner edits, the values a submitted form or publish-options (§7.1.5) ask for,
// and the precondition check. Only fields the engine acts on are offered; a submitted field the
// form does not list is ignored, as Prosody does (clients send options servers may not know).
import { buildForm, field, parseBoolean, type DataForm, type FormField } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';
import { NS_PUBSUB_META_DATA, NS_PUBSUB_NODE_CONFIG, preconditionNotMet } from './protocol.js';

export type AccessModel = 'open' | 'presence' | 'roster' | 'whitelist';
export type PublishModel = 'publishers' | 'subscribers' | 'open';
export type SendLastPublished = 'never' | 'on_sub' | 'on_sub_and_presence';

export interface NodeConfig {
  title: string;
  description: string;
  access_model: AccessModel;
  roster_groups_allowed: string[];
  publish_model: PublishModel;
  /** Items kept; 'max' is the service's limit (XEP-0060 §16.4.4 config-node-max). */
  max_items: number | 'max';
  persist_items: boolean;
  send_last_published_item: SendLastPublished;
  deliver_notifications: boolean;
  deliver_payloads: boolean;
  notify_config: boolean;
  notify_delete: boolean;
  notify_retract: boolean;
  notification_type: 'headline' | 'normal';
  /** The payload namespace (pubsub#type), informational. */
  type: string;
}

/** Defaults shared by both services; PEP and the service override what XEP-0163 §8 says. */
export const BASE_DEFAULTS: NodeConfig = {
  title: '',
  description: '',
  access_model: 'open',
  roster_groups_allowed: [],
  publish_model: 'publishers',
  max_items: 1,
  persist_items: true,
  send_last_published_item: 'on_sub',
  deliver_notifications: true,
  deliver_payloads: true,
  notify_config: false,
  notify_delete: true,
  notify_retract: true,
  notification_type: 'headline',
  type: '',
};

type Key = keyof NodeConfig;
interface FieldSpec {
  key: Key;
  type: 'text-single' | 'boolean' | 'list-single' | 'list-multi';
  label: string;
  options?: readonly string[];
}

const ACCESS_MODELS = ['open', 'presence', 'roster', 'whitelist'] as const;
const SPECS: FieldSpec[] = [
  { key: 'title', type: 'text-single', label: 'A friendly name for the node' },
  { key: 'description', type: 'text-single', label: 'A description of the node' },
  { key: 'access_model', type: 'list-single', label: 'Who may subscribe and retrieve items', options: ACCESS_MODELS },
  { key: 'roster_groups_allowed', type: 'list-multi', label: 'Roster groups allowed to subscribe (roster access model)' },
  { key: 'publish_model', type: 'list-single', label: 'Who may publish', options: ['publishers', 'subscribers', 'open'] },
  { key: 'max_items', type: 'text-single', label: "Items to keep (a number or 'max')" },
  { key: 'persist_items', type: 'boolean', label: 'Keep items in storage' },
  { key: 'send_last_published_item', type: 'list-single', label: 'When to send the last published item', options: ['never', 'on_sub', 'on_sub_and_presence'] },
  { key: 'deliver_notifications', type: 'boolean', label: 'Deliver event notifications' },
  { key: 'deliver_payloads', type: 'boolean', label: 'Deliver payloads with event notifications' },
  { key: 'notify_config', type: 'boolean', label: 'Notify subscribers when the configuration changes' },
  { key: 'notify_delete', type: 'boolean', label: 'Notify subscribers when the node is deleted' },
  { key: 'notify_retract', type: 'boolean', label: 'Notify subscribers when items are removed' },
  { key: 'notification_type', type: 'list-single', label: 'Message type of notifications', options: ['normal', 'headline'] },
  { key: 'type', type: 'text-single', label: 'Payload namespace' },
];
const BY_VAR = new Map(SPECS.map((spec) => [`pubsub#${spec.key}`, spec]));

/** §8.2.1: the configuration form an owner gets (type 'form'). */
export function configForm(node: string | undefined, config: NodeConfig, maxItems: number): DataForm {
  const fields: FormField[] = [field('FORM_TYPE', 'hidden', { values: [NS_PUBSUB_NODE_CONFIG] })];
  for (const spec of SPECS) {
    const values = valuesOf(config, spec.key);
    const label = spec.key === 'max_items' ? `${spec.label}, at most ${maxItems}` : spec.label;
    fields.push(field(`pubsub#${spec.key}`, spec.type, { label, values, ...(spec.options && { options: spec.options.map((value) => ({ value })) }) }));
  }
  return { type: 'form', ...(node !== undefined && { title: `Configuration of ${node}` }), fields };
}

/** §5.4: the meta-data form in a node's disco#info. */
export function metaDataForm(config: NodeConfig, owners: string[]): DataForm {
  return {
    type: 'result',
    fields: [
      field('FORM_TYPE', 'hidden', { values: [NS_PUBSUB_META_DATA] }),
      field('pubsub#title', 'text-single', { values: [config.title] }),
      field('pubsub#description', 'text-single', { values: [config.description] }),
      field('pubsub#type', 'text-single', { values: [config.type] }),
      field('pubsub#access_model', 'list-single', { values: [config.access_model] }),
      field('pubsub#owner', 'jid-multi', { values: owners }),
    ],
  };
}

export { buildForm };

function valuesOf(config: NodeConfig, key: Key): string[] {
  const value = config[key];
  if (Array.isArray(value)) return value;
  if (typeof value === 'boolean') return [value ? '1' : '0'];
  return [String(value)];
}

/**
 * The values a submitted form asks for, checked: a value the field cannot take is not-acceptable
 * (§8.2.5.3 "the service MUST return not-acceptable"). Unknown fields are skipped.
 */
export function parseConfig(form: DataForm, maxItems: number): Partial<NodeConfig> {
  const out: Record<string, unknown> = {};
  for (const f of form.fields) {
    const spec = f.var === undefined ? undefined : BY_VAR.get(f.var);
    if (!spec) continue;
    out[spec.key] = parseValue(spec, f.values, maxItems);
  }
  return out as Partial<NodeConfig>;
}

function parseValue(spec: FieldSpec, values: string[], maxItems: number): unknown {
  const first = values[0] ?? '';
  const invalid = () => stanzaError.notAcceptable(`Invalid value for pubsub#${spec.key}`);
  switch (spec.type) {
    case 'boolean': {
      const value = parseBoolean(first);
      if (value === undefined) throw invalid();
      return value;
    }
    case 'list-multi':
      return values;
    case 'list-single':
      if (!spec.options?.includes(first)) throw invalid();
      return first;
    default:
      if (spec.key !== 'max_items') return first;
      if (first === 'max') return 'max';
      // A number above the service's limit is refused rather than silently clamped.
      if (!/^\d{1,9}$/.test(first) || Number(first) < 1 || Number(first) > maxItems) throw invalid();
      return Number(first);
  }
}

/**
 * §7.1.5: "If the node exists and the precondition is not met, the service MUST return a
 * <conflict/> error with a pubsub-specific condition of <precondition-not-met/>."
 */
export function checkPreconditions(config: NodeConfig, wanted: Partial<NodeConfig>): void {
  for (const key of Object.keys(wanted) as Key[]) {
    if (valuesOf(config, key).join('\n') !== valuesOf(wanted as NodeConfig, key).join('\n')) throw preconditionNotMet(`pubsub#${key}`);
  }
}

/** The number of items a node keeps. */
export function itemLimit(config: NodeConfig, maxItems: number): number {
  return config.max_items === 'max' ? maxItems : Math.min(config.max_items, maxItems);
}
