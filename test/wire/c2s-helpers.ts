// Shared by the c2s wire tests: raw connections for hostile input, stream headers to order.
import { XmppClient, type ClientConnectOptions } from '../../server/client.js';
import type { TestServer } from '../../bin/testing.js';
import { NS } from '../../server/protocol/ns.js';
import { defineModule } from '../../server/module-api.js';

interface TestContextLike {
  after(fn: () => unknown): void;
}

export const TLS_NS = NS.TLS;
export const SASL_NS = NS.SASL;
export const BIND_NS = NS.BIND;
export const STANZAS_NS = NS.STANZA_ERRORS;
export const STREAMS_NS = NS.STREAMS;

/** A stream header; `undefined` leaves an attribute out. */
export function streamHeader(
  attrs: Record<string, string | undefined> = {},
  options: { streamNs?: string; contentNs?: string } = {},
): string {
  const all: Record<string, string | undefined> = { to: 'localhost', version: '1.0', 'xml:lang': 'en', ...attrs };
  const rendered = Object.entries(all)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}='${v}'`)
    .join('');
  return `<?xml version='1.0'?><stream:stream xmlns='${options.contentNs ?? NS.CLIENT}' xmlns:stream='${options.streamNs ?? NS.STREAMS}'${rendered}>`;
}

/** A TCP (or direct TLS) connection with no stream yet; dropped after the test. */
export async function openRaw(t: TestContextLike, server: TestServer, options: Partial<ClientConnectOptions> = {}): Promise<XmppClient> {
  const client = await XmppClient.open({
    port: options.directTls ? server.directTlsPort : server.port,
    domain: server.domain,
    ...options,
  });
  t.after(() => client.dropTcp());
  return client;
}

/** A connection with the stream open (features received), before STARTTLS. */
export async function connectPlain(t: TestContextLike, server: TestServer, options: Partial<ClientConnectOptions> = {}): Promise<XmppClient> {
  const client = await openRaw(t, server, options);
  await client.openStream();
  return client;
}

/** STARTTLS done (or direct TLS), stream features of the encrypted stream received, not authenticated. */
export async function connectTls(t: TestContextLike, server: TestServer, options: Partial<ClientConnectOptions> = {}): Promise<XmppClient> {
  const client = await connectPlain(t, server, options);
  if (!options.directTls) await client.startTls();
  return client;
}

/** Names of the SASL mechanisms offered in a features element. */
export function mechanismsOf(features: { getChild(name: string, ns?: string): { getChildren(name: string): { text(): string }[] } | undefined }): string[] {
  return features.getChild('mechanisms', NS.SASL)?.getChildren('mechanism').map((m) => m.text()) ?? [];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` is true (server-side state the wire does not show), or fails after `ms`. */
export async function eventually(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A test module with an asynchronous 'stanza:in' hook: the stream then waits on every stanza, so
 * elements queue behind it (as with a blocking list read from storage).
 */
export const slowStanzaIn = defineModule({
  name: 'test-slow-stanza-in',
  setup(m) {
    m.on('stanza:in', async () => {
      await sleep(2);
    });
  },
});
