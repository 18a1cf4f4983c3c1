// WAL checkpoints off the server's event loop. In WAL mode with synchronous=NORMAL a commit only
// appends to the WAL; the checkpoint, which copies WAL pages into the database file, is where the
// fsyncs are. SQLite runs it inside whichever COMMIT pushes the WAL past 1,000 pages, so on a busy
// server one message's commit in a few hundred stalled the event loop for tens to hundreds of
// milliseconds (docs/benchmarks.md). The server's connection turns auto-checkpointing off and this
// worker thread, with a connection of its own, checkpoints PASSIVE-ly (never waiting for locks)
// every `intervalMs`: writers and readers go on meanwhile, as WAL mode allows.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointerData {
  path: string;
  intervalMs: number;
}

/**
 * How soon the next pass starts while catching up. A pass copies the frames committed before it
 * began; the WAL can start over from its beginning only at a commit that finds every frame copied,
 * so under a steady write load a pass every `intervalMs` never got there (each took longer than the
 * gap between two commits): the WAL grew to the server's fallback limit and the server's own
 * connection checkpointed inside a commit, stalling its event loop for 50–100 ms every half second
 * at 2,500 archived messages/s. Back-to-back passes each copy only what came in during the last
 * one, so they shrink until one ends between two commits with nothing left: then the WAL restarts.
 */
const CATCH_UP_MS = 1;

if (parentPort) {
  const { path, intervalMs } = workerData as CheckpointerData;
  const db = new Database(path);
  db.pragma('busy_timeout = 0');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** The WAL's frame count after the last pass (-1 before the first). */
  let lastLog = -1;
  /** True when the whole WAL is in the database file and nothing was committed since the last pass. */
  const checkpoint = (): boolean => {
    try {
      const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      if (!row || row.busy !== 0) return true; // another checkpoint runs: try again in a while
      const settled = row.log <= 0 || (row.checkpointed >= row.log && row.log === lastLog);
      lastLog = row.log;
      return settled;
    } catch {
      return true; // busy or closing: the next round tries again
    }
  };
  const round = (): void => {
    if (stopped) return;
    timer = setTimeout(round, checkpoint() ? intervalMs : CATCH_UP_MS);
  };
  timer = setTimeout(round, intervalMs);
  parentPort.on('message', (message: unknown) => {
    if (message !== 'stop') return;
    stopped = true;
    clearTimeout(timer);
    checkpoint();
    db.close();
    parentPort?.postMessage('stopped');
  });
}
