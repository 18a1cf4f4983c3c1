// What the client (server/transports.ts) and server-to-server (server/s2s/transport.ts) socket
// transports share: batching writes per tick, and turning socket events into data/closed.
import type { Socket } from 'node:net';

export interface FlushHooks {
  beforeFlush?(): void;
  afterFlush?(): void;
}

/**
 * Writes made in one tick go out as one TCP/TLS write: they are joined into one string, handed to
 * the socket on the next tick. A burst of stanzas costs one syscall instead of one each; and one
 * string costs less than socket.cork()/uncork(), whose writev builds a chunk list and a callback
 * per write (measured: ~5 % of a login's CPU). `socket()` is read at every write because STARTTLS
 * swaps the socket under the transport.
 */
export class TickCorkedWriter {
  /** What this tick wrote, not yet handed to the socket. */
  private pending: string | undefined;
  private readonly flushLater = (): void => this.flush();

  constructor(
    private readonly socket: () => Socket,
    private readonly hooks: () => FlushHooks | undefined = () => undefined,
  ) {}

  /** False when the socket can take nothing more (destroyed or ended). */
  write(data: string): boolean {
    const socket = this.socket();
    if (socket.destroyed || !socket.writable) return false;
    if (this.pending === undefined) {
      this.pending = data;
      process.nextTick(this.flushLater);
    } else {
      this.pending += data;
    }
    return true;
  }

  /** Characters written this tick and not handed to the socket yet. */
  get pendingLength(): number {
    return this.pending?.length ?? 0;
  }

  /** Hands what was written this tick to the operating system now. */
  flush(): void {
    if (this.pending === undefined) return;
    const hooks = this.hooks();
    hooks?.beforeFlush?.(); // may write (an ack request joins this very write)
    const data = this.pending;
    this.pending = undefined;
    const socket = this.socket();
    if (!socket.destroyed && socket.writable) socket.write(data);
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
