// Streams we open to another server (RFC 6120 §3, §5, §6 with jabber:server): find the server
// (resolver.ts), connect (STARTTLS, or direct TLS for _xmpps-server targets), then authenticate each
// local domain we send from — the server's own by SASL EXTERNAL (XEP-0178) when the peer offers
// it, else by Server Dialback (XEP-0220), and further local domains (components: conference.,
// push., ...) multiplexed on the same stream by dialback (§2.6.1). Stanzas wait per local domain
// until it is authenticated, up to s2s.max_queue; if that does not happen they go back to their
// senders as errors (RFC 6120 §10.4.3), never silently lost.
//
// The stream also carries our <db:verify/> questions to this domain when it is the authoritative
// server for a key another stream presented to us (XEP-0220 §2.1.2).

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { StreamHeader } from '../xml/parser.js';
import { x, type XmlElement } from '../xml/element.js';
import { NS } from '../protocol/ns.js';
import { StanzaError, StreamError, type StanzaErrorCondition } from '../errors.js';
import type { S2sManager } from './manager.js';
import { S2sTransport } from './transport.js';
import { S2sStream, isVersion1, type AuthMethod } from './stream.js';
import { ResolveError, type S2sTarget } from './resolver.js';
import { certificateProblem, type CertificateStatus } from './certificates.js';
import { NS_DIALBACK, dbResult, dbVerify, errorCondition, type Verdict } from './dialback.js';
import { domainOf } from './incoming.js';

/** One TCP (or TLS) connection attempt gives up after this long, leaving time for other targets. */
const ATTEMPT_TIMEOUT_MS = 10_000;

type Failure = Extract<StanzaErrorCondition, 'remote-server-not-found' | 'remote-server-timeout' | 'internal-server-error'>;

interface LocalDomain {
  state: 'waiting' | 'requested' | 'valid';
  method?: AuthMethod;
  queue: XmlElement[];
  timer: NodeJS.Timeout;
}

interface PendingVerify {
  element: XmlElement;
  sent: boolean;
  timer: NodeJS.Timeout;
  resolve(verdict: Verdict): void;
}

export class S2sOutgoing extends S2sStream {
  /** The domain the stream header names as ours; others are multiplexed. */
  readonly localDomain: string;
  private readonly domains = new Map<string, LocalDomain>();
  private readonly verifies = new Map<string, PendingVerify>();
  private queued = 0;
  /** TLS done (or not needed) and features seen: dialback and verifications may go out. */
  private ready = false;
  private sasl: 'none' | 'trying' | 'failed' | 'done' = 'none';
  private peerCertificate: CertificateStatus | undefined;
  private target: S2sTarget | undefined;
  private gaveUp = false;

  constructor(manager: S2sManager, readonly remoteDomain: string) {
    super(manager, 'out', manager.log.child({ remote: remoteDomain }));
    this.localDomain = manager.domain;
    this.addDomain(this.localDomain);
  }

  start(): void {
    this.connect().catch((err: unknown) => {
      this.log.error({ err }, 's2s connection setup failed');
      this.giveUp('remote-server-not-found', 'connection setup failed');
    });
  }

  /** A stanza from `local` (a domain of ours) for the remote domain. */
  send(local: string, stanza: XmlElement): void {
    const domain = this.domains.get(local) ?? this.addDomain(local);
    if (domain.state === 'valid' && !this.closed) {
      this.write(stanza);
      this.touch();
      return;
    }
    if (this.queued >= this.manager.config.max_queue) {
      this.manager.bounce(stanza, new StanzaError('resource-constraint', `Too many stanzas waiting for ${this.remoteDomain}`));
      return;
    }
    domain.queue.push(stanza);
    this.queued++;
  }

  /** XEP-0220 §2.1.2: asks this (authoritative) server whether it issued `key` for the stream `id`. */
  verify(local: string, id: string, key: string): Promise<Verdict> {
    return new Promise((resolve) => {
      const name = `${local} ${id}`;
      this.verifies.get(name)?.resolve({ type: 'error', condition: 'remote-server-timeout' });
      const timer = setTimeout(() => this.settleVerify(name, { type: 'error', condition: 'remote-server-timeout' }), this.manager.config.connect_timeout);
      timer.unref();
      const pending: PendingVerify = { element: dbVerify(local, this.remoteDomain, id, { key }), sent: false, timer, resolve };
      this.verifies.set(name, pending);
      if (this.ready && !this.closed) {
        pending.sent = true;
        this.write(pending.element);
      }
    });
  }

  private addDomain(local: string): LocalDomain {
    const timer = setTimeout(() => this.domainTimedOut(local), this.manager.config.connect_timeout);
    timer.unref();
    const domain: LocalDomain = { state: 'waiting', queue: [], timer };
    this.domains.set(local, domain);
    if (this.ready && !this.closed) this.requestDomain(local, domain);
    return domain;
  }

  // ---- connecting ----

  private async connect(): Promise<void> {
    let targets: S2sTarget[];
    try {
      targets = await this.manager.resolver.resolve(this.remoteDomain);
    } catch (err) {
      if (!(err instanceof ResolveError)) throw err;
      return this.giveUp('remote-server-not-found', err.message);
    }
    for (const target of targets) {
      for (const address of await this.manager.resolver.addresses(target.host)) {
        if (this.gaveUp) return;
        const socket = await this.attempt(address, target);
        if (this.gaveUp) return void socket?.destroy();
        if (socket) return this.connected(socket, target);
      }
    }
    this.giveUp('remote-server-not-found', `no server for ${this.remoteDomain} could be reached`);
  }

  private attempt(address: string, target: S2sTarget): Promise<Socket | null> {
    return new Promise((resolve) => {
      const options = { host: address, port: target.port };
      // XEP-0368 §3: direct TLS with SNI naming the domain and ALPN 'xmpp-server'.
      const socket = target.directTls
        ? tlsConnect({ ...options, servername: this.remoteDomain, secureContext: this.manager.tlsContext(), rejectUnauthorized: false, ALPNProtocols: ['xmpp-server'] })
        : netConnect(options);
      const done = (result: Socket | null) => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        if (!result) socket.destroy();
        resolve(result);
      };
      const timer = setTimeout(() => done(null), Math.min(ATTEMPT_TIMEOUT_MS, this.manager.config.connect_timeout));
      socket.once(target.directTls ? 'secureConnect' : 'connect', () => done(socket));
      socket.once('error', (err) => {
        this.log.debug({ address, port: target.port, err: err.message }, 's2s connection attempt failed');
        done(null);
      });
    });
  }

  private connected(socket: Socket, target: S2sTarget): void {
    this.target = target;
    const transport = new S2sTransport(socket, target.directTls);
    this.attachTransport(transport);
    this.log.info({ ip: transport.remoteAddress, port: target.port, direct_tls: target.directTls, via: target.source }, 's2s outgoing connection opened');
    this.openStream();
  }

  private openStream(): void {
    this.phase = 'header';
    this.transport!.openStream({ from: this.localDomain, to: this.remoteDomain });
  }

  // ---- negotiation ----

  protected override onStreamOpen(header: StreamHeader): void {
    this.phase = 'open';
    if (header.name !== 'stream' || header.ns !== NS.STREAMS || header.contentNs !== NS.SERVER) {
      return this.giveUp('remote-server-not-found', 'peer answered with a wrong namespace', new StreamError('invalid-namespace'));
    }
    this.streamId = header.attrs.id ?? '';
    if (!isVersion1(header.attrs.version)) {
      // An RFC 3920-era peer sends no features: dialback straight away, if plaintext is allowed.
      if (!this.secure && this.manager.config.require_encryption) {
        return this.giveUp('remote-server-not-found', 'peer cannot do TLS', new StreamError('policy-violation', 'TLS is required'));
      }
      this.becomeReady();
    }
  }

  protected override onElement(el: XmlElement, ns: string): void {
    if (this.phase !== 'open') return;
    if (ns === NS.STREAMS && el.name === 'features') return this.onFeatures(el);
    if (ns === NS.TLS) return el.name === 'proceed' ? this.startTls() : this.giveUp('remote-server-not-found', 'peer refused TLS');
    if (ns === NS.SASL && el.name === 'success') return this.saslSucceeded();
    if (ns === NS.SASL && el.name === 'failure') return this.saslFailed(el);
    if (ns === NS_DIALBACK && el.name === 'result') return this.dialbackResult(el);
    if (ns === NS_DIALBACK && el.name === 'verify') return this.verifyAnswer(el);
    // Without XEP-0288 nothing else belongs on a stream we opened.
    this.log.warn({ element: el.name, ns }, 's2s unexpected element on an outgoing stream ignored');
  }

  private onFeatures(features: XmlElement): void {
    const config = this.manager.config;
    if (!this.secure) {
      if (features.getChild('starttls', NS.TLS)) {
        this.write(x('starttls', { xmlns: NS.TLS }));
        return;
      }
      if (config.require_encryption) {
        return this.giveUp('remote-server-not-found', 'peer offers no TLS', new StreamError('policy-violation', 'TLS is required'));
      }
    }
    if (this.secure && this.peerCertificate === undefined) {
      this.peerCertificate = this.manager.trust.status(this.transport!, this.remoteDomain);
      if (this.peerCertificate !== 'valid') {
        const problem = certificateProblem(this.transport!);
        if (config.require_valid_certificates) {
          this.log.warn({ certificate: this.peerCertificate, problem }, 's2s peer certificate not valid; refusing');
          return this.giveUp('remote-server-not-found', `certificate of ${this.remoteDomain} is not valid`, new StreamError('policy-violation', 'A valid certificate is required'));
        }
        this.log.debug({ certificate: this.peerCertificate, problem }, 's2s peer certificate not valid; dialback may still authenticate');
      }
    }
    const mechanisms = features.getChild('mechanisms', NS.SASL)?.getChildren('mechanism').map((m) => m.text().trim()) ?? [];
    if (this.sasl === 'none' && this.secure && mechanisms.includes('EXTERNAL')) {
      // XEP-0178 §3: the authorization identity is our domain (Prosody requires one; '=' would do for others).
      this.sasl = 'trying';
      this.write(x('auth', { xmlns: NS.SASL, mechanism: 'EXTERNAL' }, Buffer.from(this.localDomain).toString('base64')));
      return;
    }
    // Dialback predates stream features (older peers only declare xmlns:db): it is tried whether
    // or not <dialback xmlns='urn:xmpp:features:dialback'/> was offered.
    this.becomeReady();
  }

  private startTls(): void {
    this.phase = 'header';
    this.parser.reset();
    this.transport!.startTlsClient(this.manager.tlsContext(), this.remoteDomain).then(
      () => {
        if (this.closed) return;
        this.log.debug({ protocol: this.transport?.tlsSocket?.getProtocol() }, 's2s TLS established');
        this.openStream();
      },
      () => undefined, // the transport reports the lost connection
    );
  }

  private saslSucceeded(): void {
    if (this.sasl !== 'trying') return this.log.warn('s2s unsolicited SASL success ignored');
    this.sasl = 'done';
    // RFC 6120 §6.4.6: both sides restart the stream; stanzas wait for the new features.
    this.parser.reset();
    this.openStream();
  }

  private saslFailed(el: XmlElement): void {
    if (this.sasl !== 'trying') return;
    this.sasl = 'failed';
    this.log.info({ condition: el.firstElement()?.name }, 's2s SASL EXTERNAL refused; trying dialback');
    this.becomeReady();
  }

  private becomeReady(): void {
    this.ready = true;
    for (const [local, domain] of this.domains) if (domain.state === 'waiting') this.requestDomain(local, domain);
    for (const pending of this.verifies.values()) {
      if (!pending.sent) {
        pending.sent = true;
        this.write(pending.element);
      }
    }
  }

  private requestDomain(local: string, domain: LocalDomain): void {
    if (local === this.localDomain && this.sasl === 'done') return this.authenticated(local, domain, 'sasl-external');
    domain.state = 'requested';
    // XEP-0185: the key binds the receiving domain, our domain and the stream id the peer gave us.
    this.write(dbResult(local, this.remoteDomain, { key: this.manager.keys.generate(this.remoteDomain, local, this.streamId) }));
  }

  /** XEP-0220 §2.1.1 step 4: the receiving server's verdict on one of our domains. */
  private dialbackResult(el: XmlElement): void {
    const local = domainOf(el.attrs.to);
    const domain = local === undefined ? undefined : this.domains.get(local);
    if (local === undefined || !domain || domain.state !== 'requested' || domainOf(el.attrs.from) !== this.remoteDomain) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to, type: el.attrs.type }, 's2s unsolicited dialback result ignored');
      return;
    }
    const type = el.attrs.type;
    if (type === 'valid') return this.authenticated(local, domain, 'dialback');
    if (type === 'invalid') {
      // §2.1.1: our identity was deemed bogus; the peer will close the stream. The stanzas go back with
      // internal-server-error, and nothing more is sent on this stream.
      this.log.warn({ local }, 's2s dialback refused by the peer');
      return this.giveUp('internal-server-error', `${this.remoteDomain} refused our dialback key`);
    }
    // §2.4: an error is not fatal for the stream, but the waiting stanzas return with a timeout error.
    this.log.info({ local, condition: errorCondition(el) }, 's2s dialback error from the peer');
    this.dropDomain(local, 'remote-server-timeout', `dialback with ${this.remoteDomain} failed: ${errorCondition(el)}`);
  }

  private authenticated(local: string, domain: LocalDomain, method: AuthMethod): void {
    domain.state = 'valid';
    domain.method = method;
    clearTimeout(domain.timer);
    this.log.info({ local, method, secure: this.secure, certificate: this.peerCertificate }, 's2s outgoing authenticated');
    this.armIdleTimer();
    const queue = domain.queue.splice(0);
    this.queued -= queue.length;
    for (const stanza of queue) this.write(stanza);
    if (queue.length > 0) this.touch();
  }

  /** XEP-0220 §2.1.2 step 3: the authoritative server's answer to one of our verifications. */
  private verifyAnswer(el: XmlElement): void {
    const name = `${domainOf(el.attrs.to) ?? ''} ${el.attrs.id ?? ''}`;
    // §3.1: only an answer to a question asked on this very stream counts.
    if (!this.verifies.get(name)?.sent || domainOf(el.attrs.from) !== this.remoteDomain) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to }, 's2s unsolicited dialback verification ignored');
      return;
    }
    const type = el.attrs.type;
    this.settleVerify(name, type === 'valid' ? { type: 'valid' } : type === 'invalid' ? { type: 'invalid' } : { type: 'error', condition: 'remote-server-not-found' });
  }

  private settleVerify(name: string, verdict: Verdict): void {
    const pending = this.verifies.get(name);
    if (!pending) return;
    this.verifies.delete(name);
    clearTimeout(pending.timer);
    pending.resolve(verdict);
  }

  // ---- failure ----

  private domainTimedOut(local: string): void {
    const domain = this.domains.get(local);
    if (!domain || domain.state === 'valid') return;
    if (local === this.localDomain || !this.ready) return this.giveUp('remote-server-timeout', `${this.remoteDomain} did not answer in time`);
    this.dropDomain(local, 'remote-server-timeout', `${this.remoteDomain} did not authenticate ${local} in time`);
  }

  private dropDomain(local: string, condition: Failure, text: string): void {
    const domain = this.domains.get(local);
    if (!domain) return;
    this.domains.delete(local);
    clearTimeout(domain.timer);
    this.queued -= domain.queue.length;
    for (const stanza of domain.queue.splice(0)) this.manager.bounce(stanza, new StanzaError(condition, text));
  }

  /** Everything waiting goes back to its sender; then the stream ends (with `error` when given). */
  private giveUp(condition: Failure, text: string, error?: StreamError): void {
    if (!this.gaveUp) {
      this.gaveUp = true;
      const waiting = this.queued;
      this.log.info({ condition, reason: text, bounced: waiting }, 's2s outgoing connection failed');
      this.bounceAll(condition, text);
    }
    this.closeReason = text;
    if (!this.transport) return this.closeStream();
    if (error) this.fail(error);
    else this.close();
  }

  private bounceAll(condition: Failure, text: string): void {
    for (const local of [...this.domains.keys()]) this.dropDomain(local, condition, text);
    const verdict: Verdict = { type: 'error', condition: condition === 'remote-server-timeout' ? 'remote-server-timeout' : 'remote-server-not-found' };
    for (const name of [...this.verifies.keys()]) this.settleVerify(name, verdict);
  }

  protected override peerStreamError(condition: string): void {
    if (this.queued > 0 || this.verifies.size > 0) this.giveUp('remote-server-not-found', `${this.remoteDomain} sent stream error ${condition}`);
  }

  protected override beforeClose(): void {
    // From here on new stanzas need a new stream.
    this.manager.outgoingClosed(this);
  }

  protected override onClosed(reason: string): void {
    for (const domain of this.domains.values()) clearTimeout(domain.timer);
    this.bounceAll('remote-server-not-found', `connection to ${this.remoteDomain} lost: ${reason}`);
    this.manager.outgoingClosed(this);
    if (this.target) this.log.info({ reason }, 's2s outgoing connection closed');
  }

  info(): { direction: 'out'; remote: string; local: string; secure: boolean; target?: S2sTarget; authenticated: Record<string, AuthMethod> } {
    const authenticated: Record<string, AuthMethod> = {};
    for (const [local, domain] of this.domains) if (domain.method) authenticated[local] = domain.method;
    return { direction: 'out', remote: this.remoteDomain, local: this.localDomain, secure: this.secure, ...(this.target && { target: this.target }), authenticated };
  }
}
