// Stanza and stream errors (RFC 6120 §8.3 and §4.9). Handlers throw these; the core turns them
// into the error stanza or stream error. Nothing else builds <error/> by hand.

import { XmlElement, x } from './xml/element.js';
import { NS } from './protocol/ns.js';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3 conditions with the error type the RFC's examples give each. */
const STANZA_CONDITIONS = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
} as const satisfies Record<string, StanzaErrorType>;

export type StanzaErrorCondition = keyof typeof STANZA_CONDITIONS;

export interface StanzaErrorOptions {
  type?: StanzaErrorType;
  /** Application-specific condition element (RFC 6120 §8.3.4). */
  app?: XmlElement;
  /** The entity that generated the error (RFC 6120 §8.3.2 'by'). */
  by?: string;
}

export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  readonly app: XmlElement | undefined;
  readonly by: string | undefined;

  constructor(readonly condition: StanzaErrorCondition, readonly text?: string, options: StanzaErrorOptions = {}) {
    super(text ? `${condition}: ${text}` : condition);
    this.type = options.type ?? STANZA_CONDITIONS[condition];
    this.app = options.app;
    this.by = options.by;
  }

  toElement(): XmlElement {
    const error = x('error', { type: this.type, by: this.by }, x(this.condition, { xmlns: NS.STANZA_ERRORS }));
    if (this.text) error.append(x('text', { xmlns: NS.STANZA_ERRORS, 'xml:lang': 'en' }, this.text));
    if (this.app) error.append(this.app);
    return error;
  }
}

type StanzaErrorFactory = (text?: string, options?: StanzaErrorOptions) => StanzaError;
type CamelCase<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<CamelCase<B>>}` : S;

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `throw stanzaError.itemNotFound('no such node')`, one factory per RFC 6120 condition. */
export const stanzaError = Object.fromEntries(
  Object.keys(STANZA_CONDITIONS).map((condition) => [
    camel(condition),
    (text?: string, options?: StanzaErrorOptions) => new StanzaError(condition as StanzaErrorCondition, text, options),
  ]),
) as { [K in StanzaErrorCondition as CamelCase<K>]: StanzaErrorFactory };

/** Per-module named errors: `const errors = defineErrors({ noNode: ['cancel', 'feature-not-implemented', 'text'] })`. */
export function defineErrors<K extends string>(
  table: Record<K, [StanzaErrorType, StanzaErrorCondition, string?]>,
): Record<K, (options?: StanzaErrorOptions) => StanzaError> {
  const out = {} as Record<K, (options?: StanzaErrorOptions) => StanzaError>;
  for (const key of Object.keys(table) as K[]) {
    const [type, condition, text] = table[key];
    out[key] = (options) => new StanzaError(condition, text, { type, ...options });
  }
  return out;
}

/** RFC 6120 §8.3.1: the error reply to a stanza: addresses swapped, same id, type 'error'. */
export function errorReply(stanza: XmlElement, error: StanzaError, includeOriginal = false): XmlElement {
  const reply = new XmlElement(stanza.name, { type: 'error' });
  if (stanza.attrs.id !== undefined) reply.attrs.id = stanza.attrs.id;
  if (stanza.attrs.to !== undefined) reply.attrs.from = stanza.attrs.to;
  if (stanza.attrs.from !== undefined) reply.attrs.to = stanza.attrs.from;
  if (includeOriginal) for (const child of stanza.children) if (typeof child !== 'string') reply.children.push(child);
  reply.children.push(error.toElement());
  return reply;
}

/** RFC 6120 §8.3.1: never answer an error (or an IQ result) with an error. */
export function mayReplyWithError(stanza: XmlElement): boolean {
  const type = stanza.attrs.type;
  if (type === 'error') return false;
  if (stanza.name === 'iq' && type === 'result') return false;
  return true;
}

// ---- stream errors ----

export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

export class StreamError extends Error {
  constructor(readonly condition: StreamErrorCondition, readonly text?: string, readonly content?: string) {
    super(text ? `${condition}: ${text}` : condition);
  }

  toElement(prefix = 'stream:'): XmlElement {
    const error = x(`${prefix}error`, prefix === '' ? { xmlns: NS.STREAMS } : null, x(this.condition, { xmlns: NS.STREAM_ERRORS }, this.content));
    if (this.text) error.append(x('text', { xmlns: NS.STREAM_ERRORS, 'xml:lang': 'en' }, this.text));
    return error;
  }
}

export function streamError(condition: StreamErrorCondition, text?: string): StreamError {
  return new StreamError(condition, text);
}
