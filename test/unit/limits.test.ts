import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IpLimiter, TokenBucket, normalizeIp } from '../../server/limits.js';

const config = {
  max_connections_per_ip: 2,
  auth_failures_per_ip: 2,
  auth_failure_window: 60_000,
  read_rate: 1000,
  read_burst: 1000,
  exempt: ['127.0.0.1'],
};

describe('limits: IpLimiter', () => {
  test('connections over max_connections_per_ip are refused until one closes; IPv4-mapped IPv6 counts as IPv4', () => {
    const limiter = new IpLimiter(config);
    assert.ok(limiter.openConnection('192.0.2.1'));
    assert.ok(limiter.openConnection('::ffff:192.0.2.1'));
    assert.ok(!limiter.openConnection('192.0.2.1'));
    limiter.closeConnection('192.0.2.1');
    assert.ok(limiter.openConnection('192.0.2.1'));
  });

  test('exempt addresses are never limited', () => {
    const limiter = new IpLimiter(config);
    for (let i = 0; i < 10; i++) assert.ok(limiter.openConnection('127.0.0.1'));
    for (let i = 0; i < 10; i++) limiter.recordAuthFailure('::ffff:127.0.0.1');
    assert.ok(!limiter.authBlocked('127.0.0.1'));
  });

  test('auth_failures_per_ip within the window → blocked; after the window → allowed again', () => {
    const limiter = new IpLimiter(config);
    limiter.recordAuthFailure('192.0.2.1', 1_000);
    assert.ok(!limiter.authBlocked('192.0.2.1', 1_001));
    limiter.recordAuthFailure('192.0.2.1', 2_000);
    assert.ok(limiter.authBlocked('192.0.2.1', 2_001));
    assert.ok(!limiter.authBlocked('192.0.2.2', 2_001), 'other addresses are not affected');
    assert.ok(!limiter.authBlocked('192.0.2.1', 62_001));
  });

  test('addresses whose failures expired are forgotten even if they never come back (bounded memory)', () => {
    const limiter = new IpLimiter(config);
    for (let i = 0; i < 1000; i++) limiter.recordAuthFailure(`2001:db8::${i.toString(16)}`, 1_000 + i);
    assert.equal(limiter.trackedAddresses, 1000);
    limiter.recordAuthFailure('192.0.2.9', 200_000);
    assert.equal(limiter.trackedAddresses, 1);
  });
});

describe('limits: TokenBucket', () => {
  test('within the burst → no wait; beyond it → the wait the rate implies', () => {
    const bucket = new TokenBucket(1000, 500, 0);
    assert.equal(bucket.take(500, 0), 0);
    assert.equal(bucket.take(250, 0), 250);
    assert.equal(bucket.take(0, 500), 0, 'refilled after waiting');
  });

  test('normalizeIp strips the IPv4-mapped prefix only', () => {
    assert.equal(normalizeIp('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(normalizeIp('2001:db8::1'), '2001:db8::1');
  });
});
