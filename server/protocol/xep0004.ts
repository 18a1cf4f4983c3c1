// XEP-0004 Data Forms (2.13): typed reading and writing of <x xmlns='jabber:x:data'/>. Used by
// ad-hoc commands, push (publish-options, summaries), registration, disco extensions.

import { XmlElement, x } from '../xml/element.js';
import { NS } from './ns.js';
import { StanzaError } from '../errors.js';

export type FormType = 'form' | 'submit' | 'cancel' | 'result';
export type FieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

export interface FormField {
  var?: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values: string[];
  options?: { label?: string; value: string }[];
}

export interface DataForm {
  type: FormType;
  title?: string;
  instructions?: string[];
  fields: FormField[];
  /** Multi-item results (XEP-0004 §3.4): the columns, then one field list per row. */
  reported?: FormField[];
  items?: FormField[][];
}

const FORM_TYPES = new Set<string>(['form', 'submit', 'cancel', 'result']);

/** Reads a form; a malformed one is a bad-request (the caller's stanza is at fault). */
export function parseForm(el: XmlElement): DataForm {
  if (el.name !== 'x' || el.attrs.xmlns !== NS.DATA_FORMS) throw new StanzaError('bad-request', 'not a data form');
  const type = el.attrs.type ?? 'form';
  if (!FORM_TYPES.has(type)) throw new StanzaError('bad-request', `unknown data form type ${type}`);
  const form: DataForm = { type: type as FormType, fields: el.getChildren('field').map(parseField) };
  const title = el.getChildText('title');
  if (title !== undefined) form.title = title;
  const instructions = el.getChildren('instructions').map((i) => i.text());
  if (instructions.length > 0) form.instructions = instructions;
  const reported = el.getChild('reported');
  if (reported) form.reported = reported.getChildren('field').map(parseField);
  const items = el.getChildren('item');
  if (items.length > 0) form.items = items.map((item) => item.getChildren('field').map(parseField));
  return form;
}

function parseField(el: XmlElement): FormField {
  const field: FormField = { values: el.getChildren('value').map((v) => v.text()) };
  if (el.attrs.var !== undefined) field.var = el.attrs.var;
  if (el.attrs.type !== undefined) field.type = el.attrs.type as FieldType;
  if (el.attrs.label !== undefined) field.label = el.attrs.label;
  const desc = el.getChildText('desc');
  if (desc !== undefined) field.desc = desc;
  if (el.getChild('required')) field.required = true;
  const options = el.getChildren('option');
  if (options.length > 0) {
    field.options = options.map((o) => {
      const option: { label?: string; value: string } = { value: o.getChildText('value') ?? '' };
      if (o.attrs.label !== undefined) option.label = o.attrs.label;
      return option;
    });
  }
  return field;
}

export function buildForm(form: DataForm): XmlElement {
  const el = x('x', { xmlns: NS.DATA_FORMS, type: form.type });
  if (form.title !== undefined) el.append(x('title', null, form.title));
  for (const line of form.instructions ?? []) el.append(x('instructions', null, line));
  if (form.reported) el.append(x('reported', null, ...form.reported.map(buildField)));
  for (const item of form.items ?? []) el.append(x('item', null, ...item.map(buildField)));
  for (const field of form.fields) el.append(buildField(field));
  return el;
}

function buildField(field: FormField): XmlElement {
  const el = x('field', { var: field.var, type: field.type, label: field.label });
  if (field.desc !== undefined) el.append(x('desc', null, field.desc));
  if (field.required) el.append(x('required'));
  for (const value of field.values) el.append(x('value', null, value));
  for (const option of field.options ?? []) el.append(x('option', { label: option.label }, x('value', null, option.value)));
  return el;
}

/** A field description for building forms: `field('token', 'text-single', { label, required })`. */
export function field(name: string, type: FieldType, extra: Omit<FormField, 'var' | 'type' | 'values'> & { values?: string[] } = {}): FormField {
  return { var: name, type, ...extra, values: extra.values ?? [] };
}

/** The first value of a field, if the form has it. */
export function formValue(form: DataForm, name: string): string | undefined {
  return form.fields.find((f) => f.var === name)?.values[0];
}

export function formValues(form: DataForm, name: string): string[] {
  return form.fields.find((f) => f.var === name)?.values ?? [];
}

/** The hidden FORM_TYPE field (XEP-0068), if any. */
export function formType(form: DataForm): string | undefined {
  return formValue(form, 'FORM_TYPE');
}

/** XEP-0004 §3.3 booleans: '1' / 'true' and '0' / 'false'. */
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  return undefined;
}

/** A submit form from plain values (FORM_TYPE first when given). */
export function submitForm(values: Record<string, string | string[] | boolean | undefined>, formTypeValue?: string): DataForm {
  const fields: FormField[] = [];
  if (formTypeValue !== undefined) fields.push({ var: 'FORM_TYPE', type: 'hidden', values: [formTypeValue] });
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const list = Array.isArray(value) ? value : [typeof value === 'boolean' ? (value ? '1' : '0') : value];
    fields.push({ var: name, values: list });
  }
  return { type: 'submit', fields };
}
