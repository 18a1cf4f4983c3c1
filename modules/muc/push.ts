// Pushes for group chat: a member of a room (owner, admin or member) who has push enabled and is not
// in the room gets a push for each message that mentions their nick in the room or their username,
// or for every message with `push_all_messages`. What the push says is up to the push module and
// the account's push options (no body unless allowed). A member whose session in the room is
// hibernating (XEP-0198) gets the room's messages queued on it, and the push module pushes for
// those already, as for any queued message; a member with a live session in the room needs none.
import { tryParseJid, type ModuleContext, type XmlElement } from '../../server/module-api.js';
import type { Room } from './room.js';
import type { Occupant } from './types.js';

/** What the push module offers (modules/push: `notify`). */
export interface GroupchatPushTarget {
  notify(username: string, stanza: XmlElement, options?: { exceptResources?: string[] }): Promise<void>;
}

export function pushGroupchat(m: ModuleContext<{ push_all_messages: boolean }>, push: GroupchatPushTarget, room: Room, stanza: XmlElement, sender: Occupant): void {
  const body = stanza.getChildText('body');
  if (!body) return;
  for (const [bare, data] of room.affiliations) {
    if (data.affiliation === 'outcast' || bare === sender.bareJid) continue;
    const jid = tryParseJid(bare);
    if (!jid || jid.local === '' || jid.domain !== m.host) continue;
    const joined = room.occupantsOf(bare).flatMap((occupant) => [...occupant.sessions.keys()]).map((real) => tryParseJid(real)?.resource ?? '');
    if (joined.some((resource) => m.sessions.get(bare, resource)?.state === 'live')) continue;
    if (!m.config.push_all_messages && !mentions(body, [data.lastNick, data.nick, jid.local])) continue;
    push.notify(jid.local, stanza.withAttrs({ to: bare }), { exceptResources: joined }).catch((err: unknown) => m.log.error({ err, room: room.address }, 'group chat push failed'));
  }
}

/** Whether the body names one of these, as a word of its own (case-insensitive). */
export function mentions(body: string, names: (string | undefined)[]): boolean {
  return names.some((name) => {
    if (!name) return false;
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, 'iu').test(body);
  });
}
