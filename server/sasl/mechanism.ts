// SASL server mechanisms (RFC 4422 as profiled by RFC 6120 §6): the contract between a mechanism and
// the stream layer. A mechanism never sees XML or base64: the stream decodes <auth/>/<response/>
// payloads to bytes, calls step(), and encodes the SaslStep as <challenge/>, <success/> or <failure/>.

/** Hash functions offered for SCRAM (RFC 5802 SHA-1, RFC 7677 SHA-256). */
export type ScramHash = 'sha1' | 'sha256';

/** What the server stores per account and hash: never the password (RFC 5802 §2.2). */
export interface ScramCredentials { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer }

/** Channel-binding types understood by the -PLUS mechanisms (RFC 9266, RFC 5929 §4). */
export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point';

/** RFC 6120 §6.5 failure conditions. */
export type SaslFailureCondition = 'aborted' | 'account-disabled' | 'credentials-expired' | 'encryption-required' | 'incorrect-encoding' | 'invalid-authzid' | 'invalid-mechanism' | 'malformed-request' | 'mechanism-too-weak' | 'not-authorized' | 'temporary-auth-failure';

/** One server turn: send a challenge, or finish. */
export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; data?: Buffer }      // username = normalised localpart that authenticated
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string };

/** What a mechanism may ask of the connection and the account store. */
export interface SaslContext {
  /** Returns stored credentials for a normalised username, or null when no such account. */
  getScramCredentials(username: string, hash: ScramHash): Promise<ScramCredentials | null>;
  /** Verifies a PLAIN password (the implementation derives SCRAM keys from it with the stored salt). */
  verifyPassword(username: string, password: string): Promise<boolean>;
  /** Normalises a SASL username to the account's localpart form; throws on invalid. */
  normalizeUsername(username: string): string;
  /** Channel-binding data for this connection, or null when that type is unavailable (no TLS, TLS 1.2 for exporter, ...). */
  channelBinding(type: ChannelBindingType): Buffer | null;
  /** The channel-binding types this server offers on this connection (advertised in XEP-0440), best first. */
  channelBindingTypes: ChannelBindingType[];
  /** Is the server offering -PLUS mechanisms on this connection (for SCRAM downgrade detection of the 'y' gs2 flag). */
  plusOffered: boolean;
  /**
   * The domain the stream is for. Optional: when set, an authzid must be exactly `user@domain` (or the
   * bare `user`); when absent only the authzid's localpart can be compared.
   */
  domain?: string;
  /**
   * Accept the SCRAM 'y' flag although -PLUS is offered. The stream sets this after the client
   * tried a -PLUS mechanism with a channel-binding type we do not offer (older clients such as
   * Debian's slixmpp 1.8 only know tls-unique, which TLS 1.3 does not have, and then retry with
   * 'y'): that client has seen our -PLUS offer, so its 'y' is not a sign of a stripped one.
   */
  acceptYFlag?: boolean;
  /** Told when a -PLUS attempt names a channel-binding type this connection does not offer. */
  onUnsupportedChannelBinding?(type: string): void;
}

/** One authentication exchange. step() never throws: every problem is a 'failure' step. */
export interface SaslMechanismSession { step(clientData: Buffer): Promise<SaslStep> }

/** A mechanism as offered in <mechanisms/>; start() is called once per <auth/>. */
export interface SaslMechanismFactory { name: string; start(ctx: SaslContext): SaslMechanismSession }

/** Shorthand for a failure step. */
export function saslFailure(condition: SaslFailureCondition, text?: string): SaslStep {
  return text === undefined ? { kind: 'failure', condition } : { kind: 'failure', condition, text };
}

/**
 * Is `authzid` acceptable for the authenticated `username`? Herald has no proxy authorisation, so
 * RFC 6120 §6.4.6 leaves only "the same identity": empty, the bare localpart, or `localpart@domain`.
 * The authzid is a JID, so its localpart goes through the same normalisation as the username.
 */
export function authzidMatches(ctx: SaslContext, authzid: string, username: string): boolean {
  if (authzid === '') return true;
  if (authzid.includes('/')) return false;                  // a full JID is never "the same account"
  const at = authzid.lastIndexOf('@');
  const local = at < 0 ? authzid : authzid.slice(0, at);
  const domain = at < 0 ? undefined : authzid.slice(at + 1);
  if (domain !== undefined && ctx.domain !== undefined && domain.toLowerCase() !== ctx.domain.toLowerCase()) return false;
  if (domain === '') return false;
  try {
    return ctx.normalizeUsername(local) === username;
  } catch {
    return false;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 decoding (RFC 3629): null on invalid bytes, so mechanisms can answer malformed-request. */
export function decodeUtf8(data: Uint8Array): string | null {
  try {
    return utf8.decode(data);
  } catch {
    return null;
  }
}
