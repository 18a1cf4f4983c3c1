// XEP-0012 Last Activity (2.0): the server's uptime (§5), and for an account how long ago it last
// logged out, with the status of its last unavailable presence (§3), for the account itself and
// those allowed to see its presence. Idle time of a connected client (§4) is the client's to answer:
// the router delivers IQs to full JIDs, after the authorization check below.
import { z } from 'zod';
import { Priority, defineModule, x, type Jid } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { stanzaError } from '../server/errors.js';

interface LastLogout {
  /** When the account's last session ended (ms since epoch). */
  at: number;
  /** The <status/> of its last unavailable presence, if it sent one. */
  status?: string;
}

const FLUSH_INTERVAL_MS = 5_000;

export default defineModule({
  name: 'last',
  xeps: [{ xep: 12, version: '2.0', status: 'complete' }],
  depends: ['roster'],
  config: z.object({}).strict(),
  setup(m) {
    const roster = m.service('roster');
    const logouts = m.store.keyval<LastLogout>('logouts');
    // Logouts are written behind, a batch every few seconds and at shutdown: one SQLite commit per
    // logout was the largest single cost of a login/logout cycle (docs/benchmarks.md).
    const unsaved = new Map<string, LastLogout>();
    const flush = async () => {
      const batch = [...unsaved];
      unsaved.clear();
      for (const [username, logout] of batch) await logouts.set(username, logout);
    };
    m.every(FLUSH_INTERVAL_MS, flush);
    m.onStop(flush);
    const lastLogout = async (username: string) => unsaved.get(username) ?? (await logouts.get(username));
    /** The status text of the session's last unavailable presence (cleared by available presence). */
    const lastStatus = m.sessionSlot<string | undefined>('status', () => undefined);
    m.feature(NS.LAST);
    m.accountFeature(NS.LAST);

    /** §3: "If the requesting entity is not authorized to view the user's presence information
     * (normally via a presence subscription ...), the user's server MUST ... return a <forbidden/>". */
    async function mayAsk(username: string, from: Jid): Promise<boolean> {
      if (from.local === username && from.domain === m.host) return true;
      const subscription = await roster.subscription(username, from.bareString);
      return subscription === 'from' || subscription === 'both';
    }

    // §5: to the server, "how long the host has been running since it was last (re-)started".
    m.iq.get(
      NS.LAST,
      'query',
      () => x('query', { xmlns: NS.LAST, seconds: String(Math.floor((Date.now() - m.server.startedAt.getTime()) / 1000)) }),
      { scope: 'host' },
    );

    m.iq.get(
      NS.LAST,
      'query',
      async ({ from, username }) => {
        if (!(await mayAsk(username, from))) throw stanzaError.forbidden();
        // §3: "If the user has at least one connected or available resource ..., the response MUST
        // ... contain an empty <query/> element whose 'seconds' attribute is set to a value of '0'."
        if (m.sessions.resourcesOf(`${username}@${m.host}`).length > 0) return x('query', { xmlns: NS.LAST, seconds: '0' });
        const last = await lastLogout(username);
        // Never logged out since Herald kept count: nothing to tell (ejabberd answers the same way).
        if (!last) throw stanzaError.serviceUnavailable('No last activity recorded');
        const seconds = String(Math.max(0, Math.floor((Date.now() - last.at) / 1000)));
        return x('query', { xmlns: NS.LAST, seconds }, last.status || undefined);
      },
      { scope: 'account' },
    );

    // §4: the same authorization for a full JID: "the user's server MUST NOT deliver the IQ-get to
    // an available resource but instead MUST return a <forbidden/> error". Only last-activity
    // requests to connected resources of this host take the roster lookup.
    m.on('iq/full', ({ stanza, from, to }) => {
      if (stanza.attrs.type !== 'get' || stanza.firstElement()?.attrs.xmlns !== NS.LAST) return undefined;
      if (to.domain !== m.host || !m.sessions.get(to.bareString, to.resource)) return undefined;
      return mayAsk(to.local, from).then((allowed) => {
        if (!allowed) throw stanzaError.forbidden();
      });
    });

    // The status of the presence a client logs out with (RFC 6121 §4.5.1 unavailable presence),
    // read before the presence module takes the stanza (it consumes presence without 'to').
    m.on('stanza:in', ({ stanza, session }) => {
      if (stanza.name !== 'presence' || stanza.attrs.to !== undefined) return;
      const type = stanza.attrs.type;
      if (type === 'unavailable') lastStatus.set(session, stanza.getChildText('status'));
      else if (type === undefined) lastStatus.set(session, undefined);
    }, Priority.DEFAULT + 1);

    // §3: "the number of seconds that have passed since the user last logged out": recorded when
    // the account's last session ends.
    m.on('session:closed', ({ session }) => {
      if (m.sessions.resourcesOf(session.bareJid).length > 0) return;
      const status = lastStatus.get(session);
      unsaved.set(session.username, status !== undefined && status !== '' ? { at: Date.now(), status } : { at: Date.now() });
    });
    m.on('user:deleted', ({ username }) => void unsaved.delete(username));
  },
});
