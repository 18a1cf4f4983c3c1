// Shared by the push service and app server wire tests: ad-hoc command requests, registering a
// device, and XEP-0357 publishes as a user's server sends them.
import assert from 'node:assert/strict';
import type { XmppClient } from '../../bin/testing.js';
import type { XmlElement } from '../../server/xml/element.js';
import { buildForm, formValue, parseForm, submitForm, type DataForm } from '../../server/protocol/xep0004.js';

export const CMD = 'http://jabber.org/protocol/commands';
export const PUBSUB = 'http://jabber.org/protocol/pubsub';

/** An ad-hoc command request to `to`; with `fields`, the form goes with the first execute (one stage). */
export function commandIq(node: string, fields?: Record<string, string | string[] | undefined>, options: { to?: string; sessionid?: string; action?: string } = {}): string {
  const form = fields ? buildForm(submitForm(fields)).toString() : '';
  const session = options.sessionid ? ` sessionid='${options.sessionid}'` : '';
  const action = options.action ?? (options.sessionid ? 'complete' : 'execute');
  return `<iq type='set' to='${options.to ?? 'localhost'}'><command xmlns='${CMD}' node='${node}' action='${action}'${session}>${form}</command></iq>`;
}

/** The data form of a command answer. */
export function commandForm(answer: XmlElement): DataForm {
  const el = answer.getChild('command', CMD)?.getChild('x', 'jabber:x:data');
  assert.ok(el, `no form in ${answer.toString()}`);
  return parseForm(el);
}

export interface Registered {
  jid: string;
  node: string;
  secret: string;
}

/** Registers a device with one execute (as historic clients do) and returns jid/node/secret. */
export async function registerDevice(client: XmppClient, fields: Record<string, string | undefined> = {}, backend = 'sandbox', to = 'localhost'): Promise<Registered> {
  const answer = await client.iq(commandIq(`register-push-${backend}`, fields, { to }));
  assert.equal(answer.attrs.type, 'result', answer.toString());
  assert.equal(answer.getChild('command', CMD)?.attrs.status, 'completed', answer.toString());
  const form = commandForm(answer);
  const registered = { jid: formValue(form, 'jid') ?? '', node: formValue(form, 'node') ?? '', secret: formValue(form, 'secret') ?? '' };
  assert.ok(registered.jid && registered.node && registered.secret, answer.toString());
  return registered;
}

export interface SummaryFields {
  'message-count'?: string;
  'last-message-sender'?: string;
  'last-message-body'?: string;
  'pending-subscription-count'?: string;
  'last-subscription-sender'?: string;
  'last-message-priority'?: string;
}

/** A XEP-0357 §5 publish: the summary as notification, the secret in publish-options (none when undefined). */
export function publishIq(node: string, secret: string | undefined, summary: SummaryFields = { 'message-count': '1' }, options: { to?: string; itemId?: string } = {}): string {
  const fields = Object.entries(summary)
    .map(([name, value]) => `<field var='${name}'><value>${value}</value></field>`)
    .join('');
  const publishOptions =
    secret === undefined
      ? ''
      : `<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field><field var='secret'><value>${secret}</value></field></x></publish-options>`;
  const id = options.itemId ? ` id='${options.itemId}'` : '';
  return (
    `<iq type='set' to='${options.to ?? 'push.localhost'}'><pubsub xmlns='${PUBSUB}'><publish node='${node}'><item${id}>` +
    `<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>${fields}</x></notification>` +
    `</item></publish>${publishOptions}</pubsub></iq>`
  );
}

// ---- stream management, for the end-to-end push story (as in test/wire/sm.test.ts) ----

export const SM = 'urn:xmpp:sm:3';

/** Enables resumable stream management; `mark` is where 'h' counting starts. */
export async function enableSm(client: XmppClient): Promise<{ id: string; mark: number }> {
  client.send(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await client.waitFor(`<enabled xmlns='${SM}'/>`);
  assert.ok(enabled.attrs.id, enabled.toString());
  return { id: enabled.attrs.id, mark: client.received.length };
}

/** What the client counts for 'h': stanzas received since SM was enabled. */
export function handled(client: XmppClient, since: number): number {
  return client.received.slice(since).filter((el) => (el.name === 'message' || el.name === 'presence' || el.name === 'iq') && el.attrs.xmlns === undefined).length;
}
