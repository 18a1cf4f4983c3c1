// `npm run docs:config`: writes conf/herald.example.yml and docs/config.md from the config schemas
// (conf/schema.ts and every built-in module's `config`). test/unit/config.test.ts fails while either
// file differs from what this would write.
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs, renderExampleConfig } from '../conf/describe.js';
import { builtinModules } from '../modules/index.js';

/** The repository (or package) root: this file runs from dist/bin/. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const EXAMPLE_FILE = join(ROOT, 'conf', 'herald.example.yml');
export const DOCS_FILE = join(ROOT, 'docs', 'config.md');

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(EXAMPLE_FILE, renderExampleConfig(builtinModules));
  writeFileSync(DOCS_FILE, renderConfigDocs(builtinModules));
  process.stdout.write(`wrote ${EXAMPLE_FILE}\nwrote ${DOCS_FILE}\n`);
}
