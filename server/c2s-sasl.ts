// SASL negotiation on a client stream (RFC 6120 §6): which mechanisms are offered, the
// <auth/>/<challenge/>/<response/>/<success/>/<failure/> exchange, retry limits per stream and per
// address. Mechanisms themselves live in server/sasl/.

import { x, type XmlElement } from './xml/element.js';
import { NS } from './protocol/ns.js';
import { normalizeLocalpart } from './jid.js';
import { plain } from './sasl/plain.js';
import { scramSha1, scramSha1Plus, scramSha256, scramSha256Plus } from './sasl/scram.js';
import { tlsExporter } from './sasl/channel-binding.js';
import type { ChannelBindingType, SaslContext, SaslMechanismFactory, SaslMechanismSession, ScramHash } from './sasl/mechanism.js';
import type { HeraldServer } from './server.js';
import type { StreamTransport } from './transports.js';
import type { Logger } from './log.js';

const SCRAM_MECHANISMS: SaslMechanismFactory[] = [scramSha256Plus, scramSha1Plus, scramSha256, scramSha1];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** What the negotiation needs from its stream. */
export interface SaslStreamSide {
  /** Functions, not getters: the stream's side is an object literal made per connection, and one with accessors is slow to create. */
  host(): string;
  readonly transport: StreamTransport;
  log(): Logger;
  write(el: XmlElement): void;
  /** Ends the stream with a stream error (too many failures). */
  tooManyFailures(): void;
  /** <success/> was sent: the stream restarts for `username`. */
  succeeded(username: string): void;
  /** Still the same exchange, on an open stream? (an await may outlive both) */
  stillOpen(): boolean;
}

export class SaslNegotiation {
  private exchange: { mechanism: string; session: SaslMechanismSession } | undefined;
  private failures = 0;
  /** The client tried -PLUS with a channel binding we do not offer (see SaslContext.acceptYFlag). */
  private clientLacksOurChannelBindings = false;
  private unsupportedBindingThisAttempt = false;

  constructor(
    private readonly server: HeraldServer,
    private readonly stream: SaslStreamSide,
  ) {}

  /** Mechanisms for <stream:features/>: SCRAM (-PLUS when we can bind), PLAIN only over TLS. */
  offeredMechanisms(): SaslMechanismFactory[] {
    const bind = this.channelBindingTypes().length > 0;
    const out = SCRAM_MECHANISMS.filter((mech) => bind || !mech.name.endsWith('-PLUS'));
    if (this.stream.transport.secure && this.server.config.c2s.allow_plain_auth) out.push(plain);
    return out;
  }

  channelBindingTypes(): ChannelBindingType[] {
    const tls = this.stream.transport.tlsSocket;
    if (!tls) return [];
    const types: ChannelBindingType[] = [];
    if (tls.getProtocol() === 'TLSv1.3') types.push('tls-exporter');
    if (this.server.serverEndPoint) types.push('tls-server-end-point');
    return types;
  }

  /** Features for an unauthenticated, encrypted-enough stream: mechanisms and XEP-0440 channel bindings. */
  features(): XmlElement[] {
    const mechanisms = x('mechanisms', { xmlns: NS.SASL });
    for (const mech of this.offeredMechanisms()) mechanisms.c('mechanism').t(mech.name);
    const out = [mechanisms];
    const types = this.channelBindingTypes();
    if (types.length > 0) {
      const cb = x('sasl-channel-binding', { xmlns: NS.SASL_CB });
      for (const type of types) cb.c('channel-binding', { type });
      out.push(cb);
    }
    return out;
  }

  /** Handles <auth/>, <response/> and <abort/>. */
  async handle(el: XmlElement): Promise<void> {
    if (el.name === 'abort') {
      this.exchange = undefined;
      return this.fail('aborted', undefined, false);
    }
    if (el.name === 'auth') {
      if (!this.stream.transport.secure && this.server.config.c2s.require_encryption) return this.fail('encryption-required', 'Use STARTTLS first', false);
      if (this.server.limiter.authBlocked(this.stream.transport.remoteAddress)) {
        return this.fail('temporary-auth-failure', 'Too many failed logins from your address; try later', false);
      }
      const name = el.attrs.mechanism ?? '';
      const mech = this.offeredMechanisms().find((m) => m.name === name);
      if (!mech) return this.fail('invalid-mechanism', undefined, false);
      this.exchange = { mechanism: name, session: mech.start(this.context()) };
      return this.step(el.text());
    }
    if (!this.exchange) return this.fail('malformed-request', 'No authentication in progress', false);
    return this.step(el.text());
  }

  private async step(text: string): Promise<void> {
    const trimmed = text.trim();
    let data: Buffer;
    // RFC 6120 §6.4.2: '=' is an explicitly empty response.
    if (trimmed === '' || trimmed === '=') data = Buffer.alloc(0);
    else if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0) {
      this.exchange = undefined;
      return this.fail('incorrect-encoding', undefined, true);
    } else data = Buffer.from(trimmed, 'base64');
    const exchange = this.exchange!;
    this.unsupportedBindingThisAttempt = false;
    const step = await exchange.session.step(data);
    if (!this.stream.stillOpen() || this.exchange !== exchange) return;
    if (step.kind === 'challenge') {
      this.stream.write(x('challenge', { xmlns: NS.SASL }, step.data.length > 0 ? step.data.toString('base64') : '='));
      return;
    }
    this.exchange = undefined;
    // A -PLUS attempt with a binding type we lack is not a password guess: it does not count.
    if (step.kind === 'failure') return this.fail(step.condition, step.text, !this.unsupportedBindingThisAttempt);
    this.stream.write(x('success', { xmlns: NS.SASL }, step.data && step.data.length > 0 ? step.data.toString('base64') : undefined));
    if (this.server.log.isLevelEnabled('info')) this.stream.log().info({ user: step.username, mechanism: exchange.mechanism }, 'authenticated');
    this.stream.succeeded(step.username);
  }

  private fail(condition: string, text: string | undefined, counts: boolean): void {
    const failure = x('failure', { xmlns: NS.SASL }, x(condition));
    if (text) failure.append(x('text', { 'xml:lang': 'en' }, text));
    this.stream.write(failure);
    if (!counts) return;
    this.server.limiter.recordAuthFailure(this.stream.transport.remoteAddress);
    this.failures++;
    if (this.server.log.isLevelEnabled('info')) this.stream.log().info({ condition, failures: this.failures }, 'authentication failed');
    // RFC 6120 §6.4.5: a reasonable number of retries, then a stream error.
    if (this.failures >= this.server.config.c2s.max_auth_failures) this.stream.tooManyFailures();
  }

  private context(): SaslContext {
    const accounts = this.server.store.accounts;
    const host = this.stream.host();
    const tls = this.stream.transport.tlsSocket;
    const types = this.channelBindingTypes();
    return {
      getScramCredentials: async (username: string, hash: ScramHash) => (await accounts.get(host, username))?.credentials[hash] ?? null,
      verifyPassword: (username, password) => this.server.verifyPassword(username, password),
      normalizeUsername: (username) => normalizeLocalpart(username),
      channelBinding: (type) => {
        if (!tls) return null;
        if (type === 'tls-exporter') return tlsExporter(tls);
        return this.server.serverEndPoint;
      },
      channelBindingTypes: types,
      plusOffered: types.length > 0,
      domain: host,
      acceptYFlag: this.clientLacksOurChannelBindings && this.server.config.c2s.channel_binding_fallback,
      onUnsupportedChannelBinding: () => {
        this.clientLacksOurChannelBindings = true;
        this.unsupportedBindingThisAttempt = true;
      },
    };
  }
}
