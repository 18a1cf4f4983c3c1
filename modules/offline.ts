// XEP-0160 Best Practices for Handling Offline Messages (1.0.1): messages for an account with no
// resource to take them are stored, stamped with XEP-0203 Delayed Delivery (2.0), and delivered when
// the account next sends non-negative available presence. XEP-0334 hints (1.0.0) decide edge cases.
// Left out: XEP-0013 flexible offline retrieval; expiry of old messages.
import { z } from 'zod';
import { STOP, defineModule, parseXml, x, type Session, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { dateTime } from '../server/protocol/xep0082.js';
import { stanzaError } from '../server/errors.js';

/** Children that say nothing a recipient needs later (ejabberd's "standalone chat state" test). */
const TRANSIENT_NAMESPACES = new Set<string>([NS.CHATSTATES, NS.DELAY, NS.X_EVENT, NS.HINTS]);

export default defineModule({
  name: 'offline',
  xeps: [
    { xep: 160, version: '1.0.1', status: 'complete' },
    { xep: 203, version: '2.0', status: 'complete' },
    { xep: 334, version: '1.0.0', status: 'partial', note: 'store, no-store (offline storage only)' },
  ],
  config: z
    .object({
      max_messages: z.number().int().min(1).max(100_000).default(500).describe('Messages kept for one account while it is offline'),
    })
    .strict(),
  setup(m) {
    const messages = m.store.archive<string>('messages');
    /** Set once offline messages went to a session, so later presence updates do not look again. */
    const delivered = m.sessionSlot<boolean>('delivered', () => false);
    /** Accounts whose messages are on their way to one resource (another must not get them too). */
    const delivering = new Set<string>();
    m.feature(NS.MSGOFFLINE);

    m.on('message:offline', async ({ stanza, username }) => {
      if (!worthStoring(stanza)) return; // not stopped: the router answers service-unavailable
      // XEP-0160 §2 names service-unavailable for a full queue; Herald follows ejabberd with
      // resource-constraint, which tells the sender that the recipient exists but cannot take more.
      if ((await messages.count(username)) >= m.config.max_messages) {
        m.log.info({ user: username }, 'offline queue full');
        throw stanzaError.resourceConstraint('The recipient has too many messages waiting');
      }
      await messages.append(username, stamped(stanza, m.host).toString(), { with: stanza.attrs.from });
      m.log.debug({ user: username }, 'message stored offline');
      void m.fire('message:stored-offline', { stanza, username }); // a notification: nothing waits for push
      return STOP; // stored: no error for the sender
    });

    // XEP-0160 §2: "When the recipient next sends non-negative available presence to the server,
    // the server delivers the message to the resource that has sent that presence." Detached, so
    // the presence handling that fired the hook does not wait for the client to read.
    m.on('session:available', ({ session }) => {
      if (session.priority < 0 || delivered.get(session) || delivering.has(session.username)) return;
      delivered.set(session, true);
      delivering.add(session.username);
      deliver(session)
        .catch((err: unknown) => m.log.info({ jid: session.fullJid, err: (err as Error).message }, 'offline delivery interrupted'))
        .finally(() => delivering.delete(session.username));
    });

    /**
     * Sends the stored messages in order and deletes them only once they have been written to the
     * connection: a connection that dies first leaves them stored for the next login (at least once,
     * never lost).
     */
    async function deliver(session: Session): Promise<void> {
      const items = await messages.list(session.username);
      if (items.length === 0) return;
      const sent: number[] = [];
      for (const item of items) {
        const stanza = parseStored(item.value);
        // What cannot be read back is dropped rather than retried at every login.
        if (stanza && !session.send(stanza)) break;
        sent.push(item.id);
      }
      if (sent.length === 0) return;
      await session.flushed(); // rejects when the connection is gone: nothing is deleted then
      await messages.delete(session.username, sent);
      m.log.info({ jid: session.fullJid, count: sent.length }, 'offline messages delivered');
    }

    function parseStored(xml: string): XmlElement | undefined {
      try {
        return parseXml(xml);
      } catch (err) {
        m.log.error({ err: (err as Error).message }, 'stored offline message unreadable');
        return undefined;
      }
    }
  },
});

/** XEP-0160 §3 and XEP-0334 §4: should this message wait for its recipient? */
export function worthStoring(stanza: XmlElement): boolean {
  const type = stanza.attrs.type ?? 'normal';
  // §3: normal and chat are stored; groupchat, headline and error are not.
  if (type !== 'normal' && type !== 'chat') return false;
  // XEP-0334 §4.4: "A message containing the <store/> hint ... SHOULD be stored".
  if (stanza.getChild('store', NS.HINTS)) return true;
  // §4.2: <no-store/> means neither archive nor offline storage ('no-storage' is its old misspelling).
  // <no-permanent-store/> (§4.1) does not count: offline storage is temporary by nature.
  if (stanza.getChild('no-store', NS.HINTS) || stanza.getChild('no-storage', NS.HINTS)) return false;
  if (stanza.getChild('body') || stanza.getChild('subject')) return true;
  // §3: "with the exception of messages that contain only XEP-0085 content"; likewise an empty
  // message, or one with nothing but a thread, hints, delay stamps or XEP-0022 events.
  return stanza.elements().some((child) => child.name !== 'thread' && !TRANSIENT_NAMESPACES.has(child.attrs.xmlns ?? ''));
}

/** A copy with the XEP-0203 stamp of when, and by whom, it was stored. */
function stamped(stanza: XmlElement, domain: string): XmlElement {
  const copy = stanza.clone();
  copy.append(x('delay', { xmlns: NS.DELAY, from: domain, stamp: dateTime(new Date()) }, 'Offline Storage'));
  return copy;
}
