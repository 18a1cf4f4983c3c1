// The tick-batched socket writer the c2s and s2s transports share (server/socket-io.ts): what one
// tick writes reaches the socket as one write, in order, and nothing is written to a dead socket.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { TickCorkedWriter } from '../../server/socket-io.js';

/** The part of a socket the writer uses, recording each write. */
function fakeSocket(): { socket: Socket; writes: string[]; state: { destroyed: boolean; writable: boolean } } {
  const writes: string[] = [];
  const state = { destroyed: false, writable: true };
  const socket = {
    get destroyed() {
      return state.destroyed;
    },
    get writable() {
      return state.writable;
    },
    write(data: string) {
      writes.push(data);
      return true;
    },
  } as unknown as Socket;
  return { socket, writes, state };
}

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe('TickCorkedWriter', () => {
  test('the writes of one tick reach the socket as one write, in order, on the next tick', async () => {
    const { socket, writes } = fakeSocket();
    const writer = new TickCorkedWriter(() => socket);
    assert.equal(writer.write('<a/>'), true);
    writer.write('<b/>');
    writer.write('<c/>');
    assert.deepEqual(writes, [], 'nothing before the tick ends');
    assert.equal(writer.pendingLength, 12);
    await nextTick();
    assert.deepEqual(writes, ['<a/><b/><c/>']);
    assert.equal(writer.pendingLength, 0);
    writer.write('<d/>');
    await nextTick();
    assert.deepEqual(writes, ['<a/><b/><c/>', '<d/>'], 'a later tick is a write of its own');
  });

  test('flush() hands the tick over at once; beforeFlush may add to the same write, afterFlush sees it written', () => {
    const { socket, writes } = fakeSocket();
    const seen: string[][] = [];
    const writer: TickCorkedWriter = new TickCorkedWriter(
      () => socket,
      () => ({ beforeFlush: () => void writer.write('<r/>'), afterFlush: () => void seen.push([...writes]) }),
    );
    writer.write('<message/>');
    writer.flush();
    assert.deepEqual(writes, ['<message/><r/>'], 'the ack request went out with the stanza');
    assert.deepEqual(seen, [['<message/><r/>']]);
    writer.flush();
    assert.equal(writes.length, 1, 'nothing pending: no write');
  });

  test('a destroyed or ended socket takes nothing', async () => {
    const { socket, writes, state } = fakeSocket();
    const writer = new TickCorkedWriter(() => socket);
    writer.write('<a/>');
    state.writable = false; // ended before the tick was over
    await nextTick();
    assert.deepEqual(writes, []);
    assert.equal(writer.write('<b/>'), false);
    state.destroyed = true;
    assert.equal(writer.write('<c/>'), false);
  });

  test('over a real TCP connection the peer reads everything in order', async (t) => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    const accepted = once(server, 'connection');
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    const [peer] = (await accepted) as [Socket];
    t.after(() => {
      client.destroy();
      peer.destroy();
    });
    let received = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (received += chunk));
    const writer = new TickCorkedWriter(() => peer);
    const expected: string[] = [];
    for (let tick = 0; tick < 20; tick++) {
      for (let i = 0; i < 5; i++) {
        const piece = `<m n='${tick}.${i}'>é€</m>`;
        expected.push(piece);
        writer.write(piece);
      }
      await nextTick();
    }
    const all = expected.join('');
    while (received.length < all.length) await once(client, 'data');
    assert.equal(received, all);
  });
});
