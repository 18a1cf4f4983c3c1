// Loading the YAML config: parse, validate against the schema, and on failure say which key is wrong,
// why, and on which line of the file (so `herald start` can exit with something a human can act on).

import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, isMap, isSeq, type Document, type Node as YamlNode } from 'yaml';
import { configSchema, type HeraldConfig } from './schema.js';

export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
    readonly line?: number,
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
  /** True when this call wrote the file from the example (first start). */
  created: boolean;
}

/** Reads and validates a config file. With `createIfMissing`, a missing file is first written from the example. */
export function loadConfigFile(file: string, options: { createIfMissing?: boolean } = {}): LoadedConfig {
  const path = resolve(file);
  let created = false;
  if (!existsSync(path)) {
    if (!options.createIfMissing) throw new ConfigFileError(path, '', 'file not found');
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
  return { config, file: path, created };
}

export function parseConfigText(text: string, file = 'config'): HeraldConfig {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    throw new ConfigFileError(file, '', `YAML: ${err.message.split('\n')[0]}`, err.linePos?.[0]?.line);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String);
    let reason = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      path.push(keys[0]!);
      reason = 'unknown key';
    }
    throw new ConfigFileError(file, path.join('.'), reason, lineOf(doc, text, path));
  }
  return parsed.data;
}

/** 1-based line of the YAML node at `path`, or of its nearest existing parent. */
function lineOf(doc: Document, text: string, path: string[]): number | undefined {
  for (let depth = path.length; depth > 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as YamlNode | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) {
      return text.slice(0, node.range[0]).split('\n').length;
    }
    // For a key that exists but whose value is null, look for the key itself.
    const parent = depth > 1 ? doc.getIn(path.slice(0, depth - 1), true) : doc.contents;
    if (parent && (isMap(parent) || isSeq(parent))) {
      for (const item of parent.items as { key?: { value?: unknown; range?: [number, number, number] } }[]) {
        if (item.key && String(item.key.value) === path[depth - 1] && item.key.range) {
          return text.slice(0, item.key.range[0]).split('\n').length;
        }
      }
    }
  }
  return undefined;
}
