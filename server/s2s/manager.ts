// Federation: the server-to-server manager. It takes the router's 'route/remote' (stanzas for
// domains this server does not serve) and hands each to the one outgoing stream for its remote
// domain (opening it when needed), accepts incoming streams on listen.s2s (and direct TLS on
// listen.s2s_direct_tls, XEP-0368), routes what they carry with origin { kind: 's2s', domain }, and
// answers dialback questions between the two. Streams are one-way (no XEP-0288): a reply to a
// stanza that came in goes out on our own stream to that domain.
//
// The local domains we send from are the server's domain and the in-process component domains
// (server.components); stanzas from any other domain are never relayed.

import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext } from 'node:tls';
import type { HeraldServer } from '../server.js';
import type { HeraldConfig } from '../../conf/schema.js';
import type { XmlElement } from '../xml/element.js';
import type { Jid } from '../jid.js';
import type { Logger } from '../log.js';
import type { StanzaError } from '../errors.js';
import { StreamError } from '../errors.js';
import { Priority, STOP, type HookResult, type RouteEvent } from '../hooks.js';
import { listenOn } from '../c2s.js';
import { S2sTransport } from './transport.js';
import { S2sIncoming } from './incoming.js';
import { S2sOutgoing } from './outgoing.js';
import { S2sResolver, parseHostPort } from './resolver.js';
import { S2sTrust, readExtraCas } from './certificates.js';
import { DialbackKeys, type Verdict } from './dialback.js';
import type { AuthMethod } from './stream.js';

export type S2sConfig = HeraldConfig['s2s'];

/** One line per connection for admins and tests: who, which way, and how each domain proved itself. */
export interface S2sConnectionInfo {
  direction: 'in' | 'out';
  remote: string;
  local: string;
  secure: boolean;
  /** Remote domains (incoming) or local domains (outgoing) authenticated on the stream, with the method. */
  authenticated: Record<string, AuthMethod>;
}

export class S2sManager {
  readonly config: S2sConfig;
  readonly limits: HeraldConfig['limits'];
  readonly log: Logger;
  readonly domain: string;
  readonly keys = new DialbackKeys();
  /** s2s.host_map, changeable at runtime (tests learn each other's ports only after starting). */
  readonly hostMap: Map<string, string>;
  readonly resolver: S2sResolver;
  /** Trusted CAs and our TLS context. */
  readonly trust: S2sTrust;
  private readonly outgoing = new Map<string, S2sOutgoing>();
  private readonly incoming = new Set<S2sIncoming>();
  private stopping = false;

  constructor(private readonly server: HeraldServer) {
    this.config = server.config.s2s;
    this.limits = server.config.limits;
    this.log = server.log.child({ mod: 's2s' });
    this.domain = server.domain;
    for (const target of Object.values(this.config.host_map)) parseHostPort(target); // a typo stops startup
    this.hostMap = new Map(Object.entries(this.config.host_map));
    this.resolver = new S2sResolver({ hostMap: this.hostMap, dnsServers: this.config.dns_servers });
    this.trust = new S2sTrust(readExtraCas(this.config.ca_file));
    // Above the router's own fallback (remote-server-not-found), which stays for when s2s is stopping.
    server.hooks.on('route/remote', (e) => this.route(e), Priority.DEFAULT, 's2s');
  }

  get limiter(): HeraldServer['limiter'] {
    return this.server.limiter;
  }

  /** A domain served here: the server's own, or an in-process component's. */
  isLocal(domain: string): boolean {
    return this.server.hosts.has(domain) || this.server.components.has(domain);
  }

  tlsContext(): SecureContext {
    return this.trust.context(this.server.tlsCredentials);
  }

  /** Adds (or with undefined, removes) a static route: domain → 'host:port'. */
  setRoute(domain: string, target: string | undefined): void {
    if (target === undefined) this.hostMap.delete(domain);
    else {
      parseHostPort(target);
      this.hostMap.set(domain, target);
    }
  }

  // ---- routing ----

  private route(e: RouteEvent): HookResult {
    if (this.stopping) return undefined;
    const local = e.from.domain;
    if (!this.isLocal(local)) {
      // Not ours to send: relaying for third parties would make us an open relay.
      this.log.warn({ from: local, to: e.to.domain }, 's2s refusing to relay a stanza from a foreign domain');
      return STOP;
    }
    this.outgoingFor(e.to.domain).send(local, e.stanza);
    return STOP;
  }

  private outgoingFor(remote: string): S2sOutgoing {
    let stream = this.outgoing.get(remote);
    if (!stream) {
      stream = new S2sOutgoing(this, remote);
      this.outgoing.set(remote, stream);
      stream.start();
    }
    return stream;
  }

  /** A stanza an incoming stream accepted: into the router as coming from that domain. */
  deliver(stanza: XmlElement, from: Jid, to: Jid): void {
    this.server.router.route(stanza, from, to, { kind: 's2s', domain: from.domain });
  }

  bounce(stanza: XmlElement, error: StanzaError): void {
    this.server.router.bounce(stanza, error);
  }

  /**
   * XEP-0220 §2.1.2: asks `remote`'s authoritative server whether `key` is right for the stream
   * `streamId` it opened to our domain `local`.
   */
  verifyDialbackKey(local: string, remote: string, streamId: string, key: string): Promise<Verdict> {
    if (this.stopping) return Promise.resolve({ type: 'error', condition: 'remote-server-timeout' });
    return this.outgoingFor(remote).verify(local, streamId, key);
  }

  outgoingClosed(stream: S2sOutgoing): void {
    if (this.outgoing.get(stream.remoteDomain) === stream) this.outgoing.delete(stream.remoteDomain);
  }

  incomingClosed(stream: S2sIncoming): void {
    this.incoming.delete(stream);
  }

  // ---- listeners ----

  /** Listens on the configured interfaces; port 0 picks a free port (tests). */
  listen(port: number, directTls: boolean): Promise<NetServer[]> {
    const accept = (socket: Socket) => {
      const stream = new S2sIncoming(this, new S2sTransport(socket, directTls));
      this.incoming.add(stream);
      stream.start();
    };
    const make = (): NetServer =>
      directTls
        ? createTlsServer(
            {
              ...this.server.tlsCredentials,
              ca: this.trust.cas,
              minVersion: 'TLSv1.2',
              requestCert: true,
              rejectUnauthorized: false,
              ALPNProtocols: ['xmpp-server'],
              SNICallback: (_name, cb) => cb(null, this.tlsContext()),
            },
            accept,
          )
        : createNetServer(accept);
    return listenOn(make, this.server.config.listen.interfaces, port, this.log, directTls ? 's2s_direct_tls' : 's2s');
  }

  // ---- state, shutdown ----

  connections(): S2sConnectionInfo[] {
    return [...[...this.outgoing.values()].map((s) => s.info()), ...[...this.incoming].map((s) => s.info())];
  }

  /** The outgoing stream to a domain, if one is open or being set up (tests, admin). */
  outgoingTo(remote: string): S2sConnectionInfo | undefined {
    return this.outgoing.get(remote)?.info();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const error = new StreamError('system-shutdown', 'Server is shutting down');
    const streams = [...this.outgoing.values(), ...this.incoming];
    await Promise.allSettled(streams.map((stream) => stream.shutdown(error)));
  }
}
