// XEP-0157 contact addresses in the server's disco#info (modules/contact-info.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../bin/testing.js';
import { assertMatches } from './module-helpers.js';

const INFO = 'http://jabber.org/protocol/disco#info';
const SERVERINFO = 'http://jabber.org/network/serverinfo';

function serverInfoForm(query: import('../../server/xml/element.js').XmlElement) {
  return query.getChildren('x', 'jabber:x:data').find((form) => form.getChildren('field').some((f) => f.attrs.var === 'FORM_TYPE' && f.getChildText('value') === SERVERINFO));
}

describe('contact_info: XEP-0157', () => {
  test('configured addresses (and admins as admin-addresses) → a serverinfo form in the domain disco#info', async (t) => {
    const server = await startServer(t, {
      config: { admins: ['Boss@localhost'] },
      modules: { contact_info: { abuse: ['mailto:abuse@example.org', 'xmpp:abuse@localhost'], security: ['https://example.org/security'] } },
    });
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='${INFO}'/></iq>`);
    const form = serverInfoForm(answer.getChild('query', INFO)!);
    assert.ok(form, answer.toString());
    assertMatches(
      form,
      `<x xmlns='jabber:x:data' type='result'>
        <field var='FORM_TYPE' type='hidden'><value>${SERVERINFO}</value></field>
        <field var='abuse-addresses'><value>mailto:abuse@example.org</value><value>xmpp:abuse@localhost</value></field>
        <field var='admin-addresses'><value>xmpp:boss@localhost</value></field>
        <field var='security-addresses'><value>https://example.org/security</value></field>
      </x>`,
    );
    assert.equal(form.getChildren('field').length, 4, 'only the kinds that have addresses');
  });

  test('nothing configured and no admins → no serverinfo form', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='${INFO}'/></iq>`);
    assert.equal(serverInfoForm(answer.getChild('query', INFO)!), undefined);
  });

  test('an address that is not a URI → startup fails naming the key', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-contact-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    await assert.rejects(startServer({ dataDir, modules: { contact_info: { abuse: ['abuse@example.org'] } } }), /modules\.contact_info\.abuse/);
  });
});
