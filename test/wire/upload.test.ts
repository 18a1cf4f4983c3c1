// XEP-0363 HTTP file upload (modules/upload/): slots over XMPP, then real PUTs and GETs on Herald's
// HTTP listener (the plain one in tests; the slot URLs name the HTTPS one, same routes).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { existsSync, readdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startFederation, startServer, type TestServer, type XmppClient } from '../../bin/testing.js';
import type { XmlElement } from '../../server/xml/element.js';
import { assertMatches, iqExpect, stanzaErrorPattern } from './module-helpers.js';

const UPLOAD = 'urn:xmpp:http:upload:0';

interface Slot {
  put: string;
  get: string;
  headers: Record<string, string>;
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function requestSlot(client: XmppClient, filename: string, size: number, contentType?: string): Promise<Slot> {
  const type = contentType === undefined ? '' : ` content-type='${contentType}'`;
  const answer = await client.iq(`<iq type='get' to='upload.localhost'><request xmlns='${UPLOAD}' filename='${filename}' size='${size}'${type}/></iq>`);
  const slot = answer.getChild('slot', UPLOAD);
  assert.ok(slot, answer.toString());
  const put = slot.getChild('put')!;
  const headers = Object.fromEntries(put.getChildren('header').map((h) => [h.attrs.name!, h.text()]));
  return { put: put.attrs.url!, get: slot.getChild('get')!.attrs.url!, headers };
}

/** An HTTP request to the path of `url`, sent to the test server's plain HTTP listener. */
function http(server: TestServer, method: string, url: string, options: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<HttpAnswer> {
  const { pathname, search } = new URL(url, 'http://localhost');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.server.ports.http, method, path: pathname + search, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** An HTTPS request to `url` itself (the slot's host and port), sent to 127.0.0.1; the test certificate is self-signed. */
function https(method: string, url: string, options: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<HttpAnswer> {
  const { host, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, method, path: pathname, headers: { Host: host, ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The slot id in a slot URL (…/upload/<id>/<name>). */
function slotIdOf(url: string): string {
  return new URL(url).pathname.split('/').at(-2)!;
}

/** The record the module keeps for a slot (undefined once deleted). */
function slotRecord(server: TestServer, url: string): Promise<unknown> {
  return server.server.store.map('localhost', 'upload', 'files').get('', slotIdOf(url));
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function put(server: TestServer, slot: Slot, body: Buffer, contentType: string, extra: Record<string, string> = {}): Promise<HttpAnswer> {
  return http(server, 'PUT', slot.put, { headers: { ...slot.headers, 'Content-Type': contentType, 'Content-Length': String(body.length), ...extra }, body });
}

function uploadError(answer: XmlElement): XmlElement {
  assert.equal(answer.attrs.type, 'error', answer.toString());
  return answer.getChild('error')!;
}

const PICTURE = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));

describe('upload: discovery', () => {
  test('the domain lists upload.localhost, whose disco#info has store/file, the feature and max-file-size', async (t) => {
    const server = await startServer(t, { modules: { upload: { max_file_size: '5 MiB' } } });
    const romeo = await server.login('romeo');
    const items = await romeo.iq(`<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    assertMatches(items, `<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'><item jid='upload.localhost' name='HTTP File Upload'/></query></iq>`);
    await iqExpect(
      romeo,
      `<iq type='get' to='upload.localhost' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      `<iq type='result' id='d1' from='upload.localhost'><query xmlns='http://jabber.org/protocol/disco#info'>
        <identity category='store' type='file' name='HTTP File Upload'/>
        <feature var='${UPLOAD}'/>
        <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>${UPLOAD}</value></field><field var='max-file-size'><value>5242880</value></field></x>
      </query></iq>`,
    );
  });
});

describe('upload: slot, PUT, GET', () => {
  test('slot → PUT (201) → GET returns the bytes with type, disposition, nosniff and CORS; HEAD and ranges too', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'très cool.jpg', PICTURE.length, 'image/jpeg');
    assert.equal(slot.put, slot.get);
    assert.match(slot.get, new RegExp(`^https://localhost:${server.server.ports.https}/upload/[A-Za-z0-9_-]{24}/tr%C3%A8s%20cool\\.jpg$`));
    assert.match(slot.headers.Authorization ?? '', /^Bearer \S{20,}$/);
    assert.equal((await put(server, slot, PICTURE, 'image/jpeg')).status, 201);
    const got = await http(server, 'GET', slot.get);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, PICTURE);
    assert.equal(got.headers['content-type'], 'image/jpeg');
    assert.equal(got.headers['content-length'], String(PICTURE.length));
    assert.equal(got.headers['content-disposition'], `inline; filename="tr_s cool.jpg"; filename*=UTF-8''tr%C3%A8s%20cool.jpg`);
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.equal(got.headers['access-control-allow-origin'], '*');
    const head = await http(server, 'HEAD', slot.get);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(PICTURE.length));
    assert.equal(head.body.length, 0);
    const range = await http(server, 'GET', slot.get, { headers: { Range: 'bytes=100-199' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-range'], `bytes 100-199/${PICTURE.length}`);
    assert.deepEqual(range.body, PICTURE.subarray(100, 200));
    // On disk as data_dir/upload/<random>/<file name>.
    const id = new URL(slot.get).pathname.split('/')[2]!;
    assert.deepEqual(readdirSync(join(server.dataDir, 'upload', id)), ['très cool.jpg']);
  });

  test('an 8 MiB file streams up and down intact', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const big = randomBytes(8 * 1024 * 1024);
    const slot = await requestSlot(romeo, 'big.bin', big.length, 'application/octet-stream');
    assert.equal((await put(server, slot, big, 'application/octet-stream')).status, 201);
    const got = await http(server, 'GET', slot.get);
    assert.equal(got.status, 200);
    assert.equal(createHash('sha256').update(got.body).digest('hex'), createHash('sha256').update(big).digest('hex'));
    assert.match(String(got.headers['content-disposition']), /^attachment; filename="big\.bin"/);
  });

  test('types that are not shown in place (text/html, zip) are served as attachments', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const page = Buffer.from('<script>alert(1)</script>');
    const slot = await requestSlot(romeo, 'page.html', page.length, 'text/html');
    assert.equal((await put(server, slot, page, 'text/html')).status, 201);
    const got = await http(server, 'GET', slot.get);
    assert.equal(got.headers['content-type'], 'text/html');
    assert.match(String(got.headers['content-disposition']), /^attachment; /);
    assert.match(String(got.headers['content-security-policy']), /sandbox/);
  });

  test('preflight (OPTIONS) on the upload URL → CORS for PUT with Authorization and Content-Type', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'a.txt', 1, 'text/plain');
    const answer = await http(server, 'OPTIONS', slot.put, { headers: { Origin: 'https://web.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'authorization, content-type' } });
    assert.ok(answer.status === 200 || answer.status === 204, String(answer.status));
    assert.equal(answer.headers['access-control-allow-origin'], '*');
    const methods = String(answer.headers['access-control-allow-methods']);
    for (const method of ['GET', 'PUT', 'OPTIONS']) assert.ok(methods.includes(method), methods);
    const headers = String(answer.headers['access-control-allow-headers']).toLowerCase();
    assert.ok(headers.includes('authorization') && headers.includes('content-type'), headers);
  });
});

describe('upload: HTTPS, public URL, web clients', () => {
  test('the slot URLs name the HTTPS listener: PUT, GET and HEAD over TLS, with CORS for a web page', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const slot = await requestSlot(romeo, 'tls.png', PICTURE.length, 'image/png');
    assert.equal(new URL(slot.put).port, String(server.server.ports.https));
    const origin = { Origin: 'https://web.example' };
    const uploaded = await https('PUT', slot.put, { headers: { ...slot.headers, ...origin, 'Content-Type': 'image/png', 'Content-Length': String(PICTURE.length) }, body: PICTURE });
    assert.equal(uploaded.status, 201);
    assert.equal(uploaded.headers['access-control-allow-origin'], '*', 'a browser may read the PUT answer');
    // Juliet got the link in a message: the URL is all she needs.
    romeo.send(`<message to='${juliet.jid}' type='chat'><body>${slot.get}</body><x xmlns='jabber:x:oob'><url>${slot.get}</url></x></message>`);
    const link = (await juliet.waitFor(`<message type='chat'/>`)).getChildText('body')!;
    const got = await https('GET', link, { headers: origin });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, PICTURE);
    assert.equal(got.headers['content-type'], 'image/png');
    assert.equal(got.headers['content-length'], String(PICTURE.length));
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.match(String(got.headers['content-disposition']), /^inline; filename="tls\.png"/);
    assert.equal(got.headers['access-control-allow-origin'], '*');
    const head = await https('HEAD', link);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(PICTURE.length));
    assert.equal(head.headers['content-type'], 'image/png');
    assert.equal(head.body.length, 0);
    // A second PUT over TLS is refused like one over plain HTTP.
    assert.equal((await https('PUT', slot.put, { headers: { ...slot.headers, 'Content-Type': 'image/png', 'Content-Length': String(PICTURE.length) }, body: PICTURE })).status, 409);
  });

  test('base_url set → slot URLs under it (trailing slash dropped); the file still lands on /upload', async (t) => {
    const server = await startServer(t, { modules: { upload: { base_url: 'https://files.example.org/xmpp/upload/' } } });
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'proxied.txt', 5, 'text/plain');
    assert.match(slot.put, /^https:\/\/files\.example\.org\/xmpp\/upload\/[A-Za-z0-9_-]{24}\/proxied\.txt$/);
    // The reverse proxy forwards …/xmpp/upload/<id>/<name> to Herald's /upload/<id>/<name>.
    const local = `/upload/${slotIdOf(slot.put)}/proxied.txt`;
    assert.equal((await put(server, { ...slot, put: local }, Buffer.from('hello'), 'text/plain')).status, 201);
    assert.equal((await http(server, 'GET', local)).body.toString(), 'hello');
  });

  test("a request with content-type='' (Converse.js, a file of unknown type) → a slot; the file is served as application/octet-stream", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const body = Buffer.from('no idea what this is');
    const slot = await requestSlot(romeo, 'mystery', body.length, '');
    assert.equal((await http(server, 'PUT', slot.put, { headers: { ...slot.headers, 'Content-Type': '', 'Content-Length': String(body.length) }, body })).status, 201);
    const got = await http(server, 'GET', slot.get);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.match(String(got.headers['content-disposition']), /^attachment; /);
    assert.deepEqual(got.body, body);
  });
});

describe('upload: refusals', () => {
  test('a file over max_file_size → modify/not-acceptable with <file-too-large> giving the limit', async (t) => {
    const server = await startServer(t, { modules: { upload: { max_file_size: 1000 } } });
    const romeo = await server.login('romeo');
    await iqExpect(
      romeo,
      `<iq type='get' to='upload.localhost' id='big'><request xmlns='${UPLOAD}' filename='big.bin' size='1001'/></iq>`,
      `<iq type='error' id='big'>${stanzaErrorPattern('modify', 'not-acceptable', `<file-too-large xmlns='${UPLOAD}'><max-file-size>1000</max-file-size></file-too-large>`)}</iq>`,
    );
    assert.equal((await romeo.iq(`<iq type='get' to='upload.localhost'><request xmlns='${UPLOAD}' filename='ok.bin' size='1000'/></iq>`)).attrs.type, 'result');
  });

  test('quota: open slots count; over it → wait/resource-constraint with <retry/>; a file larger than the quota → not-allowed', async (t) => {
    const server = await startServer(t, { modules: { upload: { quota: 1000, max_file_size: 5000 } } });
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    await requestSlot(romeo, 'one.bin', 600);
    const over = uploadError(await romeo.iq(`<iq type='get' to='upload.localhost'><request xmlns='${UPLOAD}' filename='two.bin' size='500'/></iq>`));
    assertMatches(over, stanzaErrorPattern('wait', 'resource-constraint', `<retry xmlns='${UPLOAD}' stamp='{any}'/>`));
    const retry = Date.parse(over.getChild('retry', UPLOAD)!.attrs.stamp!);
    assert.ok(retry > Date.now() && retry <= Date.now() + 5 * 60_000 + 1000);
    // Another user's quota is their own.
    await requestSlot(juliet, 'two.bin', 500);
    const never = uploadError(await romeo.iq(`<iq type='get' to='upload.localhost'><request xmlns='${UPLOAD}' filename='huge.bin' size='1500'/></iq>`));
    assertMatches(never, stanzaErrorPattern('cancel', 'not-allowed'));
  });

  test('a user of another server → cancel/not-allowed', async (t) => {
    const [, b] = await startFederation(t, { domain: 'a.test' }, { domain: 'b.test' });
    const juliet = await b!.login('juliet');
    await iqExpect(
      juliet,
      `<iq type='get' to='upload.a.test' id='r1'><request xmlns='${UPLOAD}' filename='x.txt' size='1'/></iq>`,
      `<iq type='error' id='r1' from='upload.a.test'>${stanzaErrorPattern('cancel', 'not-allowed')}</iq>`,
    );
  });

  test('bad requests: no size, a negative size, a name with nothing left → bad-request; a path is cut to its last part', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    for (const attrs of [`filename='a.txt'`, `filename='a.txt' size='-1'`, `filename='..' size='1'`, `filename='a.txt' size='1' content-type='no type'`]) {
      const error = uploadError(await romeo.iq(`<iq type='get' to='upload.localhost'><request xmlns='${UPLOAD}' ${attrs}/></iq>`));
      assertMatches(error, stanzaErrorPattern('modify', 'bad-request'));
    }
    const slot = await requestSlot(romeo, '../../etc/passwd', 1);
    assert.match(slot.get, /\/upload\/[A-Za-z0-9_-]{24}\/passwd$/);
  });

  test('PUT with a wrong Content-Type, wrong size, no or a wrong secret → refused; then the right PUT works once', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const body = Buffer.from('hello, world');
    const slot = await requestSlot(romeo, 'hello.txt', body.length, 'text/plain');
    assert.equal((await put(server, slot, body, 'image/png')).status, 415);
    assert.equal((await put(server, slot, Buffer.concat([body, Buffer.from('!')]), 'text/plain')).status, 413);
    assert.equal((await put(server, slot, body.subarray(1), 'text/plain')).status, 400);
    assert.equal((await http(server, 'PUT', slot.put, { headers: { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) }, body })).status, 401);
    assert.equal((await put(server, slot, body, 'text/plain', { Authorization: 'Bearer guessed' })).status, 403);
    assert.equal((await http(server, 'GET', slot.get)).status, 404, 'nothing to get before the upload');
    assert.equal((await put(server, slot, body, 'text/plain; charset=utf-8')).status, 201);
    assert.equal((await put(server, slot, Buffer.from('HELLO, WORLD'), 'text/plain')).status, 409, 'a slot takes one upload');
    assert.equal((await http(server, 'GET', slot.get)).body.toString(), 'hello, world');
  });

  test('two PUTs at once on one slot → one 201, the other 409; the file is the winner\'s, whole', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const first = Buffer.alloc(512 * 1024, 1);
    const second = Buffer.alloc(512 * 1024, 2);
    const slot = await requestSlot(romeo, 'race.bin', first.length, 'application/octet-stream');
    const answers = await Promise.all([put(server, slot, first, 'application/octet-stream'), put(server, slot, second, 'application/octet-stream')]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409]);
    const winner = answers[0]!.status === 201 ? first : second;
    assert.deepEqual((await http(server, 'GET', slot.get)).body, winner);
  });

  test('a slot not used within slot_timeout → 410 Gone', async (t) => {
    const server = await startServer(t, { modules: { upload: { slot_timeout: '150ms' } } });
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'late.txt', 4, 'text/plain');
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal((await put(server, slot, Buffer.from('late'), 'text/plain')).status, 410);
  });

  test('unknown slots, other file names and path tricks → 404', async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'x.txt', 1, 'text/plain');
    assert.equal((await put(server, slot, Buffer.from('x'), 'text/plain')).status, 201);
    const base = slot.get.slice(0, slot.get.lastIndexOf('/'));
    for (const path of [`${base}/y.txt`, `${base}/..%2F..%2Fherald.sqlite`, `${base}/x.txt/more`, '/upload/AAAAAAAAAAAAAAAAAAAAAAAA/x.txt', '/upload/../herald.sqlite']) {
      assert.equal((await http(server, 'GET', path)).status, 404, path);
    }
  });
});

describe('upload: expiry and deletion', () => {
  test('a file older than file_expiry → 404 and deleted from disk', async (t) => {
    const server = await startServer(t, { modules: { upload: { file_expiry: '200ms' } } });
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'old.txt', 3, 'text/plain');
    assert.equal((await put(server, slot, Buffer.from('old'), 'text/plain')).status, 201);
    assert.equal((await http(server, 'GET', slot.get)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await http(server, 'GET', slot.get)).status, 404);
    assert.equal(existsSync(join(server.dataDir, 'upload', new URL(slot.get).pathname.split('/')[2]!)), false);
  });

  test("deleting the account deletes its files (and only its files)", async (t) => {
    const server = await startServer(t);
    const romeo = await server.login('romeo');
    const juliet = await server.login('juliet');
    const mine = await requestSlot(romeo, 'mine.txt', 4, 'text/plain');
    const hers = await requestSlot(juliet, 'hers.txt', 4, 'text/plain');
    assert.equal((await put(server, mine, Buffer.from('mine'), 'text/plain')).status, 201);
    assert.equal((await put(server, hers, Buffer.from('hers'), 'text/plain')).status, 201);
    await server.server.deleteAccount('romeo');
    assert.equal((await http(server, 'GET', mine.get)).status, 404);
    assert.equal(existsSync(join(server.dataDir, 'upload', new URL(mine.get).pathname.split('/')[2]!)), false);
    assert.equal((await http(server, 'GET', hers.get)).status, 200);
  });

  test('expired files and void slots are swept without anyone asking (here: at start): files and records gone', async (t) => {
    const server = await startServer(t, { modules: { upload: { file_expiry: '200ms', slot_timeout: '800ms' } } });
    const romeo = await server.login('romeo');
    const used = await requestSlot(romeo, 'used.txt', 4, 'text/plain');
    assert.equal((await put(server, used, Buffer.from('used'), 'text/plain')).status, 201);
    const unused = await requestSlot(romeo, 'unused.txt', 4, 'text/plain');
    assert.ok(await slotRecord(server, used.get));
    await new Promise((resolve) => setTimeout(resolve, 900));
    await server.restart();
    await eventually(async () => (await slotRecord(server, used.get)) === undefined && (await slotRecord(server, unused.get)) === undefined, 'the sweep');
    assert.equal(existsSync(join(server.dataDir, 'upload', slotIdOf(used.get))), false);
    assert.deepEqual(await server.server.store.map('localhost', 'upload', 'quota').list('romeo'), []);
  });

  test("admin delete-user (XEP-0133) deletes the account's files and their records; the owner's other slots too", async (t) => {
    const server = await startServer(t, { config: { admins: ['boss@localhost'] } });
    const boss = await server.login('boss');
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'gone.txt', 4, 'text/plain');
    const open = await requestSlot(romeo, 'open.txt', 4, 'text/plain');
    assert.equal((await put(server, slot, Buffer.from('gone'), 'text/plain')).status, 201);
    const answer = await boss.iq(
      `<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#delete-user' action='execute'>` +
        `<x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>romeo@localhost</value></field></x></command></iq>`,
    );
    assert.equal(answer.getChild('command', 'http://jabber.org/protocol/commands')?.getChild('note')?.attrs.type, 'info', answer.toString());
    assert.equal((await http(server, 'GET', slot.get)).status, 404);
    assert.equal(existsSync(join(server.dataDir, 'upload', slotIdOf(slot.get))), false);
    assert.equal(await slotRecord(server, slot.get), undefined);
    assert.equal(await slotRecord(server, open.get), undefined);
    assert.equal((await put(server, open, Buffer.from('open'), 'text/plain')).status, 404);
  });

  test('quota space comes back when a file expires', async (t) => {
    const server = await startServer(t, { modules: { upload: { quota: 10, file_expiry: '200ms' } } });
    const romeo = await server.login('romeo');
    const slot = await requestSlot(romeo, 'ten.txt', 10, 'text/plain');
    assert.equal((await put(server, slot, Buffer.from('0123456789'), 'text/plain')).status, 201);
    assert.equal((await romeo.iq(`<iq type='get' to='upload.localhost'><request xmlns='${UPLOAD}' filename='b.txt' size='1'/></iq>`)).attrs.type, 'error');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await requestSlot(romeo, 'b.txt', 1);
  });
});
