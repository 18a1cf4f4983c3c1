// Where a benchmark's garbage comes from: a preload for the server process that runs V8's sampling
// heap profiler, counting objects the GC has already collected too (what --heap-prof leaves out:
// on a login or message path almost everything is short-lived). Usage:
//   npm run bench -- login --server-flags=--import=./dist/bench/heap-sampler.js
// It prints the top allocation sites (on the server's stderr, which the runner shows) and writes
// the whole profile (Chrome DevTools opens it as a .heapprofile).
// Environment: HERALD_HEAP_SAMPLE_DELAY_MS (default 5000: after the login warm-up),
// HERALD_HEAP_SAMPLE_MS (default 4000), HERALD_HEAP_SAMPLE_OUT (default /tmp/herald-heap.json).
// A diagnostic: the sampling slows the server down, so the figures of such a run are not valid.

import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const delay = Number(process.env.HERALD_HEAP_SAMPLE_DELAY_MS ?? 5000);
  const duration = Number(process.env.HERALD_HEAP_SAMPLE_MS ?? 4000);
  const out = process.env.HERALD_HEAP_SAMPLE_OUT ?? '/tmp/herald-heap.json';
  const session = new Session();
  session.connect();
  setTimeout(() => {
    session.post('HeapProfiler.startSampling', { samplingInterval: 2048, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    setTimeout(() => {
      session.post('HeapProfiler.stopSampling', (err, result) => {
        if (err) console.error('heap sampling failed:', err.message);
        else {
          writeFileSync(out, JSON.stringify(result.profile));
          console.error(summarize(result.profile, duration));
        }
      });
    }, duration).unref();
  }, delay).unref();
}

interface SampledNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampledNode[];
}

/** Bytes allocated per second by allocation site (function and line), the top 20. */
function summarize(profile: { head: SampledNode }, durationMs: number): string {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: SampledNode): void => {
    if (node.selfSize > 0) {
      const { functionName, url, lineNumber } = node.callFrame;
      const site = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  const perSecond = (bytes: number): string => `${((bytes / durationMs) * 1000 / 1e6).toFixed(2).padStart(7)} MB/s`;
  const top = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 20);
  return [`heap sampler: ${perSecond(total)} allocated (sampled), by site:`, ...top.map(([site, bytes]) => `  ${perSecond(bytes)}  ${site}`)].join('\n');
}
