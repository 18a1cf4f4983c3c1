// A SQLite file path in a fresh temporary directory, removed after the test (storage unit tests).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDatabase(t: { after(fn: () => unknown): void }, file = 'h.sqlite'): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, file);
}
