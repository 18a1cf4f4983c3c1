// The config: the loader's errors (FILE:LINE: key: reason), and the example config and
// docs/config.md staying in step with the schemas (global and every built-in module's).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigFileError, loadConfigFile, parseConfigText, validateModuleConfigs } from '../../conf/load.js';
import { configSchema } from '../../conf/schema.js';
import { renderConfigDocs, renderExampleConfig, yamlValue } from '../../conf/describe.js';
import { builtinModules } from '../../modules/index.js';
import { DOCS_FILE, EXAMPLE_FILE } from '../../bin/config-docs.js';

const REGENERATE = 'run `npm run docs:config` and commit the result';

/** Key paths of a zod object, walked through default/prefault/optional wrappers into nested objects. */
function keyPaths(schema: z.ZodType, prefix: string[] = []): string[][] {
  let current = schema;
  for (;;) {
    const def = current.def as { type: string; innerType?: z.ZodType };
    if (['default', 'prefault', 'optional', 'nullable'].includes(def.type) && def.innerType) current = def.innerType;
    else break;
  }
  if (!(current instanceof z.ZodObject)) return [prefix];
  return Object.entries(current.shape as Record<string, z.ZodType>).flatMap(([key, field]) => keyPaths(field, [...prefix, key]));
}

function allKeyPaths(): string[][] {
  const global = keyPaths(configSchema).filter((path) => path[0] !== 'modules');
  const modules = builtinModules.flatMap((def) => (def.config ? keyPaths(def.config, ['modules', def.name]) : []));
  return [...global, ...modules];
}

/** What an admin does to enable a commented key: strip one "# " before `key:`. */
function uncommentAll(text: string): string {
  return text.replace(/^(\s*)# (\s*[a-z_][a-z0-9_]*:(?:\s|$).*)$/gm, '$1$2');
}

const example = readFileSync(EXAMPLE_FILE, 'utf8');

describe('config: conf/herald.example.yml', () => {
  test('every key of the global schema and of each module schema is in the example', () => {
    const doc = parseDocument(uncommentAll(example));
    assert.deepEqual(doc.errors, []);
    const missing = allKeyPaths().filter((path) => !doc.hasIn(path)).map((path) => path.join('.'));
    assert.deepEqual(missing, [], `keys missing from conf/herald.example.yml: ${REGENERATE}`);
  });

  test('with every key uncommented, the example is a valid config (global and module keys)', () => {
    const text = uncommentAll(example);
    const config = parseConfigText(text, 'example');
    assert.doesNotThrow(() => validateModuleConfigs({ config, file: 'example', text }, builtinModules));
  });

  test('as shipped, the example is valid and sets only defaults', () => {
    assert.deepEqual(parseConfigText(example, 'example'), parseConfigText('', 'empty'));
    const doc = parseDocument(example);
    assert.deepEqual(Object.keys(doc.toJS() as object), ['domain', 'data_dir', 'listen']);
  });

  test('the example is what the schemas generate', () => {
    assert.equal(example, renderExampleConfig(builtinModules), `conf/herald.example.yml is stale: ${REGENERATE}`);
  });
});

describe('config: docs/config.md', () => {
  test('docs/config.md is what the schemas generate, and names every key', () => {
    const docs = readFileSync(DOCS_FILE, 'utf8');
    assert.equal(docs, renderConfigDocs(builtinModules), `docs/config.md is stale: ${REGENERATE}`);
    const missing = allKeyPaths().map((path) => path.join('.')).filter((key) => !docs.includes(`\`${key}\``));
    assert.deepEqual(missing, []);
  });
});

describe('config: loading and errors', () => {
  test('the minimal config of DESIGN §8 is valid', () => {
    const config = parseConfigText(`domain: localhost
data_dir: ./data
listen:
  c2s: 5222
  c2s_direct_tls: 5223
  s2s: 5269
  component: 5347
  http: 5280
  https: 5281
tls: { cert: ./cert.pem, key: ./key.pem }
`);
    assert.equal(config.listen.c2s, 5222);
    assert.equal(config.tls.cert, './cert.pem');
  });

  test('an unknown key → HERALD_CONFIG_UNKNOWN_KEY with its path and line', () => {
    assert.throws(() => parseConfigText('domain: localhost\nlisten:\n  c2s: 5222\n  bogus: 1\n', 'h.yml'), (err: unknown) => {
      assert.ok(err instanceof ConfigFileError);
      assert.equal(err.code, 'HERALD_CONFIG_UNKNOWN_KEY');
      assert.equal(err.message, 'h.yml:4: listen.bogus: unknown key');
      return true;
    });
  });

  test('a wrong type and an out-of-range value → the key path and its line', () => {
    assert.throws(() => parseConfigText('domain: localhost\n\nlisten: { c2s: abc }\n', 'h.yml'), /^Error: h\.yml:3: listen\.c2s: .*expected number/);
    assert.throws(() => parseConfigText('c2s:\n  max_resources: 5000\n', 'h.yml'), /^Error: h\.yml:2: c2s\.max_resources: /);
    assert.throws(() => parseConfigText('c2s:\n  auth_timeout: soon\n', 'h.yml'), /^Error: h\.yml:2: c2s\.auth_timeout: not a duration/);
  });

  test('broken YAML → HERALD_CONFIG_YAML with the line', () => {
    assert.throws(() => parseConfigText('domain: localhost\nlisten:\n  c2s: [5222\n', 'h.yml'), (err: unknown) => {
      assert.ok(err instanceof ConfigFileError);
      assert.equal(err.code, 'HERALD_CONFIG_YAML');
      assert.ok(err.line !== undefined && err.line >= 3, err.message);
      return true;
    });
  });

  test('the domain is normalised; an invalid one is refused', () => {
    assert.equal(parseConfigText('domain: Example.ORG.\n').domain, 'example.org');
    assert.throws(() => parseConfigText('domain: "bad domain"\n', 'h.yml'), /^Error: h\.yml:1: domain: not a valid domain/);
  });

  test('module settings: a bad value, an unknown key, an unknown module → the key path and line', () => {
    const check = (text: string) => () => validateModuleConfigs({ config: parseConfigText(text, 'h.yml'), file: 'h.yml', text }, builtinModules);
    assert.throws(check('modules:\n  register:\n    allow_registration: maybe\n'), /^Error: h\.yml:3: modules\.register\.allow_registration: /);
    assert.throws(check('modules:\n  register:\n    allow_registrations: true\n'), (err: unknown) => {
      assert.ok(err instanceof ConfigFileError && err.code === 'HERALD_CONFIG_UNKNOWN_KEY');
      assert.equal(err.message, 'h.yml:3: modules.register.allow_registrations: unknown key');
      return true;
    });
    assert.throws(check('modules:\n  nosuch: {}\n'), /^Error: h\.yml:2: modules\.nosuch: no such module \(built-in modules: .*register/);
    assert.throws(check('modules_disabled: [ping, nosuch]\n'), /^Error: h\.yml:1: modules_disabled\.1: no such module 'nosuch'/);
    assert.doesNotThrow(check('modules:\n  register: { allow_registration: true }\n  ping:\n'));
  });

  test('relative paths are relative to the config file; a missing file → HERALD_CONFIG_NOT_FOUND', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'herald.yml');
    writeFileSync(file, 'data_dir: ./store\ntls: { cert: c.pem, key: /abs/k.pem }\n');
    const { config } = loadConfigFile(file);
    assert.equal(config.data_dir, join(dir, 'store'));
    assert.equal(config.tls.cert, join(dir, 'c.pem'));
    assert.equal(config.tls.key, '/abs/k.pem');
    assert.throws(() => loadConfigFile(join(dir, 'none.yml')), (err: unknown) => err instanceof ConfigFileError && err.code === 'HERALD_CONFIG_NOT_FOUND');
  });

  test('createIfMissing writes the example, which then loads', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const loaded = loadConfigFile(join(dir, 'herald.yml'), { createIfMissing: true });
    assert.equal(loaded.created, true);
    assert.equal(readFileSync(join(dir, 'herald.yml'), 'utf8'), example);
    assert.equal(loaded.config.data_dir, join(dir, 'data'));
    assert.equal(loadConfigFile(join(dir, 'herald.yml'), { createIfMissing: true }).created, false);
  });

  test('YAML values in the example and docs: plain when safe, quoted otherwise', () => {
    assert.equal(yamlValue('./data'), './data');
    assert.equal(yamlValue('*'), "'*'");
    assert.equal(yamlValue('5 minutes'), "'5 minutes'");
    assert.equal(yamlValue('yes'), "'yes'");
    assert.equal(yamlValue('5222'), "'5222'");
    assert.equal(yamlValue(['127.0.0.1', '::1']), "[127.0.0.1, '::1']");
    assert.equal(yamlValue({}), '{}');
    assert.deepEqual(parseDocument(`v: ${yamlValue(["it's", '::1', 'a b'])}`).toJS(), { v: ["it's", '::1', 'a b'] });
  });
});
