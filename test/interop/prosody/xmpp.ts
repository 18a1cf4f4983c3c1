// Client-side steps of the interop checks, as raw XMPP with Herald's test client (server/client.ts:
// STARTTLS, SCRAM-SHA-1, bind — it works against any server): login to Prosody, roster and
// presence, app server registration (XEP-0050 + the mod_push/oshiya commands), XEP-0357 enable,
// XEP-0198 resumption.

import { XmppClient } from '../../../server/client.js';
import { parseForm, formValue } from '../../../server/protocol/xep0004.js';
import type { XmlElement } from '../../../server/xml/element.js';
import type { Prosody } from './prosody.js';

/** Waits in the interop runs: generous, since two servers and a connect-back are involved. */
export const WAIT_MS = 10_000;

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
export const NS_PUSH = 'urn:xmpp:push:0';
export const NS_SM = 'urn:xmpp:sm:3';

export function loginToProsody(prosody: Prosody, username: string, resource: string): Promise<XmppClient> {
  return XmppClient.login({
    port: prosody.ports.c2s,
    domain: prosody.options.domain,
    username,
    password: prosody.options.password,
    resource,
    timeoutMs: WAIT_MS,
  });
}

/** Roster get (RFC 6121 §2.1.3: makes the session "interested") and initial presence. */
export async function goOnline(client: XmppClient): Promise<void> {
  await expectResult(client, `<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>`);
  client.send('<presence/>');
}

export async function rosterItem(client: XmppClient, contact: string): Promise<XmlElement | undefined> {
  const result = await expectResult(client, `<iq type='get' id='roster-${Date.now()}'><query xmlns='jabber:iq:roster'/></iq>`);
  return result
    .getChild('query', 'jabber:iq:roster')
    ?.getChildren('item')
    .find((item) => item.attrs.jid === contact);
}

/** An IQ that must come back as a result; an error throws with the stanza. */
export async function expectResult(client: XmppClient, iq: string): Promise<XmlElement> {
  const answer = await client.iq(iq, WAIT_MS);
  if (answer.attrs.type !== 'result') throw new Error(`IQ failed: ${iq}\n→ ${answer.toString()}`);
  return answer;
}

export interface PushRegistration {
  jid: string;
  node: string;
  secret: string;
}

/** register-push-sandbox at the app server, in one stage (fields with the first execute, as historic clients do). */
export async function registerSandboxDevice(client: XmppClient, appServer: string, deviceId: string): Promise<PushRegistration> {
  const result = await expectResult(
    client,
    `<iq type='set' to='${appServer}' id='register-${deviceId}'>
      <command xmlns='${NS_COMMANDS}' node='register-push-sandbox' action='execute'>
        <x xmlns='jabber:x:data' type='submit'>
          <field var='token'><value>token-${deviceId}</value></field>
          <field var='device-id'><value>${deviceId}</value></field>
          <field var='device-name'><value>Interop ${deviceId}</value></field>
        </x>
      </command>
    </iq>`,
  );
  const command = result.getChild('command', NS_COMMANDS);
  const x = command?.getChild('x', 'jabber:x:data');
  if (command?.attrs.status !== 'completed' || !x) throw new Error(`registration not completed: ${result.toString()}`);
  const form = parseForm(x);
  const jid = formValue(form, 'jid');
  const node = formValue(form, 'node');
  const secret = formValue(form, 'secret');
  if (!jid || !node || !secret) throw new Error(`registration result lacks jid, node or secret: ${result.toString()}`);
  return { jid, node, secret };
}

/** XEP-0357 enable on the user's own server, with the secret in publish-options. */
export async function enablePush(client: XmppClient, registration: PushRegistration): Promise<void> {
  await expectResult(
    client,
    `<iq type='set' id='push-enable'>
      <enable xmlns='${NS_PUSH}' jid='${registration.jid}' node='${registration.node}'>
        <x xmlns='jabber:x:data' type='submit'>
          <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
          <field var='secret'><value>${registration.secret}</value></field>
        </x>
      </enable>
    </iq>`,
  );
}

/** XEP-0198 with resumption; returns the resumption id. Sent last, so nothing is left unacknowledged. */
export async function enableResumption(client: XmppClient): Promise<string> {
  client.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
  const enabled = await client.waitFor(`<enabled xmlns='${NS_SM}'/>`, { timeoutMs: WAIT_MS });
  if (!enabled.attrs.id) throw new Error(`stream management enabled without resumption: ${enabled.toString()}`);
  return enabled.attrs.id;
}

/** A new connection that resumes a hibernated session (h = 0: nothing was acknowledged). */
export async function resumeOnProsody(prosody: Prosody, username: string, previd: string): Promise<{ client: XmppClient; answer: XmlElement }> {
  const client = await XmppClient.connect({ port: prosody.ports.c2s, domain: prosody.options.domain, timeoutMs: WAIT_MS });
  await client.startTls();
  await client.authenticate(username, prosody.options.password);
  client.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='0'/>`);
  const answer = await client.next(WAIT_MS);
  return { client, answer };
}

/** An IQ that must come back as an error of this type and condition (RFC 6120 §8.3). */
export async function expectError(client: XmppClient, iq: string, type: string, condition: string): Promise<XmlElement> {
  const answer = await client.iq(iq, WAIT_MS);
  const error = answer.getChild('error');
  const got = error?.elements().find((child) => child.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;
  if (answer.attrs.type !== 'error' || error?.attrs.type !== type || got !== condition) {
    throw new Error(`expected a ${type}/${condition} error for: ${iq}\n→ ${answer.toString()}`);
  }
  return answer;
}

/** An ad-hoc execute of `node` at `to` with a submitted form of these fields. */
export function commandIq(to: string, node: string, id: string, fields: Record<string, string>): string {
  const values = Object.entries(fields)
    .map(([name, value]) => `<field var='${name}'><value>${value}</value></field>`)
    .join('');
  return `<iq type='set' to='${to}' id='${id}'><command xmlns='${NS_COMMANDS}' node='${node}' action='execute'><x xmlns='jabber:x:data' type='submit'>${values}</x></command></iq>`;
}

/**
 * Acknowledges (XEP-0198 <a/>) every stanza received since `resumed`, then closes the stream
 * cleanly. Without the ack Prosody treats the replayed stanzas as undelivered when the session ends
 * (offline storage, and mod_cloud_notify pushes them again).
 */
export async function ackAndClose(client: XmppClient, resumed: XmlElement): Promise<void> {
  const since = client.received.indexOf(resumed);
  const handled = client.received.slice(since + 1).filter((el) => el.name === 'message' || el.name === 'presence' || el.name === 'iq').length;
  client.send(`<a xmlns='${NS_SM}' h='${handled}'/>`);
  await client.close();
}
