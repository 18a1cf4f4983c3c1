// XEP-0363 HTTP file upload (modules/upload/): slots over XMPP, then real PUTs and GETs on Herald's
// HTTP listener (the plain one in tests; the slot URLs name the HTTPS one, same routes).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
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
