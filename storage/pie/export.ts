// `herald export`: Herald's accounts and their data as XEP-0227 (1.1), written as a stream (one
// account in memory at a time) from one read snapshot, so a running server can keep writing.
// Shaped as the other servers read it:
// - one file, <server-data> → <host> → <user>s: what Herald and ejabberd (`ejabberdctl
//   import_piefxis FILE`) import. ejabberd wants its SCRAM values base64-encoded twice: `ejabberd`.
// - `split`: one complete file per user named user@host.xml, the layout Prosody's
//   mod_storage_xep0227 reads (prosody-migrator with `type = "xep0227"`).
// Per user: SCRAM credentials (SCRAM-SHA-1 first), roster, pending subscription requests (as
// <presence xmlns='jabber:client' type='subscribe'/>, which both read), vCard, private XML,
// offline messages, PEP nodes with their items (as Prosody writes them), the blocklist as
// <blocklist xmlns='urn:xmpp:blocking'/> (Herald's own extension; the others skip it), and last the
// message archive as Prosody writes it (mam.ts), read and written a page at a time, one message a line.

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
import { ARCHIVE_CLOSE, ARCHIVE_OPEN, resultElement } from './mam.js';
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
    for await (const user of exportUsers(store, options, report)) await writeUser(user, '    ', sink);
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
      const file = join(dir, `${user.element.attrs.name}@${options.domain}.xml`);
      const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
      const sink = fileSink(out);
      await sink.write(`${HEADER}<server-data xmlns='${NS_PIE}'>\n  <host jid='${escapeAttr(options.domain)}'>\n`);
      await writeUser(user, '    ', sink);
      await writeAll(out, '  </host>\n</server-data>\n');
    }
    return report;
  });
}

/** Like streamSink, but a file's error (it exists already: EEXIST) rejects the next write or the end. */
function fileSink(out: WriteStream): TextSink {
  let failure: Error | undefined;
  out.on('error', (err) => (failure ??= err));
  return {
    async write(text) {
      if (failure) throw failure;
      if (!out.write(text)) {
        await Promise.race([once(out, 'drain'), once(out, 'error')]);
        if (failure) throw failure;
      }
    },
  };
}

async function writeAll(out: WriteStream, text: string): Promise<void> {
  // 'finish', not end()'s callback: that one is also called when the file could not be opened.
  await new Promise<void>((resolvePromise, reject) => {
    if (out.errored) return reject(out.errored);
    out.once('error', reject);
    out.once('finish', resolvePromise);
    out.end(text);
  });
}

/** A user's element without its archive, and the archive's messages (oldest first), read as written. */
interface ExportedUser {
  element: XmlElement;
  archived: number;
  archive: () => AsyncGenerator<XmlElement>;
}

/** Messages of an archive read at a time: the export holds one page, not a whole history. */
const ARCHIVE_PAGE = 500;

/** A user element with one child per line, so an import error points at the right line. */
async function writeUser(user: ExportedUser, indent: string, sink: TextSink): Promise<void> {
  const { element } = user;
  const open = `${indent}<user name='${escapeAttr(element.attrs.name!)}'`;
  if (element.children.length === 0 && user.archived === 0) return sink.write(`${open}/>\n`);
  await sink.write(`${open}>\n${element.elements().map((child) => `${indent}  ${child.toString()}\n`).join('')}`);
  if (user.archived > 0) {
    await sink.write(`${indent}  ${ARCHIVE_OPEN}\n`);
    for await (const result of user.archive()) await sink.write(`${indent}    ${result.toString()}\n`);
    await sink.write(`${indent}  ${ARCHIVE_CLOSE}\n`);
  }
  await sink.write(`${indent}</user>\n`);
}

async function* exportUsers(store: TransactionalStore, options: ExportOptions, report: ExportReport): AsyncGenerator<ExportedUser> {
  const stores = openHostStores(store, options.domain);
  for (const username of await store.accounts.list(options.domain)) {
    const account = await store.accounts.get(options.domain, username);
    if (!account) continue;
    const skip = (what: string) => report.skipped.push(`${username}: ${what}`);
    const element = await userElement(account, stores, options, skip);
    yield { element, archived: await stores.mam.count(username), archive: () => archiveResults(stores, username, skip) };
    report.accounts++;
  }
}

async function* archiveResults(s: HostStores, username: string, skip: (what: string) => void): AsyncGenerator<XmlElement> {
  let after: number | undefined;
  for (;;) {
    const page = await s.mam.list(username, { ...(after === undefined ? {} : { after }), limit: ARCHIVE_PAGE });
    for (const item of page) {
      const result = resultElement(item.key ?? String(item.id), item.value, item.stamp, skip);
      if (result) yield result;
    }
    if (page.length < ARCHIVE_PAGE) return;
    after = page[page.length - 1]!.id;
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
