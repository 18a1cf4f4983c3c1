// RFC 6121 shapes shared between modules: roster items and the roster service the roster module
// provides (`m.service('roster')`) to presence, blocking, last activity and others.

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  /** Bare JID of the contact. */
  jid: string;
  name?: string;
  subscription: Subscription;
  /** Pending outbound subscription request (RFC 6121 §3.1.2 "ask"). */
  ask?: 'subscribe';
  /** Subscription pre-approved by the user (RFC 6121 §3.4). */
  approved?: boolean;
  groups: string[];
}

export interface RosterService {
  /** The contact's item in the user's roster, if any. */
  getItem(username: string, contactBareJid: string): Promise<RosterItem | undefined>;
  getItems(username: string): Promise<RosterItem[]>;
  /** Creates or replaces an item and pushes it to the user's interested resources (bumps the version). */
  setItem(username: string, item: RosterItem): Promise<void>;
  /** Removes an item (no subscription side effects) and pushes the removal. */
  removeItem(username: string, contactBareJid: string): Promise<void>;
  /** Convenience: the subscription state, 'none' when not in the roster. */
  subscription(username: string, contactBareJid: string): Promise<Subscription>;
}
