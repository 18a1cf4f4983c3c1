import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { XmlStreamParser, parseXml, type XmlFaultCondition, type StreamHeader, type XmlLimits, DEFAULT_XML_LIMITS } from '../../server/xml/parser.js';
import { XmlElement, x } from '../../server/xml/element.js';

interface Collected {
  header?: StreamHeader;
  stanzas: { el: XmlElement; ns: string }[];
  closed: boolean;
  fault?: { condition: XmlFaultCondition; text: string };
}

function collect(limits: XmlLimits = DEFAULT_XML_LIMITS): { parser: XmlStreamParser; got: Collected } {
  const got: Collected = { stanzas: [], closed: false };
  const parser = new XmlStreamParser(
    {
      streamOpen: (header) => (got.header = header),
      stanza: (el, ns) => got.stanzas.push({ el, ns }),
      streamClose: () => (got.closed = true),
      fault: (condition, text) => (got.fault = { condition, text }),
    },
    limits,
  );
  return { parser, got };
}

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>";

describe('xml parser: stream and stanzas', () => {
  test('stream header gives name, namespaces and attributes', () => {
    const { parser, got } = collect();
    parser.write(HEADER);
    assert.equal(got.header?.name, 'stream');
    assert.equal(got.header?.ns, 'http://etherx.jabber.org/streams');
    assert.equal(got.header?.contentNs, 'jabber:client');
    assert.equal(got.header?.prefix, 'stream');
    assert.deepEqual(got.header?.attrs, { to: 'localhost', version: '1.0', 'xml:lang': 'en' });
  });

  test('stanzas in the content namespace carry no xmlns; payloads keep theirs', () => {
    const { parser, got } = collect();
    parser.write(HEADER + "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert.equal(got.stanzas.length, 2);
    assert.equal(got.stanzas[0]!.el.toString(), "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>");
    assert.equal(got.stanzas[0]!.ns, 'jabber:client');
    assert.equal(got.stanzas[1]!.ns, 'urn:ietf:params:xml:ns:xmpp-tls');
    assert.equal(got.stanzas[1]!.el.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-tls');
  });

  test('prefixed element names become default-namespace elements', () => {
    const { parser, got } = collect();
    parser.write(HEADER + "<message><p:x xmlns:p='urn:test'><p:y/><z/></p:x></message>");
    assert.equal(got.stanzas[0]!.el.toString(), "<message><x xmlns='urn:test'><y/><z xmlns='jabber:client'/></x></message>");
  });

  test('prefixed attributes keep their namespace declaration', () => {
    const { parser, got } = collect();
    parser.write(HEADER.replace("to='localhost'", "xmlns:a='urn:attr' to='localhost'") + "<message><x xmlns='urn:test' a:flag='1'/></message>");
    const child = got.stanzas[0]!.el.getChild('x')!;
    assert.equal(child.attrs['a:flag'], '1');
    assert.equal(child.attrs['xmlns:a'], 'urn:attr');
  });

  test('one byte at a time gives the same result', () => {
    const { parser, got } = collect();
    const input = Buffer.from(HEADER + "<message to='a@b'><body>héllo 😀 &amp; &lt;</body></message></stream:stream>");
    for (let i = 0; i < input.length; i++) parser.write(input.subarray(i, i + 1));
    assert.equal(got.stanzas[0]!.el.getChildText('body'), 'héllo 😀 & <');
    assert.equal(got.closed, true);
    assert.equal(got.fault, undefined);
  });

  test('a code point split across reads is decoded', () => {
    const { parser, got } = collect();
    const input = Buffer.from(HEADER + '<message><body>€</body></message>');
    const cut = input.indexOf(0xe2) + 1; // inside the three bytes of €
    parser.write(input.subarray(0, cut));
    parser.write(input.subarray(cut));
    assert.equal(got.stanzas[0]!.el.getChildText('body'), '€');
  });

  test('a byte order mark before the stream header is dropped, also after a reset', () => {
    const { parser, got } = collect();
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    parser.write(Buffer.concat([bom, Buffer.from(HEADER)]));
    parser.reset();
    parser.write(bom.subarray(0, 2)); // split across reads, too
    parser.write(Buffer.concat([bom.subarray(2), Buffer.from(HEADER + '<presence/>')]));
    assert.equal(got.fault, undefined);
    assert.equal(got.stanzas.length, 1);
  });

  test('whitespace keepalives between stanzas are accepted', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxStanzaBytes: 400 });
    parser.write(HEADER);
    for (let i = 0; i < 1000; i++) parser.write(' \n');
    parser.write('<presence/>');
    assert.equal(got.fault, undefined);
    assert.equal(got.stanzas.length, 1);
  });

  test('CDATA sections become text', () => {
    const { parser, got } = collect();
    parser.write(HEADER + '<message><body><![CDATA[<b>&]]></body></message>');
    assert.equal(got.stanzas[0]!.el.getChildText('body'), '<b>&');
  });

  test('closing the stream is reported', () => {
    const { parser, got } = collect();
    parser.write(HEADER + '</stream:stream>');
    assert.equal(got.closed, true);
  });

  test('reset starts a new document', () => {
    const { parser, got } = collect();
    parser.write(HEADER);
    parser.reset();
    parser.write(HEADER + '<presence/>');
    assert.equal(got.stanzas.length, 1);
    assert.equal(got.fault, undefined);
  });
});

describe('xml parser: hostile input gets the RFC 6120 stream error', () => {
  const cases: [string, string, XmlFaultCondition][] = [
    ['DOCTYPE', "<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY a 'aaaa'>]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", 'restricted-xml'],
    ['comment', HEADER + '<!-- hi -->', 'restricted-xml'],
    ['comment inside a stanza', HEADER + '<message><!-- hi --></message>', 'restricted-xml'],
    ['processing instruction', HEADER + '<?foo bar?>', 'restricted-xml'],
    ['undefined entity', HEADER + '<message><body>&lol;</body></message>', 'restricted-xml'],
    ['mismatched tags', HEADER + '<message></presence>', 'not-well-formed'],
    ['unbound prefix', HEADER + '<foo:bar/>', 'not-well-formed'],
    ['duplicate attribute', HEADER + "<message a='1' a='2'/>", 'not-well-formed'],
    ['control character', HEADER + '<message><body>\u0001</body></message>', 'not-well-formed'],
    ['text between stanzas', HEADER + 'hello<presence/>', 'bad-format'],
    ['declared non-UTF-8 encoding', "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", 'unsupported-encoding'],
  ];
  for (const [name, input, condition] of cases) {
    test(`${name} → ${condition}`, () => {
      const { parser, got } = collect();
      parser.write(input);
      assert.equal(got.fault?.condition, condition, JSON.stringify(got.fault));
    });
  }

  test('invalid UTF-8 → not-well-formed', () => {
    const { parser, got } = collect();
    parser.write(HEADER);
    parser.write(Buffer.from([0x3c, 0x6d, 0xff, 0xfe, 0x3e]));
    assert.equal(got.fault?.condition, 'not-well-formed');
  });

  test('overlong UTF-8 encoding → not-well-formed', () => {
    const { parser, got } = collect();
    parser.write(HEADER + '<message><body>');
    parser.write(Buffer.from([0xc0, 0xbc])); // overlong '<'
    assert.equal(got.fault?.condition, 'not-well-formed');
  });

  test('UTF-8 encoded surrogates and code points past U+10FFFF → not-well-formed, also split across reads', () => {
    for (const bytes of [[0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe2, 0x82, 0x41]]) {
      const { parser, got } = collect();
      parser.write(HEADER + '<message><body>');
      for (const byte of bytes) parser.write(Buffer.from([byte]));
      parser.write('</body></message>');
      assert.equal(got.fault?.condition, 'not-well-formed', bytes.join(','));
      assert.equal(got.stanzas.length, 0);
    }
  });

  test('a stanza over the byte limit → policy-violation, even within one read', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxStanzaBytes: 1000 });
    parser.write(HEADER + `<message><body>${'a'.repeat(2000)}</body></message>`);
    assert.equal(got.fault?.condition, 'policy-violation');
    assert.equal(got.stanzas.length, 0);
  });

  test('the byte limit counts bytes, not characters', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxStanzaBytes: 1000 });
    parser.write(HEADER + `<message><body>${'€'.repeat(400)}</body></message>`); // 1200 bytes, 400 chars
    assert.equal(got.fault?.condition, 'policy-violation');
  });

  test('stanzas just under the limit pass, many in one read', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxStanzaBytes: 1000 });
    const stanza = `<message><body>${'€'.repeat(300)}</body></message>`; // ~930 bytes
    parser.write(HEADER + stanza.repeat(50));
    assert.equal(got.fault, undefined);
    assert.equal(got.stanzas.length, 50);
  });

  test('an endless tag is cut off at the limit, not buffered forever', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxStanzaBytes: 10_000, maxAttributeLength: 1_000_000 });
    parser.write(HEADER + "<message a='");
    let writes = 0;
    while (!got.fault && writes < 1000) {
      parser.write('x'.repeat(1000));
      writes++;
    }
    assert.equal(got.fault?.condition, 'policy-violation');
    assert.ok(writes <= 11, `stopped after ${writes} writes`);
  });

  test('an endless stream header is cut off', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxStanzaBytes: 10_000 });
    parser.write("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' ");
    for (let i = 0; i < 100 && !got.fault; i++) parser.write(`a${i}='1' `.repeat(50));
    assert.ok(got.fault);
  });

  test('too deep → policy-violation', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxDepth: 10 });
    parser.write(HEADER + '<message>' + '<a>'.repeat(20));
    assert.equal(got.fault?.condition, 'policy-violation');
  });

  test('too many attributes → policy-violation', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxAttributes: 5 });
    parser.write(HEADER + "<message a='1' b='2' c='3' d='4' e='5' f='6'/>");
    assert.equal(got.fault?.condition, 'policy-violation');
  });

  test('attribute too long → policy-violation', () => {
    const { parser, got } = collect({ ...DEFAULT_XML_LIMITS, maxAttributeLength: 10 });
    parser.write(HEADER + `<message id='${'x'.repeat(11)}'/>`);
    assert.equal(got.fault?.condition, 'policy-violation');
  });

  test('billion laughs never expands', () => {
    const { parser, got } = collect();
    parser.write("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]><lolz>&lol2;</lolz>");
    assert.equal(got.fault?.condition, 'restricted-xml');
  });

  test('after a fault further input is ignored', () => {
    const { parser, got } = collect();
    parser.write(HEADER + '<!-- x -->');
    parser.write('<message/>');
    assert.equal(got.stanzas.length, 0);
    assert.ok(parser.stopped);
  });
});

describe('xml element and serializer', () => {
  test('escaping round-trips through the parser', () => {
    const el = x('message', { to: `a'b"c<&>\t\n` }, x('body', null, 'x < y & z > \r\n q'));
    const back = parseXml(el.toString());
    assert.equal(back.attrs.to, `a'b"c<&>\t\n`);
    assert.equal(back.getChildText('body'), 'x < y & z > \r\n q');
  });

  test('builder skips undefined attributes and children', () => {
    assert.equal(x('iq', { type: 'get', id: undefined }, undefined, x('ping', { xmlns: 'urn:xmpp:ping' })).toString(), "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
  });

  test('lookups by name and namespace', () => {
    const el = parseXml("<iq><query xmlns='a'/><query xmlns='b'><item/></query></iq>");
    assert.equal(el.getChild('query', 'b')?.elements().length, 1);
    assert.equal(el.getChildByNs('a')?.name, 'query');
    assert.equal(el.getChildren('query').length, 2);
  });
});
