import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isBlocked } from '../../modules/blocking.js';
import { parseJid } from '../../server/jid.js';

describe('blocking: JID matching (XEP-0191 §6, XEP-0016 order)', () => {
  const blocked = (items: string[], jid: string) => isBlocked(new Set(items), parseJid(jid));

  test('user@domain/resource → only that resource', () => {
    assert.ok(blocked(['iago@example.org/r1'], 'iago@example.org/r1'));
    assert.ok(!blocked(['iago@example.org/r1'], 'iago@example.org/r2'));
    assert.ok(!blocked(['iago@example.org/r1'], 'iago@example.org'));
  });

  test('user@domain → any resource, and the bare JID', () => {
    assert.ok(blocked(['iago@example.org'], 'iago@example.org/r2'));
    assert.ok(blocked(['iago@example.org'], 'iago@example.org'));
    assert.ok(!blocked(['iago@example.org'], 'roderigo@example.org'));
  });

  test('domain/resource → that resource of the domain and of its users (as ejabberd matches it)', () => {
    assert.ok(blocked(['example.org/bot'], 'example.org/bot'));
    assert.ok(blocked(['example.org/bot'], 'iago@example.org/bot'));
    assert.ok(!blocked(['example.org/bot'], 'iago@example.org/r1'));
  });

  test('domain → the domain, its users and their resources; not other domains', () => {
    assert.ok(blocked(['example.org'], 'example.org'));
    assert.ok(blocked(['example.org'], 'iago@example.org/r1'));
    assert.ok(!blocked(['example.org'], 'iago@sub.example.org'));
  });

  test('empty list → nothing blocked', () => {
    assert.ok(!blocked([], 'iago@example.org'));
  });
});
