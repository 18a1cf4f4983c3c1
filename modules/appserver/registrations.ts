// Device registrations of the app server, stored per owner (the requester's bare JID, local or
// remote) and keyed by their push node. Every registration has a push node on the pubsub service
// with the same secret: the two are created and removed together here, so that a node never
// outlives its registration for long (a publish to an orphan node removes it, see delivery.ts).
import { randomBytes } from 'node:crypto';
import type { MapStore, Services } from '../../server/module-api.js';
import { stanzaError } from '../../server/errors.js';
import type { BackendName, PushRegistration } from './backend.js';

type PubsubService = Services['pubsub'];

export interface NewRegistration {
  owner: string;
  backend: BackendName;
  deviceId: string;
  deviceName: string | undefined;
  data: Record<string, string>;
}

/**
 * Registrations kept in memory, least recently used dropped first: every push looks its device's
 * registration up (delivery.ts), while registrations change only when a device registers or goes.
 * Only found ones are kept, so publishes for unknown nodes cannot crowd out real ones.
 */
const CACHED_REGISTRATIONS = 10_000;

export class Registrations {
  /**
   * By owner and node (a bare JID holds no line feed). Write-through: this class is the only
   * writer of its store (`herald appserver` has its own database and its own instance). Frozen:
   * the same object goes to every caller.
   */
  private readonly cached = new Map<string, PushRegistration>();
  /** Counts writes: a read that a write overtook may hold the old registration, so it is not kept. */
  private writes = 0;
  /** The last createdAt handed out: strictly increasing, so list() keeps registration order even within one millisecond. */
  private lastCreatedAt = 0;

  constructor(
    private readonly store: MapStore<PushRegistration>,
    private readonly pubsub: PubsubService,
    /** Called after a registration is gone (the sandbox drops what it kept for the node). */
    private readonly removed: (registration: PushRegistration) => void,
  ) {}

  async get(owner: string, node: string): Promise<PushRegistration | undefined> {
    const id = `${owner}\n${node}`;
    const hit = this.cached.get(id);
    if (hit) {
      this.remember(id, hit);
      return hit;
    }
    const writes = this.writes;
    const registration = await this.store.get(owner, node);
    if (registration && writes === this.writes) this.remember(id, Object.freeze(registration));
    return registration;
  }

  /** The registration behind a push node, whoever owns it. */
  async byNode(node: string): Promise<PushRegistration | undefined> {
    const owner = await this.pubsub.pushNodeOwner(node);
    return owner === undefined ? undefined : this.get(owner, node);
  }

  /** An owner's registrations, oldest first. */
  async list(owner: string): Promise<PushRegistration[]> {
    const entries = await this.store.list(owner);
    return entries.map((entry) => entry.value).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Every registration of every owner (admin tools, the sandbox inbox listing). */
  async all(): Promise<PushRegistration[]> {
    const out: PushRegistration[] = [];
    for (const owner of await this.store.owners()) out.push(...(await this.list(owner)));
    return out;
  }

  /**
   * Registers a device: a fresh node and secret. The owner's earlier registration with the same
   * device-id is replaced (its node deleted), so a reinstalled app does not leave a dead device.
   */
  async register(request: NewRegistration, maxPerOwner: number): Promise<{ registration: PushRegistration; replaced: PushRegistration | undefined }> {
    const existing = await this.list(request.owner);
    const replaced = existing.find((registration) => registration.deviceId === request.deviceId);
    if (!replaced && existing.length >= maxPerOwner) {
      throw stanzaError.notAllowed(`At most ${maxPerOwner} devices per account: unregister one first`);
    }
    const registration: PushRegistration = {
      // Hex, not base64url: a node id may end up on a command line (`herald push inbox NODE`),
      // and one starting with '-' would read as an option there.
      node: randomBytes(16).toString('hex'),
      secret: randomBytes(24).toString('base64url'),
      backend: request.backend,
      owner: request.owner,
      deviceId: request.deviceId,
      ...(request.deviceName !== undefined && { deviceName: request.deviceName }),
      createdAt: (this.lastCreatedAt = Math.max(Date.now(), this.lastCreatedAt + 1)),
      data: request.data,
    };
    await this.write(registration.owner, registration.node, this.store.set(registration.owner, registration.node, registration));
    try {
      await this.pubsub.createPushNode(registration.node, registration.secret, registration.owner);
    } catch (err) {
      await this.write(registration.owner, registration.node, this.store.delete(registration.owner, registration.node));
      throw err;
    }
    if (replaced) await this.remove(replaced);
    return { registration, replaced };
  }

  /** Removes a registration and its push node. */
  async remove(registration: PushRegistration): Promise<void> {
    await this.pubsub.deletePushNode(registration.node);
    await this.write(registration.owner, registration.node, this.store.delete(registration.owner, registration.node));
    this.removed(registration);
  }

  /** Deletes a push node that has no registration (left over by an interrupted removal). */
  async removeOrphanNode(node: string): Promise<void> {
    await this.pubsub.deletePushNode(node);
  }

  /** Removes an owner's registrations that match; returns their nodes. */
  async removeWhere(owner: string, matches: (registration: PushRegistration) => boolean): Promise<string[]> {
    const gone: string[] = [];
    for (const registration of await this.list(owner)) {
      if (!matches(registration)) continue;
      await this.remove(registration);
      gone.push(registration.node);
    }
    return gone;
  }

  /**
   * Every write to the store goes through here, called with the write already under way: the
   * cached registration is dropped now and, should the write fail, again (nothing stale is kept).
   */
  private write<T>(owner: string, node: string, write: Promise<T>): Promise<T> {
    const id = `${owner}\n${node}`;
    this.writes++;
    this.cached.delete(id);
    return write.catch((err: unknown) => {
      this.writes++;
      this.cached.delete(id);
      throw err;
    });
  }

  private remember(id: string, registration: PushRegistration): void {
    this.cached.delete(id);
    this.cached.set(id, registration);
    if (this.cached.size > CACHED_REGISTRATIONS) this.cached.delete(this.cached.keys().next().value!);
  }
}
