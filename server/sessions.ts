// Where is a full JID connected? The one place that knows (DESIGN.md §5a: a local map now, a
// shared registry once Herald runs on several nodes).

import type { Session } from './session.js';

export class SessionRegistry {
  /** bare JID → resource → session */
  private readonly byBare = new Map<string, Map<string, Session>>();
  private total = 0;

  get size(): number {
    return this.total;
  }

  /** Adds a session; returns the session it replaces (same full JID), if any. */
  add(session: Session): Session | undefined {
    let resources = this.byBare.get(session.bareJid);
    if (!resources) {
      resources = new Map();
      this.byBare.set(session.bareJid, resources);
    }
    const previous = resources.get(session.resource);
    resources.set(session.resource, session);
    if (!previous) this.total++;
    return previous;
  }

  /** Removes the session if it is still the one registered for its full JID. */
  remove(session: Session): boolean {
    const resources = this.byBare.get(session.bareJid);
    if (!resources || resources.get(session.resource) !== session) return false;
    resources.delete(session.resource);
    if (resources.size === 0) this.byBare.delete(session.bareJid);
    this.total--;
    return true;
  }

  get(bareJid: string, resource: string): Session | undefined {
    return this.byBare.get(bareJid)?.get(resource);
  }

  /** Every session of an account (connected resources, available or not). */
  resourcesOf(bareJid: string): Session[] {
    const resources = this.byBare.get(bareJid);
    return resources ? [...resources.values()] : [];
  }

  hasAny(bareJid: string): boolean {
    return this.byBare.has(bareJid);
  }

  *all(): IterableIterator<Session> {
    for (const resources of this.byBare.values()) yield* resources.values();
  }
}
