// The node configuration codec (modules/pubsub/config.ts): submitted forms, publish-options
// preconditions (XEP-0060 §7.1.5) and the item limit.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_DEFAULTS, checkPreconditions, configForm, itemLimit, parseConfig } from '../../modules/pubsub/config.js';
import { mayCreate } from '../../modules/pubsub/service.js';
import { parseJid } from '../../server/jid.js';
import { submitForm } from '../../server/protocol/xep0004.js';
import { StanzaError } from '../../server/errors.js';

const form = (values: Record<string, string | string[]>) => submitForm(values, 'http://jabber.org/protocol/pubsub#node_config');

describe('pubsub config: forms', () => {
  test('typed values from a submitted form; unknown fields are skipped', () => {
    const config = parseConfig(
      form({ 'pubsub#access_model': 'whitelist', 'pubsub#max_items': 'max', 'pubsub#persist_items': 'true', 'pubsub#roster_groups_allowed': ['A', 'B'], 'pubsub#frobnicate': '1' }),
      256,
    );
    assert.deepEqual(config, { access_model: 'whitelist', max_items: 'max', persist_items: true, roster_groups_allowed: ['A', 'B'] });
  });

  test('an impossible value → not-acceptable (unknown access model, max_items above the limit or not a number, a bad boolean)', () => {
    const cases: Record<string, string>[] = [{ 'pubsub#access_model': 'authorize' }, { 'pubsub#max_items': '257' }, { 'pubsub#max_items': '0' }, { 'pubsub#notify_retract': 'yes' }];
    for (const values of cases) {
      assert.throws(() => parseConfig(form(values), 256), (err: unknown) => err instanceof StanzaError && err.condition === 'not-acceptable', JSON.stringify(values));
    }
  });

  test('the owner form lists every option with its current value', () => {
    const built = configForm('n', { ...BASE_DEFAULTS, max_items: 'max' }, 256);
    assert.equal(built.type, 'form');
    assert.deepEqual(built.fields.find((f) => f.var === 'pubsub#max_items')?.values, ['max']);
    assert.deepEqual(built.fields.find((f) => f.var === 'pubsub#persist_items')?.values, ['1']);
  });
});

describe('pubsub config: preconditions and limits', () => {
  test('equal values pass whatever their spelling; a different one → conflict with precondition-not-met', () => {
    checkPreconditions({ ...BASE_DEFAULTS, persist_items: true, max_items: 'max' }, { persist_items: true, max_items: 'max' });
    assert.throws(
      () => checkPreconditions(BASE_DEFAULTS, { access_model: 'whitelist' }),
      (err: unknown) => err instanceof StanzaError && err.condition === 'conflict' && err.app?.name === 'precondition-not-met',
    );
  });

  test("max_items 'max' is the service limit; a number keeps its value", () => {
    assert.equal(itemLimit({ ...BASE_DEFAULTS, max_items: 'max' }, 256), 256);
    assert.equal(itemLimit({ ...BASE_DEFAULTS, max_items: 3 }, 256), 3);
  });
});

describe('pubsub config: node_creation', () => {
  test("'local' → accounts of the domain may create, remote users and bare domains may not; 'anyone' → all; 'nobody' → none", () => {
    const local = parseJid('romeo@example.org/r1');
    const remote = parseJid('mercutio@elsewhere.net/r1');
    const component = parseJid('bot.example.org');
    assert.deepEqual([local, remote, component].map((jid) => mayCreate('local', jid, 'example.org')), [true, false, false]);
    assert.deepEqual([local, remote, component].map((jid) => mayCreate('anyone', jid, 'example.org')), [true, true, true]);
    assert.deepEqual([local, remote, component].map((jid) => mayCreate('nobody', jid, 'example.org')), [false, false, false]);
  });
});
