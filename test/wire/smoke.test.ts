import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';

describe('c2s: login and a message', () => {
  test('STARTTLS, SCRAM-SHA-1, bind, ping, message to a full JID', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'orchard' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    assert.equal(romeo.jid, 'romeo@localhost/orchard');
    assert.ok(romeo.secure);
    const pong = await romeo.iq(`<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(pong.attrs.type, 'result');
    romeo.send(`<message to='juliet@localhost/balcony' type='chat' id='m1'><body>hello</body></message>`);
    await juliet.expect(`<message from='romeo@localhost/orchard' to='juliet@localhost/balcony' type='chat' id='m1'><body>hello</body></message>`);
  });
});
