// Accounts in a store: the one place where a password becomes SCRAM keys. The running server
// (SASL, in-band registration) and the CLI (`herald adduser` / `passwd`, which write to the same
// SQLite file while the server runs) both go through here, so a login works whoever created it.

import type { Store } from '../storage/store.js';
import type { ScramCredentials, ScramHash } from './sasl/mechanism.js';
import { deriveScramCredentials } from './sasl/scram.js';
import { saslprep } from './sasl/saslprep.js';
import { normalizeLocalpart } from './jid.js';

/** PBKDF2 iterations for new passwords (RFC 7677 §4: at least 4096). */
export const DEFAULT_SCRAM_ITERATIONS = 4096;

export type AccountCredentials = Partial<Record<ScramHash, ScramCredentials>>;

/**
 * SCRAM-SHA-1 and SCRAM-SHA-256 keys for a password, so clients of either hash can log in.
 * Throws SaslprepError when the password holds characters SASLprep prohibits or, being a stored
 * string (RFC 3454 §7), unassigned code points.
 */
export function deriveAccountCredentials(password: string, iterations = DEFAULT_SCRAM_ITERATIONS): AccountCredentials {
  const prepared = saslprep(password, { allowUnassigned: false });
  return {
    sha1: deriveScramCredentials('sha1', prepared, undefined, iterations),
    sha256: deriveScramCredentials('sha256', prepared, undefined, iterations),
  };
}

/**
 * Creates an account directly in a store (no running server needed). The username is normalised
 * as a JID localpart (RFC 7622 §3.3; throws JidError when it is not one). `created` is false when
 * the account exists already.
 */
export async function createAccountInStore(
  store: Store, host: string, username: string, password: string, iterations = DEFAULT_SCRAM_ITERATIONS,
): Promise<{ username: string; created: boolean }> {
  const local = normalizeLocalpart(username);
  const created = await store.accounts.create(host, local, deriveAccountCredentials(password, iterations));
  return { username: local, created };
}

/** Replaces an account's password in a store; false when there is no such account. */
export async function setPasswordInStore(
  store: Store, host: string, username: string, password: string, iterations = DEFAULT_SCRAM_ITERATIONS,
): Promise<boolean> {
  return store.accounts.setCredentials(host, normalizeLocalpart(username), deriveAccountCredentials(password, iterations));
}
