// Human units in config: durations ('90s', '5 minutes', '72h') and sizes ('256 KiB').
// Both also accept a bare number (seconds, bytes). Values are normalised to milliseconds and bytes.
import { z } from 'zod';

const DURATION_UNITS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  b: 1, byte: 1, bytes: 1,
  kb: 1000, mb: 1_000_000, gb: 1_000_000_000,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
  k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};

export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!match) throw new Error(`not a duration: '${value}' (use e.g. 30s, 5 minutes, 72h)`);
  const unit = (match[2] || 's').toLowerCase();
  const factor = DURATION_UNITS[unit];
  if (factor === undefined) throw new Error(`unknown duration unit '${match[2]}'`);
  return Math.round(Number(match[1]) * factor);
}

export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!match) throw new Error(`not a size: '${value}' (use e.g. 256 KiB, 10 MB)`);
  const unit = (match[2] || 'b').toLowerCase();
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) throw new Error(`unknown size unit '${match[2]}'`);
  return Math.round(Number(match[1]) * factor);
}

function unit(parse: (v: string | number) => number, kind: string) {
  return z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message || `not a ${kind}` });
      return z.NEVER;
    }
  });
}

/** A duration in config, in milliseconds once parsed. */
export const duration = () => unit(parseDuration, 'duration');
/** A size in config, in bytes once parsed. */
export const bytes = () => unit(parseSize, 'size');
