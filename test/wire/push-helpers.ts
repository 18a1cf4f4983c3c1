// Helpers for the push (XEP-0357 server part) wire tests: a fake XMPP Push Service at
// push.localhost that records what is published to it and answers as told, and the stream
// management steps a push story needs.
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { defineModule, type ModuleDefinition } from '../../server/module-api.js';
import { builtinModules } from '../../modules/index.js';
import { StanzaError, type StanzaErrorCondition } from '../../server/errors.js';
import { parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import type { XmlElement } from '../../server/xml/element.js';
import type { PushEnable } from '../../modules/push/store.js';

export const SM = 'urn:xmpp:sm:3';
export const PUSH = 'urn:xmpp:push:0';
const PUBSUB = 'http://jabber.org/protocol/pubsub';

export interface Publish {
  from: string;
  to: string;
  node: string;
  /** The urn:xmpp:push:summary fields, by var (FORM_TYPE included). */
  summary: Record<string, string>;
  /** The publish-options fields, by var; undefined when there were none. */
  options: Record<string, string> | undefined;
  stanza: XmlElement;
}

/** How the fake answers a publish: a result, an error, or nothing at all. */
export type Answer = 'ok' | 'silent' | { type: 'cancel' | 'wait' | 'modify' | 'auth'; condition: StanzaErrorCondition };

export class FakePushService {
  readonly publishes: Publish[] = [];
  private consumed = 0;
  private readonly answers = new Map<string, Answer[]>();
  private waiters: (() => void)[] = [];
  readonly module: ModuleDefinition<unknown>;

  constructor() {
    this.module = defineModule({
      name: 'fake-push-service',
      setup: (m) => {
        const service = m.component('push');
        service.identities.push({ category: 'pubsub', type: 'push' });
        service.features.add(PUSH);
        service.iq('set', PUBSUB, 'pubsub', ({ stanza, payload }) => this.received(stanza, payload));
      },
    });
  }

  /** The next answers for a node, in order (then 'ok'). */
  answer(node: string, ...answers: Answer[]): void {
    this.answers.set(node, [...(this.answers.get(node) ?? []), ...answers]);
  }

  /** The next publish not looked at yet. */
  async next(timeoutMs = 3000): Promise<Publish> {
    const deadline = Date.now() + timeoutMs;
    while (this.consumed >= this.publishes.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no publish within ${timeoutMs} ms (${this.publishes.length} so far)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.publishes[this.consumed++]!;
  }

  /** Fails when a publish arrives within `ms`. */
  async expectNone(ms = 300): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const extra = this.publishes[this.consumed];
    assert.equal(extra, undefined, `unexpected publish: ${extra?.stanza.toString()}`);
  }

  private received(stanza: XmlElement, pubsub: XmlElement): Promise<XmlElement | undefined> | XmlElement {
    const publish = pubsub.getChild('publish');
    const node = publish?.attrs.node ?? '';
    const form = publish?.getChild('item')?.getChild('notification', PUSH)?.getChild('x', 'jabber:x:data');
    const options = pubsub.getChild('publish-options')?.getChild('x', 'jabber:x:data');
    this.publishes.push({
      from: stanza.attrs.from ?? '',
      to: stanza.attrs.to ?? '',
      node,
      summary: form ? fieldsOf(parseForm(form)) : {},
      options: options ? fieldsOf(parseForm(options)) : undefined,
      stanza,
    });
    for (const wake of this.waiters.splice(0)) wake();
    const answer = this.answers.get(node)?.shift() ?? 'ok';
    if (answer === 'silent') return new Promise(() => undefined);
    if (answer !== 'ok') throw new StanzaError(answer.condition, undefined, { type: answer.type });
    return pubsub.clone();
  }
}

function fieldsOf(form: DataForm): Record<string, string> {
  return Object.fromEntries(form.fields.map((f) => [f.var ?? '', f.values.join('\n')]));
}

/** A server with the push module and the fake push service (instead of the embedded one). */
export async function pushServer(
  t: { after(fn: () => unknown): void },
  push: Record<string, unknown> = {},
  config: Record<string, unknown> = {},
): Promise<{ server: TestServer; fake: FakePushService }> {
  const fake = new FakePushService();
  const moduleList = [...builtinModules.filter((m) => m.name !== 'pubsub' && m.name !== 'appserver'), fake.module];
  const server = await startServer(t, { moduleList, config: { ...config, modules: { push: { coalesce_window: '300ms', ...push } } } });
  return { server, fake };
}

/** Enables push for the client's session; returns the answer. */
export async function enablePush(client: XmppClient, node: string, secret = 'S', extraForms = ''): Promise<XmlElement> {
  const answer = await client.iq(
    `<iq type='set'><enable xmlns='${PUSH}' jid='push.localhost' node='${node}'>` +
      `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
      `<field var='secret'><value>${secret}</value></field></x>${extraForms}</enable></iq>`,
  );
  assert.equal(answer.attrs.type, 'result', answer.toString());
  return answer;
}

/** The XEP-0357 options form (urn:xmpp:push:options) with these include-* values. */
export function optionsForm(values: Record<string, boolean>): string {
  const fields = Object.entries(values).map(([name, on]) => `<field var='${name}'><value>${on ? '1' : '0'}</value></field>`);
  return `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:options</value></field>${fields.join('')}</x>`;
}

/** What the push module stored for an account. */
export async function storedEnables(server: TestServer, username: string): Promise<PushEnable[]> {
  return (await server.server.store.map<PushEnable>(server.domain, 'push', 'enables').list(username)).map((e) => e.value);
}

/** Enables resumable stream management; `mark` is where 'h' counting starts. */
export async function enableSm(client: XmppClient): Promise<{ id: string; mark: number }> {
  client.send(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await client.waitFor(`<enabled xmlns='${SM}'/>`);
  return { id: enabled.attrs.id!, mark: client.received.length };
}

/** What the client counts for 'h': stanzas received since SM was enabled. */
export function handled(client: XmppClient, since: number): number {
  return client.received.slice(since).filter((el) => (el.name === 'message' || el.name === 'presence' || el.name === 'iq') && el.attrs.xmlns === undefined).length;
}

/** A new connection for `username` that tries to resume `previd`; returns the client and its answer. */
export async function resumeOn(server: TestServer, username: string, previd: string, h: number): Promise<{ client: XmppClient; answer: XmlElement }> {
  const client = await server.connect();
  await client.startTls();
  await client.authenticate(username, 'password');
  client.send(`<resume xmlns='${SM}' previd='${previd}' h='${h}'/>`);
  return { client, answer: await client.next() };
}

/** Bodies of the next `count` messages the client receives (other stanzas skipped). */
export async function bodies(client: XmppClient, count: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < count) {
    const el = await client.next();
    if (el.name === 'message') out.push(el.getChildText('body') ?? '');
  }
  return out;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** romeo with push and resumable SM enabled on resource 'phone', then his connection dies. */
export async function hibernatedRomeo(server: TestServer, node = 'N1', extraForms = ''): Promise<{ romeo: XmppClient; id: string; mark: number }> {
  const romeo = await server.login('romeo', { resource: 'phone' });
  await enablePush(romeo, node, 'S', extraForms);
  const { id, mark } = await enableSm(romeo);
  romeo.dropTcp();
  await sleep(100); // the server notices the dead socket and hibernates the session
  return { romeo, id, mark };
}
