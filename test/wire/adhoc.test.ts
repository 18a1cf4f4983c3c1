import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../bin/testing.js';
import { builtinModules } from '../../modules/index.js';
import { defineModule } from '../../server/module-api.js';
import { field, formValue } from '../../server/protocol/xep0004.js';

const CMD = 'http://jabber.org/protocol/commands';

/** A test module offering 'echo' (two stages, anyone) on the server and 'secret' (nobody) on a component. */
const commandsUnderTest = defineModule({
  name: 'adhoc-test',
  depends: ['adhoc'],
  setup(m) {
    const adhoc = m.service('adhoc');
    adhoc.register('host', {
      node: 'echo',
      name: 'Echo',
      run({ form }) {
        if (!form) return { status: 'executing', form: { type: 'form', title: 'Echo', fields: [field('text', 'text-single', { required: true })] } };
        return { status: 'completed', note: { type: 'info', text: `echo: ${formValue(form, 'text') ?? ''}` } };
      },
    });
    const component = m.component('svc');
    component.identities.push({ category: 'component', type: 'generic', name: 'Test service' });
    adhoc.register(component, { node: 'secret', name: 'Secret', allowed: () => false, run: () => ({ status: 'completed' }) });
    adhoc.register(component, { node: 'open', name: 'Open', run: () => ({ status: 'completed', note: { type: 'info', text: 'done' } }) });
  },
});

describe('adhoc: XEP-0050 commands', () => {
  test('commands are listed, described, and run in two stages or in one', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, commandsUnderTest] });
    const romeo = await server.login('romeo');
    const items = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='${CMD}'/></iq>`);
    assert.ok(items.toString().includes("node='echo'"), items.toString());
    const info = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='echo'/></iq>`);
    assert.ok(info.getChild('query')?.getChild('identity')?.attrs.type === 'command-node', info.toString());
    const first = await romeo.iq(`<iq type='set' to='localhost'><command xmlns='${CMD}' node='echo' action='execute'/></iq>`);
    const command = first.getChild('command', CMD)!;
    assert.equal(command.attrs.status, 'executing');
    assert.ok(command.getChild('x', 'jabber:x:data'));
    const done = await romeo.iq(
      `<iq type='set' to='localhost'><command xmlns='${CMD}' node='echo' sessionid='${command.attrs.sessionid}'><x xmlns='jabber:x:data' type='submit'><field var='text'><value>hi</value></field></x></command></iq>`,
    );
    assert.equal(done.getChild('command', CMD)?.attrs.status, 'completed');
    assert.equal(done.getChild('command', CMD)?.getChildText('note'), 'echo: hi');
    const oneStage = await romeo.iq(
      `<iq type='set' to='localhost'><command xmlns='${CMD}' node='echo' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='text'><value>once</value></field></x></command></iq>`,
    );
    assert.equal(oneStage.getChild('command', CMD)?.getChildText('note'), 'echo: once');
  });

  test('unknown node → item-not-found; bad session → bad-request with bad-sessionid; cancel → canceled', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, commandsUnderTest] });
    const romeo = await server.login('romeo');
    await romeo.send(`<iq type='set' to='localhost' id='u1'><command xmlns='${CMD}' node='nope' action='execute'/></iq>`);
    await romeo.expect(`<iq type='error' id='u1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    romeo.send(`<iq type='set' to='localhost' id='u2'><command xmlns='${CMD}' node='echo' sessionid='forged'/></iq>`);
    await romeo.expect(`<iq type='error' id='u2'><error><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><bad-sessionid xmlns='${CMD}'/></error></iq>`);
    const first = await romeo.iq(`<iq type='set' to='localhost'><command xmlns='${CMD}' node='echo'/></iq>`);
    const sessionid = first.getChild('command', CMD)!.attrs.sessionid;
    const canceled = await romeo.iq(`<iq type='set' to='localhost'><command xmlns='${CMD}' node='echo' sessionid='${sessionid}' action='cancel'/></iq>`);
    assert.equal(canceled.getChild('command', CMD)?.attrs.status, 'canceled');
  });

  test('commands on a component: only the allowed ones are listed, the others are forbidden', async (t) => {
    const server = await startServer(t, { moduleList: [...builtinModules, commandsUnderTest] });
    const romeo = await server.login('romeo');
    const items = await romeo.iq(`<iq type='get' to='svc.localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='${CMD}'/></iq>`);
    assert.ok(items.toString().includes("node='open'"));
    assert.ok(!items.toString().includes("node='secret'"));
    romeo.send(`<iq type='set' to='svc.localhost' id='s1'><command xmlns='${CMD}' node='secret' action='execute'/></iq>`);
    await romeo.expect(`<iq type='error' id='s1' from='svc.localhost'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    const open = await romeo.iq(`<iq type='set' to='svc.localhost'><command xmlns='${CMD}' node='open' action='execute'/></iq>`);
    assert.equal(open.attrs.from, 'svc.localhost');
    assert.equal(open.getChild('command', CMD)?.getChildText('note'), 'done');
    const info = await romeo.iq(`<iq type='get' to='svc.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(info.toString().includes(`var='${CMD}'`), info.toString());
  });
});
