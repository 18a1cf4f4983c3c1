// A small check runner for the interop suites (scripts, not node:test files: they start real
// programs and print a summary a person reads). Each check prints PASS/FAIL/SKIP with its time as it
// ends; the suite ends with notes (which s2s method was used, ...) and one closing line
// "<suite> interop: N passed, N failed[, N skipped]" that test/interop/run.ts adds up.

export type CheckStatus = 'passed' | 'failed' | 'skipped';

export interface CheckResult {
  group: string;
  name: string;
  status: CheckStatus;
  ms: number;
  detail?: string;
}

export class CheckReport {
  readonly results: CheckResult[] = [];
  readonly notes: string[] = [];
  private group = '';

  constructor(readonly suite: string) {}

  /** Starts a group of checks (one run against one peer setup). */
  section(title: string): void {
    this.group = title;
    console.log(`\n${title}`);
  }

  /**
   * Runs one check with a time limit. What it returns (a short text) is printed after PASS. A
   * check whose precondition failed is skipped with that reason instead of failing again.
   */
  async check(name: string, fn: () => Promise<string | void>, options: { timeoutMs?: number; requires?: boolean | string } = {}): Promise<boolean> {
    if (options.requires === false || typeof options.requires === 'string') {
      const reason = typeof options.requires === 'string' ? options.requires : 'an earlier step failed';
      return this.record({ group: this.group, name, status: 'skipped', ms: 0, detail: reason });
    }
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const detail = await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return this.record({ group: this.group, name, status: 'passed', ms: Date.now() - started, detail: detail || undefined });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return this.record({ group: this.group, name, status: 'failed', ms: Date.now() - started, detail: message });
    } finally {
      clearTimeout(timer);
    }
  }

  skip(name: string, reason: string): void {
    this.record({ group: this.group, name, status: 'skipped', ms: 0, detail: reason });
  }

  /** Records a check that ran elsewhere (a Python script reporting its own checks, slixmpp.ts). */
  add(result: { name: string; status: CheckStatus; ms: number; detail?: string }): void {
    this.record({ group: this.group, ...result });
  }

  note(text: string): void {
    this.notes.push(text);
    console.log(`  note  ${text}`);
  }

  private record(result: CheckResult): boolean {
    this.results.push(result);
    const label = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIP' }[result.status];
    const time = result.status === 'skipped' ? '' : ` (${(result.ms / 1000).toFixed(2)} s)`;
    const detail = result.detail ? (result.status === 'failed' ? `\n${indent(result.detail, '        ')}` : ` — ${result.detail}`) : '';
    console.log(`  ${label}  ${result.name}${time}${detail}`);
    return result.status === 'passed';
  }

  count(status: CheckStatus): number {
    return this.results.filter((r) => r.status === status).length;
  }

  /** The summary: failures again (they scroll away), the notes, then the closing count line. */
  printSummary(elapsedMs: number): void {
    const failed = this.results.filter((r) => r.status === 'failed');
    console.log(`\n${this.suite} interop summary (${(elapsedMs / 1000).toFixed(1)} s):`);
    let group = '';
    for (const result of this.results) {
      if (result.group !== group) {
        group = result.group;
        console.log(`  ${group}`);
      }
      console.log(`    ${result.status.toUpperCase().padEnd(7)} ${result.name}`);
    }
    for (const note of this.notes) console.log(`  • ${note}`);
    if (failed.length) console.log(`  failed: ${failed.map((r) => `${r.group} / ${r.name}`).join('; ')}`);
    const skipped = this.count('skipped');
    console.log(`${this.suite} interop: ${this.count('passed')} passed, ${failed.length} failed${skipped ? `, ${skipped} skipped` : ''}`);
  }
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .slice(0, 40)
    .map((line) => prefix + line)
    .join('\n');
}
