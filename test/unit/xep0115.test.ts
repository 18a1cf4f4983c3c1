import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml } from '../../server/xml/parser.js';
import { capsVerification } from '../../server/protocol/xep0115.js';

describe('XEP-0115: verification string', () => {
  test('§5.2 simple example (Exodus) → QgayPKawpkPSDYmwT/WM94uAlu0=', () => {
    const query = parseXml(`<query xmlns='http://jabber.org/protocol/disco#info'>
      <identity category='client' name='Exodus 0.9.1' type='pc'/>
      <feature var='http://jabber.org/protocol/muc'/>
      <feature var='http://jabber.org/protocol/disco#info'/>
      <feature var='http://jabber.org/protocol/disco#items'/>
      <feature var='http://jabber.org/protocol/caps'/>
    </query>`);
    assert.equal(capsVerification(query), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  test('§5.3 complex example (two languages, a form) → q07IKJEyjvHSyhy//CH0CxmKi8w=', () => {
    const query = parseXml(`<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
      <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
      <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
      <feature var='http://jabber.org/protocol/caps'/>
      <feature var='http://jabber.org/protocol/disco#info'/>
      <feature var='http://jabber.org/protocol/disco#items'/>
      <feature var='http://jabber.org/protocol/muc'/>
      <x xmlns='jabber:x:data' type='result'>
        <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
        <field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>
        <field var='software_version'><value>0.11</value></field>
        <field var='os'><value>Mac</value></field>
        <field var='os_version'><value>10.5.1</value></field>
        <field var='software'><value>Psi</value></field>
      </x>
    </query>`);
    // Fields and values are deliberately out of order here: the algorithm sorts them.
    assert.equal(capsVerification(query), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  test('a changed feature list → a different verification string', () => {
    const a = parseXml(`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im'/><feature var='a'/></query>`);
    const b = parseXml(`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im'/><feature var='b'/></query>`);
    assert.notEqual(capsVerification(a), capsVerification(b));
  });

  test('a form without FORM_TYPE is left out of the string', () => {
    const plain = parseXml(`<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/></query>`);
    const withForm = parseXml(
      `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><x xmlns='jabber:x:data' type='result'><field var='x'><value>1</value></field></x></query>`,
    );
    assert.equal(capsVerification(withForm), capsVerification(plain));
  });
});
