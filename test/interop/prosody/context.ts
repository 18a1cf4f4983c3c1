// What the runs of the Prosody interop suite share: the report, the run's folder, the DNS stub,
// and the names used on both sides.

import type { DnsStub } from '../../wire/s2s-helpers.js';
import type { XmppClient } from '../../../server/client.js';
import type { CheckReport } from '../checks.js';

export const HERALD = 'herald.test';
export const PROSODY = 'prosody.test';
/** Every account on either side. */
export const PASSWORD = 'interop-password';

export interface RunContext {
  report: CheckReport;
  /** The suite's temporary folder; each run makes its own below it. */
  root: string;
  /** Where both servers' DNS questions go (loopback, NXDOMAIN for all). */
  dns: DnsStub;
}

/** Remembers a client so the run can drop it at the end, whatever failed. */
export function track(clients: XmppClient[], client: XmppClient): XmppClient {
  clients.push(client);
  return client;
}
