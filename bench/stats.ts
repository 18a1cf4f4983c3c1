// Small statistics helpers for the benchmarks: latency percentiles and formatting.

/** Percentiles (0..100) of a list of samples; sorts a copy. */
export function percentiles(samples: ArrayLike<number>, points: number[]): number[] {
  if (samples.length === 0) return points.map(() => Number.NaN);
  const sorted = Float64Array.from(samples).sort();
  return points.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!);
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(samples: ArrayLike<number>): LatencySummary {
  const [p50, p90, p99, p999, max] = percentiles(samples, [50, 90, 99, 99.9, 100]);
  return { count: samples.length, p50: p50!, p90: p90!, p99: p99!, p999: p999!, max: max! };
}

/** Growable list of float samples without per-sample allocation. */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value < 10 ? `${value.toFixed(2)} ms` : value < 100 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

export function latencyLine(s: LatencySummary): string {
  return `p50 ${ms(s.p50)}, p90 ${ms(s.p90)}, p99 ${ms(s.p99)}, p99.9 ${ms(s.p999)}, max ${ms(s.max)}`;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** CLOCK_MONOTONIC in microseconds: the clock V8 CPU profiles are stamped with, in every process. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
