// Summarises a V8 CPU profile (`node --cpu-prof` writes them): the functions with the most self
// time, and self time per source file. Usage:
//   node dist/bench/profile-summary.js FILE.cpuprofile [--top 15] [--since-ms N] [--callers NAME]
// --since-ms skips the first N ms of the profile (server start-up and account creation). The runner
// instead passes the measurement window itself: profile timestamps are CLOCK_MONOTONIC
// microseconds, the same clock as process.hrtime() in any process on the machine.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  /** Share of the non-idle time. */
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  top: ProfileEntry[];
  byFile: ProfileEntry[];
}

export interface SummaryOptions {
  top?: number;
  sinceMs?: number;
  /** Only samples within [fromUs, toUs] (process.hrtime.bigint() / 1000n). */
  fromUs?: number;
  toUs?: number;
}

export function summarizeProfile(path: string, options: SummaryOptions = {}): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  const from = Math.max(options.fromUs ?? 0, profile.startTime + (options.sinceMs ?? 0) * 1000);
  const to = options.toUs ?? Number.POSITIVE_INFINITY;
  for (let i = 0; i < profile.samples.length; i++) {
    // Each delta is the time since the previous sample; it counts for the sample it leads to.
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < from || t > to) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const functions = new Map<string, ProfileEntry>();
  const files = new Map<string, ProfileEntry>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    totalUs += us;
    if (frame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const file = shortUrl(frame.url);
    const where = file === '' ? '' : `${file}:${frame.lineNumber + 1}`;
    const name = frame.functionName || '(anonymous)';
    const key = `${name} ${where}`;
    const entry = functions.get(key) ?? { name, where, selfMs: 0, share: 0 };
    entry.selfMs += us / 1000;
    functions.set(key, entry);
    const fileKey = file === '' ? name : file;
    const fileEntry = files.get(fileKey) ?? { name: fileKey, where: '', selfMs: 0, share: 0 };
    fileEntry.selfMs += us / 1000;
    files.set(fileKey, fileEntry);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const rank = (entries: Iterable<ProfileEntry>): ProfileEntry[] =>
    [...entries]
      .map((e) => ({ ...e, share: busyMs > 0 ? e.selfMs / busyMs : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, options.top ?? 15);
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, busyMs, top: rank(functions.values()), byFile: rank(files.values()) };
}

/** file:///…/dist/server/c2s.js → dist/server/c2s.js; node:internal/… stays. */
function shortUrl(url: string): string {
  if (url.startsWith('file://')) {
    const path = fileURLToPath(url);
    const nm = path.lastIndexOf('/node_modules/');
    return nm >= 0 ? path.slice(nm + 1) : relative(process.cwd(), path);
  }
  return url;
}

export function formatProfileSummary(summary: ProfileSummary): string {
  const lines = [
    `profile: ${(summary.totalMs / 1000).toFixed(1)} s sampled, busy ${(summary.busyMs / 1000).toFixed(1)} s, idle ${(summary.idleMs / 1000).toFixed(1)} s`,
    'top self time (share of busy time):',
  ];
  summary.top.forEach((e, i) =>
    lines.push(`  ${String(i + 1).padStart(2)}. ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}  ${e.where}`),
  );
  lines.push('self time by file:');
  summary.byFile.forEach((e) => lines.push(`      ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}`));
  return lines.join('\n');
}

/** The heaviest call stacks (innermost first) ending in functions named `name` (or at `name` = 'file:line'), by self time. */
export function callersOf(path: string, name: string, options: SummaryOptions & { depth?: number } = {}): { ms: number; stack: string[] }[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const from = Math.max(options.fromUs ?? 0, profile.startTime + (options.sinceMs ?? 0) * 1000);
  const to = options.toUs ?? Number.POSITIVE_INFINITY;
  let t = profile.startTime;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const stacks = new Map<string, { ms: number; stack: string[] }>();
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < from || t > to) continue;
    const id = profile.samples[i]!;
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName !== name && `${shortUrl(frame.url)}:${frame.lineNumber + 1}` !== name) continue;
    const stack: string[] = [];
    for (let at: number | undefined = id; at !== undefined && stack.length < (options.depth ?? 10); at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (frame.functionName === '(root)') break;
      stack.push(`${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`);
    }
    const key = stack.join(' < ');
    const entry = stacks.get(key) ?? { ms: 0, stack };
    entry.ms += (profile.timeDeltas[i] ?? 0) / 1000;
    stacks.set(key, entry);
  }
  return [...stacks.values()].sort((a, b) => b.ms - a.ms).slice(0, options.top ?? 5);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '15' }, 'since-ms': { type: 'string', default: '0' }, callers: { type: 'string' } },
  });
  for (const file of positionals) {
    console.log(`== ${file}`);
    if (values.callers !== undefined) {
      for (const { ms, stack } of callersOf(file, values.callers, { top: Number(values.top), sinceMs: Number(values['since-ms']) })) {
        console.log(`${ms.toFixed(0)} ms\n    ${stack.join('\n    ')}`);
      }
      continue;
    }
    console.log(formatProfileSummary(summarizeProfile(file, { top: Number(values.top), sinceMs: Number(values['since-ms']) })));
  }
}
