// XEP-0215 external service discovery (modules/external-services.ts): the configured STUN/TURN
// servers, TURN REST credentials a coturn with use-auth-secret would accept, and who may ask.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startFederation, startServer } from '../../bin/testing.js';
import { assertMatches, iqExpect, stanzaErrorPattern } from './module-helpers.js';

const EXTDISCO = 'urn:xmpp:extdisco:2';
const SECRET = 'coturn-static-auth-secret';

const SERVICES = {
  external_services: {
    secret: SECRET,
    credentials_ttl: '1 hour',
    services: [
      { type: 'stun', host: 'turn.example.org', transport: 'udp' },
      { type: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp' },
      { type: 'turns', host: 'turn.example.org', transport: 'tcp', restricted: true },
      { type: 'turn', host: 'static.example.org', port: 3479, transport: 'tcp', username: 'fixed', password: 'pw' },
    ],
  },
};

/** coturn's check: the password is base64(HMAC-SHA1(secret, username)) and the expiry lies ahead. */
function assertTurnRest(service: { attrs: Record<string, string | undefined> }, user: string): void {
  const { username, password, expires } = service.attrs;
  assert.ok(username && password && expires, 'credentials missing');
  const [stamp, who] = username.split(/:(.*)/s);
  assert.equal(who, user);
  assert.equal(password, createHmac('sha1', SECRET).update(username).digest('base64'));
  const expiry = Number(stamp) * 1000;
  assert.ok(expiry > Date.now() + 59 * 60_000 && expiry <= Date.now() + 60 * 60_000 + 1000, `expiry ${stamp}`);
  assert.equal(new Date(expires).getTime(), expiry);
}

describe('external_services: XEP-0215', () => {
  test('services → every configured server, TURN credentials inline except for restricted ones', async (t) => {
    const server = await startServer(t, { modules: SERVICES });
    const romeo = await server.login('romeo');
    const info = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(info.toString().includes(`var='${EXTDISCO}'`));
    const answer = await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='s1'><services xmlns='${EXTDISCO}'/></iq>`,
      `<iq type='result' id='s1'><services xmlns='${EXTDISCO}'>
        <service type='stun' host='turn.example.org' port='3478' transport='udp'/>
        <service type='turn' host='turn.example.org' port='3478' transport='udp' restricted='1'/>
        <service type='turns' host='turn.example.org' port='5349' transport='tcp' restricted='1'/>
        <service type='turn' host='static.example.org' port='3479' transport='tcp' restricted='1' username='fixed' password='pw'/>
      </services></iq>`,
    );
    const list = answer.getChild('services', EXTDISCO)!.getChildren('service');
    assert.equal(list.length, 4);
    const [stun, turn, turns] = list;
    assert.equal(stun!.attrs.username, undefined);
    assertTurnRest(turn!, 'romeo@localhost');
    assert.equal(turns!.attrs.password, undefined, 'restricted: credentials only on request');
  });

  test('two users at once → each gets credentials in their own name, and a shared secret verifies both', async (t) => {
    const server = await startServer(t, { modules: SERVICES });
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const turnOf = async (client: typeof romeo) =>
      (await client.iq(`<iq type='get' to='localhost'><services xmlns='${EXTDISCO}' type='turn'/></iq>`))
        .getChild('services', EXTDISCO)!
        .getChildren('service')
        .find((service) => service.attrs.host === 'turn.example.org')!;
    const [forRomeo, forJuliet] = await Promise.all([turnOf(romeo), turnOf(juliet)]);
    assertTurnRest(forRomeo, 'romeo@localhost');
    assertTurnRest(forJuliet, 'juliet@localhost');
    assert.notEqual(forRomeo.attrs.password, forJuliet.attrs.password);
    // Credentials for one port only: the restricted turns service on 5349, not on another port.
    const byPort = await romeo.iq(`<iq type='get' to='localhost'><credentials xmlns='${EXTDISCO}'><service host='turn.example.org' type='turns' port='5349'/></credentials></iq>`);
    assertTurnRest(byPort.getChild('credentials', EXTDISCO)!.getChild('service')!, 'romeo@localhost');
    const wrongPort = await romeo.iq(`<iq type='get' to='localhost'><credentials xmlns='${EXTDISCO}'><service host='turn.example.org' type='turns' port='443'/></credentials></iq>`);
    assertMatches(wrongPort, `<iq type='error'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
  });

  test('services with a type → only that type', async (t) => {
    const server = await startServer(t, { modules: SERVICES });
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' id='s2'><services xmlns='${EXTDISCO}' type='stun'/></iq>`);
    const services = answer.getChild('services', EXTDISCO)!;
    assert.equal(services.attrs.type, 'stun');
    assert.deepEqual(services.getChildren('service').map((s) => s.attrs.type), ['stun']);
  });

  test('credentials for a restricted TURN server → fresh TURN REST credentials that verify', async (t) => {
    const server = await startServer(t, { modules: SERVICES });
    const romeo = await server.login('romeo');
    const answer = await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='c1'><credentials xmlns='${EXTDISCO}'><service host='turn.example.org' type='turns'/></credentials></iq>`,
      `<iq type='result' id='c1'><credentials xmlns='${EXTDISCO}'><service host='turn.example.org' type='turns' port='5349' restricted='1'/></credentials></iq>`,
    );
    assertTurnRest(answer.getChild('credentials', EXTDISCO)!.getChild('service')!, 'romeo@localhost');
  });

  test('credentials for an unknown service or a STUN server → item-not-found; without host → bad-request', async (t) => {
    const server = await startServer(t, { modules: SERVICES });
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='c2'><credentials xmlns='${EXTDISCO}'><service host='nope.example.org' type='turn'/></credentials></iq>`,
      `<iq type='error' id='c2'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`,
    );
    await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='c3'><credentials xmlns='${EXTDISCO}'><service host='turn.example.org' type='stun'/></credentials></iq>`,
      `<iq type='error' id='c3'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`,
    );
    await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='c4'><credentials xmlns='${EXTDISCO}'><service type='turn'/></credentials></iq>`,
      `<iq type='error' id='c4'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`,
    );
  });

  test('no services configured → an empty list', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='localhost'><services xmlns='${EXTDISCO}'/></iq>`);
    assertMatches(answer, `<iq type='result'><services xmlns='${EXTDISCO}'/></iq>`);
    assert.equal(answer.getChild('services', EXTDISCO)!.children.length, 0);
  });

  test('a user of another server asks → forbidden', async (t) => {
    const [a, b] = await startFederation(t, { domain: 'a.test', modules: SERVICES }, { domain: 'b.test' });
    const juliet = await b!.login('juliet');
    await iqExpect(
      juliet,
      `<iq type='get' to='a.test' id='r1'><services xmlns='${EXTDISCO}'/></iq>`,
      `<iq type='error' id='r1' from='a.test'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`,
    );
    void a;
  });
});
