// The streaming XEP-0227 reader (storage/pie/reader.ts) and the parser's container level it is
// built on: users one at a time, XIncludes followed, comments tolerated, errors with file:line.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommentFilter, readPieFile, type PieEvent } from '../../storage/pie/reader.js';
import { PieFormatError } from '../../storage/pie/format.js';
import { XmlStreamParser } from '../../server/xml/parser.js';
import type { XmlElement } from '../../server/xml/element.js';

interface TestContextLike {
  after(fn: () => unknown): void;
}

function dir(t: TestContextLike): string {
  const path = mkdtempSync(join(tmpdir(), 'herald-pie-reader-'));
  t.after(() => rmSync(path, { recursive: true, force: true }));
  return path;
}

function write(base: string, name: string, text: string): string {
  const path = join(base, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

async function events(path: string): Promise<PieEvent[]> {
  const out: PieEvent[] = [];
  for await (const event of readPieFile(path)) out.push(event);
  return out;
}

/** "kind host line" summaries, users with their name. */
const summary = (list: PieEvent[]) =>
  list.map((e) => (e.kind === 'user' ? `user ${e.element.attrs.name}@${e.host} :${e.line}` : e.kind === 'host' ? `host ${e.jid} :${e.line}` : `ignored :${e.line}`));

async function failure(path: string): Promise<PieFormatError> {
  try {
    await events(path);
  } catch (err) {
    assert.ok(err instanceof PieFormatError, `a PieFormatError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error');
}

describe('pie reader: structure and lines', () => {
  test('users arrive one at a time with their host and the line where <user starts', async (t) => {
    const file = write(dir(t), 'a.xml', [
      `<?xml version='1.0' encoding='UTF-8'?>`,
      `<server-data xmlns='urn:xmpp:pie:0'>`,
      `  <host jid='a.example'>`,
      `    <user name='one'`,
      `          password='x'>`,
      `      <query xmlns='jabber:iq:roster'><item jid='two@a.example'/></query>`,
      `    </user><user name='two'/>`,
      `  </host>`,
      `  <host`,
      `     jid='b.example'><user name='three'/></host>`,
      `</server-data>`,
      ``,
    ].join('\n'));
    const list = await events(file);
    assert.deepEqual(summary(list), ['host a.example :3', 'user one@a.example :4', 'user two@a.example :7', 'host b.example :9', 'user three@b.example :10']);
    const one = list[1] as Extract<PieEvent, { kind: 'user' }>;
    // The user element keeps its children with their namespaces (and nothing of its host).
    assert.equal(one.element.toString(), `<user name='one' password='x'><query xmlns='jabber:iq:roster'><item jid='two@a.example'/></query></user>`);
  });

  test('the old namespace (http://www.xmpp.org/extensions/xep-0227.html#ns) is read like urn:xmpp:pie:0', async (t) => {
    const file = write(dir(t), 'old.xml', `<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'><host jid='a.example'><user name='x'/></host></server-data>`);
    assert.deepEqual(summary(await events(file)), ['host a.example :1', 'user x@a.example :1']);
  });

  test('elements XEP-0227 does not define at host level are reported as ignored, their content skipped', async (t) => {
    const file = write(dir(t), 'ext.xml', `<server-data xmlns='urn:xmpp:pie:0'>\n<ext xmlns='urn:example'><user name='hidden'/></ext>\n<host jid='a.example'><muc xmlns='urn:example'/><user name='x'/></host></server-data>`);
    assert.deepEqual(summary(await events(file)), ['ignored :2', 'host a.example :3', 'ignored :3', 'user x@a.example :3']);
  });

  test('malformed XML → PieFormatError at the line where it stops being well-formed', async (t) => {
    const file = write(dir(t), 'bad.xml', `<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='a.example'>\n<user name='x'>\n<vCard xmlns='vcard-temp'><FN>X</vCard>\n</user></host></server-data>\n`);
    const err = await failure(file);
    assert.equal(err.line, 4);
    assert.match(err.reason, /unmatched end tag vCard/);
    assert.equal(err.message, `${file}:4: ${err.reason}`);
  });

  test('a file that stops before its root closes (truncated) → error at its last line', async (t) => {
    const file = write(dir(t), 'cut.xml', `<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='a.example'>\n<user name='x'/>\n`);
    const err = await failure(file);
    assert.equal(err.line, 3);
    assert.match(err.reason, /ends before <\/server-data> \(truncated\?\)/);
  });

  test('a root other than <server-data/> or <host/> of XEP-0227 → error naming what was found', async (t) => {
    const err = await failure(write(dir(t), 'x.xml', `\n<roster xmlns='jabber:iq:roster'/>`));
    assert.equal(err.line, 2);
    assert.match(err.reason, /root element is <roster\/> in 'jabber:iq:roster'/);
  });

  test('content after the root element → error; an empty file → error', async (t) => {
    const base = dir(t);
    const after = await failure(write(base, 'after.xml', `<server-data xmlns='urn:xmpp:pie:0'/>\n\n<host jid='x'/>`));
    assert.equal(after.line, 3);
    assert.match(after.reason, /content after the root element/);
    assert.match((await failure(write(base, 'empty.xml', '\n'))).reason, /no root element/);
  });

  test('invalid UTF-8 → error at its line', async (t) => {
    const file = join(dir(t), 'latin1.xml');
    writeFileSync(file, Buffer.concat([Buffer.from(`<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='a'>\n<user name='`), Buffer.from([0xe9]), Buffer.from(`'/></host></server-data>`)]));
    const err = await failure(file);
    assert.equal(err.line, 3);
    assert.match(err.reason, /not valid UTF-8/);
  });

  test('a line longer than the feeding piece (ejabberd: a whole host on one line) is read whole, errors on line 1', async (t) => {
    const users = Array.from({ length: 3000 }, (_, i) => `<user name='u${i}'><vCard xmlns='vcard-temp'><FN>User ${i}</FN></vCard></user>`).join('');
    const base = dir(t);
    const good = write(base, 'long.xml', `<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'>${users}</host></server-data>`);
    const list = await events(good);
    assert.equal(list.filter((e) => e.kind === 'user').length, 3000);
    const bad = write(base, 'longbad.xml', `<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'>${users}<user name='oops'></host></server-data>`);
    const err = await failure(bad);
    assert.equal(err.line, 1);
    // Line 1 of a one-line host says little: the fault names the last user read whole before it.
    assert.equal(err.reason, `unmatched end tag host (not-well-formed), after <user name='u2999'/>`);
  });
});

describe('pie reader: comments', () => {
  test('comments (also across lines, also in the prolog) are skipped; CDATA holding <!-- is kept', async (t) => {
    const file = write(dir(t), 'c.xml', [
      `<?xml version='1.0'?>`,
      `<!-- exported by hand -->`,
      `<server-data xmlns='urn:xmpp:pie:0'><!-- hosts`,
      `  follow --><host jid='a.example'>`,
      `<user name='x'><vCard xmlns='vcard-temp'><NOTE><![CDATA[a <!-- b]]></NOTE><!-- c --></vCard></user>`,
      `</host></server-data>`,
    ].join('\n'));
    const user = (await events(file)).find((e) => e.kind === 'user') as Extract<PieEvent, { kind: 'user' }>;
    assert.equal(user.line, 5);
    assert.equal(user.element.getChild('vCard', 'vcard-temp')?.getChildText('NOTE'), 'a <!-- b');
  });

  test('the filter keeps its state between pieces', () => {
    const filter = new CommentFilter();
    assert.equal(filter.filter('a<!-- x'), 'a');
    assert.equal(filter.filter('still -->b<![CDATA[<!--'), 'b<![CDATA[<!--');
    assert.equal(filter.filter(']]><!---->c'), ']]>c');
  });
});

describe('pie reader: XInclude (XEP-0227 §5)', () => {
  test("ejabberd's layout (main file → host file) and the XEP's (host file → user files) are followed relative to each file", async (t) => {
    const base = dir(t);
    const main = write(base, 'main.xml', `<?xml version='1.0'?>\n<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\n  <xi:include href='hosts/a.example.xml'/>\n</server-data>\n`);
    write(base, 'hosts/a.example.xml', `<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='a.example'>\n<user name='inline'/>\n<xi:include href='a.example/juliet.xml'/>\n</host>`);
    write(base, 'hosts/a.example/juliet.xml', `<?xml version='1.0'?>\n<user xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' name='juliet'>\n<query xmlns='jabber:iq:roster'/>\n<xi:include href='vcard.xml'/>\n</user>`);
    write(base, 'hosts/a.example/vcard.xml', `<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>`);
    const list = await events(main);
    assert.deepEqual(summary(list), ['host a.example :1', 'user inline@a.example :2', 'user juliet@a.example :2']);
    const juliet = list[2] as Extract<PieEvent, { kind: 'user' }>;
    assert.ok(juliet.file.endsWith('juliet.xml'));
    assert.equal(juliet.element.getChild('query', 'jabber:iq:roster')?.toString(), `<query xmlns='jabber:iq:roster'/>`);
    assert.equal(juliet.element.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Juliet', 'an include inside a user is replaced by the included element');
  });

  test('a missing included file → error at the xi:include line of the including file', async (t) => {
    const main = write(dir(t), 'main.xml', `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\n\n<xi:include href='gone.xml'/></server-data>`);
    const err = await failure(main);
    assert.equal(err.file, main);
    assert.equal(err.line, 3);
    assert.match(err.reason, /cannot read included .*gone\.xml/);
  });

  test('an include loop → error instead of endless reading', async (t) => {
    const base = dir(t);
    const main = write(base, 'main.xml', `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='host.xml'/></server-data>`);
    write(base, 'host.xml', `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\n<xi:include href='main.xml'/></server-data>`);
    const err = await failure(main);
    assert.match(err.reason, /loops back/);
    assert.equal(err.line, 2);
  });

  test("xi:include with parse='text' or an xpointer → refused (XEP-0227 requires the plain kind only)", async (t) => {
    const base = dir(t);
    const text = write(base, 't.xml', `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='x.txt' parse='text'/></server-data>`);
    assert.match((await failure(text)).reason, /parse='text' is not supported/);
    const pointer = write(base, 'p.xml', `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><host jid='a'><xi:include href='x.xml' xpointer='u1'/></host></server-data>`);
    assert.match((await failure(pointer)).reason, /xpointer is not supported/);
  });

  test('a <user/> file given on its own → error: it needs the host that includes it', async (t) => {
    const file = write(dir(t), 'u.xml', `<user xmlns='urn:xmpp:pie:0' name='x'/>`);
    assert.match((await failure(file)).reason, /expected <server-data\/> or <host\/>/);
  });
});

describe('xml parser: container levels (XmlStreamOptions.containerDepth)', () => {
  test('elements below the containers arrive whole; containers open and close around them; namespaces inherit', () => {
    const seen: string[] = [];
    const parser = new XmlStreamParser(
      {
        streamOpen: (h) => seen.push(`open ${h.name}`),
        containerOpen: (el, ns) => seen.push(`container ${el.name} ${ns} ${JSON.stringify(el.attrs)}`),
        containerClose: (el) => seen.push(`/container ${el.name}`),
        stanza: (el: XmlElement, ns) => seen.push(`element ${ns} ${el.toString()}`),
        streamClose: () => seen.push('close'),
        fault: (c, text) => seen.push(`fault ${c} ${text}`),
      },
      undefined,
      { containerDepth: 1 },
    );
    parser.write(`<r xmlns='urn:a' xmlns:p='urn:p'> <h id='1'> <u><c/></u> <p:u/> </h>`);
    parser.write(`<p:h/><h><u xmlns='urn:b'><c/></u></h></r>`);
    assert.deepEqual(seen, [
      'open r',
      `container h urn:a {"id":"1"}`,
      `element urn:a <u><c/></u>`,
      `element urn:p <u xmlns='urn:p'/>`,
      '/container h',
      `container h urn:p {"xmlns":"urn:p"}`,
      '/container h',
      `container h urn:a {}`,
      `element urn:b <u xmlns='urn:b'><c/></u>`,
      '/container h',
      'close',
    ]);
  });

  test('text inside a container, or a mismatched container end tag → fault', () => {
    const faults: string[] = [];
    const events = { streamOpen() {}, stanza() {}, streamClose() {}, fault: (c: string, text: string) => faults.push(`${c}: ${text}`) };
    new XmlStreamParser(events, undefined, { containerDepth: 1 }).write(`<r><h>text</h></r>`);
    new XmlStreamParser(events, undefined, { containerDepth: 1 }).write(`<r><h><u/></x></r>`);
    assert.deepEqual(faults, ['bad-format: text between stanzas', 'not-well-formed: unmatched end tag x']);
  });
});
