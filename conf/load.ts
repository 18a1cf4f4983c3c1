// Loading the YAML config: parse, validate against the schema, and on failure say which key is wrong,
// why, and on which line of the file (so `herald start` can exit with something a human can act on:
// "herald.yml:12: listen.c2s: Invalid input: expected number, received string").

import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, isMap, isNode, isScalar, isSeq, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type HeraldConfig } from './schema.js';
import { normalizeDomainpart } from '../server/jid.js';
import type { ModuleDefinition } from '../server/module-api.js';

/** Stable codes for config errors (STYLE.md §5), for scripts and tests. */
export type ConfigErrorCode =
  | 'HERALD_CONFIG_NOT_FOUND'
  | 'HERALD_CONFIG_YAML'
  | 'HERALD_CONFIG_UNKNOWN_KEY'
  | 'HERALD_CONFIG_INVALID_VALUE'
  | 'HERALD_CONFIG_UNKNOWN_MODULE';

export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
    readonly line?: number,
    readonly code: ConfigErrorCode = 'HERALD_CONFIG_INVALID_VALUE',
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${key ? `${key}: ` : ''}${reason}`);
  }
}

/** conf/herald.example.yml, shipped with the package (the template for a first start). */
export const EXAMPLE_CONFIG_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../conf/herald.example.yml');

export interface LoadedConfig {
  config: HeraldConfig;
  /** The file read, absolute. */
  file: string;
  /** Its text, for pointing at lines in later checks (module settings). */
  text: string;
  /** True when this call wrote the file from the example (first start). */
  created: boolean;
}

/** Reads and validates a config file. With `createIfMissing`, a missing file is first written from the example. */
export function loadConfigFile(file: string, options: { createIfMissing?: boolean } = {}): LoadedConfig {
  const path = resolve(file);
  let created = false;
  if (!existsSync(path)) {
    if (!options.createIfMissing) throw new ConfigFileError(path, '', 'file not found', undefined, 'HERALD_CONFIG_NOT_FOUND');
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, readFileSync(EXAMPLE_CONFIG_PATH, 'utf8'), { mode: 0o640 });
    created = true;
  }
  const text = readFileSync(path, 'utf8');
  const config = parseConfigText(text, path);
  // Relative paths in the config are relative to the config file, not to the working directory.
  const base = dirname(path);
  const fix = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  config.data_dir = fix(config.data_dir)!;
  config.tls.cert = fix(config.tls.cert);
  config.tls.key = fix(config.tls.key);
  return { config, file: path, text, created };
}

export function parseConfigText(text: string, file = 'config'): HeraldConfig {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = err.linePos?.[0]?.line ?? text.slice(0, err.pos[0]).split('\n').length;
    throw new ConfigFileError(file, '', `YAML: ${err.message.split('\n')[0]}`, line, 'HERALD_CONFIG_YAML');
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw issueError(parsed.error, [], doc, text, file);
  const config = parsed.data;
  try {
    // One spelling of the domain everywhere (RFC 7622 §3.2: lowercase, IDNA U-labels, no trailing dot).
    config.domain = normalizeDomainpart(config.domain);
  } catch (err) {
    throw new ConfigFileError(file, 'domain', `not a valid domain (${(err as Error).message})`, lineOf(doc, text, ['domain']));
  }
  return config;
}

/**
 * Checks `modules.<name>` against each module's schema, and that `modules` and `modules_disabled`
 * name modules that exist, with the line of the offending key. The server does the same at startup
 * (without lines): this runs first so `herald start` and `herald check` can point into the file.
 */
export function validateModuleConfigs(loaded: Pick<LoadedConfig, 'config' | 'file' | 'text'>, modules: readonly ModuleDefinition<unknown>[]): void {
  const { config, file, text } = loaded;
  const doc = parseDocument(text);
  const byName = new Map(modules.map((def) => [def.name, def]));
  const known = () => `built-in modules: ${modules.map((def) => def.name).join(', ')}`;
  for (const [name, settings] of Object.entries(config.modules)) {
    const def = byName.get(name);
    if (!def) {
      throw new ConfigFileError(file, `modules.${name}`, `no such module (${known()})`, lineOf(doc, text, ['modules', name]), 'HERALD_CONFIG_UNKNOWN_MODULE');
    }
    if (!def.config) {
      const first = Object.keys(settings ?? {})[0];
      if (first !== undefined) {
        const path = ['modules', name, first];
        throw new ConfigFileError(file, path.join('.'), 'unknown key (this module has no settings)', lineOf(doc, text, path), 'HERALD_CONFIG_UNKNOWN_KEY');
      }
      continue;
    }
    const parsed = def.config.safeParse(settings ?? {});
    if (!parsed.success) throw issueError(parsed.error, ['modules', name], doc, text, file);
  }
  config.modules_disabled.forEach((name, index) => {
    if (!byName.has(name)) {
      throw new ConfigFileError(file, `modules_disabled.${index}`, `no such module '${name}' (${known()})`, lineOf(doc, text, ['modules_disabled', String(index)]), 'HERALD_CONFIG_UNKNOWN_MODULE');
    }
  });
}

/** The 1-based line of a key path in a config text (or of its nearest existing parent). */
export function lineOfKey(text: string, path: string[]): number | undefined {
  return lineOf(parseDocument(text), text, path);
}

function issueError(error: z.ZodError, prefix: string[], doc: Document, text: string, file: string): ConfigFileError {
  const issue = error.issues[0]!;
  const path = [...prefix, ...issue.path.map(String)];
  let reason = issue.message;
  let code: ConfigErrorCode = 'HERALD_CONFIG_INVALID_VALUE';
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    path.push(keys[0]!);
    reason = 'unknown key';
    code = 'HERALD_CONFIG_UNKNOWN_KEY';
  }
  return new ConfigFileError(file, path.join('.'), reason, lineOf(doc, text, path), code);
}

/** 1-based line of the key at `path` (of the item, in a list), or of its nearest existing parent. */
function lineOf(doc: Document, text: string, path: string[]): number | undefined {
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  for (let depth = path.length; depth > 0; depth--) {
    const parent = depth > 1 ? doc.getIn(path.slice(0, depth - 1), true) : doc.contents;
    const last = path[depth - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === last);
      if (pair && isNode(pair.key) && pair.key.range) return lineAt(pair.key.range[0]);
    } else if (isSeq(parent)) {
      const item = parent.items[Number(last)];
      if (isNode(item) && item.range) return lineAt(item.range[0]);
    }
  }
  return undefined;
}
