// Runs 1 and 2 of the Prosody interop suite: herald.test and prosody.test federate, once with
// Server Dialback (each side trusts only a CA that signed nothing, so no certificate can
// authenticate anyone) and once with SASL EXTERNAL (certificates from one throw-away CA both trust,
// and both servers set to refuse anything less: s2s_secure_auth, require_valid_certificates). Each
// run: messages and presence subscriptions both ways; a Prosody user's mod_cloud_notify pushing
// through Herald's app server (registration by ad-hoc commands over s2s, the publish from Prosody
// to push.herald.test); and which mechanism authenticated each stream, by both servers' accounts.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestCa } from '../../wire/s2s-helpers.js';
import type { XmppClient } from '../../../server/client.js';
import { startHerald, type LoggedHerald } from './herald.js';
import { Prosody, sleep } from './prosody.js';
import { HERALD, PASSWORD, PROSODY, track, type RunContext } from './context.js';
import {
  WAIT_MS, ackAndClose, commandIq, enablePush, enableResumption, expectError, goOnline, loginToProsody, registerSandboxDevice, resumeOnProsody, rosterItem, type PushRegistration,
} from './xmpp.js';

/** A second Herald in the dialback run, with the app server's default allow_remote: false. */
const CLOSED = 'closed.test';
/** Prosody's mod_cloud_notify sends this instead of the body (push_notification_important_body). */
const PROSODY_DUMMY_BODY = 'New Message!';

export type AuthMode = 'dialback' | 'sasl-external';

export async function federationRun(ctx: RunContext, mode: AuthMode): Promise<void> {
  const { report, dns } = ctx;
  const external = mode === 'sasl-external';
  report.section(
    external
      ? 'Run 2 — s2s with SASL EXTERNAL (one throw-away CA, trusted by both; both refuse unauthenticated peers)'
      : 'Run 1 — s2s with Server Dialback (each side trusts only a CA that signed nothing)',
  );
  const dir = join(ctx.root, mode);
  mkdirSync(join(dir, 'herald'), { recursive: true });
  const ca = createTestCa('Herald interop CA');
  const unrelatedCa = createTestCa('Interop CA that signed nothing');
  const trustedPem = external ? ca.certPem : unrelatedCa.certPem;
  const heraldLeaf = ca.issue([HERALD, `*.${HERALD}`]);
  const prosodyLeaf = ca.issue([PROSODY]);
  const files = { cert: join(dir, 'herald', 'herald.crt'), key: join(dir, 'herald', 'herald.key'), ca: join(dir, 'herald', 'trusted-ca.pem') };
  writeFileSync(files.cert, heraldLeaf.certPem);
  writeFileSync(files.key, heraldLeaf.keyPem, { mode: 0o600 });
  writeFileSync(files.ca, trustedPem);

  let herald: LoggedHerald | undefined;
  let closed: LoggedHerald | undefined;
  let prosody: Prosody | undefined;
  const clients: XmppClient[] = [];
  try {
    const prosodyPorts = await Prosody.pickPorts();
    const up = await report.check('Herald and Prosody start on loopback ports', async () => {
      herald = await startHerald(
        {
          domain: HERALD,
          config: {
            tls: { cert: files.cert, key: files.key },
            s2s: { ca_file: files.ca, require_valid_certificates: external, host_map: { [PROSODY]: `127.0.0.1:${prosodyPorts.s2s}` }, dns_servers: [dns.address] },
            modules: { appserver: { allow_remote: true } },
          },
        },
        join(dir, 'herald', 'herald.log'),
      );
      const heraldS2s = `127.0.0.1:${herald.s2sPort}`;
      const hostMap = { [HERALD]: heraldS2s, [`push.${HERALD}`]: heraldS2s };
      if (!external) {
        // Its own self-signed certificate: dialback only.
        closed = await startHerald(
          { domain: CLOSED, config: { s2s: { ca_file: files.ca, host_map: { [PROSODY]: `127.0.0.1:${prosodyPorts.s2s}` }, dns_servers: [dns.address] } } },
          join(dir, 'herald', 'closed.log'),
        );
        Object.assign(hostMap, { [CLOSED]: `127.0.0.1:${closed.s2sPort}` });
      }
      prosody = await Prosody.start(
        {
          domain: PROSODY,
          dir: join(dir, 'prosody'),
          certPem: prosodyLeaf.certPem,
          keyPem: prosodyLeaf.keyPem,
          caPem: trustedPem,
          secureAuth: external,
          // push.herald.test too: Prosody publishes there and dialback connects back to it.
          hostMap,
          dnsServer: dns.address,
          users: ['juliet', 'nurse'],
          password: PASSWORD,
        },
        prosodyPorts,
      );
      return `Herald s2s ${herald.s2sPort}; Prosody c2s ${prosody.ports.c2s}, s2s ${prosody.ports.s2s}`;
    });

    let romeo: XmppClient | undefined;
    let juliet: XmppClient | undefined;
    const messaged = await report.check(
      'message herald.test → prosody.test',
      async () => {
        romeo = track(clients, await herald!.login('romeo', { resource: 'pc', password: PASSWORD, timeoutMs: WAIT_MS }));
        juliet = track(clients, await loginToProsody(prosody!, 'juliet', 'balcony'));
        await goOnline(romeo);
        await goOnline(juliet);
        romeo.send(`<message to='juliet@${PROSODY}' type='chat' id='m1'><body>Hello from Herald</body></message>`);
        await juliet.waitFor(`<message from='romeo@${HERALD}/pc' type='chat' id='m1'><body>Hello from Herald</body></message>`, { timeoutMs: WAIT_MS });
      },
      { requires: up },
    );
    await report.check(
      'message prosody.test → herald.test',
      async () => {
        juliet!.send(`<message to='romeo@${HERALD}' type='chat' id='m2'><body>Hello from Prosody</body></message>`);
        await romeo!.waitFor(`<message from='juliet@${PROSODY}/balcony' type='chat' id='m2'><body>Hello from Prosody</body></message>`, { timeoutMs: WAIT_MS });
      },
      { requires: messaged },
    );
    const subscribed = await report.check(
      'presence subscription herald.test → prosody.test (subscribe, subscribed, presence)',
      async () => {
        romeo!.send(`<presence to='juliet@${PROSODY}' type='subscribe'/>`);
        await juliet!.waitFor(`<presence from='romeo@${HERALD}' type='subscribe'/>`, { timeoutMs: WAIT_MS });
        juliet!.send(`<presence to='romeo@${HERALD}' type='subscribed'/>`);
        await romeo!.waitFor(`<presence from='juliet@${PROSODY}' type='subscribed'/>`, { timeoutMs: WAIT_MS });
        // RFC 6121 §3.1.5: the contact's server sends the contact's current presence along.
        await romeo!.waitFor(`<presence from='juliet@${PROSODY}/balcony'/>`, { timeoutMs: WAIT_MS });
        const item = await rosterItem(romeo!, `juliet@${PROSODY}`);
        if (item?.attrs.subscription !== 'to') throw new Error(`Herald roster: expected subscription='to', got ${item?.toString() ?? 'no item'}`);
      },
      { requires: messaged },
    );
    await report.check(
      'presence subscription prosody.test → herald.test (subscribe, subscribed, presence; both rosters say both)',
      async () => {
        juliet!.send(`<presence to='romeo@${HERALD}' type='subscribe'/>`);
        await romeo!.waitFor(`<presence from='juliet@${PROSODY}' type='subscribe'/>`, { timeoutMs: WAIT_MS });
        romeo!.send(`<presence to='juliet@${PROSODY}' type='subscribed'/>`);
        await juliet!.waitFor(`<presence from='romeo@${HERALD}' type='subscribed'/>`, { timeoutMs: WAIT_MS });
        await juliet!.waitFor(`<presence from='romeo@${HERALD}/pc'/>`, { timeoutMs: WAIT_MS });
        const onHerald = await rosterItem(romeo!, `juliet@${PROSODY}`);
        const onProsody = await rosterItem(juliet!, `romeo@${HERALD}`);
        if (onHerald?.attrs.subscription !== 'both') throw new Error(`Herald roster: expected both, got ${onHerald?.toString() ?? 'no item'}`);
        if (onProsody?.attrs.subscription !== 'both') throw new Error(`Prosody roster: expected both, got ${onProsody?.toString() ?? 'no item'}`);
      },
      { requires: subscribed },
    );

    const pushed = await pushOverFederation(ctx, { herald, prosody, requires: messaged, deviceId: `phone-${mode}`, sender: romeo, errorPaths: !external });
    if (mode === 'dialback') await wrongSecret(ctx, { herald, prosody, requires: pushed, sender: romeo });

    await report.check(
      `both servers authenticated each other with ${external ? 'SASL EXTERNAL' : 'dialback'} (Prosody's log, Herald's connections)`,
      async () => authenticationSummary(ctx, herald!, prosody!, mode),
      { requires: messaged },
    );
  } finally {
    for (const client of clients) client.dropTcp();
    await prosody?.stop();
    await herald?.stop();
    await closed?.stop();
  }
}

/**
 * A Prosody user (nurse) registers a sandbox device with Herald's app server over s2s, enables
 * push with Prosody's mod_cloud_notify, and hibernates (mod_smacks); a message from a Herald user
 * then reaches Herald's sandbox inbox as a push that Prosody published to push.herald.test.
 */
async function pushOverFederation({ report }: RunContext, args: { herald?: LoggedHerald; prosody?: Prosody; requires: boolean; deviceId: string; sender?: XmppClient; errorPaths: boolean }): Promise<boolean> {
  let registration: PushRegistration | undefined;
  let nurse: XmppClient | undefined;
  const registered = await report.check(
    'Prosody user registers a device with Herald’s app server (ad-hoc command over s2s, allow_remote)',
    async () => {
      nurse = await loginToProsody(args.prosody!, 'nurse', 'phone');
      // Available, as a phone is: a message to the bare JID then goes to this session (queued while
      // it hibernates) rather than to offline storage; both make mod_cloud_notify push.
      await goOnline(nurse);
      registration = await registerSandboxDevice(nurse, HERALD, args.deviceId);
      if (registration.jid !== `push.${HERALD}`) throw new Error(`push service ${registration.jid}, expected push.${HERALD}`);
      return `node ${registration.node} on ${registration.jid}`;
    },
    { requires: args.requires },
  );
  if (args.errorPaths) {
    await report.check(
      'register-push-apns, a backend Herald has not configured → cancel/service-unavailable over s2s',
      async () => {
        await expectError(nurse!, commandIq(HERALD, 'register-push-apns', 'apns-1', { token: 'ab12', 'device-id': 'iphone' }), 'cancel', 'service-unavailable');
      },
      { requires: registered },
    );
    await report.check(
      `a Herald app server with allow_remote off (the default; ${CLOSED}) → the Prosody user is refused with auth/forbidden`,
      async () => {
        await expectError(nurse!, commandIq(CLOSED, 'register-push-sandbox', 'closed-1', { token: 'closed', 'device-id': 'phone' }), 'auth', 'forbidden');
      },
      { requires: registered },
    );
  }
  let previd = '';
  const hibernated = await report.check(
    'mod_cloud_notify enable with Herald’s push service, then the session hibernates (mod_smacks)',
    async () => {
      await enablePush(nurse!, registration!);
      previd = await enableResumption(nurse!);
      nurse!.dropTcp();
      await args.prosody!.waitForLog(/Session going into hibernation/);
    },
    { requires: registered },
  );
  const pushed = await report.check(
    'message from herald.test to the hibernated Prosody user → push at Herald’s sandbox inbox (Prosody → push.herald.test over s2s)',
    async () => {
      args.sender!.send(`<message to='nurse@${PROSODY}' type='chat' id='for-nurse'><body>Wake up</body></message>`);
      const push = await args.herald!.sandboxInbox.next(registration!.node, { timeoutMs: WAIT_MS });
      const { payload } = push;
      // It went the hibernation way: queued for the session (mod_smacks), not stored offline.
      await args.prosody!.waitForLog(/hibernating since .*, stanza queued/);
      if (payload.messageCount !== 1 || payload.lastMessageBody !== PROSODY_DUMMY_BODY || payload.priority !== 'high') {
        throw new Error(`unexpected summary from Prosody: ${JSON.stringify(payload)}`);
      }
      // The same push as integration testers see it over HTTP (DESIGN.md §4 "Sandbox inbox").
      const response = await fetch(`http://127.0.0.1:${args.herald!.server.ports.http}/push/inbox/${registration!.node}`);
      const inbox = (await response.json()) as unknown[];
      if (response.status !== 200 || inbox.length !== 1) throw new Error(`GET /push/inbox/${registration!.node}: ${response.status} ${JSON.stringify(inbox)}`);
      return `message-count 1, Prosody's placeholder body, priority high; also at GET /push/inbox/{node}`;
    },
    { requires: hibernated },
  );
  await report.check(
    'the Prosody user resumes (XEP-0198) and gets the message',
    async () => {
      const { client, answer } = await resumeOnProsody(args.prosody!, 'nurse', previd);
      try {
        if (answer.name !== 'resumed') throw new Error(`expected <resumed/>, got ${answer.toString()}`);
        await client.waitFor(`<message from='romeo@${HERALD}/pc' id='for-nurse'><body>Wake up</body></message>`, { timeoutMs: WAIT_MS });
        // Acknowledged and a clean </stream>: the session ends instead of hibernating again.
        await ackAndClose(client, answer);
      } finally {
        client.dropTcp();
      }
    },
    { requires: pushed },
  );
  return pushed;
}

/** Error path: an enable with the wrong secret → Herald refuses Prosody's publish; Prosody disables it. */
async function wrongSecret({ report }: RunContext, args: { herald?: LoggedHerald; prosody?: Prosody; requires: boolean; sender?: XmppClient }): Promise<void> {
  await report.check(
    'enable with a wrong secret → Herald answers Prosody’s publish with auth/forbidden, no push arrives',
    async () => {
      const nurse = await loginToProsody(args.prosody!, 'nurse', 'tablet');
      try {
        const registration = await registerSandboxDevice(nurse, HERALD, 'tablet-wrong-secret');
        await enablePush(nurse, { ...registration, secret: 'not-the-secret' });
        await enableResumption(nurse);
        const before = (args.prosody!.log().match(/Session going into hibernation/g) ?? []).length;
        nurse.dropTcp();
        await waitForCount(args.prosody!, /Session going into hibernation/g, before + 1);
        args.sender!.send(`<message to='nurse@${PROSODY}/tablet' type='chat' id='for-tablet'><body>Nobody hears this</body></message>`);
        // mod_cloud_notify counts it against the registration (and disables it after push_max_errors).
        await args.prosody!.waitForLog(/Got error <auth:forbidden:Wrong or missing secret in publish-options> for identifier/);
        const inbox = await args.herald!.sandboxInbox.list(registration.node);
        if (inbox?.length !== 0) throw new Error(`expected no push for ${registration.node}, got ${JSON.stringify(inbox)}`);
      } finally {
        nurse.dropTcp();
      }
    },
    { requires: args.requires },
  );
}

async function waitForCount(prosody: Prosody, pattern: RegExp, count: number): Promise<void> {
  const until = Date.now() + WAIT_MS;
  while ((prosody.log().match(pattern) ?? []).length < count) {
    if (Date.now() > until) throw new Error(`Prosody's log: /${pattern.source}/ did not appear ${count} times`);
    await sleep(50);
  }
}

/**
 * Compares what Prosody logged (plugins/mod_interop_log.lua) and Herald's connection table with
 * the run's mode. Prosody opens one stream per remote domain, so it authenticates herald.test and
 * push.herald.test separately (SASL EXTERNAL for both when the certificate covers them). Herald
 * proves push.herald.test on its herald.test stream with piggy-backed dialback (XEP-0220 §2.6), and
 * Prosody 0.12 verifies that by connect-back even when the certificate covers the subdomain.
 */
function authenticationSummary({ report }: RunContext, herald: LoggedHerald, prosody: Prosody, mode: AuthMode): string {
  const external = mode === 'sasl-external';
  const problems: string[] = [];
  const seen: string[] = [];
  const logged = prosody.s2sAuthentications();
  for (const direction of ['incoming', 'outgoing']) {
    if (!logged.some((entry) => entry.direction === direction && entry.remote === HERALD)) problems.push(`Prosody logged no ${direction} authentication with ${HERALD}`);
  }
  for (const entry of logged) {
    seen.push(`Prosody ${entry.direction} ${entry.direction === 'incoming' ? 'from' : 'to'} ${entry.remote}: ${entry.mechanism}`);
    const piggyBacked = entry.direction === 'incoming' && entry.remote !== HERALD;
    const expected = !external ? ['dialback'] : piggyBacked ? ['dialback', 'EXTERNAL'] : ['EXTERNAL'];
    if (!expected.includes(entry.mechanism)) problems.push(`Prosody ${entry.direction} ${entry.remote}: ${entry.mechanism}, expected ${expected.join(' or ')}`);
  }
  // Prosody's own lines for SASL EXTERNAL (mod_saslauth), as a cross-check of the plugin's.
  const log = prosody.log();
  for (const line of [`Accepting SASL EXTERNAL identity from ${HERALD}`, `SASL EXTERNAL with ${HERALD} succeeded`]) {
    if (log.includes(line) !== external) problems.push(`Prosody's log ${external ? 'lacks' : 'has'} "${line}"`);
  }
  const connections = herald.server.s2s.connections().filter((c) => c.remote === PROSODY);
  for (const direction of ['in', 'out'] as const) {
    const streams = connections.filter((c) => c.direction === direction);
    if (!streams.some((c) => Object.keys(c.authenticated).length > 0)) problems.push(`Herald has no authenticated ${direction === 'in' ? 'incoming' : 'outgoing'} stream with ${PROSODY}`);
    for (const stream of streams) {
      if (!stream.secure) problems.push(`Herald's ${direction === 'in' ? 'incoming' : 'outgoing'} stream with ${PROSODY} is not TLS`);
      for (const [domain, method] of Object.entries(stream.authenticated)) {
        seen.push(direction === 'in' ? `Herald incoming from ${domain}: ${method}` : `Herald outgoing as ${domain}: ${method}`);
        const expected = domain === HERALD || domain === PROSODY ? mode : 'dialback';
        if (method !== expected) problems.push(`Herald ${direction} ${domain}: ${method}, expected ${expected}`);
      }
    }
  }
  const details = seen.join('; ');
  if (problems.length) {
    report.note(`${mode} run: NOT as expected — ${details}`);
    throw new Error(`${problems.join('\n')}\n(${details})`);
  }
  report.note(
    external
      ? 'SASL EXTERNAL run: SASL EXTERNAL both ways between herald.test and prosody.test (and Prosody → push.herald.test); push.herald.test → Prosody by piggy-backed dialback'
      : 'dialback run: Server Dialback both ways, for herald.test and push.herald.test alike',
  );
  return details;
}
