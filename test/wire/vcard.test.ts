import { describe, test } from 'node:test';
import { startServer } from '../../bin/testing.js';
import { iqExpect, stanzaErrorPattern } from './module-helpers.js';

const VCARD = `<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>JC</NICKNAME></vCard>`;

describe('vcard', () => {
  test('own vCard never set → an empty <vCard/>', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='result' id='v1' to='{any}'><vCard xmlns='vcard-temp'/></iq>`, { strict: true });
  });

  test('set own vCard → stored: the owner and others get it, also after a restart', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='set' id='v2'>${VCARD}</iq>`, `<iq type='result' id='v2'/>`);
    await iqExpect(juliet, `<iq type='get' id='v3'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='result' id='v3' to='{any}'>${VCARD}</iq>`, { strict: true });
    await server.restart();
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='juliet@localhost' id='v4'><vCard xmlns='vcard-temp'/></iq>`,
      `<iq type='result' from='juliet@localhost' to='{any}' id='v4'>${VCARD}</iq>`,
      { strict: true },
    );
  });

  test("someone else's missing vCard and an unknown account → the same service-unavailable", async (t) => {
    const server = await startServer(t);
    await server.createUser('juliet');
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='v5'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='error' id='v5'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
    await iqExpect(romeo, `<iq type='get' to='nobody@localhost' id='v6'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='error' id='v6'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });

  test("set on another account's vCard → forbidden, and it stays unchanged", async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='set' id='v7'>${VCARD}</iq>`, `<iq type='result' id='v7'/>`);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='set' to='juliet@localhost' id='v8'><vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard></iq>`, `<iq type='error' id='v8'>${stanzaErrorPattern('auth', 'forbidden')}</iq>`);
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='v9'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='result' id='v9'>${VCARD}</iq>`);
  });

  test('vCard larger than max_size → not-acceptable, nothing stored', async (t) => {
    const server = await startServer(t, { modules: { vcard: { max_size: '1 KiB' } } });
    const juliet = await server.login('juliet');
    const big = `<vCard xmlns='vcard-temp'><DESC>${'x'.repeat(2000)}</DESC></vCard>`;
    await iqExpect(juliet, `<iq type='set' id='v10'>${big}</iq>`, `<iq type='error' id='v10'>${stanzaErrorPattern('modify', 'not-acceptable')}</iq>`);
    await iqExpect(juliet, `<iq type='get' id='v11'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='result' id='v11' to='{any}'><vCard xmlns='vcard-temp'/></iq>`, { strict: true });
  });

  test('set an empty vCard → the stored one is removed', async (t) => {
    const server = await startServer(t);
    const juliet = await server.login('juliet');
    await iqExpect(juliet, `<iq type='set' id='v12'>${VCARD}</iq>`, `<iq type='result' id='v12'/>`);
    await iqExpect(juliet, `<iq type='set' id='v13'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='result' id='v13'/>`);
    const romeo = await server.login('romeo');
    await iqExpect(romeo, `<iq type='get' to='juliet@localhost' id='v14'><vCard xmlns='vcard-temp'/></iq>`, `<iq type='error' id='v14'>${stanzaErrorPattern('cancel', 'service-unavailable')}</iq>`);
  });
});
