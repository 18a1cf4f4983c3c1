import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { H_MODULUS, UnackedQueue, distanceH, incrementH, isValidH } from '../../server/sm-counters.js';
import { x } from '../../server/xml/element.js';

const msg = (n: number) => x('message', { id: String(n) });

describe('sm: h counters (XEP-0198 §5)', () => {
  test('h wraps to 0 after 2^32 - 1', () => {
    assert.equal(incrementH(H_MODULUS - 1), 0);
    assert.equal(incrementH(H_MODULUS - 2, 3), 1);
  });

  test('distance across the wrap', () => {
    assert.equal(distanceH(2, H_MODULUS - 3), 5);
    assert.equal(distanceH(7, 7), 0);
  });

  test('h values: decimal, below 2^32', () => {
    assert.ok(isValidH('0'));
    assert.ok(isValidH(String(H_MODULUS - 1)));
    assert.ok(!isValidH(String(H_MODULUS)));
    assert.ok(!isValidH('-1'));
    assert.ok(!isValidH('1e3'));
    assert.ok(!isValidH(undefined));
  });
});

describe('sm: unacknowledged queue', () => {
  test('acks drop the oldest stanzas, in order', () => {
    const q = new UnackedQueue();
    for (let i = 1; i <= 5; i++) q.push(msg(i));
    assert.ok(q.ack(3));
    assert.deepEqual(q.pending().map((s) => s.attrs.id), ['4', '5']);
    assert.ok(q.ack(3), 'a repeated ack is harmless');
    assert.equal(q.length, 2);
  });

  test('acks across the 2^32 wrap', () => {
    const q = new UnackedQueue(H_MODULUS - 3);
    for (let i = 1; i <= 5; i++) q.push(msg(i));
    assert.equal(q.sent, 2);
    assert.ok(q.ack(H_MODULUS - 1)); // two acknowledged
    assert.deepEqual(q.pending().map((s) => s.attrs.id), ['3', '4', '5']);
    assert.ok(q.ack(1)); // wrapped: two more
    assert.deepEqual(q.pending().map((s) => s.attrs.id), ['5']);
    assert.ok(q.ack(2));
    assert.equal(q.length, 0);
  });

  test('acking more than was sent is refused and changes nothing', () => {
    const q = new UnackedQueue();
    q.push(msg(1));
    assert.equal(q.ack(2), false);
    assert.equal(q.length, 1);
  });

  test('a long session compacts without losing order', () => {
    const q = new UnackedQueue();
    for (let i = 1; i <= 5000; i++) {
      q.push(msg(i));
      if (i % 10 === 0) assert.ok(q.ack(i - 2));
    }
    assert.deepEqual(q.pending().map((s) => s.attrs.id), ['4999', '5000']);
  });

  test('drain empties and returns the rest', () => {
    const q = new UnackedQueue();
    q.push(msg(1));
    q.push(msg(2));
    assert.deepEqual(q.drain().map((s) => s.attrs.id), ['1', '2']);
    assert.equal(q.length, 0);
    assert.equal(q.acked, q.sent);
  });
});
