// Streams other servers open to us (RFC 6120 with jabber:server): header checks, STARTTLS, SASL
// EXTERNAL (XEP-0178) for a peer whose certificate is valid for its domain, Server Dialback
// (XEP-0220) both as receiving server (<db:result/>: is this peer really that domain?) and as
// authoritative server (<db:verify/>: did we issue this key?), then stanzas into the router with
// origin { kind: 's2s', domain }. Streams are one-way: replies leave on our own outgoing stream.
//
// Every stanza's 'from' must be a domain this stream authenticated (several may be, by dialback
// multiplexing, §2.6 of XEP-0220) and its 'to' a domain we serve.

import { randomBytes } from 'node:crypto';
import type { StreamHeader } from '../xml/parser.js';
import { x, type XmlElement } from '../xml/element.js';
import { NS } from '../protocol/ns.js';
import { StreamError, stanzaError } from '../errors.js';
import { tryParseJid, type Jid } from '../jid.js';
import type { S2sManager } from './manager.js';
import type { S2sTransport } from './transport.js';
import { S2sStream, isVersion1, type AuthMethod } from './stream.js';
import { certificateProblem, type CertificateStatus } from './certificates.js';
import { NS_DIALBACK, dbResult, dbVerify, dialbackFeature } from './dialback.js';

const PRESENCE_TYPES = new Set(['unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error']);
const IQ_TYPES = new Set(['get', 'set', 'result', 'error']);
/** Each verification makes us connect somewhere: one stream may not keep more than this many going. */
const MAX_VERIFYING = 16;

export class S2sIncoming extends S2sStream {
  /** The domain the peer names in its stream header. */
  remoteDomain = '';
  /** The domain of ours it addressed. */
  localDomain: string;
  /** Remote domains this stream may send from, and how each proved itself. */
  readonly authenticated = new Map<string, AuthMethod>();
  private readonly verifying = new Set<string>();
  private readonly certificates = new Map<string, CertificateStatus>();
  private headerSent = false;
  private saslDone = false;
  private answeredVerify = false;
  private counted = false;
  private authTimer: NodeJS.Timeout | undefined;

  constructor(manager: S2sManager, transport: S2sTransport) {
    super(manager, 'in', manager.log);
    this.transport = transport;
    this.localDomain = manager.domain;
  }

  start(): void {
    const transport = this.transport!;
    this.attachTransport(transport);
    this.phase = 'header';
    if (!this.manager.limiter.openConnection(transport.remoteAddress)) {
      this.log.warn({ ip: transport.remoteAddress }, 'too many s2s connections from this address');
      this.fail(new StreamError('policy-violation', 'Too many connections from your address'));
      return;
    }
    this.counted = true;
    this.log.info({ ip: transport.remoteAddress, direct_tls: transport.secure }, 's2s incoming connection opened');
    // Long enough for a dialback round trip to our own outgoing stream (which has connect_timeout).
    this.authTimer = setTimeout(() => {
      if (this.authenticated.size === 0 && !this.answeredVerify) this.fail(new StreamError('connection-timeout', 'Authentication took too long'));
    }, 2 * this.manager.config.connect_timeout);
    this.authTimer.unref();
  }

  // ---- stream header and features ----

  protected override onStreamOpen(header: StreamHeader): void {
    this.phase = 'open';
    this.streamId = randomBytes(12).toString('base64url');
    const to = header.attrs.to === undefined ? this.manager.domain : domainOf(header.attrs.to);
    const known = to !== undefined && this.manager.isLocal(to);
    if (known) this.localDomain = to;
    const from = header.attrs.from === undefined ? undefined : domainOf(header.attrs.from);
    this.sendHeader(from);
    if (header.name !== 'stream' || header.ns !== NS.STREAMS) return this.fail(new StreamError('invalid-namespace', 'Expected a stream in http://etherx.jabber.org/streams'));
    if (header.contentNs !== NS.SERVER) return this.fail(new StreamError('invalid-namespace', 'The content namespace must be jabber:server'));
    if (!isVersion1(header.attrs.version)) return this.fail(new StreamError('unsupported-version', 'XMPP 1.0 streams only'));
    // RFC 6120 §4.9.3.6: a 'to' naming a domain this server does not serve.
    if (!known) return this.fail(new StreamError('host-unknown', 'This server does not serve that domain'));
    // RFC 6120 §4.7.1: a server names itself in 'from'; authentication needs it (§4.9.3.7).
    if (header.attrs.from === undefined) return this.fail(new StreamError('improper-addressing', "The stream header lacks 'from'"));
    if (from === undefined) return this.fail(new StreamError('invalid-from', "'from' is not a domain"));
    // Our own domains never arrive from outside: whoever claims one is not us.
    if (this.manager.isLocal(from)) return this.fail(new StreamError('invalid-from', 'That domain is served here'));
    // After SASL the peer is who it authenticated as (RFC 6120 §6.4.6: the restarted stream).
    if (this.saslDone && from !== this.remoteDomain) return this.fail(new StreamError('invalid-from', 'Not the domain authenticated on this stream'));
    this.remoteDomain = from;
    this.sendFeatures();
  }

  private sendHeader(to: string | undefined): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.transport?.openStream({ from: this.localDomain, ...(to !== undefined && { to }), id: this.streamId || randomBytes(12).toString('base64url') });
  }

  protected override ensureHeader(): void {
    this.sendHeader(undefined);
  }

  private sendFeatures(): void {
    const features = x('stream:features');
    const config = this.manager.config;
    if (!this.secure) {
      const starttls = features.c('starttls', { xmlns: NS.TLS });
      if (config.require_encryption) {
        // RFC 6120 §5.3.1: TLS is mandatory-to-negotiate; nothing else is offered before it.
        starttls.c('required');
        this.write(features);
        return;
      }
    }
    // XEP-0178 §3: EXTERNAL only when the certificate is valid for the domain the peer claims.
    if (this.secure && !this.saslDone && this.certificate(this.remoteDomain) === 'valid') {
      features.append(x('mechanisms', { xmlns: NS.SASL }, x('mechanism', null, 'EXTERNAL')));
    }
    features.append(dialbackFeature());
    this.write(features);
  }

  private certificate(domain: string): CertificateStatus {
    let status = this.certificates.get(domain);
    if (status === undefined && this.transport) {
      status = this.manager.trust.status(this.transport, domain);
      this.certificates.set(domain, status);
    }
    return status ?? 'no-tls';
  }

  // ---- elements ----

  protected override onElement(el: XmlElement, ns: string): void {
    if (this.phase === 'closing') {
      // RFC 6120 §4.4: what the peer sent before seeing our </stream:stream> is still handled.
      if (ns === NS.SERVER) this.onStanza(el);
      return;
    }
    if (this.phase !== 'open') return;
    switch (ns) {
      case NS.TLS:
        return el.name === 'starttls' ? this.startTls() : this.fail(new StreamError('unsupported-stanza-type'));
      case NS.SASL:
        return el.name === 'auth' ? this.saslAuth(el) : this.fail(new StreamError('unsupported-stanza-type', 'Unexpected SASL element'));
      case NS_DIALBACK:
        if (el.name === 'result') return this.dialbackResult(el);
        if (el.name === 'verify') return this.dialbackVerify(el);
        return this.fail(new StreamError('unsupported-stanza-type'));
      case NS.SERVER:
        return this.onStanza(el);
      default:
        return this.fail(new StreamError('unsupported-stanza-type', `Unexpected ${el.name} element`));
    }
  }

  /** RFC 6120 §5.4.2: <proceed/>, then the TLS handshake, then a new stream. */
  private startTls(): void {
    if (this.secure) {
      this.write(x('failure', { xmlns: NS.TLS }));
      this.closeStream();
      return;
    }
    this.write(x('proceed', { xmlns: NS.TLS }));
    this.phase = 'header';
    this.headerSent = false;
    this.certificates.clear();
    this.parser.reset();
    this.transport!.startTlsServer(this.manager.tlsContext()).then(
      () => this.log.debug({ protocol: this.transport?.tlsSocket?.getProtocol() }, 's2s TLS established'),
      () => undefined, // the transport reports the lost connection
    );
  }

  /** XEP-0178 §3 (server-to-server): SASL EXTERNAL with the TLS client certificate. */
  private saslAuth(el: XmlElement): void {
    const failure = (condition: string) => this.write(x('failure', { xmlns: NS.SASL }, x(condition)));
    if (el.attrs.mechanism !== 'EXTERNAL' || !this.secure || this.saslDone) return failure('invalid-mechanism');
    if (this.certificate(this.remoteDomain) !== 'valid') return failure('not-authorized');
    // The authorization identity is empty ('=' or nothing) or the domain itself, base64-encoded.
    const text = el.text().trim();
    if (text !== '' && text !== '=') {
      const claimed = domainOf(Buffer.from(text, 'base64').toString('utf8'));
      if (claimed !== this.remoteDomain) return failure('invalid-authzid');
    }
    this.write(x('success', { xmlns: NS.SASL }));
    this.saslDone = true;
    this.authenticate(this.remoteDomain, 'sasl-external');
    // RFC 6120 §6.4.6: the peer restarts the stream.
    this.phase = 'header';
    this.headerSent = false;
    this.parser.reset();
  }

  // ---- dialback ----

  /** XEP-0220 §2.2.1: the peer asks to send from `from` to `to`; check with its authoritative server. */
  private dialbackResult(el: XmlElement): void {
    if (el.attrs.type !== undefined) {
      // §2.2: results come on streams we open; one here is unsolicited (the 2012 attacks, §5.1).
      this.log.warn({ type: el.attrs.type }, 's2s dialback result on an incoming stream ignored');
      return;
    }
    const from = domainOf(el.attrs.from);
    const to = domainOf(el.attrs.to);
    if (from === undefined || to === undefined) return this.fail(new StreamError('improper-addressing', 'A dialback request needs from and to'));
    const reply = (content: Parameters<typeof dbResult>[2]) => this.write(dbResult(to, from, content));
    // §2.4.2: not a domain of ours: a dialback error, and the stream lives on.
    if (!this.manager.isLocal(to)) return reply({ error: 'item-not-found' });
    if (this.manager.isLocal(from)) return reply({ error: 'not-authorized' });
    if (!this.secure && this.manager.config.require_encryption) return reply({ error: 'policy-violation' });
    const status = this.certificate(from);
    if (status !== 'valid' && this.manager.config.require_valid_certificates) {
      this.log.warn({ remote: from, certificate: status, problem: certificateProblem(this.transport!) }, 's2s dialback refused: certificate required');
      return reply({ error: 'not-authorized' });
    }
    if (this.authenticated.has(from)) return reply({ type: 'valid' });
    if (status === 'valid') {
      // Like Prosody: a certificate valid for the sender domain proves more than the key would.
      this.authenticate(from, 'dialback-certificate');
      return reply({ type: 'valid' });
    }
    if (this.verifying.has(from)) return;
    if (this.verifying.size >= MAX_VERIFYING) return reply({ error: 'policy-violation' });
    this.verifying.add(from);
    const streamId = this.streamId;
    void this.manager.verifyDialbackKey(to, from, streamId, el.text().trim()).then((verdict) => {
      this.verifying.delete(from);
      if (this.closed) return;
      if (verdict.type === 'valid') {
        this.authenticate(from, 'dialback');
        reply({ type: 'valid' });
      } else if (verdict.type === 'invalid') {
        // §2.2.1: a spoofing attempt: say so, log it, and close the stream.
        this.log.warn({ remote: from, ip: this.remoteAddress }, 's2s dialback key refused by the authoritative server');
        reply({ type: 'invalid' });
        this.closeReason = 'dialback key invalid';
        this.closeStream();
      } else {
        this.log.info({ remote: from, condition: verdict.condition }, 's2s dialback verification failed');
        reply({ error: verdict.condition });
      }
    });
  }

  /** XEP-0220 §2.2.2: as authoritative server, say whether we issued this key. */
  private dialbackVerify(el: XmlElement): void {
    if (el.attrs.type !== undefined) {
      this.log.warn({ type: el.attrs.type }, 's2s dialback verify answer on an incoming stream ignored');
      return;
    }
    const receiving = domainOf(el.attrs.from);
    const originating = domainOf(el.attrs.to);
    const id = el.attrs.id;
    if (receiving === undefined || originating === undefined || id === undefined) {
      return this.fail(new StreamError('improper-addressing', 'A dialback verification needs from, to and id'));
    }
    this.answeredVerify = true;
    this.armIdleTimer();
    if (!this.manager.isLocal(originating)) return this.write(dbVerify(originating, receiving, id, { error: 'item-not-found' }));
    const valid = this.manager.keys.verify(receiving, originating, id, el.text());
    if (!valid) this.log.warn({ remote: receiving, claimed: originating }, 's2s asked to verify a dialback key we did not issue');
    this.write(dbVerify(originating, receiving, id, { type: valid ? 'valid' : 'invalid' }));
  }

  private authenticate(domain: string, method: AuthMethod): void {
    this.authenticated.set(domain, method);
    this.log.info({ remote: domain, local: this.localDomain, method }, 's2s incoming authenticated');
    this.armIdleTimer();
  }

  // ---- stanzas (RFC 6120 §8, §4.9.3) ----

  private onStanza(el: XmlElement): void {
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      return this.fail(new StreamError('unsupported-stanza-type', `Unknown stanza ${el.name}`));
    }
    // RFC 6120 §4.9.3.12: stanzas before the stream is authenticated.
    if (this.authenticated.size === 0) return this.fail(new StreamError('not-authorized', 'Authenticate first'));
    // §4.9.3.7: between servers, both addresses are mandatory.
    if (el.attrs.from === undefined || el.attrs.to === undefined) return this.fail(new StreamError('improper-addressing', 'Stanzas between servers need from and to'));
    const from = tryParseJid(el.attrs.from);
    // §4.9.3.9: a 'from' this stream has not authenticated.
    if (!from || !this.authenticated.has(from.domain)) {
      this.log.warn({ claimed: from?.domain ?? el.attrs.from, authenticated: [...this.authenticated.keys()] }, 's2s stanza from a domain not authenticated on this stream');
      return this.fail(new StreamError('invalid-from', 'That domain is not authenticated on this stream'));
    }
    const to = tryParseJid(el.attrs.to);
    if (!to) return this.manager.bounce(el, stanzaError.jidMalformed());
    // §4.9.3.6 (as Prosody does): nothing is relayed to domains we do not serve.
    if (!this.manager.isLocal(to.domain)) return this.fail(new StreamError('host-unknown', 'This server does not serve that domain'));
    if (!this.valid(el)) return;
    this.touch();
    this.manager.deliver(el, from, to);
  }

  /** The c2s stanza rules that concern the receiver: IQ id, type and payload; presence type. */
  private valid(el: XmlElement): boolean {
    const type = el.attrs.type;
    if (el.name === 'iq') {
      if (el.attrs.id === undefined || type === undefined || !IQ_TYPES.has(type)) {
        this.manager.bounce(el, stanzaError.badRequest('IQ without a valid id or type'));
        return false;
      }
      if ((type === 'get' || type === 'set') && el.elements().length !== 1) {
        this.manager.bounce(el, stanzaError.badRequest('An IQ request carries exactly one child'));
        return false;
      }
    } else if (el.name === 'presence' && type !== undefined && !PRESENCE_TYPES.has(type)) {
      this.manager.bounce(el, stanzaError.badRequest('Unknown presence type'));
      return false;
    }
    return true;
  }

  // ---- closing ----

  protected override onClosed(reason: string): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.counted) this.manager.limiter.closeConnection(this.remoteAddress);
    this.manager.incomingClosed(this);
    this.log.info({ remote: this.remoteDomain || undefined, reason }, 's2s incoming connection closed');
  }

  info(): { direction: 'in'; remote: string; local: string; secure: boolean; authenticated: Record<string, AuthMethod> } {
    return { direction: 'in', remote: this.remoteDomain, local: this.localDomain, secure: this.secure, authenticated: Object.fromEntries(this.authenticated) };
  }
}

/** A bare domain (normalised), or undefined for anything else. */
export function domainOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const jid: Jid | null = tryParseJid(value);
  return jid && jid.local === '' && jid.resource === '' ? jid.domain : undefined;
}
