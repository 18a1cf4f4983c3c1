// XEP-0352 Client State Indication (1.0.0): while a client says it is <inactive/>, the stanzas it
// would not miss wait, so a phone's radio is not woken for every contact's status change. What
// waits is what Prosody's mod_csi_simple and ejabberd's mod_client_state hold, kept conservative:
//   - availability presence (available, unavailable), only the newest per sender full JID;
//   - messages that carry nothing but chat states (XEP-0085, or XEP-0022 events), the newest per
//     sender; and message carbons (XEP-0280) of such messages.
// Anything else (a message with a body, any IQ, subscription requests, errors, ...) first flushes
// what waits, in order, then goes out. <active/> and a full queue flush too. Held stanzas get an
// XEP-0203 delay stamp of when they would have gone out.
// Left out: holding PEP notifications (ejabberd keeps the newest per node; a node with several items
// loses updates that way), receipts and chat markers (offline storage keeps them, so dropping them
// with a closing session would lose what SM would have saved).
import { z } from 'zod';
import { Priority, STOP, defineModule, x } from '../server/module-api.js';
import type { Session, XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { dateTime } from '../server/protocol/xep0082.js';

interface ClientState {
  inactive: boolean;
  /** Held stanzas by what they supersede (sender and kind); Map order is the order they go out in. */
  held: Map<string, XmlElement>;
}

/** Payloads that may come along with a chat state without making the message worth a wake-up. */
const CHAT_STATE_COMPANIONS = new Set<string>([NS.HINTS, NS.DELAY, NS.STANZA_ID]);

export default defineModule({
  name: 'csi',
  xeps: [{ xep: 352, version: '1.0.0', status: 'complete' }],
  config: z
    .object({
      max_held: z.number().int().min(1).max(10_000).default(100).describe('Stanzas held for an inactive client (XEP-0352) before all of them are sent anyway'),
    })
    .strict(),
  setup(m) {
    const clientState = m.sessionSlot<ClientState>('state', () => ({ inactive: false, held: new Map() }));

    // §4.1: "If the server supports CSI, it advertises it in the stream features after the client
    // has authenticated".
    m.streamFeature('post-auth', () => x('csi', { xmlns: NS.CSI_0 }));

    // §4.2: no reply to either element. §5.1: what <active/> triggers must happen before the next
    // element of the stream is processed, so the flush is synchronous.
    m.streamElement(NS.CSI_0, 'inactive', (session) => {
      clientState.get(session).inactive = true;
      session.log.debug('client inactive');
    });
    m.streamElement(NS.CSI_0, 'active', (session) => {
      const state = clientState.get(session);
      state.inactive = false;
      session.log.debug({ held: state.held.size }, 'client active');
      flush(session, state);
    });

    // Late (AFTER), so that guards which drop a stanza decide before it is held.
    m.on(
      'stanza:out',
      ({ stanza, session }) => {
        const state = clientState.get(session);
        if (!state.inactive) return undefined;
        const key = supersedeKey(stanza, session);
        if (key === undefined) {
          // Important: what waited goes first, so the client sees everything in the original order.
          flush(session, state);
          return undefined;
        }
        state.held.delete(key); // the newer one replaces it, and takes its place in the order
        state.held.set(key, stamped(stanza, m.host));
        // ejabberd and Prosody alike: a full queue is flushed, not trimmed.
        if (state.held.size > m.config.max_held) flush(session, state);
        return STOP;
      },
      Priority.AFTER,
    );

    // §5.2: "stream resumption does not affect the current CSI state, which always defaults to
    // 'active' for new and resumed streams." The hook runs after <resumed/> and the replay of
    // unacknowledged stanzas went out, so what waited (all newer) follows them.
    m.on('session:resumed', ({ session }) => {
      const state = clientState.get(session);
      state.inactive = false;
      if (state.held.size > 0) flush(session, state);
    });

    // Presence and chat states are transient: what waits for a session that ends is dropped.
    m.on('session:closed', ({ session }) => {
      const state = clientState.get(session);
      state.held.clear();
      state.inactive = false;
    });
  },
});

function flush(session: Session, state: ClientState): void {
  if (state.held.size === 0) return;
  const held = [...state.held.values()];
  state.held.clear();
  for (const stanza of held) session.sendRaw(stanza);
}

/**
 * For a stanza that may wait: a key naming what a newer stanza with the same key makes obsolete
 * (the sender's availability, the sender's chat state). Undefined for a stanza that goes out now.
 */
function supersedeKey(stanza: XmlElement, session: Session): string | undefined {
  const from = stanza.attrs.from ?? '';
  if (stanza.name === 'presence') {
    // Only availability waits: subscription requests and answers (and errors) are things the
    // user acts on.
    const type = stanza.attrs.type;
    return type === undefined || type === 'unavailable' ? `presence ${from}` : undefined;
  }
  if (stanza.name !== 'message' || stanza.attrs.type === 'error') return undefined;
  if (isChatStateOnly(stanza)) return `chat-state ${from}`;
  // A carbon copy (XEP-0280) of a chat state from or to one of the user's other devices waits
  // likewise; only our server sends carbons, from the user's bare JID.
  if (from !== session.bareJid) return undefined;
  for (const direction of ['received', 'sent'] as const) {
    const inner = stanza.getChild(direction, NS.CARBONS_2)?.getChild('forwarded', NS.FORWARD_0)?.getChild('message');
    if (!inner) continue;
    const peer = direction === 'received' ? inner.attrs.from : inner.attrs.to;
    return isChatStateOnly(inner) ? `carbon-${direction} ${peer ?? ''}` : undefined;
  }
  return undefined;
}

/** XEP-0352 §3 "messages containing only XEP-0085 payloads" (a thread and hints may come along). */
function isChatStateOnly(message: XmlElement): boolean {
  let chatState = false;
  for (const child of message.elements()) {
    const ns = child.attrs.xmlns;
    if (ns === NS.CHATSTATES || ns === NS.X_EVENT) chatState = true;
    else if (ns === undefined || ns === NS.CLIENT) {
      if (child.name !== 'thread') return false; // a body, a subject, ...
    } else if (!CHAT_STATE_COMPANIONS.has(ns)) return false;
  }
  return chatState;
}

/** XEP-0203: a copy stamped with when the server would have delivered it (as ejabberd does). */
function stamped(stanza: XmlElement, domain: string): XmlElement {
  if (stanza.getChild('delay', NS.DELAY)) return stanza;
  const copy = stanza.clone(); // stanzas are shared between recipients
  copy.append(x('delay', { xmlns: NS.DELAY, from: domain, stamp: dateTime(new Date()) }));
  return copy;
}
