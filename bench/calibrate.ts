// A fixed CPU workload run on the server's core right before a benchmark, so that results taken on
// a machine whose speed drifts (a shared VM) can be compared: "speed" is how many rounds of a small
// mixed workload (JSON, strings, a SHA-1, a Map) one core does per millisecond. Usage from the
// runner; standalone: node dist/bench/calibrate.js

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** Rounds per millisecond of the workload, over `ms` milliseconds (after a short warm-up). */
export function speedHere(ms = 500): number {
  const run = (until: number): number => {
    let rounds = 0;
    const map = new Map<string, number>();
    while (performance.now() < until) {
      for (let i = 0; i < 50; i++) {
        const text = JSON.stringify({ to: `u${i}@localhost/bench`, id: rounds + i, body: 'Benchmark message: the quick brown fox' });
        const parsed = JSON.parse(text) as { to: string; id: number };
        map.set(parsed.to, parsed.id);
        createHash('sha1').update(text).digest();
      }
      rounds++;
    }
    return rounds;
  };
  run(performance.now() + 100);
  const start = performance.now();
  const rounds = run(start + ms);
  return rounds / (performance.now() - start);
}

/** Runs the workload in a fresh process on `core` (taskset) and returns its speed, or NaN. */
export function speedOnCore(core: number | undefined): number {
  const script = fileURLToPath(import.meta.url);
  try {
    const args = [process.execPath, script];
    const out = core === undefined ? execFileSync(process.execPath, [script], { encoding: 'utf8' }) : execFileSync('taskset', ['-c', String(core), ...args], { encoding: 'utf8' });
    return Number(out.trim());
  } catch {
    return Number.NaN;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(speedHere().toFixed(1));
}
