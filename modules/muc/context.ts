// What the MUC handlers (presence.ts, messages.ts, admin.ts, owner.ts) get from the service in
// index.ts: the room registry, room creation and removal, storage, and sending.
import type { Jid, ModuleContext, XmlElement } from '../../server/module-api.js';
import { defineErrors, type StanzaError, type StanzaErrorOptions } from '../../server/errors.js';
import type { MucConfig } from './config.js';
import type { Room } from './room.js';
import type { Occupant } from './types.js';

export interface MucContext {
  readonly m: ModuleContext<MucConfig>;
  readonly rooms: Map<string, Room>;
  /** Throws not-allowed when `from` may not create a room (restrict_room_creation, max_rooms_per_user). */
  mayCreate(from: Jid): void;
  /** A new, locked room owned by `owner` (bare JID). */
  createRoom(name: string, owner: string): Room;
  /** Persists a persistent room's record (a temporary one is removed from storage). */
  save(room: Room): Promise<void>;
  saveHistory(room: Room): Promise<void>;
  /** Forgets a room: memory, storage, and the 'muc:room-destroyed' notification. */
  remove(room: Room): Promise<void>;
  /** Through the router (private messages, invitations, forms): what other modules may want to see. */
  route(stanza: XmlElement): void;
  /** Group chat pushes for members not in the room (push.ts). */
  pushFor(room: Room, stanza: XmlElement, sender: Occupant): void;
  /** The archive (modules/mam), when loaded: room queries, features, deletion. */
  mam(): import('../../server/module-api.js').Services['mam'] | undefined;
}

/** Errors the room sends, each naming the room as the generator (XEP-0045's examples carry by='room'). */
export function roomError(room: { address: string }, make: (text?: string, options?: StanzaErrorOptions) => StanzaError, text?: string, options: StanzaErrorOptions = {}): StanzaError {
  return make(text, { by: room.address, ...options });
}

export const errors = defineErrors({
  notOccupant: ['cancel', 'not-acceptable', 'You are not currently connected to this chat'],
  noSuchOccupant: ['cancel', 'item-not-found', 'Recipient not in room'],
  noSuchRoom: ['cancel', 'item-not-found', 'No such room'],
  notModerator: ['auth', 'forbidden', 'Only moderators may do this'],
  notAdmin: ['auth', 'forbidden', 'Only admins and owners may do this'],
  notOwner: ['auth', 'forbidden', 'Only owners may do this'],
});
