import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startServer } from '../../bin/testing.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

describe('version', () => {
  test('version of the server → Herald and the package version, no os by default', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='localhost' id='s1'><query xmlns='jabber:iq:version'/></iq>`,
      `<iq type='result' from='localhost' to='{any}' id='s1'><query xmlns='jabber:iq:version'><name>Herald</name><version>${pkg.version}</version></query></iq>`,
      { strict: true },
    );
  });

  test('show_os: true → an <os/> element', async (t) => {
    const server = await startServer(t, { modules: { version: { show_os: true } } });
    const romeo = await server.login('romeo');
    const answer = await romeo.iq(`<iq type='get' to='localhost' id='s2'><query xmlns='jabber:iq:version'/></iq>`);
    assert.ok(answer.getChild('query', 'jabber:iq:version')?.getChildText('os'), `no os: ${answer.toString()}`);
  });

  test('version to a full JID → delivered to that client; to one not connected → service-unavailable', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo', { resource: 'r1' });
    const juliet = await server.login('juliet', { resource: 'balcony' });
    romeo.send(`<iq type='get' to='juliet@localhost/balcony' id='s3'><query xmlns='jabber:iq:version'/></iq>`);
    await juliet.expect(`<iq type='get' from='romeo@localhost/r1' id='s3'><query xmlns='jabber:iq:version'/></iq>`);
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost/gone' id='s4'><query xmlns='jabber:iq:version'/></iq>`, `<iq type='error' id='s4'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });
});
