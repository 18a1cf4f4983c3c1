// XEP-0441 Message Archive Management Preferences (0.2.0), the <prefs xmlns='urn:xmpp:mam:2'/> split
// out of XEP-0313: a default (always, roster, never) and two JID lists that override it.
// Left out: the advanced ad-hoc configuration of §2.2 (urn:xmpp:mam#configure).
import { x, tryParseJid, type Jid, type XmlElement } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import { NS_MAM, type MamNamespace } from './rules.js';

export type DefaultPolicy = 'always' | 'roster' | 'never';
export const DEFAULT_POLICIES = ['always', 'roster', 'never'] as const;

export interface Prefs {
  default: DefaultPolicy;
  /** Normalised JIDs, bare or full. */
  always: string[];
  never: string[];
}

/** Far more than anyone lists by hand; a bound on what each archived message is compared with. */
export const MAX_LISTED_JIDS = 1000;

/** Reads a <prefs/> set by a client; anything malformed is a bad-request. */
export function parsePrefs(el: XmlElement): Prefs {
  const policy = el.attrs.default;
  // §2.1.1: "The 'default' attribute of the 'prefs' element MUST be one of the following values".
  if (!DEFAULT_POLICIES.includes(policy as DefaultPolicy)) throw stanzaError.badRequest("'default' must be always, roster or never");
  // §2.1.2/§2.1.3: "If missing from the preferences, <always/> SHOULD be assumed ... to be an empty list."
  return { default: policy as DefaultPolicy, always: jidList(el.getChild('always')), never: jidList(el.getChild('never')) };
}

function jidList(list: XmlElement | undefined): string[] {
  const out = new Set<string>();
  for (const item of list?.getChildren('jid') ?? []) {
    const jid = tryParseJid(item.text().trim());
    if (!jid) throw stanzaError.badRequest(`'${item.text().trim()}' is not a JID`);
    out.add(jid.toString());
  }
  if (out.size > MAX_LISTED_JIDS) throw stanzaError.policyViolation(`At most ${MAX_LISTED_JIDS} JIDs per list`);
  return [...out];
}

/** §2.1: "The <always> and <never> MUST also be present (even if empty)". In the namespace asked in. */
export function buildPrefs(prefs: Prefs, ns: MamNamespace = NS_MAM): XmlElement {
  const list = (name: string, jids: string[]) => x(name, null, ...jids.map((jid) => x('jid', null, jid)));
  return x('prefs', { xmlns: ns, default: prefs.default }, list('always', prefs.always), list('never', prefs.never));
}

/**
 * §2.3: does the user want messages with `target` (the 'to' of an outgoing message, the 'from' of
 * an incoming one) archived? 'roster' leaves the roster lookup to the caller. A listed full JID is
 * compared as is, a listed bare JID with the target's bare JID. The spec gives no precedence: the
 * more specific entry wins, and between the lists 'never' does (the choice that keeps less).
 */
export function decide(prefs: Prefs, target: Jid): boolean | 'roster' {
  if (target.resource !== '') {
    const full = target.toString();
    if (prefs.never.includes(full)) return false;
    if (prefs.always.includes(full)) return true;
  }
  const bare = target.bareString;
  if (prefs.never.includes(bare)) return false;
  if (prefs.always.includes(bare)) return true;
  return prefs.default === 'always' ? true : prefs.default === 'never' ? false : 'roster';
}
