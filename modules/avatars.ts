// XEP-0398 User Avatar to vCard-Based Avatars Conversion (0.2.1): PEP avatars (XEP-0084 1.1.4) and
// vCard avatars (XEP-0153 1.1.1) kept in step, and the avatar hash put into the account's presence.
//  - PEP → vCard (§3.1): a metadata publish by a client sets the vCard PHOTO from the data item the
//    metadata points to (the info without a url), once its SHA-1 matches the id.
//  - vCard → PEP (§3.2): a vCard with a PHOTO publishes data (id = SHA-1 hex of the image), then
//    metadata; a vCard without one publishes empty metadata (XEP-0084 §4.6, avatar disabled).
//  - Presence (§4): the hash goes into every available presence the account sends (broadcast and
//    directed, MUC joins included) unless the client sent an empty <photo/> ("not ready").
// New avatar nodes made from a vCard are open, as the vCard itself is (§6). Presence is not re-sent
// when the avatar changes (§5: clients do that).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Priority, defineModule, keyedSerial, x, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import type { NodeConfig } from './pubsub/pep.js';

const NS_DATA = 'urn:xmpp:avatar:data';
const NS_METADATA = 'urn:xmpp:avatar:metadata';
const NS_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0';
const NEW_NODE: Partial<NodeConfig> = { access_model: 'open' };

export default defineModule({
  name: 'avatars',
  xeps: [
    { xep: 398, version: '0.2.1', status: 'complete' },
    { xep: 84, version: '1.1.4', status: 'complete', note: 'PEP nodes (modules/pubsub/pep.ts) converted to and from the vCard' },
    { xep: 153, version: '1.1.1', status: 'complete', note: 'the server adds the photo hash to presence' },
  ],
  depends: ['pep', 'vcard'],
  config: z
    .object({
      presence_hash: z.boolean().default(true).describe("Add the avatar's hash to the account's available presence (XEP-0398 §4)"),
    })
    .strict(),
  setup(m) {
    const pep = m.service('pep');
    const vcards = m.service('vcard');
    const serial = keyedSerial();
    /** Avatar hash per account with sessions: a SHA-1 hex, or '' for none. */
    const hashes = new Map<string, string>();
    m.accountFeature(NS_CONVERSION);

    // §3.1: from PEP. The server's own publishes (from a vCard) are in the vCard already.
    m.on('pep:item-published', ({ username, node, payload, publisher }) => {
      if (node !== NS_METADATA || !publisher) return undefined;
      return serial(username, () => metadataToVcard(username, payload));
    });

    // §3.2: from the vCard the owner set.
    m.on('vcard:changed', ({ username, vcard }) => serial(username, () => vcardToPep(username, vcard)));

    async function metadataToVcard(username: string, metadata: XmlElement | undefined): Promise<void> {
      const infos = metadata?.getChildren('info') ?? [];
      const vcard = (await vcards.get(username)) ?? x('vCard', { xmlns: NS.VCARD });
      if (infos.length === 0) {
        // XEP-0084 §4.6: metadata without info disables the avatar.
        hashes.set(username, '');
        if (vcard.getChild('PHOTO')) await vcards.set(username, vcard.removeChildren('PHOTO'));
        return;
      }
      // §3.1: "MUST pick the info element that does not point to an external URL".
      const info = infos.find((el) => el.attrs.url === undefined && el.attrs.id);
      if (!info) return;
      const id = info.attrs.id!;
      const data = (await pep.items(username, NS_DATA))?.find((item) => item.id === id)?.payload;
      const base64 = data ? compact(data.text()) : '';
      // §3.1: "Services SHOULD verify that the SHA-1 hash of the image matches the id."
      if (!base64 || sha1Hex(base64) !== id) {
        m.log.debug({ user: username }, 'avatar metadata without matching data; vcard left as it is');
        return;
      }
      hashes.set(username, id);
      if (photoHash(vcard) === id) return;
      vcard.removeChildren('PHOTO').append(x('PHOTO', null, x('TYPE', null, info.attrs.type ?? 'image/png'), x('BINVAL', null, base64)));
      await vcards.set(username, vcard);
      m.log.debug({ user: username }, 'avatar copied to vcard');
    }

    async function vcardToPep(username: string, vcard: XmlElement | undefined): Promise<void> {
      const photo = vcard?.getChild('PHOTO');
      const base64 = compact(photo?.getChildText('BINVAL') ?? '');
      const current = (await pep.lastItem(username, NS_METADATA))?.payload;
      if (!base64) {
        hashes.set(username, '');
        if (current?.getChild('info')) await pep.publish(username, NS_METADATA, 'current', x('metadata', { xmlns: NS_METADATA }), NEW_NODE);
        return;
      }
      const id = sha1Hex(base64);
      hashes.set(username, id);
      if (current?.getChildren('info').some((info) => info.attrs.id === id && info.attrs.url === undefined)) return;
      const type = photo?.getChildText('TYPE')?.trim() || 'image/png';
      // §3.2: data first, then metadata with one info for it.
      await pep.publish(username, NS_DATA, id, x('data', { xmlns: NS_DATA }, base64), NEW_NODE);
      const bytes = String(Buffer.from(base64, 'base64').length);
      await pep.publish(username, NS_METADATA, id, x('metadata', { xmlns: NS_METADATA }, x('info', { id, bytes, type })), NEW_NODE);
      m.log.debug({ user: username }, 'vcard avatar published to pep');
    }

    /** The account's avatar hash: PEP metadata first, else the vCard's photo ('' for none). */
    async function loadHash(username: string): Promise<string> {
      const metadata = (await pep.lastItem(username, NS_METADATA))?.payload;
      const info = metadata?.getChildren('info').find((el) => el.attrs.url === undefined);
      const hash = metadata ? (info?.attrs.id ?? '') : photoHash(await vcards.get(username));
      hashes.set(username, hash);
      return hash;
    }

    // §4: before the presence module broadcasts or routes the presence.
    if (m.config.presence_hash) {
      m.on(
        'stanza:in',
        ({ stanza, session }) => {
          if (stanza.name !== 'presence' || stanza.attrs.type !== undefined) return undefined;
          const known = hashes.get(session.username);
          if (known !== undefined) return void addHash(stanza, known);
          return loadHash(session.username).then((hash) => void addHash(stanza, hash));
        },
        Priority.DEFAULT + 20,
      );
    }
    m.on('session:closed', ({ session }) => {
      if (m.sessions.resourcesOf(session.bareJid).length === 0) hashes.delete(session.username);
    });
    m.on('user:deleted', ({ username }) => void hashes.delete(username));
    m.onStop(() => serial.idle());
  },
});

/**
 * XEP-0398 §4: "services MUST include the hash ... in every available presence that does not
 * contain an empty photo element"; an <x/> without <photo/> "MUST be overwritten", and a different
 * hash may be (it is: the server knows the current one).
 */
function addHash(presence: XmlElement, hash: string): void {
  if (hash === '') return;
  const update = presence.getChild('x', NS.VCARD_UPDATE);
  const photo = update?.getChild('photo');
  if (photo && photo.text().trim() === '') return;
  presence.removeChildren('x', NS.VCARD_UPDATE).append(x('x', { xmlns: NS.VCARD_UPDATE }, x('photo', null, hash)));
}

/** XEP-0153 §4.3 / XEP-0084 §4.2: SHA-1 of the image bytes, hex. */
function sha1Hex(base64: string): string {
  return createHash('sha1').update(Buffer.from(base64, 'base64')).digest('hex');
}

function photoHash(vcard: XmlElement | undefined): string {
  const base64 = compact(vcard?.getChild('PHOTO')?.getChildText('BINVAL') ?? '');
  return base64 ? sha1Hex(base64) : '';
}

/** Base64 as vCards carry it may be folded over lines. */
function compact(base64: string): string {
  return base64.replace(/\s+/g, '');
}
