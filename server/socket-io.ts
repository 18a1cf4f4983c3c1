// What the client (server/transports.ts) and server-to-server (server/s2s/transport.ts) socket
// transports share: batching writes per tick, and turning socket events into data/closed.
import type { Socket } from 'node:net';

export interface FlushHooks {
  beforeFlush?(): void;
  afterFlush?(): void;
}

/**
 * Writes made in one tick go out as one TCP/TLS write: the socket is corked at the first write and
 * uncorked on the next tick, so a burst of stanzas costs one syscall instead of one each.
 * `socket()` is read at every write because STARTTLS swaps the socket under the transport.
 */
export class TickCorkedWriter {
  private corked = false;

  constructor(
    private readonly socket: () => Socket,
    private readonly hooks: () => FlushHooks | undefined = () => undefined,
  ) {}

  /** False when the socket can take nothing more (destroyed or ended). */
  write(data: string): boolean {
    const socket = this.socket();
    if (socket.destroyed || !socket.writable) return false;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => this.flush());
    }
    socket.write(data);
    return true;
  }

  /** Hands what was written this tick to the operating system now. */
  flush(): void {
    if (!this.corked) return;
    const hooks = this.hooks();
    hooks?.beforeFlush?.();
    this.corked = false;
    this.socket().uncork();
    hooks?.afterFlush?.();
  }
}

/** Data and the end of the connection (with why), for a transport's stream. */
export function listenToSocket(socket: Socket, events: () => { data(chunk: Buffer): void; closed(reason: string): void } | undefined): void {
  let reason = 'connection closed';
  socket.on('data', (chunk: Buffer) => events()?.data(chunk));
  socket.on('error', (err) => {
    reason = `socket error: ${err.message}`;
  });
  socket.on('end', () => {
    // The peer half-closed: nothing more will come. (end() twice throws: check first.)
    if (!socket.destroyed && !socket.writableEnded) socket.end();
  });
  socket.on('close', () => events()?.closed(reason));
}
