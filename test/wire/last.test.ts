import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { befriend } from './presence-helpers.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const LAST = `<query xmlns='jabber:iq:last'/>`;

describe('last', () => {
  test('last activity of the server → its uptime in seconds, no text', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await iqExpect(romeo, `<iq type='get' to='localhost' id='l1'>${LAST}</iq>`, `<iq type='result' from='localhost' id='l1'><query xmlns='jabber:iq:last' seconds='{any}'/></iq>`);
    const query = answer.getChild('query', 'jabber:iq:last')!;
    assert.match(query.attrs.seconds!, /^\d+$/);
    assert.equal(query.text(), '');
  });

  test('a contact asks after a logout → seconds since then and the status of the unavailable presence, also after a restart', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const juliet = await server.login('juliet', { resource: 'balcony' });
    juliet.send('<presence/>');
    await juliet.waitFor(`<presence from='juliet@localhost/balcony'/>`);
    juliet.send(`<presence type='unavailable'><status>Heading Home</status></presence>`);
    await juliet.close();
    await server.restart();
    const romeo = await server.login('romeo');
    const answer = await iqExpect(
      romeo,
      `<iq type='get' to='juliet@localhost' id='l2'>${LAST}</iq>`,
      `<iq type='result' from='juliet@localhost' id='l2'><query xmlns='jabber:iq:last' seconds='{any}'>Heading Home</query></iq>`,
    );
    assert.match(answer.getChild('query', 'jabber:iq:last')!.attrs.seconds!, /^\d+$/);
  });

  test('a logout without unavailable presence (connection lost) → no status text', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const juliet = await server.login('juliet', { resource: 'balcony' });
    juliet.send(`<presence type='unavailable'><status>Old news</status></presence>`);
    juliet.send('<presence/>'); // available again: the old status no longer applies
    await juliet.waitFor(`<presence from='juliet@localhost/balcony'/>`);
    juliet.dropTcp();
    const romeo = await server.login('romeo');
    for (let i = 0; i < 100 && server.server.sessions.resourcesOf('juliet@localhost').length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='l3'>${LAST}</iq>`, `<iq type='result' id='l3' from='juliet@localhost' to='{any}'><query xmlns='jabber:iq:last' seconds='{any}'/></iq>`, { strict: true });
    const answer = await romeo.iq(`<iq type='get' to='juliet@localhost' id='l4'>${LAST}</iq>`);
    assert.equal(answer.getChild('query', 'jabber:iq:last')?.text(), '');
  });

  test('the account connected → seconds 0, for itself and for contacts', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='get' id='l5'>${LAST}</iq>`, `<iq type='result' id='l5'><query xmlns='jabber:iq:last' seconds='0'/></iq>`);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='l6'>${LAST}</iq>`, `<iq type='result' id='l6'><query xmlns='jabber:iq:last' seconds='0'/></iq>`);
  });

  test('a stranger asks (bare or full JID) → forbidden; an unknown account → service-unavailable', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const iago = await server.login('iago');
    await iqExpect(iago, `<iq type='get' to='juliet@localhost' id='l7'>${LAST}</iq>`, `<iq type='error' id='l7'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    // XEP-0012 §4: "the user's server MUST NOT deliver the IQ-get to an available resource".
    await iqExpect(iago, `<iq type='get' to='juliet@localhost/balcony' id='l8'>${LAST}</iq>`, `<iq type='error' id='l8'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await juliet.expectNothing(100);
    await iqExpect(iago, `<iq type='get' to='nobody@localhost' id='l9'>${LAST}</iq>`, `<iq type='error' id='l9'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });

  test('a contact asks a full JID → delivered to that client (idle time is its answer)', async (t) => {
    const server = await startServer(t);
    await befriend(server, 'romeo', 'juliet');
    const juliet = await server.login('juliet', { resource: 'balcony' });
    const romeo = await server.login('romeo', { resource: 'r1' });
    romeo.send(`<iq type='get' to='juliet@localhost/balcony' id='l10'>${LAST}</iq>`);
    await juliet.expect(`<iq type='get' from='romeo@localhost/r1' id='l10'>${LAST}</iq>`);
  });
});
