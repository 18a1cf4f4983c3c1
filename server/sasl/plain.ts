// PLAIN (RFC 4616), server side: message = [authzid] NUL authcid NUL passwd, all UTF-8. The password
// check is ctx.verifyPassword's (it derives SCRAM keys with the stored salt: no plaintext is stored).
// This mechanism knows nothing of TLS: the stream layer offers it only on encrypted streams.

import { authzidMatches, decodeUtf8, saslFailure } from './mechanism.js';
import type { SaslContext, SaslMechanismFactory, SaslMechanismSession, SaslStep } from './mechanism.js';
import { saslprep } from './saslprep.js';

const MAX_MESSAGE_BYTES = 8192;

/** The PLAIN mechanism factory. */
export const plain: SaslMechanismFactory = { name: 'PLAIN', start: (ctx) => new PlainSession(ctx) };

class PlainSession implements SaslMechanismSession {
  private state: 'start' | 'waiting' | 'done' = 'start';

  constructor(private readonly ctx: SaslContext) {}

  async step(clientData: Buffer): Promise<SaslStep> {
    const state = this.state;
    this.state = 'done';
    if (state === 'done') return saslFailure('malformed-request', 'exchange already finished');
    if (state === 'start' && clientData.length === 0) {
      // RFC 6120 §6.4.2: no initial response, so an empty challenge asks for it.
      this.state = 'waiting';
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    try {
      return await this.verify(clientData);
    } catch {
      return saslFailure('temporary-auth-failure');   // the account store failed; mechanisms never throw
    }
  }

  private async verify(data: Buffer): Promise<SaslStep> {
    if (data.length > MAX_MESSAGE_BYTES) return saslFailure('malformed-request', 'message too long');
    const text = decodeUtf8(data);
    if (text === null) return saslFailure('malformed-request', 'not UTF-8');
    const parts = text.split('\0');
    // RFC 4616 §2: exactly two NULs; authcid and passwd are 1*SAFE (non-empty).
    if (parts.length !== 3) return saslFailure('malformed-request', 'expected authzid NUL authcid NUL passwd');
    const [authzid = '', authcid = '', password = ''] = parts;
    if (authcid === '' || password === '') return saslFailure('malformed-request', 'empty authcid or password');
    let username: string;
    try {
      username = this.ctx.normalizeUsername(saslprep(authcid));
      saslprep(password);                            // RFC 4616 §2: a password SASLprep refuses can't match
    } catch {
      return saslFailure('not-authorized');
    }
    if (username === '') return saslFailure('not-authorized');
    // RFC 6120 §6.4.6: an authzid must name the account itself; Herald has no proxy authorisation.
    if (!authzidMatches(this.ctx, authzid, username)) return saslFailure('invalid-authzid');
    if (!(await this.ctx.verifyPassword(username, password))) return saslFailure('not-authorized');
    return { kind: 'success', username };
  }
}
