// The config schemas described for people: conf/herald.example.yml and docs/config.md are rendered
// from here (`npm run docs:config`, bin/config-docs.ts), and test/unit/config.test.ts fails when
// either file is stale, so the schemas stay the single source of every key, default and description.

import { z } from 'zod';
import type { ModuleDefinition } from '../server/module-api.js';
import { configSchema } from './schema.js';

export interface ConfigKey {
  kind: 'key';
  path: string[];
  /** For people: 'boolean', 'integer (0–65535)', 'duration', 'list of strings', ... */
  type: string;
  description: string;
  /** The default in its YAML input form ('60s' rather than 60000); absent when the key has none. */
  default?: { value: unknown };
  /** A value to show when there is no default (`meta({ example })`). */
  example?: unknown;
}

export interface ConfigSection {
  kind: 'section';
  path: string[];
  description: string;
  entries: ConfigEntry[];
}

export type ConfigEntry = ConfigKey | ConfigSection;

export interface ModuleConfigInfo {
  name: string;
  xeps: string[];
  entries: ConfigEntry[];
}

/** Keys written uncommented in the example: the minimal config of DESIGN.md §8. */
export const MINIMAL_KEYS = new Set([
  'domain', 'data_dir',
  'listen.c2s', 'listen.c2s_direct_tls', 'listen.s2s', 'listen.component', 'listen.http', 'listen.https',
]);

/** The global keys (conf/schema.ts), in schema order. */
export function describeGlobalConfig(): ConfigEntry[] {
  return describeObject(configSchema, []);
}

/** Modules that have settings, with their keys (under modules.<name>). */
export function describeModuleConfigs(modules: readonly ModuleDefinition<unknown>[]): ModuleConfigInfo[] {
  const out: ModuleConfigInfo[] = [];
  for (const def of modules) {
    const base = def.config && unwrap(def.config).base;
    if (!base || !(base instanceof z.ZodObject) || Object.keys(base.shape).length === 0) continue;
    out.push({
      name: def.name,
      xeps: (def.xeps ?? []).map((info) => `XEP-${String(info.xep).padStart(4, '0')}`),
      entries: describeObject(base, ['modules', def.name]),
    });
  }
  return out;
}

/** Every key (not section) below some entries, depth first. */
export function flattenKeys(entries: ConfigEntry[]): ConfigKey[] {
  return entries.flatMap((entry) => (entry.kind === 'key' ? [entry] : flattenKeys(entry.entries)));
}

function describeObject(schema: z.ZodObject, path: string[]): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    const { base, description, dflt, example } = unwrap(field);
    const here = [...path, key];
    if (base instanceof z.ZodObject) {
      entries.push({ kind: 'section', path: here, description: description ?? '', entries: describeObject(base, here) });
      continue;
    }
    const entry: ConfigKey = { kind: 'key', path: here, type: typeName(base), description: description ?? '' };
    if (dflt) entry.default = dflt;
    if (example !== undefined) entry.example = example;
    entries.push(entry);
  }
  return entries;
}

interface Unwrapped {
  base: z.ZodType;
  description: string | undefined;
  dflt: { value: unknown } | undefined;
  example: unknown;
}

/** Peels default/prefault/optional wrappers off a field, keeping the outermost description and default. */
function unwrap(schema: z.ZodType): Unwrapped {
  let current = schema;
  let description: string | undefined;
  let example: unknown;
  let dflt: { value: unknown } | undefined;
  for (;;) {
    description ??= current.description;
    example ??= (z.globalRegistry.get(current) as { example?: unknown } | undefined)?.example;
    const def = current.def as { type: string; innerType?: z.ZodType; defaultValue?: unknown };
    if ((def.type === 'default' || def.type === 'prefault') && def.innerType) {
      dflt ??= { value: def.defaultValue };
      current = def.innerType;
    } else if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'readonly') && def.innerType) {
      current = def.innerType;
    } else {
      return { base: current, description, dflt, example };
    }
  }
}

function typeName(schema: z.ZodType): string {
  if (schema instanceof z.ZodString) return 'string';
  if (schema instanceof z.ZodBoolean) return 'boolean';
  if (schema instanceof z.ZodNumber) return numberType(schema);
  if (schema instanceof z.ZodEnum) return `one of ${schema.options.map(String).join(', ')}`;
  if (schema instanceof z.ZodArray) return `list of ${typeName(schema.element as z.ZodType)}s`;
  if (schema instanceof z.ZodRecord) return 'map';
  if (schema instanceof z.ZodPipe) {
    // conf/units.ts: duration() and bytes() are both number-or-text pipes; tell them apart by what they take.
    if (schema.safeParse('2 minutes').success) return 'duration';
    if (schema.safeParse('2 KiB').success) return 'size';
    return typeName(schema.in as z.ZodType);
  }
  if (schema instanceof z.ZodUnion) return (schema.options as z.ZodType[]).map(typeName).join(' or ');
  return schema.def.type;
}

function numberType(schema: z.ZodNumber): string {
  const bounded = (n: number | null | undefined): n is number => typeof n === 'number' && Number.isFinite(n) && Math.abs(n) < Number.MAX_SAFE_INTEGER;
  const name = schema.isInt ? 'integer' : 'number';
  const min = schema.minValue;
  const max = schema.maxValue;
  if (bounded(min) && bounded(max)) return `${name} (${min}–${max})`;
  if (bounded(min)) return `${name} ≥ ${min}`;
  if (bounded(max)) return `${name} ≤ ${max}`;
  return name;
}

// ---- YAML values ----

const RESERVED_WORDS = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

/** A value as YAML flow text: `5222`, `./data`, `'1 hour'`, `['*']`, `{}`. */
export function yamlValue(value: unknown): string {
  if (value === undefined || value === null) return '~';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    const plain = /^[A-Za-z0-9_./][A-Za-z0-9_./-]*$/.test(value) && !RESERVED_WORDS.test(value) && Number.isNaN(Number(value));
    return plain ? value : `'${value.replace(/'/g, "''")}'`;
  }
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${k}: ${yamlValue(v)}`).join(', ')} }`;
}

// ---- conf/herald.example.yml ----

const EXAMPLE_HEADER = `# Herald configuration (YAML). \`herald start\` writes this file on first start; edit it and restart.
# Every key is listed with what it does and its default. A commented-out key ("# key: value") takes
# its default: to change one, remove the "# " in front of it (and of its section). Keys not listed
# here are errors. Durations: a number of seconds or '30s', '5 minutes', '72h'. Sizes: a number of
# bytes or '256 KiB', '10 MB'. Relative paths are relative to this file.
# Reference: docs/config.md. After editing, \`herald check\` validates the file.
`;

const WIDTH = 100;

/** The example config: minimal keys (MINIMAL_KEYS) set, every other key commented with its default. */
export function renderExampleConfig(modules: readonly ModuleDefinition<unknown>[]): string {
  const lines: string[] = [EXAMPLE_HEADER];
  for (const entry of describeGlobalConfig()) {
    if (entry.path[0] === 'modules' || entry.path[0] === 'modules_disabled') continue; // below, after the modules
    lines.push(...renderEntry(entry, 0, false), '');
  }
  const names = modules.map((def) => def.name).join(', ');
  lines.push(...comment(`Per-module settings, by module name. Built-in modules: ${names}.`, '# '));
  lines.push('# modules:');
  for (const info of describeModuleConfigs(modules)) {
    const xeps = info.xeps.length > 0 ? ` (${info.xeps.join(', ')})` : '';
    lines.push(...comment(`The ${info.name} module${xeps}`, '#   # '));
    lines.push(`#   ${info.name}:`);
    for (const entry of info.entries) lines.push(...renderEntry(entry, 2, true));
  }
  lines.push('');
  const disabled = describeGlobalConfig().find((entry) => entry.path[0] === 'modules_disabled');
  if (disabled) lines.push(...renderEntry(disabled, 0, false));
  return lines.join('\n').replace(/\n*$/, '\n');
}

/**
 * Lines for one key or section at nesting `depth`. `inDisabledBlock`: the whole block is commented
 * out, so every line starts with '# ' at column 0 (and descriptions are comments within it).
 */
function renderEntry(entry: ConfigEntry, depth: number, inDisabledBlock: boolean): string[] {
  const indent = '  '.repeat(depth);
  const key = entry.path[entry.path.length - 1]!;
  const enabled = !inDisabledBlock && isEnabled(entry);
  // Descriptions: '  # text' in live sections, '#   # text' inside a commented-out block.
  const describe = (text: string, tail?: string) => comment(text, inDisabledBlock ? `# ${indent}# ` : `${indent}# `, tail);
  const line = (text: string) => (enabled ? `${indent}${text}` : inDisabledBlock ? `# ${indent}${text}` : `${indent}# ${text}`);
  if (entry.kind === 'section') {
    const childrenDisabled = inDisabledBlock || !enabled;
    const out = [...describe(entry.description), childrenDisabled && !inDisabledBlock ? `# ${indent}${key}:` : line(`${key}:`)];
    for (const child of entry.entries) out.push(...renderEntry(child, depth + 1, childrenDisabled));
    return out;
  }
  const shown = entry.default ? entry.default.value : entry.example;
  const note = entry.default ? `Default: ${yamlValue(entry.default.value)}` : 'No default.';
  return [...describe(`${entry.description}.`, note), line(`${key}: ${yamlValue(shown)}`)];
}

function isEnabled(entry: ConfigEntry): boolean {
  if (entry.kind === 'key') return MINIMAL_KEYS.has(entry.path.join('.'));
  return entry.entries.some(isEnabled);
}

/**
 * Wraps text into comment lines; `tail` stays in one piece. A line never starts with a 'word:' token,
 * so that stripping one "# " (what a person does to enable a key, and what the tests do) only ever
 * turns key lines into keys.
 */
function comment(text: string, prefix: string, tail?: string): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  if (tail !== undefined) words.push(tail);
  const lines: string[][] = [[]];
  const looksLikeKey = (word: string) => /^[a-z_][a-z0-9_]*:$/.test(word);
  for (const word of words) {
    const current = lines[lines.length - 1]!;
    const length = prefix.length + current.join(' ').length + 1 + word.length;
    if (current.length > 0 && length > WIDTH) {
      if (looksLikeKey(word) && current.length > 1) lines.push([current.pop()!, word]);
      else lines.push([word]);
    } else {
      current.push(word);
    }
  }
  return lines.filter((words) => words.length > 0).map((words) => `${prefix}${words.join(' ')}`);
}

// ---- docs/config.md ----

const DOCS_HEADER = `# Configuration reference

<!-- Generated by \`npm run docs:config\` from conf/schema.ts and the modules' \`config\` schemas.
     Edit those, then regenerate; test/unit/config.test.ts fails while this file is stale. -->

Herald reads one YAML file: \`./herald.yml\`, or the file named with \`--config FILE\`. On its first
start (without \`--config\`), \`herald start\` writes \`./herald.yml\` from
[conf/herald.example.yml](../conf/herald.example.yml), which lists every key below, commented out,
with its default.

- A config with only \`domain\`, \`data_dir\`, \`listen\` and \`tls\` is complete: every other key has a default.
- Relative paths are relative to the config file, not to the working directory.
- Durations are a number of seconds or text: \`30s\`, \`5 minutes\`, \`72h\`, \`2 days\`.
- Sizes are a number of bytes or text: \`256 KiB\`, \`10 MB\`, \`1 GiB\`.
- Unknown keys and out-of-range values are errors, never silently ignored or clamped: \`herald start\`
  and \`herald check\` print \`FILE:LINE: key.path: reason\` and exit non-zero.
- Module settings live under \`modules.<name>\`; \`modules_disabled\` lists built-in modules not to load.
`;

/** docs/config.md: every key with type, default and description. */
export function renderConfigDocs(modules: readonly ModuleDefinition<unknown>[]): string {
  const out: string[] = [DOCS_HEADER, '## Global keys', ''];
  const global = describeGlobalConfig();
  const topLevel = global.filter((entry): entry is ConfigKey => entry.kind === 'key');
  out.push(...table(topLevel), '');
  for (const section of global) {
    if (section.kind !== 'section') continue;
    out.push(`### \`${section.path.join('.')}\``, '', `${section.description}.`, '', ...table(flattenKeys(section.entries)), '');
  }
  out.push('## Module keys', '', `Built-in modules: ${modules.map((def) => `\`${def.name}\``).join(', ')}. Those with settings:`, '');
  for (const info of describeModuleConfigs(modules)) {
    const xeps = info.xeps.length > 0 ? ` (${info.xeps.join(', ')})` : '';
    out.push(`### \`modules.${info.name}\`${xeps}`, '', ...table(flattenKeys(info.entries)), '');
  }
  return out.join('\n').replace(/\n*$/, '\n');
}

function table(keys: ConfigKey[]): string[] {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = keys.map((key) => {
    const dflt = key.default ? `\`${yamlValue(key.default.value)}\`` : 'none';
    return `| \`${key.path.join('.')}\` | ${cell(key.type)} | ${cell(dflt)} | ${cell(key.description)} |`;
  });
  return ['| Key | Type | Default | Description |', '|---|---|---|---|', ...rows];
}
