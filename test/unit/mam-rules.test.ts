// The message archive's rules (modules/mam): what is archivable (XEP-0313 §5.1.1, XEP-0334 hints),
// forged stanza ids (XEP-0359 §4), preferences matching (XEP-0441 §2.3), XEP-0082 query times.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml } from '../../server/xml/parser.js';
import { parseJid } from '../../server/jid.js';
import { StanzaError } from '../../server/errors.js';
import { archivable, roomArchivable, withStanzaId, withoutForgedIds } from '../../modules/mam/rules.js';
import { buildPrefs, decide, parsePrefs, type Prefs } from '../../modules/mam/prefs.js';
import { parseDateTime, parseQuery } from '../../modules/mam/query.js';

const HINTS = 'urn:xmpp:hints';
const SID = 'urn:xmpp:sid:0';
const message = (attrs: string, inner: string) => parseXml(`<message ${attrs}>${inner}</message>`);

describe('mam: archivable messages', () => {
  const cases: [string, string, string, boolean][] = [
    ['chat with a body', "type='chat'", '<body>hi</body>', true],
    ['normal (no type) with a body', '', '<body>hi</body>', true],
    ['a subject', "type='chat'", '<subject>s</subject>', true],
    ['a chat state alone', "type='chat'", "<composing xmlns='http://jabber.org/protocol/chatstates'/>", false],
    ['an empty message', "type='chat'", '', false],
    ['a receipt', "type='chat'", "<received xmlns='urn:xmpp:receipts' id='x'/>", true],
    ['a chat marker', "type='chat'", "<displayed xmlns='urn:xmpp:chat-markers:0' id='x'/>", true],
    ['an OMEMO message with EME but no body', "type='chat'", "<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl'/>", true],
    ['a direct MUC invitation', '', "<x xmlns='jabber:x:conference' jid='room@conference.localhost'/>", true],
    ['a mediated MUC invitation', '', "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x>", true],
    ['a call proposal', "type='chat'", "<propose xmlns='urn:xmpp:jingle-message:0' id='c'/>", true],
    ['a headline with a body', "type='headline'", '<body>news</body>', false],
    ['groupchat with a body', "type='groupchat'", '<body>room</body>', false],
    ['an error', "type='error'", '<body>x</body>', false],
    ['no-store with a body', "type='chat'", `<body>x</body><no-store xmlns='${HINTS}'/>`, false],
    ['no-permanent-store with a body', "type='chat'", `<body>x</body><no-permanent-store xmlns='${HINTS}'/>`, false],
    ['the old no-storage spelling', "type='chat'", `<body>x</body><no-storage xmlns='${HINTS}'/>`, false],
    ['store on a chat state', "type='chat'", `<active xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='${HINTS}'/>`, true],
    ['store and no-store', "type='chat'", `<body>x</body><store xmlns='${HINTS}'/><no-store xmlns='${HINTS}'/>`, false],
  ];
  for (const [name, attrs, inner, expected] of cases) {
    test(`${name} → ${expected ? 'archived' : 'not archived'}`, () => assert.equal(archivable(message(attrs, inner)), expected));
  }

  test('rooms: a body or a subject → archived; no-store → not; a chat state → not', () => {
    assert.equal(roomArchivable(message("type='groupchat'", '<body>x</body>')), true);
    assert.equal(roomArchivable(message("type='groupchat'", '<subject>x</subject>')), true);
    assert.equal(roomArchivable(message("type='groupchat'", `<body>x</body><no-store xmlns='${HINTS}'/>`)), false);
    assert.equal(roomArchivable(message("type='groupchat'", "<active xmlns='http://jabber.org/protocol/chatstates'/>")), false);
  });
});

describe('mam: stanza ids (XEP-0359)', () => {
  test('ids by the archive (any case of the JID) are removed, others kept; the original is untouched', () => {
    const original = message("type='chat'", `<body>x</body><stanza-id xmlns='${SID}' by='juliet@localhost' id='a'/><stanza-id xmlns='${SID}' by='JULIET@localhost' id='b'/><stanza-id xmlns='${SID}' by='room@muc.example' id='c'/>`);
    const cleaned = withoutForgedIds(original, 'juliet@localhost');
    assert.deepEqual(cleaned.getChildren('stanza-id', SID).map((s) => s.attrs.id), ['c']);
    assert.equal(original.getChildren('stanza-id', SID).length, 3);
  });

  test('nothing to remove → the same element (no copy)', () => {
    const original = message("type='chat'", '<body>x</body>');
    assert.equal(withoutForgedIds(original, 'juliet@localhost'), original);
  });

  test('withStanzaId → a copy with the id appended', () => {
    const original = message("type='chat'", '<body>x</body>');
    const stamped = withStanzaId(original, 'juliet@localhost', 'ID1');
    assert.equal(stamped.toString(), `<message type='chat'><body>x</body><stanza-id xmlns='${SID}' by='juliet@localhost' id='ID1'/></message>`);
    assert.equal(original.children.length, 1);
  });
});

describe('mam: preferences (XEP-0441 §2.3)', () => {
  const prefs = (policy: Prefs['default'], always: string[] = [], never: string[] = []): Prefs => ({ default: policy, always, never });

  test('a bare JID entry matches every resource; a full JID entry only that one', () => {
    const p = prefs('never', ['romeo@localhost', 'nurse@localhost/kitchen']);
    assert.equal(decide(p, parseJid('romeo@localhost/orchard')), true);
    assert.equal(decide(p, parseJid('romeo@localhost')), true);
    assert.equal(decide(p, parseJid('nurse@localhost/kitchen')), true);
    assert.equal(decide(p, parseJid('nurse@localhost/garden')), false);
    assert.equal(decide(p, parseJid('nurse@localhost')), false);
  });

  test('the more specific entry wins; at the same level never wins', () => {
    assert.equal(decide(prefs('always', ['romeo@localhost/orchard'], ['romeo@localhost']), parseJid('romeo@localhost/orchard')), true);
    assert.equal(decide(prefs('always', ['romeo@localhost'], ['romeo@localhost/orchard']), parseJid('romeo@localhost/orchard')), false);
    assert.equal(decide(prefs('always', ['romeo@localhost'], ['romeo@localhost']), parseJid('romeo@localhost/x')), false);
  });

  test('unlisted → the default; roster left to the caller', () => {
    assert.equal(decide(prefs('always'), parseJid('a@b')), true);
    assert.equal(decide(prefs('never'), parseJid('a@b')), false);
    assert.equal(decide(prefs('roster'), parseJid('a@b')), 'roster');
  });

  test('parse and build round trip; duplicates and case folded', () => {
    const parsed = parsePrefs(parseXml(`<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>A@B</jid><jid>a@b</jid></always><never/></prefs>`));
    assert.deepEqual(parsed, { default: 'roster', always: ['a@b'], never: [] });
    assert.equal(buildPrefs(parsed).toString(), `<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>a@b</jid></always><never/></prefs>`);
    assert.throws(() => parsePrefs(parseXml(`<prefs xmlns='urn:xmpp:mam:2' default='some'/>`)), StanzaError);
  });
});

describe('mam: query times (XEP-0082)', () => {
  test('DateTimes with Z, offsets and fractions → ms since the epoch', () => {
    assert.equal(parseDateTime('2010-06-07T00:00:00Z'), Date.UTC(2010, 5, 7));
    assert.equal(parseDateTime('2010-06-07T02:00:00+02:00'), Date.UTC(2010, 5, 7));
    assert.equal(parseDateTime('2010-06-07T00:00:00.250Z'), Date.UTC(2010, 5, 7) + 250);
  });

  test('dates alone, missing zones, impossible days and hours → undefined', () => {
    for (const bad of ['2010-06-07', '2010-06-07T00:00:00', '2010-02-30T00:00:00Z', '2011-02-29T00:00:00Z', '2010-06-07T24:00:00Z', '2010-06-07T00:60:00Z', '2010-06-07T00:00:00+25:00', 'now']) {
      assert.equal(parseDateTime(bad), undefined, bad);
    }
    assert.equal(parseDateTime('2012-02-29T00:00:00Z'), Date.UTC(2012, 1, 29));
  });

  test("an 'end' without fractions covers its whole second; with fractions it is exact", () => {
    const form = (end: string) =>
      parseXml(`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='end'><value>${end}</value></field></x></query>`);
    assert.equal(parseQuery(form('2010-06-07T00:00:00Z')).end, Date.UTC(2010, 5, 7) + 999);
    assert.equal(parseQuery(form('2010-06-07T00:00:00.000Z')).end, Date.UTC(2010, 5, 7));
  });
});
