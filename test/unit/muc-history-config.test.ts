// modules/muc without a server: the discussion history and its <history/> limits (XEP-0045
// §7.2.15), the room configuration form (§10.1.3) and its notification codes (§10.2.1), and the
// mention matching of group chat pushes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml } from '../../server/xml/parser.js';
import { History, isHistoric, parseHistoryRequest } from '../../modules/muc/history.js';
import { applyConfigForm, configStatusCodes, defaultRoomConfig, mucConfigSchema } from '../../modules/muc/config.js';
import { mentions } from '../../modules/muc/push.js';
import { StanzaError } from '../../server/errors.js';
import type { DataForm } from '../../server/protocol/xep0004.js';

const ROOM = 'room@conference.localhost';

function historyOf(count: number, start = 1_000_000): History {
  const history = new History(10);
  for (let i = 1; i <= count; i++) history.add(parseXml(`<message type='groupchat' from='${ROOM}/n' id='m${i}'><body>message ${i}</body></message>`), ROOM, start + i * 1000);
  return history;
}

const bodies = (list: { getChildText(name: string): string | undefined }[]) => list.map((m) => m.getChildText('body'));

describe('muc: history', () => {
  test('without limits the room default applies; each message gets a delay stamp from the room and the "to" asked for', () => {
    const selected = historyOf(5).select({}, 3, 'u@localhost/r');
    assert.deepEqual(bodies(selected), ['message 3', 'message 4', 'message 5']);
    assert.equal(selected[0]!.attrs.to, 'u@localhost/r');
    assert.equal(selected[0]!.getChild('delay', 'urn:xmpp:delay')?.attrs.from, ROOM);
    assert.equal(selected[0]!.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp, '1970-01-01T00:16:43Z');
  });

  test('maxstanzas, since and maxchars each cut from the oldest; maxchars counts whole stanzas only', () => {
    const history = historyOf(5);
    assert.deepEqual(bodies(history.select({ maxstanzas: 2 }, 20, 'u@l/r')), ['message 4', 'message 5']);
    assert.deepEqual(bodies(history.select({ since: 1_000_000 + 4000 }, 20, 'u@l/r')), ['message 4', 'message 5']);
    assert.deepEqual(history.select({ maxchars: 0 }, 20, 'u@l/r'), []);
    const one = history.select({ maxstanzas: 1 }, 20, 'u@l/r')[0]!.toString().length;
    assert.equal(history.select({ maxchars: one + 5 }, 20, 'u@l/r').length, 1);
  });

  test('the history keeps at most its limit, and a lower limit drops the oldest', () => {
    const history = historyOf(12);
    assert.equal(history.size, 10);
    history.setLimit(2);
    assert.deepEqual(bodies(history.select({}, 20, 'u@l/r')), ['message 11', 'message 12']);
  });

  test('stored and loaded again, the history is the same', () => {
    const history = historyOf(3);
    const copy = new History(10);
    copy.load(history.toStored());
    assert.deepEqual(bodies(copy.select({}, 20, 'x@l')), bodies(history.select({}, 20, 'x@l')));
  });

  test('parseHistoryRequest: numbers, seconds and since (the later wins); junk is ignored', () => {
    const x = (attrs: string) => parseXml(`<x xmlns='http://jabber.org/protocol/muc'><history ${attrs}/></x>`);
    assert.deepEqual(parseHistoryRequest(x(`maxstanzas='5' maxchars='100'`)), { maxstanzas: 5, maxchars: 100 });
    assert.deepEqual(parseHistoryRequest(x(`seconds='10'`), 100_000), { since: 90_000 });
    assert.deepEqual(parseHistoryRequest(x(`seconds='10' since='1970-01-01T00:01:35Z'`), 100_000), { since: 95_000 });
    assert.deepEqual(parseHistoryRequest(x(`maxstanzas='-1' since='yesterday'`)), {});
    assert.deepEqual(parseHistoryRequest(undefined), {});
  });

  test('what counts as history: a body or a store hint; not a no-store hint or a bare chat state', () => {
    assert.equal(isHistoric(parseXml(`<message><body>hi</body></message>`)), true);
    assert.equal(isHistoric(parseXml(`<message><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>`)), false);
    assert.equal(isHistoric(parseXml(`<message><store xmlns='urn:xmpp:hints'/></message>`)), true);
    assert.equal(isHistoric(parseXml(`<message><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)), false);
  });
});

describe('muc: room configuration form', () => {
  const limits = { maxOccupants: 100, maxHistory: 50 };
  const defaults = defaultRoomConfig(mucConfigSchema.parse({}));
  const form = (fields: Record<string, string | string[]>): DataForm => ({
    type: 'submit',
    fields: [{ var: 'FORM_TYPE', values: ['http://jabber.org/protocol/muc#roomconfig'] }, ...Object.entries(fields).map(([name, v]) => ({ var: name, values: Array.isArray(v) ? v : [v] }))],
  });
  const condition = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err instanceof StanzaError ? err.condition : String(err);
    }
    return 'no error';
  };

  test('defaults: temporary, public, open, unmoderated, semi-anonymous, logged, 20 messages of history', () => {
    assert.equal(defaults.persistent, false);
    assert.equal(defaults.public, true);
    assert.equal(defaults.whois, 'moderators');
    assert.equal(defaults.logging, true);
    assert.equal(defaults.historyLength, 20);
  });

  test('submitted fields change the configuration; fields left out keep their value', () => {
    const { config, admins } = applyConfigForm(
      form({ 'muc#roomconfig_roomname': 'Hall', 'muc#roomconfig_moderatedroom': 'true', 'muc#roomconfig_presencebroadcast': ['moderator', 'participant'], 'muc#roomconfig_historylength': '5', 'muc#roomconfig_roomadmins': 'a@x b@x' }),
      defaults,
      limits,
    );
    assert.equal(config.name, 'Hall');
    assert.equal(config.moderated, true);
    assert.deepEqual(config.presenceBroadcast, ['moderator', 'participant']);
    assert.equal(config.historyLength, 5);
    assert.equal(config.public, defaults.public);
    assert.deepEqual(admins, ['a@x', 'b@x']);
  });

  test('a password: the secret alone protects the room; passwordprotectedroom=0 clears it', () => {
    const protectedRoom = applyConfigForm(form({ 'muc#roomconfig_roomsecret': 'pw' }), defaults, limits).config;
    assert.equal(protectedRoom.password, 'pw');
    assert.equal(applyConfigForm(form({ 'muc#roomconfig_passwordprotectedroom': '0' }), protectedRoom, limits).config.password, '');
  });

  test('policy violations are not-acceptable, malformed values bad-request, a wrong FORM_TYPE bad-request', () => {
    assert.equal(condition(() => applyConfigForm(form({ 'muc#roomconfig_passwordprotectedroom': '1' }), defaults, limits)), 'not-acceptable');
    assert.equal(condition(() => applyConfigForm(form({ 'muc#roomconfig_maxusers': '101' }), defaults, limits)), 'not-acceptable');
    assert.equal(condition(() => applyConfigForm(form({ 'muc#maxhistoryfetch': '51' }), defaults, limits)), 'not-acceptable');
    assert.equal(condition(() => applyConfigForm(form({ 'muc#roomconfig_whois': 'none' }), defaults, limits)), 'not-acceptable');
    assert.equal(condition(() => applyConfigForm(form({ 'muc#roomconfig_membersonly': 'yes' }), defaults, limits)), 'bad-request');
    assert.equal(condition(() => applyConfigForm(form({ 'muc#roomconfig_roomowners': 'not a jid@' }), defaults, limits)), 'jid-malformed');
    assert.equal(condition(() => applyConfigForm({ type: 'submit', fields: [{ var: 'FORM_TYPE', values: ['urn:other'] }] }, defaults, limits)), 'bad-request');
  });

  test('notification codes: 170/171 for logging, 172/173 for anonymity, else 104; nothing when nothing changed', () => {
    assert.deepEqual(configStatusCodes(defaults, { ...defaults, logging: false }), ['171']);
    assert.deepEqual(configStatusCodes({ ...defaults, logging: false }, defaults), ['170']);
    assert.deepEqual(configStatusCodes(defaults, { ...defaults, whois: 'anyone' }), ['172']);
    assert.deepEqual(configStatusCodes({ ...defaults, whois: 'anyone' }, defaults), ['173']);
    assert.deepEqual(configStatusCodes(defaults, { ...defaults, name: 'x' }), ['104']);
    assert.deepEqual(configStatusCodes(defaults, { ...defaults }), []);
  });

  test('the module schema refuses room defaults beyond the service limits', () => {
    assert.equal(mucConfigSchema.safeParse({ max_occupants: 10, room_defaults: { max_users: 20 } }).success, false);
    assert.equal(mucConfigSchema.safeParse({ max_history: 5 }).success, false);
    assert.equal(mucConfigSchema.safeParse({ max_history: 5, room_defaults: { history_length: 5 } }).success, true);
  });
});

describe('muc: mentions', () => {
  test('a name counts as a word of its own, in any case; not inside another word', () => {
    assert.equal(mentions('Jules, are you there?', ['Jules']), true);
    assert.equal(mentions('hey @jules!', ['Jules']), true);
    assert.equal(mentions('julesverne is here', ['Jules']), false);
    assert.equal(mentions('a (b) c', ['(b)']), true);
    assert.equal(mentions('nothing', [undefined, '']), false);
  });
});
