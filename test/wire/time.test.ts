import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { dateTime, timeZoneOffset } from '../../server/protocol/xep0082.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

describe('time', () => {
  test("time of the server → <tzo/> and <utc/> in XEP-0082 formats, close to now", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await iqExpect(romeo, `<iq type='get' to='localhost' id='t1'><time xmlns='urn:xmpp:time'/></iq>`, `<iq type='result' from='localhost' id='t1'><time xmlns='urn:xmpp:time'><tzo>{any}</tzo><utc>{any}</utc></time></iq>`);
    const time = answer.getChild('time', 'urn:xmpp:time')!;
    assert.match(time.getChildText('tzo')!, /^(Z|[+-]\d\d:\d\d)$/);
    const utc = time.getChildText('utc')!;
    assert.match(utc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Math.abs(Date.parse(utc) - Date.now()) < 5000, `utc ${utc} is not now`);
  });

  test('a time set → service-unavailable (only get is defined)', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='set' to='localhost' id='t2'><time xmlns='urn:xmpp:time'/></iq>`, `<iq type='error' id='t2'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });

  test('XEP-0082 helpers: whole-second UTC dateTime, TZD', () => {
    assert.equal(dateTime(new Date(Date.UTC(2006, 11, 19, 17, 58, 35, 123))), '2006-12-19T17:58:35Z');
    const offset = timeZoneOffset(new Date());
    assert.ok(offset === 'Z' || /^[+-]\d\d:\d\d$/.test(offset));
  });
});
