// XEP-0045 Multi-User Chat (1.34.6) at conference.<domain>: rooms created on first entry (locked
// until configured), persistent rooms kept across restarts, roles and affiliations with the admin
// and owner use cases, history, subject, private messages, mediated invitations (and XEP-0249
// direct ones, which are client to client and need nothing here), voice requests, XEP-0410
// self-ping answered by the service, status 332/333 removals, occupants leaving when their session
// ends for good, deleted accounts losing their affiliations, and server administrators as owners
// of every room (Prosody's component_admins_as_room_owners). Where XEP-0045 is loose Herald
// does what Prosody's mod_muc does. Rooms are processed one stanza at a time (a queue per room), so
// what occupants see comes in the order the room acted. Messages go to the archive through the
// 'muc:message' hook and MAM IQs to rooms through the 'mam' service (modules/mam/rooms.ts).
// Left out: room registration (§7.10, jabber:iq:register), the registration approval form
// (§9.9), room vCards/avatars, hats, and forwarding of IQs to occupants of other servers' rooms.
// Files: room.ts (state, presence building), presence.ts, messages.ts, iq.ts (IQs to rooms and
// occupants), admin.ts, owner.ts, affiliations.ts (permission rules), config.ts (config keys, room
// form), disco.ts, history.ts, storage.ts, push.ts (group chat pushes); docs/muc.md for admins.
import { defineModule, keyedSerial, makeJid, tryParseJid, x, type Jid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { stanzaError } from '../../server/errors.js';
import { defaultRoomConfig, mucConfigSchema } from './config.js';
import type { MucContext } from './context.js';
import { Room, type RoomHost } from './room.js';
import { RoomStorage } from './storage.js';
import { forgetAccount, handlePresence, removeForError, sessionEnded } from './presence.js';
import { handleMessage } from './messages.js';
import { roomIq } from './iq.js';
import { serviceItems } from './disco.js';
import { pushGroupchat } from './push.js';
import type { RoomRecord, StoredHistory, Whois } from './types.js';

/** A room as other modules see it. */
export interface MucRoomView {
  jid: string;
  name: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  /** muc#roomconfig_enablelogging: archived, status 170. */
  logging: boolean;
  whois: Whois;
  occupants: number;
}

export interface MucService {
  /** The service's domain (conference.<domain>). */
  readonly domain: string;
  /** A room (by bare JID); undefined when there is none or it is still locked. */
  room(roomJid: string): MucRoomView | undefined;
}

declare module '../../server/module-api.js' {
  interface Services {
    muc: MucService;
  }
}

export default defineModule({
  name: 'muc',
  xeps: [
    { xep: 45, version: '1.34.6', status: 'complete', note: 'without room registration (§7.10)' },
    { xep: 249, version: '1.2', status: 'complete', note: 'direct invitations pass between clients; mediated ones carry the jabber:x:conference payload too' },
    { xep: 410, version: '1.1.0', status: 'complete', note: 'the service answers self-pings' },
  ],
  depends: ['disco'],
  config: mucConfigSchema,
  async setup(m) {
    const storage = new RoomStorage(m.store.map<RoomRecord>('rooms'), m.store.map<StoredHistory>('history'));
    const rooms = new Map<string, Room>();
    const serial = keyedSerial();
    const component = m.component(m.config.service);
    component.identities.push({ category: 'conference', type: 'text', name: m.config.name });
    component.features.add(NS.MUC);
    component.features.add(NS.MUC_STABLE_ID); // §7.4: "on both the service domain and on individual MUCs"
    m.discoItem(component.domain, m.config.name); // DESIGN §8: conference.<domain> in the domain's items
    const optional = <K extends 'mam' | 'push'>(name: K) => {
      try {
        return m.service(name);
      } catch {
        return undefined;
      }
    };

    const host: RoomHost = { deliver, isServerAdmin: (bare) => m.config.server_admins_are_owners && m.server.admins.has(bare) };
    for (const { name, record, history } of await storage.loadAll()) {
      const room = new Room(makeJid(name, component.domain), { ...defaultRoomConfig(m.config), ...record.config }, host, record);
      if (history) room.history.load(history);
      rooms.set(name, room);
    }
    m.log.debug({ rooms: rooms.size }, 'persistent rooms loaded');

    const ctx: MucContext = {
      m,
      rooms,
      mayCreate,
      createRoom(name, owner) {
        const room = new Room(makeJid(name, component.domain), defaultRoomConfig(m.config), host);
        room.affiliations.set(owner, { affiliation: 'owner' });
        room.locked = true; // §10.1.1: "not allow anyone else to enter the room (effectively "locking" the room)"
        rooms.set(name, room);
        m.log.info({ room: room.address, owner }, 'room created');
        return room;
      },
      save: (room) => storage.save(room),
      saveHistory: (room) => storage.saveHistory(room),
      async remove(room) {
        if (rooms.get(room.jid.local) === room) rooms.delete(room.jid.local);
        await storage.delete(room.jid.local);
        await optional('mam')?.deleteRoomArchive(room.jid);
      },
      route: (stanza) => m.route(stanza),
      mam: () => optional('mam'),
      pushFor(room, stanza, sender) {
        const push = optional('push');
        if (push) pushGroupchat(m, push, room, stanza, sender);
      },
    };

    component.itemsQuery = (node) => (node === undefined ? serviceItems(rooms.values()) : null);
    component.onPresence((event) => {
      if (event.to.local !== '') return inRoom(event.to.local, () => handlePresence(ctx, event));
    });
    component.onMessage((event) => {
      if (event.to.local !== '') return inRoom(event.to.local, () => handleMessage(ctx, event));
      if (event.stanza.attrs.type !== 'error') throw stanzaError.serviceUnavailable();
    });
    component.entityIq = async (request) => {
      const step = await inRoom(request.to.local, () => roomIq(ctx, request));
      return typeof step === 'function' ? step() : step;
    };

    // §12.2: "When a MUC service shuts downs, it SHOULD inform its participant by sending presences
    // containing the 332 status code" (before the streams close, so they still get it).
    m.on('server:stopping', () => {
      for (const room of rooms.values()) {
        for (const occupant of [...room.occupants.values()]) {
          for (const real of occupant.sessions.keys()) room.selfPresence({ ...occupant, role: 'none' }, real, x('presence', { type: 'unavailable' }), { codes: ['332'] });
          room.removeOccupant(occupant);
        }
      }
    });

    // A session that ended for good leaves every room it is in (presence.ts, sessionEnded).
    m.on('session:closed', ({ session }) => {
      const real = session.fullJid;
      // A new bind of the same resource replaced it: the occupant JID belongs to the new session now.
      const successor = m.sessions.get(session.bareJid, session.resource);
      if (successor && successor !== session) return;
      for (const [name, room] of rooms) {
        if (!room.occupantByReal(real)) continue;
        inRoom(name, async () => {
          const current = rooms.get(name);
          if (current) sessionEnded(current, real);
        }).catch((err: unknown) => m.log.error({ err, room: room.address }, 'leaving a room for a closed session failed'));
      }
    });

    // A deleted account keeps no affiliation anywhere and leaves the rooms it is in (presence.ts, forgetAccount).
    m.on('user:deleted', async ({ username }) => {
      const bare = makeJid(username, m.host).bareString;
      const concerned = [...rooms].filter(([, room]) => room.affiliations.has(bare) || room.occupantsOf(bare).length > 0).map(([name]) => name);
      for (const name of concerned) {
        await inRoom(name, async () => {
          const room = rooms.get(name);
          if (!room || !forgetAccount(room, bare)) return;
          await ctx.save(room);
          // Nobody can configure or destroy a room without owners: say so, for a server admin to act.
          if (room.withAffiliation('owner').length === 0) m.log.warn({ room: room.address }, 'room left without owners by an account deletion');
        });
      }
      if (concerned.length > 0) m.log.info({ rooms: concerned.length }, 'affiliations of a deleted account removed');
    });

    m.provide('muc', {
      domain: component.domain,
      room(roomJid) {
        const jid = tryParseJid(roomJid);
        const room = jid?.domain === component.domain ? rooms.get(jid.local) : undefined;
        if (!room || room.locked) return undefined;
        const c = room.config;
        return { jid: room.address, name: c.name, persistent: c.persistent, public: c.public, membersOnly: c.membersOnly, logging: c.logging, whois: c.whois, occupants: room.occupants.size };
      },
    });

    /** Runs a room's work in its queue, then removes ghosts (333) and drops a room nobody keeps. */
    function inRoom<T>(name: string, work: () => Promise<T>): Promise<T> {
      return serial(name, async () => {
        try {
          return await work();
        } finally {
          await settle(name);
        }
      });
    }

    async function settle(name: string): Promise<void> {
      const room = rooms.get(name);
      if (!room) return;
      for (let real = first(room.gone); real !== undefined; real = first(room.gone)) {
        room.gone.delete(real);
        removeForError(room, real);
      }
      // §7.14: "If the room is not persistent and this occupant is the last to exit, the service is
      // responsible for destroying the room"; §10.1.3: so is a room its creator left unconfigured.
      if (room.occupants.size === 0 && (room.locked || !room.config.persistent)) await ctx.remove(room);
    }

    /** Local sessions get stanzas directly (so presence and messages keep the room's order); others through the router. */
    function deliver(to: string, stanza: XmlElement): boolean {
      const jid = tryParseJid(to);
      if (!jid) return false;
      if (jid.domain !== m.host) {
        m.route(stanza);
        return true;
      }
      const session = m.sessions.get(jid.bareString, jid.resource);
      if (!session || session.state === 'closed') return false;
      session.send(stanza);
      return true;
    }

    /** §10.1.1: "The privilege to create rooms MAY be restricted"; if so, <not-allowed/>. */
    function mayCreate(from: Jid): void {
      const admin = m.server.admins.has(from.bareString);
      const policy = m.config.restrict_room_creation;
      if (policy === 'admins' && !admin) throw stanzaError.notAllowed('Only server administrators may create rooms');
      if (policy === 'local' && from.domain !== m.host) throw stanzaError.notAllowed('Only users of this server may create rooms');
      if (admin) return;
      let owned = 0;
      for (const room of rooms.values()) if (room.affiliationOf(from.bareString) === 'owner') owned++;
      if (owned >= m.config.max_rooms_per_user) throw stanzaError.notAllowed(`You own ${owned} rooms already, the most allowed`);
    }
  },
});

function first<T>(set: Set<T>): T | undefined {
  return set.values().next().value;
}
