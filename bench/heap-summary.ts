// Compares two V8 heap snapshots (before and after the sessions logged in) by constructor: what
// each session costs in the JS heap, object by object. Usage:
//   node dist/bench/heap-summary.js BEFORE.heapsnapshot AFTER.heapsnapshot [--per 10000] [--top 25]
// Self sizes only (no retained sizes): enough to see which objects multiply with sessions.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  /** `type:name`, e.g. `object:Session`, `closure:onData`, `string`, `native:system / Context`. */
  key: string;
  count: number;
  bytes: number;
}

/** Self size and count per (node type, constructor name). */
export function heapGroups(path: string): Map<string, HeapGroup> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map<string, HeapGroup>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!] ?? '?';
    // Strings and numbers are named by their content: group them by type alone.
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'code' ? '' : snap.strings[snap.nodes[i + nameAt]!] ?? '?';
    const key = name === '' ? type : `${type}:${name.length > 60 ? `${name.slice(0, 57)}...` : name}`;
    const group = groups.get(key) ?? { key, count: 0, bytes: 0 };
    group.count++;
    group.bytes += snap.nodes[i + sizeAt]!;
    groups.set(key, group);
  }
  return groups;
}

/** What grew between two snapshots, largest first, divided by `per` (sessions). */
export function heapGrowth(before: string, after: string, per: number, top = 25): { key: string; countPer: number; bytesPer: number }[] {
  const a = heapGroups(before);
  const b = heapGroups(after);
  const out: { key: string; countPer: number; bytesPer: number }[] = [];
  for (const [key, group] of b) {
    const old = a.get(key) ?? { count: 0, bytes: 0 };
    const bytes = group.bytes - old.bytes;
    if (bytes <= 0) continue;
    out.push({ key, countPer: (group.count - old.count) / per, bytesPer: bytes / per });
  }
  return out.sort((x, y) => y.bytesPer - x.bytesPer).slice(0, top);
}

export function formatHeapGrowth(rows: { key: string; countPer: number; bytesPer: number }[]): string {
  const total = rows.reduce((sum, r) => sum + r.bytesPer, 0);
  return [
    `heap growth per session, by object kind (top ${rows.length}: ${total.toFixed(0)} bytes):`,
    ...rows.map((r) => `  ${r.bytesPer.toFixed(0).padStart(6)} B  ${r.countPer.toFixed(2).padStart(6)} objects  ${r.key}`),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string', default: '1' }, top: { type: 'string', default: '25' } } });
  if (positionals.length !== 2) {
    console.error('usage: heap-summary BEFORE.heapsnapshot AFTER.heapsnapshot [--per N] [--top N]');
    process.exit(2);
  }
  console.log(formatHeapGrowth(heapGrowth(positionals[0]!, positionals[1]!, Number(values.per), Number(values.top))));
}
