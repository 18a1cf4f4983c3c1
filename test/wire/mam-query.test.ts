// XEP-0313 §4 queries on a user archive: every filter, XEP-0059 paging both ways with counts and
// indexes, flipped pages, the page limit, unknown ids, the form of fields, and who may ask.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';
import { MAM, forwardedOf, nextMessage, ok, query, sleep, stanzaIds } from './mam-helpers.js';

interface Archive {
  server: TestServer;
  juliet: XmppClient;
  /** juliet's archive ids of m1..m5, in order. */
  ids: string[];
}

/** m1..m5 from romeo/orchard to juliet: m1, m2, m5 from orchard, m3 from romeo/garden, m4 from nurse. */
async function fiveMessages(t: Parameters<typeof startServer>[0], config: Record<string, unknown> = {}): Promise<Archive> {
  const server = await startServer(t, { modules: { mam: config } });
  const [orchard, garden, nurse, juliet] = await Promise.all([
    server.login('romeo', { resource: 'orchard' }),
    server.login('romeo', { resource: 'garden' }),
    server.login('nurse'),
    server.login('juliet', { resource: 'balcony' }),
  ]);
  const senders = [orchard, orchard, garden, nurse, orchard];
  const ids: string[] = [];
  for (const [i, sender] of senders.entries()) {
    sender.send(`<message to='juliet@localhost/balcony' type='chat'><body>m${i + 1}</body></message>`);
    ids.push(stanzaIds(await nextMessage(juliet))[0]!.id);
  }
  return { server, juliet, ids };
}

function assertError(answer: { iq: { attrs: Record<string, string>; getChild(n: string): unknown } }, condition: string): void {
  assert.equal(answer.iq.attrs.type, 'error');
  const error = answer.iq.getChild('error') as { getChild(n: string): unknown } | undefined;
  assert.ok(error?.getChild(condition), `expected ${condition}: ${String(answer.iq)}`);
}

describe('mam: filters', () => {
  test("no form → every message, in order, by the ids the delivered messages carried", async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    const all = await query(juliet);
    assert.deepEqual(all.bodies, ['m1', 'm2', 'm3', 'm4', 'm5']);
    assert.deepEqual(all.ids, ids);
  });

  test("'with' a bare JID → messages with every resource of it; a full JID → only that resource", async (t) => {
    const { juliet } = await fiveMessages(t);
    assert.deepEqual((await query(juliet, { fields: { with: 'romeo@localhost' } })).bodies, ['m1', 'm2', 'm3', 'm5']);
    assert.deepEqual((await query(juliet, { fields: { with: 'romeo@localhost/garden' } })).bodies, ['m3']);
    assert.deepEqual((await query(juliet, { fields: { with: 'nurse@localhost' } })).bodies, ['m4']);
    assert.deepEqual((await query(juliet, { fields: { with: 'romeo@localhos' } })).bodies, [], 'a prefix of a JID is not that JID');
  });

  test("'with' the own bare JID → only messages to self (§4.1.1)", async (t) => {
    const { server, juliet } = await fiveMessages(t);
    const other = await server.login('juliet', { resource: 'chamber' });
    other.send(`<message to='juliet@localhost/balcony' type='chat'><body>self</body></message>`);
    await nextMessage(juliet);
    assert.deepEqual((await query(juliet, { fields: { with: 'juliet@localhost' } })).bodies, ['self']);
  });

  test('start and end (XEP-0082, inclusive) → messages in that time; an end before every message → none', async (t) => {
    const { juliet, server } = await fiveMessages(t);
    const stamps = (await query(juliet)).results.map((r) => r.getChild('result', MAM)!.getChild('forwarded')!.getChild('delay')!.attrs.stamp!);
    assert.equal(stamps.length, 5);
    assert.deepEqual((await query(juliet, { fields: { start: stamps[0]!, end: stamps[4]! } })).bodies, ['m1', 'm2', 'm3', 'm4', 'm5']);
    assert.deepEqual((await query(juliet, { fields: { end: '2000-01-01T00:00:00Z' } })).bodies, []);
    assert.deepEqual((await query(juliet, { fields: { start: '2999-01-01T00:00:00.000+02:00' } })).bodies, []);
    // Messages a second later are outside an 'end' of now.
    await sleep(1100);
    const romeo = await server.login('romeo', { resource: 'later' });
    romeo.send(`<message to='juliet@localhost/balcony' type='chat'><body>later</body></message>`);
    await nextMessage(juliet);
    const late = await query(juliet, { fields: { start: new Date(Date.now() - 500).toISOString() } });
    assert.deepEqual(late.bodies, ['later']);
    const early = await query(juliet, { fields: { end: stamps[4]! } });
    assert.deepEqual(early.bodies, ['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  test('a malformed start or end → bad-request', async (t) => {
    const { juliet } = await fiveMessages(t);
    for (const bad of ['yesterday', '2010-13-01T00:00:00Z', '2010-02-30T00:00:00Z', '2010-06-07', '2010-06-07T25:00:00Z']) {
      assertError(await query(juliet, { fields: { start: bad } }), 'bad-request');
    }
    assertError(await query(juliet, { fields: { end: '2010-06-07T00:00:00' } }), 'bad-request');
  });

  test('after-id and before-id → the messages strictly between; ids → exactly those', async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    assert.deepEqual((await query(juliet, { fields: { 'after-id': ids[1]! } })).bodies, ['m3', 'm4', 'm5']);
    assert.deepEqual((await query(juliet, { fields: { 'before-id': ids[2]! } })).bodies, ['m1', 'm2']);
    assert.deepEqual((await query(juliet, { fields: { 'after-id': ids[0]!, 'before-id': ids[4]! } })).bodies, ['m2', 'm3', 'm4']);
    const picked = await query(juliet, { fields: { ids: [ids[3]!, ids[0]!] } });
    assert.deepEqual(picked.bodies, ['m1', 'm4']);
    assert.equal(picked.count, '2');
  });

  test('an unknown after-id, before-id or ids value → item-not-found', async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    assertError(await query(juliet, { fields: { 'after-id': 'nope' } }), 'item-not-found');
    assertError(await query(juliet, { fields: { 'before-id': 'nope' } }), 'item-not-found');
    assertError(await query(juliet, { fields: { ids: [ids[0]!, 'nope'] } }), 'item-not-found');
  });

  test('another account\'s archive id → item-not-found (archives are separate)', async (t) => {
    const { server, juliet } = await fiveMessages(t);
    const romeo = await server.login('romeo', { resource: 'x' });
    const romeoIds = (await query(romeo)).ids;
    assert.ok(romeoIds.length > 0);
    assertError(await query(juliet, { fields: { ids: romeoIds[0]! } }), 'item-not-found');
  });

  test('an unknown field → feature-not-implemented; a wrong FORM_TYPE or a bad with → bad-request', async (t) => {
    const { juliet } = await fiveMessages(t);
    assertError(await query(juliet, { fields: { '{urn:example}full-text': 'love' } }), 'feature-not-implemented');
    await iqExpect(
      juliet,
      `<iq type='set' id='ft'><query xmlns='${MAM}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query></iq>`,
      `<iq type='error' id='ft'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`,
    );
    assertError(await query(juliet, { fields: { with: '@@@' } }), 'bad-request');
  });

  test("include-groupchat is understood (true or false); a non-boolean → bad-request", async (t) => {
    const { juliet } = await fiveMessages(t);
    assert.equal((await query(juliet, { fields: { 'include-groupchat': 'true' } })).bodies.length, 5);
    assert.equal((await query(juliet, { fields: { 'include-groupchat': 'false' } })).bodies.length, 5);
    assertError(await query(juliet, { fields: { 'include-groupchat': 'maybe' } }), 'bad-request');
  });
});

describe('mam: paging (XEP-0059)', () => {
  test('forward: max 2 → pages of 2, 2, 1 with first index, last, count; complete only on the last', async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    const p1 = await query(juliet, { rsm: '<max>2</max>' });
    assert.deepEqual([p1.bodies, p1.first, p1.firstIndex, p1.last, p1.count, p1.complete], [['m1', 'm2'], ids[0], '0', ids[1], '5', 'false']);
    const p2 = await query(juliet, { rsm: `<max>2</max><after>${p1.last}</after>` });
    assert.deepEqual([p2.bodies, p2.firstIndex, p2.last, p2.count, p2.complete], [['m3', 'm4'], '2', ids[3], '5', 'false']);
    const p3 = await query(juliet, { rsm: `<max>2</max><after>${p2.last}</after>` });
    assert.deepEqual([p3.bodies, p3.firstIndex, p3.count, p3.complete], [['m5'], '4', '5', 'true']);
    const p4 = await query(juliet, { rsm: `<max>2</max><after>${p3.last}</after>` });
    assert.deepEqual([p4.bodies, p4.first, p4.last, p4.count, p4.complete], [[], undefined, undefined, '5', 'true']);
  });

  test('backward: an empty <before/> → the last page; paging back → earlier pages, complete at the start', async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    const p1 = await query(juliet, { rsm: '<max>2</max><before/>' });
    assert.deepEqual([p1.bodies, p1.first, p1.firstIndex, p1.last, p1.count, p1.complete], [['m4', 'm5'], ids[3], '3', ids[4], '5', 'false']);
    const p2 = await query(juliet, { rsm: `<max>2</max><before>${p1.first}</before>` });
    assert.deepEqual([p2.bodies, p2.firstIndex, p2.complete], [['m2', 'm3'], '1', 'false']);
    const p3 = await query(juliet, { rsm: `<max>2</max><before>${p2.first}</before>` });
    assert.deepEqual([p3.bodies, p3.firstIndex, p3.complete], [['m1'], '0', 'true']);
  });

  test('paging within a filter: counts and indexes are those of the filtered set', async (t) => {
    const { juliet } = await fiveMessages(t);
    const p1 = await query(juliet, { fields: { with: 'romeo@localhost' }, rsm: '<max>1</max><before/>' });
    assert.deepEqual([p1.bodies, p1.firstIndex, p1.count, p1.complete], [['m5'], '3', '4', 'false']);
    const p2 = await query(juliet, { fields: { with: 'romeo@localhost' }, rsm: `<max>2</max><before>${p1.first}</before>` });
    assert.deepEqual([p2.bodies, p2.firstIndex, p2.count], [['m2', 'm3'], '1', '4']);
  });

  test('flip-page → the same page, newest first; first and last unchanged', async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    const flipped = await query(juliet, { rsm: '<max>3</max><before/>', flip: true });
    assert.deepEqual(flipped.bodies, ['m5', 'm4', 'm3']);
    assert.deepEqual([flipped.first, flipped.last, flipped.firstIndex], [ids[2], ids[4], '2']);
  });

  test('an unknown RSM after or before id → item-not-found', async (t) => {
    const { juliet } = await fiveMessages(t);
    assertError(await query(juliet, { rsm: '<max>2</max><after>nope</after>' }), 'item-not-found');
    assertError(await query(juliet, { rsm: '<max>2</max><before>nope</before>' }), 'item-not-found');
  });

  test('a malformed <max/> or an empty <after/> → bad-request', async (t) => {
    const { juliet } = await fiveMessages(t);
    assertError(await query(juliet, { rsm: '<max>-1</max>' }), 'bad-request');
    assertError(await query(juliet, { rsm: '<max>ten</max>' }), 'bad-request');
    assertError(await query(juliet, { rsm: '<after/>' }), 'bad-request');
  });

  test('max 0 → no messages, just the count', async (t) => {
    const { juliet } = await fiveMessages(t);
    const answer = await query(juliet, { rsm: '<max>0</max>' });
    assert.deepEqual([answer.bodies, answer.first, answer.count, answer.complete], [[], undefined, '5', 'false']);
  });

  test('max_page caps the page, with or without a larger <max/>', async (t) => {
    const { juliet } = await fiveMessages(t, { max_page: 3 });
    const asked = await query(juliet, { rsm: '<max>10</max>' });
    assert.deepEqual([asked.bodies, asked.count, asked.complete], [['m1', 'm2', 'm3'], '5', 'false']);
    const unasked = await query(juliet);
    assert.deepEqual([unasked.bodies, unasked.complete], [['m1', 'm2', 'm3'], 'false']);
    const rest = await query(juliet, { rsm: `<after>${unasked.last}</after>` });
    assert.deepEqual([rest.bodies, rest.complete], [['m4', 'm5'], 'true']);
  });

  test('an empty archive → no results, count 0, complete', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await query(romeo, { rsm: '<max>10</max><before/>' });
    assert.deepEqual([answer.results.length, answer.first, answer.count, answer.complete], [0, undefined, '0', 'true']);
  });
});

describe('mam: form, metadata and access', () => {
  test('an IQ get → the form of supported fields, ids open (XEP-0122), none required', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await ok(romeo, `<iq type='get'><query xmlns='${MAM}'/></iq>`);
    const form = answer.getChild('query', MAM)!.getChild('x', 'jabber:x:data')!;
    assert.equal(form.attrs.type, 'form');
    const fields = form.getChildren('field');
    assert.deepEqual(
      fields.map((f) => `${f.attrs.var}:${f.attrs.type}`),
      ['FORM_TYPE:hidden', 'with:jid-single', 'start:text-single', 'end:text-single', 'before-id:text-single', 'after-id:text-single', 'ids:list-multi', 'include-groupchat:boolean'],
    );
    assert.ok(fields.find((f) => f.attrs.var === 'ids')!.getChild('validate', 'http://jabber.org/protocol/xdata-validate')!.getChild('open'));
    assert.ok(fields.every((f) => !f.getChild('required')));
  });

  test('metadata → the first and last message with id and timestamp; an empty archive → empty metadata', async (t) => {
    const { juliet, ids, server } = await fiveMessages(t);
    const answer = await ok(juliet, `<iq type='get'><metadata xmlns='${MAM}'/></iq>`);
    const metadata = answer.getChild('metadata', MAM)!;
    assert.equal(metadata.getChild('start')!.attrs.id, ids[0]);
    assert.equal(metadata.getChild('end')!.attrs.id, ids[4]);
    assert.match(metadata.getChild('end')!.attrs.timestamp!, /Z$/);
    const empty = await ok(await server.login('tybalt'), `<iq type='get'><metadata xmlns='${MAM}'/></iq>`);
    assert.deepEqual(empty.getChild('metadata', MAM)!.elements(), []);
  });

  test("a query to someone else's archive → forbidden", async (t) => {
    const { server } = await fiveMessages(t);
    const romeo = await server.login('romeo', { resource: 'spy' });
    await iqExpect(romeo, `<iq type='set' id='spy' to='juliet@localhost'><query xmlns='${MAM}'/></iq>`, `<iq type='error' id='spy'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
  });

  test("the form, metadata or a paged query of someone else's archive → forbidden, and no result message leaks", async (t) => {
    const { server } = await fiveMessages(t);
    const romeo = await server.login('romeo', { resource: 'spy' });
    const to = `to='juliet@localhost'`;
    await iqExpect(romeo, `<iq type='get' id='f' ${to}><query xmlns='${MAM}'/></iq>`, `<iq type='error' id='f'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await iqExpect(romeo, `<iq type='get' id='md' ${to}><metadata xmlns='${MAM}'/></iq>`, `<iq type='error' id='md'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    const paged = await query(romeo, { to: 'juliet@localhost', rsm: '<max>5</max><before/>' });
    assertError(paged, 'forbidden');
    assert.deepEqual(paged.results, []);
  });

  test('urn:xmpp:mam:1 (older clients) → the same archive, results, <fin/>, form and preferences in that namespace; a mam:2 FORM_TYPE in it → bad-request', async (t) => {
    const { juliet, ids } = await fiveMessages(t);
    const MAM1 = 'urn:xmpp:mam:1';
    const info = await ok(juliet, `<iq type='get' to='juliet@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === MAM1));
    const form = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${MAM1}</value></field><field var='after-id'><value>${ids[2]}</value></field></x>`;
    juliet.send(`<iq type='set' id='old'><query xmlns='${MAM1}' queryid='q-old'>${form}<set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></query></iq>`);
    const result = await juliet.next();
    const item = result.getChild('result', MAM1);
    assert.ok(item, result.toString());
    assert.deepEqual([item.attrs.queryid, item.attrs.id], ['q-old', ids[3]]);
    const fin = (await juliet.expect(`<iq type='result' id='old'/>`)).getChild('fin', MAM1);
    assert.ok(fin, 'fin in urn:xmpp:mam:1');
    assert.deepEqual([fin.attrs.complete, fin.getChild('set', 'http://jabber.org/protocol/rsm')!.getChildText('count')], ['false', '2']);

    const fields = await ok(juliet, `<iq type='get'><query xmlns='${MAM1}'/></iq>`);
    assert.equal(fields.getChild('query', MAM1)!.getChild('x', 'jabber:x:data')!.getChildren('field')[0]!.getChildText('value'), MAM1);
    const prefs = await ok(juliet, `<iq type='set'><prefs xmlns='${MAM1}' default='roster'><always/><never/></prefs></iq>`);
    assert.equal(prefs.getChild('prefs', MAM1)!.attrs.default, 'roster');
    const now = await ok(juliet, `<iq type='get'><prefs xmlns='${MAM}'/></iq>`);
    assert.equal(now.getChild('prefs', MAM)!.attrs.default, 'roster', 'one set of preferences');

    const mixed = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field></x>`;
    await iqExpect(juliet, `<iq type='set' id='mix'><query xmlns='${MAM1}'>${mixed}</query></iq>`, `<iq type='error' id='mix'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
  });

  test("a query addressed to the own bare JID → results from it, queryid echoed", async (t) => {
    const { juliet } = await fiveMessages(t);
    const answer = await query(juliet, { to: 'juliet@localhost', queryId: 'mine', rsm: '<max>1</max>' });
    assert.equal(answer.results[0]!.attrs.from, 'juliet@localhost');
    assert.equal(answer.results[0]!.getChild('result', MAM)!.attrs.queryid, 'mine');
    assert.equal(forwardedOf(answer.results[0]!).getChildText('body'), 'm1');
  });
});
