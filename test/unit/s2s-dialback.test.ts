// XEP-0185 dialback keys and the XEP-0220 elements.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DialbackKeys, dbResult, dbVerify, errorCondition } from '../../server/s2s/dialback.js';
import { parseXml } from '../../server/xml/parser.js';

describe('s2s dialback: keys (XEP-0185)', () => {
  test("XEP-0220's worked example: secret d14lb4ck43v3r, capulet.example receiving from montague.example, stream 417GAF25", () => {
    const keys = new DialbackKeys('d14lb4ck43v3r');
    assert.equal(keys.generate('capulet.example', 'montague.example', '417GAF25'), '225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d');
  });

  test('a key verifies only for the same receiving domain, originating domain and stream id', () => {
    const keys = new DialbackKeys();
    const key = keys.generate('b.test', 'a.test', 'id1');
    assert.equal(keys.verify('b.test', 'a.test', 'id1', key), true);
    assert.equal(keys.verify('b.test', 'a.test', 'id1', ` ${key.toUpperCase()}\n`), true, 'whitespace and case do not matter');
    assert.equal(keys.verify('b.test', 'a.test', 'id2', key), false);
    assert.equal(keys.verify('c.test', 'a.test', 'id1', key), false);
    assert.equal(keys.verify('b.test', 'x.test', 'id1', key), false);
    assert.equal(keys.verify('b.test', 'a.test', 'id1', 'short'), false);
  });

  test('another server (another secret) cannot produce our keys', () => {
    const ours = new DialbackKeys();
    const theirs = new DialbackKeys();
    assert.equal(ours.verify('b.test', 'a.test', 'id1', theirs.generate('b.test', 'a.test', 'id1')), false);
  });
});

describe('s2s dialback: elements (XEP-0220)', () => {
  test('requests carry the key as text; answers carry a type', () => {
    assert.equal(dbResult('a.test', 'b.test', { key: 'k' }).toString(), "<db:result from='a.test' to='b.test'>k</db:result>");
    assert.equal(dbResult('b.test', 'a.test', { type: 'valid' }).toString(), "<db:result from='b.test' to='a.test' type='valid'/>");
    assert.equal(dbVerify('b.test', 'a.test', 'i', { type: 'invalid' }).toString(), "<db:verify from='b.test' to='a.test' id='i' type='invalid'/>");
  });

  test('an error answer holds a stanza error condition in a jabber:server <error/> (§2.4)', () => {
    const el = dbResult('b.test', 'a.test', { error: 'item-not-found' });
    assert.equal(el.toString(), "<db:result from='b.test' to='a.test' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    const received = parseXml("<result xmlns='jabber:server:dialback' type='error'><error xmlns='jabber:server' type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></result>");
    assert.equal(errorCondition(received), 'remote-server-timeout');
    assert.equal(errorCondition(parseXml("<result xmlns='jabber:server:dialback' type='error'/>")), 'undefined-condition');
  });
});
