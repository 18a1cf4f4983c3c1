// A mock UnifiedPush distributor endpoint (ntfy, NextPush, ...): it relays whatever body it gets,
// so it checks only what the UnifiedPush server spec asks of application servers — a POST with a
// body of at most 4096 bytes and a TTL — and, for endpoints made with Web Push keys, that the body
// decrypts (RFC 8291) and any VAPID token is valid. Built on the Web Push mock.

import { startPushServiceMock, type PushServiceMock } from './webpush.js';

export type UnifiedPushMock = PushServiceMock;

export function startUnifiedPushMock(): Promise<UnifiedPushMock> {
  return startPushServiceMock({ requireVapid: false, prefix: '/up' });
}
