// XEP-0357 summaries read by the app server (modules/appserver/summary.ts): lenient, because the
// publisher may be any server and a refused push is a lost notification.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSummary } from '../../modules/appserver/summary.js';
import { parseXml } from '../../server/xml/parser.js';

const notification = (fields: string, formType = 'urn:xmpp:push:summary') =>
  parseXml(`<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>${formType}</value></field>${fields}</x></notification>`);

describe('appserver: reading push summaries', () => {
  test('every summary field → the notification; no priority field → high', () => {
    const fields = ['message-count:4', 'last-message-sender:juliet@example.org', 'last-message-body:hi', 'pending-subscription-count:1', 'last-subscription-sender:nurse@example.org']
      .map((pair) => pair.split(':'))
      .map(([name, ...value]) => `<field var='${name}'><value>${value.join(':')}</value></field>`)
      .join('');
    assert.deepEqual(parseSummary(notification(fields), 'N'), {
      node: 'N',
      priority: 'high',
      messageCount: 4,
      lastMessageSender: 'juliet@example.org',
      lastMessageBody: 'hi',
      pendingSubscriptionCount: 1,
      lastSubscriptionSender: 'nurse@example.org',
    });
  });

  test('last-message-priority normal → normal; counts that are no numbers and empty texts are left out', () => {
    const fields = `<field var='last-message-priority'><value>normal</value></field><field var='message-count'><value>-1</value></field><field var='pending-subscription-count'><value>many</value></field><field var='last-message-body'><value></value></field>`;
    assert.deepEqual(parseSummary(notification(fields), 'N'), { node: 'N', priority: 'normal' });
  });

  test('no form, another FORM_TYPE, or a broken form → just the node (the push still goes out)', () => {
    assert.deepEqual(parseSummary(parseXml(`<notification xmlns='urn:xmpp:push:0'/>`), 'N'), { node: 'N', priority: 'high' });
    assert.deepEqual(parseSummary(notification(`<field var='message-count'><value>3</value></field>`, 'urn:example:other'), 'N'), { node: 'N', priority: 'high' });
    assert.deepEqual(parseSummary(parseXml(`<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='bogus'/></notification>`), 'N'), { node: 'N', priority: 'high' });
  });
});
