import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { defineModule } from '../../server/module-api.js';
import { parseXml } from '../../server/xml/parser.js';
import { capsVerification } from '../../server/protocol/xep0115.js';
import { befriend } from './presence-helpers.js';
import { assertMatches, iqExpect, stanzaErrorPattern } from './module-helpers.js';

const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';

/** A module registering an item and a XEP-0128 form, to see them served. */
const extras = defineModule({
  name: 'disco-test-extras',
  setup(m) {
    m.discoItem('conference.localhost', 'Chatrooms');
    m.discoExtension(
      parseXml(
        `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/network/serverinfo</value></field><field var='abuse-addresses'><value>mailto:abuse@localhost</value></field></x>`,
      ),
    );
  },
});

describe('disco: the server', () => {
  test('disco#info to the domain → server/im identity, every module feature, XEP-0128 forms', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, extras] });
    const romeo = await server.login('romeo');
    const answer = await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='i1'><query xmlns='${INFO}'/></iq>`,
      `<iq type='result' from='localhost' id='i1'><query xmlns='${INFO}'><identity category='server' type='im' name='Herald'/></query></iq>`,
    );
    const query = answer.getChild('query', INFO)!;
    const features = new Set(query.getChildren('feature').map((f) => f.attrs.var));
    for (const feature of [INFO, ITEMS, 'msgoffline', 'vcard-temp', 'urn:xmpp:blocking', 'jabber:iq:version', 'urn:xmpp:time', 'jabber:iq:last', 'urn:xmpp:ping']) {
      assert.ok(features.has(feature), `feature ${feature} missing`);
    }
    assertMatches(query, `<query><x xmlns='jabber:x:data' type='result'><field var='abuse-addresses'><value>mailto:abuse@localhost</value></field></x></query>`);
  });

  test('disco#items to the domain → the registered items', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, extras] });
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='i2'><query xmlns='${ITEMS}'/></iq>`,
      `<iq type='result' id='i2'><query xmlns='${ITEMS}'><item jid='conference.localhost' name='Chatrooms'/></query></iq>`,
    );
  });

  test('disco#info and #items to an unknown node of the domain → item-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='localhost' id='n1'><query xmlns='${INFO}' node='nope'/></iq>`, `<iq type='error' id='n1'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
    await iqExpect(romeo, `<iq type='get' to='localhost' id='n2'><query xmlns='${ITEMS}' node='nope'/></iq>`, `<iq type='error' id='n2'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
  });

  test('caps stream feature after auth → its ver is the XEP-0115 hash of disco#info, and the caps node answers', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, extras] });
    const romeo = await server.login('romeo');
    const caps = romeo.features?.getChild('c', 'http://jabber.org/protocol/caps');
    assert.ok(caps, 'no caps in the post-auth stream features');
    assert.equal(caps.attrs.hash, 'sha-1');
    assert.equal(caps.attrs.node, 'https://herald.im');
    const node = `https://herald.im#${caps.attrs.ver}`;
    const answer = await iqExpect(romeo, `<iq type='get' to='localhost' id='c1'><query xmlns='${INFO}' node='${node}'/></iq>`, `<iq type='result' id='c1'><query xmlns='${INFO}' node='${node}'/></iq>`);
    assert.equal(capsVerification(answer.getChild('query', INFO)!), caps.attrs.ver);
    // A ver that is not ours is an unknown node.
    await iqExpect(romeo, `<iq type='get' to='localhost' id='c2'><query xmlns='${INFO}' node='https://herald.im#bogus'/></iq>`, `<iq type='error' id='c2'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
  });
});

describe('disco: accounts', () => {
  test('disco#info to own account (no to, or own bare JID) → account/registered and account features', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    for (const to of ['', ` to='romeo@localhost'`]) {
      const answer = await iqExpect(romeo, `<iq type='get' id='a1'${to}><query xmlns='${INFO}'/></iq>`, `<iq type='result' id='a1'><query xmlns='${INFO}'><identity category='account' type='registered'/></query></iq>`);
      const features = answer.getChild('query', INFO)!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.includes('vcard-temp') && features.includes('jabber:iq:private'), `account features: ${features.join(' ')}`);
      assert.ok(!features.includes('msgoffline'), 'a server feature is listed for the account');
    }
  });

  test('disco#info to an account by a stranger → service-unavailable; by a contact with a subscription → result', async (t) => {
    const server = await startServer(t);
    const iago = await server.login('iago');
    await iqExpect(iago, `<iq type='get' to='juliet@localhost' id='s1'><query xmlns='${INFO}'/></iq>`, `<iq type='error' id='s1'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    await server.createUser('juliet');
    await iqExpect(iago, `<iq type='get' to='juliet@localhost' id='s2'><query xmlns='${INFO}'/></iq>`, `<iq type='error' id='s2'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    await befriend(server, 'romeo', 'juliet');
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='s3'><query xmlns='${INFO}'/></iq>`, `<iq type='result' from='juliet@localhost' id='s3'><query xmlns='${INFO}'><identity category='account' type='registered'/></query></iq>`);
  });

  test('disco#items to an account → empty result; to a node of it → item-not-found', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await server.createUser('juliet');
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='t1'><query xmlns='${ITEMS}'/></iq>`, `<iq type='result' id='t1' from='juliet@localhost' to='{any}'><query xmlns='${ITEMS}'/></iq>`, { strict: true });
    await iqExpect(romeo, `<iq type='get' id='t2'><query xmlns='${ITEMS}' node='x'/></iq>`, `<iq type='error' id='t2'>${stanzaErrorPattern('cancel', 'item-not-found')}</iq>`);
  });
});
