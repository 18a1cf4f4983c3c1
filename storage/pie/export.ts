// `herald export`: Herald's accounts and their data as XEP-0227 (1.1), written as a stream (one
// account in memory at a time) from one read snapshot, so a running server can keep writing.
// Shaped as the other servers read it:
// - one file, <server-data> → <host> → <user>s: what Herald and ejabberd (`ejabberdctl
//   import_piefxis FILE`) import. ejabberd wants its SCRAM values base64-encoded twice: `ejabberd`.
// - `split`: one complete file per user named user@host.xml, the layout Prosody's
//   mod_storage_xep0227 reads (prosody-migrator with `type = "xep0227"`).
// Per user: SCRAM credentials (SCRAM-SHA-1 first), roster, pending subscription requests (as
// <presence xmlns='jabber:client' type='subscribe'/>, which both read), vCard, private XML,
// offline messages, PEP nodes with their items (as Prosody writes them), and the blocklist as
// <blocklist xmlns='urn:xmpp:blocking'/> (Herald's own extension; the others skip it).

import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { x, type XmlElement } from '../../server/xml/element.js';
import { parseXml } from '../../server/xml/parser.js';
import { escapeAttr } from '../../server/xml/escape.js';
import type { AccountRecord } from '../store.js';
import type { RosterItem } from '../../server/protocol/rfc6121.js';
import { NS_PIE, SCRAM_HASH_ORDER, encodeScramCredentials } from './format.js';
import { openHostStores, type HostStores } from './layout.js';
import { pepElements } from './pep.js';
import type { TransactionalStore } from './import.js';

export interface ExportOptions {
  domain: string;
  /** SCRAM values base64-encoded twice, as ejabberd's import_piefxis expects. */
  ejabberd?: boolean;
}

export interface ExportReport {
  accounts: number;
  /** Stored data that could not be read back as XML (left out, with where). */
  skipped: string[];
}

/** Where text goes: a file or stdout, honouring back-pressure. */
export interface TextSink {
  write(text: string): Promise<void>;
}

export function streamSink(stream: NodeJS.WritableStream): TextSink {
  return {
    async write(text) {
      if (!stream.write(text)) await once(stream, 'drain');
    },
  };
}

const HEADER = "<?xml version='1.0' encoding='UTF-8'?>\n";
const NS_CLIENT = 'jabber:client';
const NS_ROSTER = 'jabber:iq:roster';
const NS_PRIVATE = 'jabber:iq:private';
const NS_BLOCKING = 'urn:xmpp:blocking';

/** The whole host as one file. */
export async function exportPie(store: TransactionalStore, sink: TextSink, options: ExportOptions): Promise<ExportReport> {
  return store.transaction('read', async () => {
    const report: ExportReport = { accounts: 0, skipped: [] };
    await sink.write(`${HEADER}<server-data xmlns='${NS_PIE}'>\n  <host jid='${escapeAttr(options.domain)}'>\n`);
    for await (const user of exportUsers(store, options, report)) await sink.write(indented(user, '    '));
    await sink.write('  </host>\n</server-data>\n');
    return report;
  });
}

/** One file per user, DIR/user@host.xml (Prosody's layout), readable only by the owner. */
export async function exportPieSplit(store: TransactionalStore, dir: string, options: ExportOptions): Promise<ExportReport> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return store.transaction('read', async () => {
    const report: ExportReport = { accounts: 0, skipped: [] };
    for await (const user of exportUsers(store, options, report)) {
      const file = join(dir, `${user.attrs.name}@${options.domain}.xml`);
      const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
      await writeAll(out, `${HEADER}<server-data xmlns='${NS_PIE}'>\n  <host jid='${escapeAttr(options.domain)}'>\n${indented(user, '    ')}  </host>\n</server-data>\n`);
    }
    return report;
  });
}

async function writeAll(out: WriteStream, text: string): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    out.once('error', reject);
    out.end(text, () => resolvePromise());
  });
}

/** A user element with one child per line, so an import error points at the right line. */
function indented(user: XmlElement, indent: string): string {
  const open = `${indent}<user name='${escapeAttr(user.attrs.name!)}'`;
  if (user.children.length === 0) return `${open}/>\n`;
  return `${open}>\n${user.elements().map((child) => `${indent}  ${child.toString()}\n`).join('')}${indent}</user>\n`;
}

async function* exportUsers(store: TransactionalStore, options: ExportOptions, report: ExportReport): AsyncGenerator<XmlElement> {
  const stores = openHostStores(store, options.domain);
  for (const username of await store.accounts.list(options.domain)) {
    const account = await store.accounts.get(options.domain, username);
    if (!account) continue;
    yield await userElement(account, stores, options, (what) => report.skipped.push(`${username}: ${what}`));
    report.accounts++;
  }
}

async function userElement(account: AccountRecord, s: HostStores, options: ExportOptions, skip: (what: string) => void): Promise<XmlElement> {
  const name = account.username;
  const bare = `${name}@${options.domain}`;
  const user = x('user', { name });
  for (const hash of SCRAM_HASH_ORDER) {
    const credentials = account.credentials[hash];
    if (credentials) user.append(encodeScramCredentials(hash, credentials, options.ejabberd));
  }
  const roster = await s.rosterItems.list(name);
  if (roster.length > 0) user.append(x('query', { xmlns: NS_ROSTER }, ...roster.map(({ value }) => rosterItem(value))));
  for (const { key, value } of await s.pendingIn.list(name)) {
    const presence = readBack(value, `pending subscription from ${key}`, skip);
    if (presence) user.append(presence.withAttrs({ xmlns: NS_CLIENT, from: key, to: bare, type: 'subscribe' }));
  }
  const vcard = await s.vcard.get(name);
  if (vcard !== undefined) user.append(readBack(vcard, 'vCard', skip));
  const privateXml = (await s.privateXml.list(name)).flatMap(({ key, value }) => value.map((xml) => readBack(xml, `private XML ${key}`, skip)));
  if (privateXml.length > 0) user.append(x('query', { xmlns: NS_PRIVATE }, ...privateXml));
  const offline = await s.offline.list(name);
  if (offline.length > 0) {
    // XEP-0227 §3.4: "qualified by the 'jabber:client' namespace, starting with the oldest".
    const messages = offline.map(({ value }) => readBack(value, 'offline message', skip)?.withAttrs({ xmlns: NS_CLIENT }));
    user.append(x('offline-messages', null, ...messages));
  }
  const blocked = await s.blocklist.get(name);
  if (blocked && blocked.length > 0) user.append(x('blocklist', { xmlns: NS_BLOCKING }, ...blocked.map((jid) => x('item', { jid }))));
  const nodes = await Promise.all((await s.pepNodes.list(name)).map(async ({ key, value }) => ({
    name: key, record: value, items: (await s.pepItems.list(name, { with: key })).map((item) => ({ ...item.value, stamp: item.stamp })),
  })));
  user.append(...pepElements(bare, nodes, skip));
  return user;
}

function rosterItem(item: RosterItem): XmlElement {
  return x(
    'item',
    { jid: item.jid, name: item.name, subscription: item.subscription, ask: item.ask, approved: item.approved ? 'true' : undefined },
    ...item.groups.map((group) => x('group', null, group)),
  );
}

function readBack(xml: string, what: string, skip: (what: string) => void): XmlElement | undefined {
  try {
    return parseXml(xml);
  } catch (err) {
    skip(`${what} is not readable XML (${(err as Error).message})`);
    return undefined;
  }
}
