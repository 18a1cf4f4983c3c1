// XEP-0059 Result Set Management codec (server/protocol/xep0059.ts), on the spec's own examples.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml } from '../../server/xml/parser.js';
import { StanzaError } from '../../server/errors.js';
import { NS_RSM, buildRsm, buildRsmRequest, parseRsm } from '../../server/protocol/xep0059.js';

const set = (inner: string) => parseXml(`<set xmlns='${NS_RSM}'>${inner}</set>`);

describe('XEP-0059: requests', () => {
  test('§2.1 example 2 (<max>10</max>) → max 10', () => {
    assert.deepEqual(parseRsm(set('<max>10</max>')), { max: 10 });
  });

  test('§2.2 example 4 (max and after) → both', () => {
    assert.deepEqual(parseRsm(set('<max>10</max><after>peterpan@neverland.lit</after>')), { max: 10, after: 'peterpan@neverland.lit' });
  });

  test('§2.3 example 7 (max and before) → both; §2.5 an empty <before/> → the last page', () => {
    assert.deepEqual(parseRsm(set('<max>10</max><before>peter@pixyland.org</before>')), { max: 10, before: 'peter@pixyland.org' });
    assert.deepEqual(parseRsm(set('<max>10</max><before/>')), { max: 10, before: '' });
  });

  test('§2.6 <index/> and §2.7 <max>0</max> → read as numbers', () => {
    assert.deepEqual(parseRsm(set('<max>10</max><index>371</index>')), { max: 10, index: 371 });
    assert.deepEqual(parseRsm(set('<max>0</max>')), { max: 0 });
  });

  test('a negative or non-numeric <max/>, a bad <index/>, an empty <after/> → bad-request', () => {
    for (const bad of ['<max>-1</max>', '<max>ten</max>', '<max></max>', '<max>1e3</max>', '<index>x</index>', '<after/>', '<after>  </after>']) {
      assert.throws(() => parseRsm(set(bad)), (err: unknown) => err instanceof StanzaError && err.condition === 'bad-request', bad);
    }
  });

  test('not a <set/> in the RSM namespace → bad-request', () => {
    assert.throws(() => parseRsm(parseXml(`<set xmlns='urn:example'/>`)), StanzaError);
  });

  test('a request built and read back → the same values', () => {
    for (const request of [{ max: 5 }, { max: 2, after: 'a' }, { before: '' }, { max: 3, before: 'b' }, { index: 7 }]) {
      assert.deepEqual(parseRsm(buildRsmRequest(request)), request);
    }
  });
});

describe('XEP-0059: responses', () => {
  test('§2.1 example 3 → first with index, last, count', () => {
    assert.equal(
      buildRsm({ first: 'stpeter@jabber.org', firstIndex: 0, last: 'peterpan@neverland.lit', count: 800 }).toString(),
      `<set xmlns='${NS_RSM}'><first index='0'>stpeter@jabber.org</first><last>peterpan@neverland.lit</last><count>800</count></set>`,
    );
  });

  test('§2.7 example 13 (an empty page) → count only', () => {
    assert.equal(buildRsm({ count: 0 }).toString(), `<set xmlns='${NS_RSM}'><count>0</count></set>`);
  });

  test('first without a known index → no index attribute', () => {
    assert.equal(buildRsm({ first: 'a', last: 'b' }).toString(), `<set xmlns='${NS_RSM}'><first>a</first><last>b</last></set>`);
  });
});
