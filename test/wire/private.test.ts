import { describe, test } from 'node:test';
import { startServer } from '../../bin/testing.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const PREFS = `<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>`;
const query = (content: string) => `<query xmlns='jabber:iq:private'>${content}</query>`;

describe('private', () => {
  test('set then get (XEP-0049 examples) → the stored element, kept per namespace and across a restart', async (t) => {
    const server = await startServer(t);
    const hamlet = await server.login('hamlet');
    await iqExpect(hamlet, `<iq type='set' id='p1'>${query(PREFS)}</iq>`, `<iq type='result' id='p1'/>`);
    await iqExpect(hamlet, `<iq type='set' id='p2'>${query(`<storage xmlns='storage:bookmarks'><url name='x' url='https://example.org'/></storage>`)}</iq>`, `<iq type='result' id='p2'/>`);
    await server.restart();
    const again = await server.login('hamlet');
    await iqExpect(again, `<iq type='get' id='p3'>${query(`<exodus xmlns='exodus:prefs'/>`)}</iq>`, `<iq type='result' id='p3' to='{any}'>${query(PREFS)}</iq>`, { strict: true });
  });

  test('a set with several elements of one namespace → all of them come back', async (t) => {
    const server = await startServer(t);
    const hamlet = await server.login('hamlet');
    const two = `<a xmlns='urn:example:x'>1</a><b xmlns='urn:example:x'>2</b>`;
    await iqExpect(hamlet, `<iq type='set' id='p4'>${query(two)}</iq>`, `<iq type='result' id='p4'/>`);
    await iqExpect(hamlet, `<iq type='get' id='p5'>${query(`<a xmlns='urn:example:x'/>`)}</iq>`, `<iq type='result' id='p5' to='{any}'>${query(two)}</iq>`, { strict: true });
  });

  test('get of a namespace with nothing stored → the empty element asked for', async (t) => {
    const server = await startServer(t);
    const hamlet = await server.login('hamlet');
    await iqExpect(hamlet, `<iq type='get' id='p6'>${query(`<exodus xmlns='exodus:prefs'/>`)}</iq>`, `<iq type='result' id='p6' to='{any}'>${query(`<exodus xmlns='exodus:prefs'/>`)}</iq>`, { strict: true });
  });

  test('reserved namespaces (jabber:client, jabber:server, jabber:iq:private, none) → not-acceptable', async (t) => {
    const server = await startServer(t);
    const hamlet = await server.login('hamlet');
    const cases = [`<message xmlns='jabber:client'/>`, `<x xmlns='jabber:server'/>`, `<query xmlns='jabber:iq:private'/>`, `<prefs/>`];
    for (const [i, element] of cases.entries()) {
      await iqExpect(hamlet, `<iq type='set' id='r${i}'>${query(element)}</iq>`, `<iq type='error' id='r${i}'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
      await iqExpect(hamlet, `<iq type='get' id='g${i}'>${query(element)}</iq>`, `<iq type='error' id='g${i}'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
    }
  });

  test('a query without a child → not-acceptable; a get naming two namespaces → bad-request', async (t) => {
    const server = await startServer(t);
    const hamlet = await server.login('hamlet');
    await iqExpect(hamlet, `<iq type='set' id='e1'>${query('')}</iq>`, `<iq type='error' id='e1'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
    await iqExpect(hamlet, `<iq type='get' id='e2'>${query('')}</iq>`, `<iq type='error' id='e2'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
    await iqExpect(hamlet, `<iq type='get' id='e3'>${query(`<a xmlns='urn:a'/><b xmlns='urn:b'/>`)}</iq>`, `<iq type='error' id='e3'>${stanzaErrorPattern('modify', 'bad-request')}</iq>`);
  });

  test("get or set on another account's private storage → forbidden", async (t) => {
    const server = await startServer(t);
    await server.createUser('hamlet');
    const macbeth = await server.login('macbeth');
    await iqExpect(macbeth, `<iq type='set' to='hamlet@localhost' id='f1'>${query(PREFS)}</iq>`, `<iq type='error' id='f1'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await iqExpect(macbeth, `<iq type='get' to='hamlet@localhost' id='f2'>${query(`<exodus xmlns='exodus:prefs'/>`)}</iq>`, `<iq type='error' id='f2'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
  });
});
