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

if (parentPort) {
  const { path, intervalMs } = workerData as CheckpointerData;
  const db = new Database(path);
  db.pragma('busy_timeout = 0');
  const checkpoint = (): void => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // busy or closing: the next round tries again
    }
  };
  const timer = setInterval(checkpoint, intervalMs);
  parentPort.on('message', (message: unknown) => {
    if (message !== 'stop') return;
    clearInterval(timer);
    checkpoint();
    db.close();
    parentPort?.postMessage('stopped');
  });
}
