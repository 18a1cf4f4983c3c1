// Older clients (Debian's slixmpp 1.8) try -PLUS with tls-unique, which TLS 1.3 lacks, then retry
// SCRAM with the 'y' flag. Herald accepts that 'y' only after such an attempt on the same stream.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { ScramClient } from '../../server/sasl/scram-client.js';
import type { XmppClient } from '../../server/client.js';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

async function scramWithFlag(client: XmppClient, flag: 'y' | 'n'): Promise<string> {
  const scram = new ScramClient('sha1', 'alice', 'password', { channelBinding: flag });
  client.sendRaw(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
  const challenge = await client.next();
  if (challenge.name !== 'challenge') return challenge.firstElement()?.name ?? challenge.name;
  client.sendRaw(`<response xmlns='${SASL}'>${scram.final(Buffer.from(challenge.text(), 'base64')).toString('base64')}</response>`);
  return (await client.next()).name;
}

async function tryTlsUnique(client: XmppClient): Promise<string | undefined> {
  client.sendRaw(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1-PLUS'>${Buffer.from('p=tls-unique,,n=alice,r=0123456789').toString('base64')}</auth>`);
  return (await client.next()).firstElement()?.name;
}

describe("sasl: the 'y' flag after an unsupported channel binding", () => {
  test("'y' right away while -PLUS is offered → not-authorized (downgrade protection)", async (t) => {
    const server = await startServer(t);
    await server.createUser('alice');
    const client = await server.connect();
    await client.startTls();
    assert.equal(await scramWithFlag(client, 'y'), 'not-authorized');
  });

  test("p=tls-unique fails, then 'y' succeeds, and the tls-unique attempt does not count as a failure", async (t) => {
    const server = await startServer(t, { config: { c2s: { max_auth_failures: 1 } } });
    await server.createUser('alice');
    const client = await server.connect();
    await client.startTls();
    assert.equal(await tryTlsUnique(client), 'not-authorized');
    assert.equal(await scramWithFlag(client, 'y'), 'success');
  });

  test("with c2s.channel_binding_fallback off, 'y' stays refused after tls-unique", async (t) => {
    const server = await startServer(t, { config: { c2s: { channel_binding_fallback: false } } });
    await server.createUser('alice');
    const client = await server.connect();
    await client.startTls();
    assert.equal(await tryTlsUnique(client), 'not-authorized');
    assert.equal(await scramWithFlag(client, 'y'), 'not-authorized');
  });
});
