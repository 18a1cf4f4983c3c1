// Persistent rooms in storage (XEP-0045 §10.1.3 muc#roomconfig_persistentroom): the room record
// (configuration, affiliations, subject) and its discussion history, each keyed by the room's
// localpart under the host-wide owner ''. Temporary rooms are never written; occupants never are
// (after a restart everyone rejoins, told by status 332 on the way down).
import type { MapStore } from '../../server/module-api.js';
import type { Room } from './room.js';
import type { RoomRecord, StoredHistory } from './types.js';

const HOST = '';

export class RoomStorage {
  constructor(
    private readonly records: MapStore<RoomRecord>,
    private readonly histories: MapStore<StoredHistory>,
  ) {}

  /** Every stored room with its history (loaded once at startup). */
  async loadAll(): Promise<{ name: string; record: RoomRecord; history: StoredHistory | undefined }[]> {
    const histories = new Map((await this.histories.list(HOST)).map((entry) => [entry.key, entry.value]));
    return (await this.records.list(HOST)).map(({ key, value }) => ({ name: key, record: value, history: histories.get(key) }));
  }

  /** Writes a persistent room; a room that is (now) temporary is removed instead. */
  async save(room: Room): Promise<void> {
    if (room.locked) return;
    if (!room.config.persistent) {
      await this.delete(room.jid.local);
      return;
    }
    await this.records.set(HOST, room.jid.local, room.toRecord());
  }

  async saveHistory(room: Room): Promise<void> {
    if (room.locked || !room.config.persistent) return;
    await this.histories.set(HOST, room.jid.local, room.history.toStored());
  }

  async delete(name: string): Promise<void> {
    await this.records.delete(HOST, name);
    await this.histories.delete(HOST, name);
  }
}
