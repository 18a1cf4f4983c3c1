// The push module's pure parts: which stanzas deserve a push, the summary form, option narrowing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml } from '../../server/xml/parser.js';
import { classify, summaryForm } from '../../modules/push/summary.js';
import { nextOptions, splitEnableForms, type OptionsPolicy } from '../../modules/push/options.js';
import { parseForm } from '../../server/protocol/xep0004.js';

const kind = (xml: string) => {
  const event = classify(parseXml(xml));
  return event ? `${event.kind}/${event.priority}` : 'none';
};

describe('push: classify', () => {
  test('bodies, encryption and call proposals are high; receipts normal; chat states, headlines and errors none', () => {
    assert.equal(kind(`<message from='a@x/r' type='chat'><body>hi</body></message>`), 'message/high');
    assert.equal(kind(`<message from='a@x/r' type='chat'><body/></message>`), 'none');
    assert.equal(kind(`<message from='a@x/r'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>`), 'message/high');
    assert.equal(kind(`<message from='a@x/r'><encrypted xmlns='urn:xmpp:omemo:2'/></message>`), 'message/high');
    assert.equal(kind(`<message from='a@x/r'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>`), 'message/high');
    assert.equal(kind(`<message from='a@x/r'><received xmlns='urn:xmpp:receipts' id='m'/></message>`), 'message/normal');
    assert.equal(kind(`<message from='a@x/r' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>`), 'none');
    assert.equal(kind(`<message from='a@x/r' type='headline'><body>news</body></message>`), 'none');
    assert.equal(kind(`<message from='a@x/r' type='error'><body>x</body></message>`), 'none');
    assert.equal(kind(`<message from='room@muc/nick' type='groupchat'><subject>topic</subject></message>`), 'none');
  });

  test('carbons: a received copy is judged by the forwarded message; a sent copy never pushes', () => {
    const carbon = (dir: string, inner: string) =>
      `<message from='me@x'><${dir} xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>${inner}</forwarded></${dir}></message>`;
    const event = classify(parseXml(carbon('received', `<message xmlns='jabber:client' from='j@x/b' type='chat'><body>yo</body></message>`)));
    assert.deepEqual(event, { kind: 'message', priority: 'high', sender: 'j@x', body: 'yo' });
    assert.equal(kind(carbon('sent', `<message xmlns='jabber:client' to='j@x' type='chat'><body>yo</body></message>`)), 'none');
  });

  test('presence: subscribe is a subscription event; anything else none; IQs none', () => {
    assert.equal(kind(`<presence from='j@x' type='subscribe'/>`), 'subscription/high');
    assert.equal(kind(`<presence from='j@x/r'/>`), 'none');
    assert.equal(kind(`<iq type='set' from='j@x/r' id='1'><query xmlns='jabber:iq:roster'/></iq>`), 'none');
  });

  test('groupchat keeps the occupant JID as sender; long bodies are cut', () => {
    const event = classify(parseXml(`<message from='room@muc/nick' type='groupchat'><body>${'a'.repeat(600)}</body></message>`));
    assert.equal(event?.sender, 'room@muc/nick');
    assert.equal(event?.body?.length, 512);
  });
});

describe('push: summary form', () => {
  test('fields only where the options allow; subscription count only above 0', () => {
    const summary = { messages: 2, subscriptions: 0, priority: 'high' as const, lastMessageSender: 'j@x', lastMessageBody: 'hi' };
    const quiet = parseForm(summaryForm(summary, { senders: false, messageCount: true, subscriptionCount: true, bodies: false }));
    assert.deepEqual(quiet.fields.map((f) => f.var), ['FORM_TYPE', 'message-count', 'last-message-priority']);
    const open = parseForm(summaryForm({ ...summary, subscriptions: 1 }, { senders: true, messageCount: false, subscriptionCount: true, bodies: true }));
    assert.deepEqual(open.fields.map((f) => f.var), ['FORM_TYPE', 'last-message-priority', 'last-message-sender', 'last-message-body', 'pending-subscription-count']);
  });
});

describe('push: options', () => {
  const policy: OptionsPolicy = { defaults: { senders: false, messageCount: true, subscriptionCount: true, bodies: false }, allowSenders: true, allowBodies: false };

  test('fresh: requested values over defaults, capped by the policy; later: only narrowing', () => {
    const fresh = nextOptions(undefined, { senders: true, bodies: true }, policy);
    assert.deepEqual(fresh, { senders: true, messageCount: true, subscriptionCount: true, bodies: false });
    assert.deepEqual(nextOptions(fresh, { senders: false, messageCount: true }, policy), { ...fresh, senders: false });
    assert.deepEqual(nextOptions({ ...fresh, senders: false }, { senders: true }, policy), { ...fresh, senders: false });
  });

  test('include-* fields inside publish-options are read as options and not forwarded', () => {
    const form = parseForm(
      parseXml(
        `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
          `<field var='secret'><value>s</value></field><field var='include-senders'><value>true</value></field></x>`,
      ),
    );
    const split = splitEnableForms([form]);
    assert.deepEqual(split.publishOptions.map((f) => f.var), ['secret']);
    assert.deepEqual(split.requested, { senders: true });
    assert.equal(split.optionsForm, true);
  });
});
