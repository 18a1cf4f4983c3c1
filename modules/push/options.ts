// What an account lets its push notifications say: the `urn:xmpp:push:options` form of the historic
// ejabberd mod_push (royneary/mod_push, 2015), the first XEP-0357 server part with an app server.
//
// XEP-0357 §9: "servers SHOULD allow users to limit the information sent via push notifications",
// and "It is NOT RECOMMENDED to allow in-band modification of push notification content settings.
// Such operations SHOULD be done out-of-band to prevent privilege escalation." Herald allows them in
// band like mod_push, with mod_push's guard: the options belong to the account, and while any push
// service is enabled a later enable may only narrow them (turn fields off), never widen them. A
// stolen session therefore cannot add its own push service and have it receive message bodies the
// owner never allowed; a fresh choice needs every enable disabled first. The admin's `allow_*`
// keys cap what any client may choose.
import type { XmlElement } from '../../server/module-api.js';
import { buildForm, formType, parseBoolean, type DataForm, type FormField } from '../../server/protocol/xep0004.js';
import { stanzaError } from '../../server/errors.js';

export const PUSH_OPTIONS = 'urn:xmpp:push:options';
export const NS_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

export interface PushOptions {
  /** last-message-sender and last-subscription-sender. */
  senders: boolean;
  messageCount: boolean;
  subscriptionCount: boolean;
  /** last-message-body. */
  bodies: boolean;
}

/** The form's field names, in the order mod_push lists them. */
const FIELDS: [keyof PushOptions, string][] = [
  ['senders', 'include-senders'],
  ['messageCount', 'include-message-count'],
  ['subscriptionCount', 'include-subscription-count'],
  ['bodies', 'include-message-bodies'],
];
const FIELD_NAMES = new Set(FIELDS.map(([, name]) => name));

export interface OptionsPolicy {
  /** For an account that did not choose. */
  defaults: PushOptions;
  /** What any client may turn on (admin ceiling). */
  allowSenders: boolean;
  allowBodies: boolean;
}

/** The include-* values a form asks for (a bad boolean is the client's error). */
export function requestedOptions(form: DataForm): Partial<PushOptions> {
  const out: Partial<PushOptions> = {};
  for (const [key, name] of FIELDS) {
    const field = form.fields.find((f) => f.var === name);
    if (!field) continue;
    const value = parseBoolean(field.values[0]);
    if (value === undefined) throw stanzaError.badRequest(`${name} must be a boolean`);
    out[key] = value;
  }
  return out;
}

/** True for the fields this module reads out of a publish-options form (they are not forwarded). */
export function isOptionsField(field: FormField): boolean {
  return field.var !== undefined && FIELD_NAMES.has(field.var);
}

/**
 * The options after an enable. `current` is undefined when the account has no push service enabled
 * (a fresh choice); otherwise each field can only go from on to off.
 */
export function nextOptions(current: PushOptions | undefined, requested: Partial<PushOptions>, policy: OptionsPolicy): PushOptions {
  const base = current ?? policy.defaults;
  const out = { ...base };
  for (const [key] of FIELDS) {
    const wanted = requested[key];
    if (wanted === undefined) continue;
    out[key] = current === undefined ? wanted : base[key] && wanted;
  }
  return capped(out, policy);
}

export function capped(options: PushOptions, policy: OptionsPolicy): PushOptions {
  return { ...options, senders: options.senders && policy.allowSenders, bodies: options.bodies && policy.allowBodies };
}

/** The options as a form: in the account's disco#info (XEP-0128) and in an enable's result. */
export function optionsForm(options: PushOptions): XmlElement {
  return buildForm({
    type: 'result',
    fields: [
      { var: 'FORM_TYPE', type: 'hidden', values: [PUSH_OPTIONS] },
      ...FIELDS.map(([key, name]): FormField => ({ var: name, type: 'boolean', values: [options[key] ? '1' : '0'] })),
    ],
  });
}

/** Splits an enable's forms: publish-options fields to forward, and the options asked for. */
export function splitEnableForms(forms: DataForm[]): { publishOptions: FormField[]; requested: Partial<PushOptions>; optionsForm: boolean } {
  let publishOptions: FormField[] = [];
  let requested: Partial<PushOptions> = {};
  let sawOptionsForm = false;
  for (const form of forms) {
    const type = formType(form);
    if (type === PUSH_OPTIONS) {
      requested = { ...requested, ...requestedOptions(form) };
      sawOptionsForm = true;
    } else if (type === undefined || type === NS_PUBLISH_OPTIONS) {
      // XEP-0357 §5: publish-options the App Server requires (secret, ...), kept verbatim. COMPAT:
      // include-* fields put here instead of in their own form are read as options, not forwarded.
      const inline = form.fields.filter(isOptionsField);
      if (inline.length > 0) {
        requested = { ...requestedOptions({ type: 'submit', fields: inline }), ...requested };
        sawOptionsForm = true;
      }
      publishOptions = form.fields.filter((f) => f.var !== 'FORM_TYPE' && !isOptionsField(f));
    } else {
      throw stanzaError.badRequest(`unexpected form ${type}`);
    }
  }
  return { publishOptions, requested, optionsForm: sawOptionsForm };
}

/** The publish-options form of a publish (XEP-0060 §7.1.5), FORM_TYPE first. */
export function publishOptionsForm(fields: FormField[]): XmlElement {
  return buildForm({ type: 'submit', fields: [{ var: 'FORM_TYPE', type: 'hidden', values: [NS_PUBLISH_OPTIONS] }, ...fields] });
}

/** A field list as stored (JSON): only var and values matter for publish-options. */
export function storedFields(fields: FormField[]): FormField[] {
  return fields.map((f) => ({ var: f.var, values: [...f.values] }));
}
