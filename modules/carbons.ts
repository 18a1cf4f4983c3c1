// XEP-0280 Message Carbons (1.0.1): every device of a user that enables carbons sees both sides of
// its user's conversations, including those held on other devices. The copies are XEP-0297 Stanza
// Forwarding (1.0) wrappers: 'sent' for what another resource of the user sent, 'received' for what
// reached the user but went to another resource.
// Which messages are copied follows the recommended rules of §6.1, including the MUC ones (told apart
// by the muc#user <x/> marker, so they work before Herald has MUC). Copies go to every resource with
// carbons enabled, whatever its presence or priority: §7 and §8 say "each Carbons-enabled resource",
// and Prosody and ejabberd do the same.
// Left out: advertising urn:xmpp:carbons:rules:0 (§6.2), as error messages are copied by Prosody's
// heuristic (an error from a bare JID) rather than by tracking what they answer; limiting copies of
// MUC private messages to the clients sharing a nick; messages delivered from offline storage.
import { Priority, defineModule, tryParseJid, x } from '../server/module-api.js';
import type { IqHandler, Jid, Session, XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { stanzaError } from '../server/errors.js';

type Direction = 'sent' | 'received';

/** §6.1: "payload elements typically used in IM (XEP-0184, XEP-0085, XEP-0333)". */
const IM_PAYLOADS = [NS.RECEIPTS, NS.CHATSTATES, NS.CHAT_MARKERS_0];

export default defineModule({
  name: 'carbons',
  xeps: [
    { xep: 280, version: '1.0.1', status: 'complete', note: 'errors are copied when they come from a bare JID; no urn:xmpp:carbons:rules:0' },
    { xep: 297, version: '1.0', status: 'partial', note: 'the forwarded copies of message carbons' },
  ],
  setup(m) {
    const enabled = m.sessionSlot<boolean>('enabled', () => false);
    m.feature(NS.CARBONS_2); // §3

    // §4, §5. §10.1: enabling or disabling again is no error, just another result.
    const toggle =
      (on: boolean): IqHandler =>
      ({ session }) => {
        // §4.1: <not-allowed/> "if the request is from a client that is not hosted on this server".
        if (!session) throw stanzaError.notAllowed('Only your own clients can enable carbons');
        enabled.set(session, on);
        session.log.debug(on ? 'carbons enabled' : 'carbons disabled');
      };
    m.iq.set(NS.CARBONS_2, 'enable', toggle(true), { scope: 'self' });
    m.iq.set(NS.CARBONS_2, 'disable', toggle(false), { scope: 'self' });

    // §8: what a client sends goes, as a 'sent' copy, "to each Carbons-enabled resource for the
    // matching bare JID sender, excluding the sending client. Note that this happens irrespective of
    // whether the sending client has carbons enabled." Late (AFTER): a stanza a guard refuses
    // (blocking) was never sent. Messages to the user's own account are copied once delivered (below),
    // when it is known which resources got the original.
    m.on(
      'stanza:in',
      ({ stanza, session }) => {
        if (stanza.name !== 'message' || stanza.attrs.to === undefined) return undefined;
        const to = tryParseJid(stanza.attrs.to); // c2s refused malformed ones already
        if (!to || (to.local === session.username && to.domain === session.host)) return undefined;
        if (eligible(stanza, 'sent', to)) sendCopies('sent', stanza, session.bareJid, (s) => s === session);
        return undefined;
      },
      Priority.AFTER,
    );

    // §7: a message delivered to some of the user's resources goes, as a 'received' copy, to "each
    // Carbons-enabled resource for the matching bare JID recipient that did not receive it under the
    // RFC 6121 delivery rules". "The receiving server MUST NOT send a forwarded copy to the client(s)
    // the original <message/> stanza was addressed to".
    m.on('message:delivered', ({ stanza, to, sessions }) => {
      const from = tryParseJid(stanza.attrs.from ?? '');
      if (!from) return;
      const gotOriginal = (s: Session) => sessions.includes(s);
      if (from.local === to.local && from.domain === to.domain) {
        // Between the user's own resources, the other devices learn of it as the sender's: a 'sent'
        // copy for those that neither sent nor received it.
        if (eligible(stanza, 'sent', to)) sendCopies('sent', stanza, to.bareString, (s) => gotOriginal(s) || s.fullJid === from.toString());
        return;
      }
      if (eligible(stanza, 'received', from)) sendCopies('received', stanza, to.bareString, gotOriginal);
    });

    /** Sends the copy to the user's carbons-enabled resources except those `skip` names. */
    function sendCopies(direction: Direction, original: XmlElement, bareJid: string, skip: (session: Session) => boolean): void {
      let copy: XmlElement | undefined;
      for (const session of m.sessions.resourcesOf(bareJid)) {
        if (!enabled.get(session) || skip(session)) continue;
        copy ??= wrap(direction, original, bareJid);
        session.send(copy.withAttrs({ to: session.fullJid }));
      }
    }
  },
});

/**
 * §6.1 "Recommended Rules" (with §9 and XEP-0334 first). `peer` is the other party: the recipient
 * of a sent message, the sender of a received one.
 */
export function eligible(message: XmlElement, direction: Direction, peer: Jid): boolean {
  // §9: "The sending server MUST NOT deliver forwarded <message/>s to the other Carbons-enabled
  // resources of the sender. The receiving server MUST NOT deliver forwarded <message/>s to the other
  // Carbons-enabled resource of the recipient". XEP-0334 §4.3: <no-copy/> "should not be copied to
  // addresses other than the one to which it is addressed, for example through Message Carbons".
  if (message.getChild('private', NS.CARBONS_2) || message.getChild('no-copy', NS.HINTS)) return false;
  // A copy (or something posing as one, §11) is not copied again.
  if (message.getChild('sent', NS.CARBONS_2) || message.getChild('received', NS.CARBONS_2)) return false;
  const type = message.attrs.type ?? 'normal';
  // "A <message/> of type "groupchat" SHOULD NOT be carbon-copied."
  if (type === 'groupchat') return false;
  const mucUser = message.getChild('x', NS.MUC_USER);
  if (mucUser) {
    // "A <message/> containing a Mediated Invitation SHOULD be carbon-copied."
    if (mucUser.getChild('invite')) return true;
    if (peer.resource !== '') {
      // "A private <message/> from a local user to a MUC participant (sent to a full JID) SHOULD be
      // carbon-copied"; one "from a MUC participant (received from a full JID) to a local user SHOULD
      // NOT be carbon-copied (these messages are already replicated by the MUC service ...)".
      return direction === 'sent' && type !== 'error';
    }
  }
  // "A <message/> containing a XEP-0249 [Direct MUC Invitation] SHOULD be carbon-copied."
  if (message.getChild('x', NS.CONFERENCE)) return true;
  if (type === 'chat') return true;
  if (type === 'normal') return message.getChild('body') !== undefined || IM_PAYLOADS.some((ns) => message.getChildByNs(ns) !== undefined);
  // "it is of type "error" and it was sent in response to a <message/> that was eligible": without
  // tracking what was sent, Prosody's test — a bounce from a bare JID, where chats usually go.
  if (type === 'error') return direction === 'received' && peer.resource === '';
  return false; // headline
}

/** §7/§8: `<message from=bare><sent|received><forwarded><message xmlns='jabber:client' .../>`. */
function wrap(direction: Direction, original: XmlElement, bareJid: string): XmlElement {
  const forwarded = original.clone(); // the original may still be changed on its way (stamps)
  // XEP-0297: the forwarded stanza is qualified by jabber:client, which the wrapper's <forwarded/>
  // would otherwise hide.
  forwarded.attrs = { xmlns: NS.CLIENT, ...forwarded.attrs };
  if (direction === 'sent' && forwarded.attrs.to === undefined) forwarded.attrs.to = bareJid; // sent to own account
  // "The wrapping message SHOULD maintain the same 'type' attribute value; the 'from' attribute MUST
  // be the Carbons-enabled user's bare JID"; 'to' is set per resource.
  return x('message', { from: bareJid, type: original.attrs.type }, x(direction, { xmlns: NS.CARBONS_2 }, x('forwarded', { xmlns: NS.FORWARD_0 }, forwarded)));
}
