// RFC 6121 §2 roster management with roster versioning (RFC 6121 §2.6, formerly XEP-0237 1.3):
// roster get, set and remove for the user's own account, pushes to interested resources, and the
// 'roster' service (RosterService) through which the presence module keeps subscription states.
// Subscription side effects of a removal (§2.5.2: unsubscribe, unsubscribed, unavailable) are the
// presence module's: this module announces the removal with the 'roster:item-removed' hook.
// Versions are an opaque counter per account ("<n>.<epoch>"); a stale version gets the whole roster
// (§2.6.3 allows it) rather than the pushes of the changes, so no change history is kept.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { defineModule, keyedSerial, makeJid, tryParseJid, x, type XmlElement } from '../server/module-api.js';
import { stanzaError } from '../server/errors.js';
import { NS } from '../server/protocol/ns.js';
import type { RosterItem, RosterService } from '../server/protocol/rfc6121.js';

declare module '../server/hooks.js' {
  interface Hooks {
    /** A user removed a contact from the roster (already stored and pushed); `item` is what it was. */
    'roster:item-removed': { username: string; item: RosterItem };
  }
}

interface RosterVersion {
  counter: number;
  /** Random per roster, so a roster recreated under the same name never repeats an old version. */
  epoch: string;
}

export default defineModule({
  name: 'roster',
  xeps: [{ xep: 237, version: '1.3', status: 'complete', note: 'as merged into RFC 6121 §2.6' }],
  config: z
    .object({
      max_items: z.number().int().min(1).max(100_000).default(1000).describe('Most contacts one roster may hold'),
      max_text_length: z.number().int().min(1).max(65_535).default(1023).describe('Longest contact name or group name, in characters'),
    })
    .strict(),
  setup(m) {
    const items = m.store.map<RosterItem>('items');
    const versions = m.store.keyval<RosterVersion>('version');
    const serial = keyedSerial();
    const bareOf = (username: string) => `${username}@${m.host}`;

    /** Bumps the version and pushes `item` to every interested resource (RFC 6121 §2.1.6). */
    async function commit(username: string, item: XmlElement): Promise<void> {
      const version = await nextVersion(username);
      const bare = bareOf(username);
      for (const session of m.sessions.resourcesOf(bare)) {
        if (!session.interested) continue;
        // §2.1.6: a push carries no 'from' or the account's bare JID, so clients can trust it.
        const push = x('iq', { type: 'set', id: randomBytes(6).toString('base64url'), from: bare, to: session.fullJid }, x('query', { xmlns: NS.ROSTER, ver: version }, item));
        session.send(push);
      }
    }

    async function currentVersion(username: string): Promise<string> {
      let version = await versions.get(username);
      if (!version) {
        version = { counter: 0, epoch: randomBytes(4).toString('hex') };
        await versions.set(username, version);
      }
      return `${version.counter}.${version.epoch}`;
    }

    async function nextVersion(username: string): Promise<string> {
      const current = (await versions.get(username)) ?? { counter: 0, epoch: randomBytes(4).toString('hex') };
      const next = { counter: current.counter + 1, epoch: current.epoch };
      await versions.set(username, next);
      return `${next.counter}.${next.epoch}`;
    }

    async function writeItem(username: string, item: RosterItem): Promise<void> {
      const stored = normalizeItem(item);
      await items.set(username, stored.jid, stored);
      await commit(username, itemElement(stored));
    }

    async function deleteItem(username: string, jid: string): Promise<boolean> {
      if (!(await items.delete(username, jid))) return false;
      await commit(username, x('item', { jid, subscription: 'remove' }));
      return true;
    }

    // Every write for an account goes through its queue, so versions and pushes stay in order.
    const service: RosterService = {
      getItem: (username, jid) => items.get(username, jid),
      getItems: async (username) => (await items.list(username)).map((entry) => entry.value),
      setItem: (username, item) => serial(username, () => writeItem(username, item)),
      removeItem: (username, jid) => serial(username, async () => void (await deleteItem(username, jid))),
      subscription: async (username, jid) => (await items.get(username, jid))?.subscription ?? 'none',
    };
    m.provide('roster', service);

    m.feature(NS.ROSTER);
    // RFC 6121 §2.6.1: versioning is announced as a stream feature once the client is authenticated.
    m.streamFeature('post-auth', (stream) => (stream.username !== undefined ? x('ver', { xmlns: NS.ROSTER_VER_FEATURE }) : undefined));

    m.iq.get(
      NS.ROSTER,
      'query',
      async ({ payload, session, username }) => {
        // §2.1.6: a resource that asked for the roster is "interested" and gets the pushes from now on.
        if (session) session.interested = true;
        const version = await currentVersion(username);
        // §2.6.3: the client's version is current: an empty result, nothing to send.
        if (payload.attrs.ver === version) return undefined;
        const list = await items.list(username);
        return x('query', { xmlns: NS.ROSTER, ver: version }, ...list.map((entry) => itemElement(entry.value)));
      },
      { scope: 'self' },
    );

    m.iq.set(
      NS.ROSTER,
      'query',
      async ({ payload, username }) => {
        const request = parseRosterSet(payload, bareOf(username), m.config.max_text_length);
        const removed = await serial(username, () => (request.remove ? removeRequested(username, request.jid) : setRequested(username, request)));
        // Announced once the queue is free: the presence module's handler may wait for roster writes.
        if (removed) await m.fire('roster:item-removed', { username, item: removed });
      },
      { scope: 'self' },
    );

    async function removeRequested(username: string, jid: string): Promise<RosterItem> {
      const existing = await items.get(username, jid);
      // §2.5.3: removing what is not there is an error.
      if (!existing) throw stanzaError.itemNotFound(undefined, { type: 'modify' });
      await deleteItem(username, jid);
      return existing;
    }

    async function setRequested(username: string, request: RosterSetRequest): Promise<undefined> {
      const existing = await items.get(username, request.jid);
      if (!existing && (await items.count(username)) >= m.config.max_items) {
        throw stanzaError.notAllowed(`A roster holds at most ${m.config.max_items} contacts`);
      }
      // §2.1.2: 'subscription', 'ask' and 'approved' are the server's to set; only the name and
      // groups come from the client.
      await writeItem(username, {
        jid: request.jid,
        ...(request.name !== undefined && { name: request.name }),
        subscription: existing?.subscription ?? 'none',
        ...(existing?.ask && { ask: existing.ask }),
        ...(existing?.approved && { approved: true }),
        groups: request.groups,
      });
      return undefined;
    }

    m.on('user:deleted', async ({ username }) => {
      await items.deleteAll(username);
      await versions.delete(username);
      // Local contacts still list the account. As Prosody does, tell them what its server would have
      // said had the user removed them (RFC 6121 §2.5.2), so their rosters fall back to 'none'.
      const deleted = makeJid(username, m.host);
      for (const owner of await items.owners()) {
        const item = await items.get(owner, deleted.toString());
        if (!item) continue;
        const to = bareOf(owner);
        m.routeFrom(deleted, x('presence', { type: 'unsubscribe', to }));
        m.routeFrom(deleted, x('presence', { type: 'unsubscribed', to }));
      }
    });

    m.onStop(() => serial.idle());
  },
});

interface RosterSetRequest {
  jid: string;
  remove: boolean;
  name: string | undefined;
  groups: string[];
}

/** Checks a roster set against RFC 6121 §2.3.3 (and §2.1.5), throwing the error it names. */
function parseRosterSet(query: XmlElement, ownBareJid: string, maxTextLength: number): RosterSetRequest {
  const children = query.elements();
  // §2.3.3: exactly one <item/>.
  if (children.length !== 1) throw stanzaError.badRequest('A roster set carries exactly one item');
  const item = children[0]!;
  if (item.name !== 'item' || (item.attrs.xmlns !== undefined && item.attrs.xmlns !== NS.ROSTER)) {
    throw stanzaError.badRequest('A roster set carries exactly one item');
  }
  const jidAttr = item.attrs.jid;
  if (jidAttr === undefined) throw stanzaError.badRequest("The item has no 'jid'");
  const jid = tryParseJid(jidAttr);
  if (!jid) throw stanzaError.jidMalformed("The item's 'jid' is not a valid JID");
  // Subscriptions (RFC 6121 §3) are between accounts: a full JID could never match one.
  if (jid.resource !== '') throw stanzaError.badRequest('Roster items are bare JIDs');
  // Like Prosody: one's own presence is implicitly subscribed, so the account never lists itself.
  if (jid.toString() === ownBareJid) throw stanzaError.notAllowed('You cannot add yourself to your roster');
  // §2.1.2.5: any 'subscription' other than "remove" is ignored.
  if (item.attrs.subscription === 'remove') return { jid: jid.toString(), remove: true, name: undefined, groups: [] };

  const name = item.attrs.name === '' ? undefined : item.attrs.name;
  // §2.3.3: a name longer than the server's limit → not-acceptable.
  if (name !== undefined && name.length > maxTextLength) throw stanzaError.notAcceptable(`Names are limited to ${maxTextLength} characters`);
  const groups: string[] = [];
  for (const group of item.getChildren('group')) {
    const text = group.text();
    // §2.3.3: an empty group → not-acceptable (leaving all groups means sending none).
    if (text === '') throw stanzaError.notAcceptable('A group name cannot be empty');
    if (text.length > maxTextLength) throw stanzaError.notAcceptable(`Group names are limited to ${maxTextLength} characters`);
    // §2.3.3: a group is identified by its name, so naming one twice → bad-request.
    if (groups.includes(text)) throw stanzaError.badRequest(`The group '${text}' is listed twice`);
    groups.push(text);
  }
  return { jid: jid.toString(), remove: false, name, groups };
}

function normalizeItem(item: RosterItem): RosterItem {
  return {
    jid: item.jid,
    ...(item.name !== undefined && item.name !== '' && { name: item.name }),
    subscription: item.subscription,
    ...(item.ask === 'subscribe' && { ask: 'subscribe' as const }),
    ...(item.approved === true && { approved: true }),
    groups: [...item.groups],
  };
}

/** The <item/> of a roster result or push (RFC 6121 §2.1.2). */
function itemElement(item: RosterItem): XmlElement {
  return x(
    'item',
    { jid: item.jid, name: item.name, subscription: item.subscription, ask: item.ask, approved: item.approved ? 'true' : undefined },
    ...item.groups.map((group) => x('group', null, group)),
  );
}
