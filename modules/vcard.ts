// XEP-0054 vcard-temp (1.3.0): each account's vCard, stored as the XML the owner set, served to
// anyone who asks the account's bare JID. The server's own vCard is left out; vCard avatars
// (XEP-0153 presence hashes, XEP-0398 PEP conversion) are the avatars module's, through the
// 'vcard' service and the 'vcard:changed' hook.
import { z } from 'zod';
import { bytes, defineModule, parseXml, x, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { stanzaError } from '../server/errors.js';

export interface VcardService {
  get(username: string): Promise<XmlElement | undefined>;
  /** Stores a vCard for the account (no 'vcard:changed': that hook is for what the owner sets). */
  set(username: string, vcard: XmlElement): Promise<void>;
}

declare module '../server/module-api.js' {
  interface Services {
    vcard: VcardService;
  }
}

declare module '../server/hooks.js' {
  interface Hooks {
    /** The owner stored a vCard (undefined: cleared it). */
    'vcard:changed': { username: string; vcard: XmlElement | undefined };
  }
}

export default defineModule({
  name: 'vcard',
  xeps: [{ xep: 54, version: '1.3.0', status: 'complete' }],
  config: z
    .object({
      max_size: bytes().prefault('64 KiB').describe('Largest vCard an account may store (serialized XML, in bytes)'),
    })
    .strict(),
  setup(m) {
    const vcards = m.store.keyval<string>('vcards');
    m.feature(NS.VCARD);
    m.accountFeature(NS.VCARD);
    m.provide('vcard', {
      get: async (username) => {
        const stored = await vcards.get(username);
        return stored === undefined ? undefined : parseXml(stored);
      },
      set: (username, vcard) => vcards.set(username, vcard.toString()),
    });

    // Own vCard (no 'to', or 'to' = own bare JID) and anyone else's: the server answers for the
    // account (XEP-0054 §3.3: "MUST respond on behalf of the requestor and not forward the IQ").
    m.iq.get(
      NS.VCARD,
      'vCard',
      async ({ from, username }) => {
        const stored = await vcards.get(username);
        if (stored !== undefined) return parseXml(stored);
        // §3.1: with no vCard the server returns item-not-found or an empty <vCard/>; an empty one
        // lets the owner's client go straight to editing it.
        if (from.local === username && from.domain === m.host) return x('vCard', { xmlns: NS.VCARD });
        // §3.3: someone else's missing vCard gets the same error as a missing account
        // (service-unavailable, which the router gives for unknown accounts), so neither leaks.
        throw stanzaError.serviceUnavailable();
      },
      { scope: 'account' },
    );

    // Scope 'self': a set addressed to another account is answered with forbidden by the router
    // (§3.2: "the server MUST return a stanza error, which SHOULD be <forbidden/>").
    m.iq.set(
      NS.VCARD,
      'vCard',
      async ({ payload, username }) => {
        if (payload.elements().length === 0) {
          // An empty vCard clears it (what Prosody and ejabberd do).
          await vcards.delete(username);
          await m.fire('vcard:changed', { username, vcard: undefined });
          return;
        }
        const xml = payload.toString();
        if (Buffer.byteLength(xml, 'utf8') > m.config.max_size) {
          // Like XEP-0363's file-too-large: a size the server will not take is not-acceptable.
          throw stanzaError.notAcceptable('vCard too large');
        }
        await vcards.set(username, xml);
        m.log.debug({ user: username }, 'vcard stored');
        await m.fire('vcard:changed', { username, vcard: payload });
      },
      { scope: 'self' },
    );
  },
});
