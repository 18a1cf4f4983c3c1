// Helpers for the XEP-0114 component tests: a raw test component (XmppClient speaking
// jabber:component:accept, so tests can send anything) and a Herald with components configured.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startServer, XmppClient, type TestServer } from '../../bin/testing.js';
import { handshakeDigest } from '../../server/protocol/xep0114.js';
import type { ConfigInput } from '../../conf/schema.js';

export const SECRET = 'sesame';
export const GATEWAY = 'gw.localhost';

/** A Herald (domain localhost) with the component gw.localhost (secret SECRET) and any others given. */
export async function componentServer(
  t: { after(fn: () => unknown): void },
  components: Record<string, { secret: string }> = {},
  config: ConfigInput = {},
): Promise<TestServer> {
  return startServer(t, { config: { ...config, components: { [GATEWAY]: { secret: SECRET }, ...components } } });
}

/** A TCP connection to the component port with `header` sent (default: a proper one for `domain`). */
export async function openComponentStream(t: { after(fn: () => unknown): void }, server: TestServer, domain: string, header?: string): Promise<XmppClient> {
  const client = await XmppClient.open({ port: server.componentPort, domain });
  t.after(() => client.dropTcp());
  client.sendRaw(header ?? `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`);
  return client;
}

/** The server's stream header (polling: XmppClient waits for features, which component streams lack). */
export async function streamHeader(client: XmppClient, timeoutMs = 3000): Promise<NonNullable<XmppClient['header']>> {
  const deadline = Date.now() + timeoutMs;
  while (!client.header) {
    if (Date.now() > deadline || client.closed) throw new Error('no stream header from the server');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return client.header;
}

/** Opens the stream and sends the handshake for `secret`; returns the client (answer not read yet). */
export async function handshake(t: { after(fn: () => unknown): void }, server: TestServer, domain: string, secret: string): Promise<XmppClient> {
  const client = await openComponentStream(t, server, domain);
  const header = await streamHeader(client);
  assert.ok(header.attrs.id, 'the server names the stream');
  client.send(`<handshake>${handshakeDigest(header.attrs.id, secret)}</handshake>`);
  return client;
}

/** A component connected and authenticated for `domain`. */
export async function connectComponent(t: { after(fn: () => unknown): void }, server: TestServer, domain = GATEWAY, secret = SECRET): Promise<XmppClient> {
  const client = await handshake(t, server, domain, secret);
  await client.expect(`<handshake/>`, { strict: true });
  return client;
}

/** A TCP port that was free a moment ago (for listeners that cannot be given port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` is true. */
export async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
