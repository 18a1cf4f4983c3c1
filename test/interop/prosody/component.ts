// Run 3 of the Prosody interop suite: `herald appserver --component` (bin/appserver.ts), started
// as an admin would start it, attached to Prosody as the XEP-0114 component push.prosody.test. A
// Prosody user finds it (disco), registers a sandbox device there, enables push with it and
// hibernates; a message from another Prosody user then shows up at the app server's sandbox inbox
// (GET /push/inbox/{node} on its --http port). No federation is involved.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestCa } from '../../wire/s2s-helpers.js';
import type { XmppClient } from '../../../server/client.js';
import { Prosody, freePort, sleep } from './prosody.js';
import { PASSWORD, PROSODY, track, type RunContext } from './context.js';
import {
  WAIT_MS, ackAndClose, enablePush, enableResumption, expectResult, goOnline, loginToProsody, registerSandboxDevice, resumeOnProsody, type PushRegistration,
} from './xmpp.js';

const here = dirname(fileURLToPath(import.meta.url));
const HERALD_CLI = join(here, '../../../bin/herald.js');
export async function componentRun(ctx: RunContext): Promise<void> {
  const { report, dns } = ctx;
  report.section('Run 3 — `herald appserver --component` as an XEP-0114 component of Prosody (push.prosody.test)');
  const dir = join(ctx.root, 'component');
  mkdirSync(join(dir, 'appserver'), { recursive: true });
  const cliHasAppserver = existsSync(HERALD_CLI) && existsSync(join(dirname(HERALD_CLI), 'appserver.js'));
  if (!cliHasAppserver) {
    report.skip('app server component serves a Prosody user', 'this build has no `herald appserver` command (bin/appserver.ts)');
    return;
  }
  const ca = createTestCa('Herald interop CA (component run)');
  const leaf = ca.issue([PROSODY]);
  const component = `push.${PROSODY}`;
  const secret = `component-secret-${process.pid}`;
  let prosody: Prosody | undefined;
  let appserver: AppServerProcess | undefined;
  const clients: XmppClient[] = [];
  try {
    const attached = await report.check(
      'Prosody starts with Component "push.prosody.test"; `herald appserver --component` connects to it',
      async () => {
        prosody = await Prosody.start({
          domain: PROSODY,
          dir: join(dir, 'prosody'),
          certPem: leaf.certPem,
          keyPem: leaf.keyPem,
          caPem: ca.certPem,
          secureAuth: false,
          hostMap: {},
          components: { [component]: secret },
          dnsServer: dns.address,
          users: ['juliet', 'nurse'],
          password: PASSWORD,
        });
        appserver = await startAppServerProcess({ prosody, component, secret, dir: join(dir, 'appserver') });
        await prosody.waitForLog(/External component successfully authenticated/);
        return `component port ${prosody.ports.component}, app server HTTP ${appserver.httpPort}`;
      },
    );
    let nurse: XmppClient | undefined;
    const discovered = await report.check(
      'disco#info of push.prosody.test: app-server/herald and pubsub/push with urn:xmpp:push:0',
      async () => {
        nurse = track(clients, await loginToProsody(prosody!, 'nurse', 'phone'));
        await goOnline(nurse);
        const info = await expectResult(nurse, `<iq type='get' to='${component}' id='disco-1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
        const query = info.getChild('query', 'http://jabber.org/protocol/disco#info');
        const identities = query?.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`) ?? [];
        const features = query?.getChildren('feature').map((f) => f.attrs.var) ?? [];
        if (!identities.includes('app-server/herald') || !identities.includes('pubsub/push') || !features.includes('urn:xmpp:push:0')) {
          throw new Error(`disco#info: ${info.toString()}`);
        }
        return identities.join(', ');
      },
      { requires: attached },
    );
    let registration: PushRegistration | undefined;
    let previd = '';
    const hibernated = await report.check(
      'Prosody user registers with the component (register-push-sandbox), enables push there, hibernates',
      async () => {
        registration = await registerSandboxDevice(nurse!, component, 'phone-component');
        if (registration.jid !== component) throw new Error(`push service ${registration.jid}, expected ${component}`);
        await enablePush(nurse!, registration);
        previd = await enableResumption(nurse!);
        nurse!.dropTcp();
        await prosody!.waitForLog(/Session going into hibernation/);
        return `node ${registration.node}`;
      },
      { requires: discovered },
    );
    const pushed = await report.check(
      'message from another Prosody user → push at the app server’s sandbox inbox (GET /push/inbox/{node})',
      async () => {
        const juliet = track(clients, await loginToProsody(prosody!, 'juliet', 'balcony'));
        juliet.send(`<message to='nurse@${PROSODY}' type='chat' id='for-nurse'><body>Wake up</body></message>`);
        const pushes = await pollInbox(appserver!.httpPort, registration!.node);
        await prosody!.waitForLog(/hibernating since .*, stanza queued/);
        const payload = (pushes[0] as { payload?: { messageCount?: number; priority?: string } }).payload;
        if (pushes.length !== 1 || payload?.messageCount !== 1 || payload.priority !== 'high') throw new Error(`inbox: ${JSON.stringify(pushes)}`);
        return 'message-count 1, priority high';
      },
      { requires: hibernated },
    );
    await report.check(
      'the Prosody user resumes and gets the message',
      async () => {
        const { client, answer } = await resumeOnProsody(prosody!, 'nurse', previd);
        track(clients, client);
        if (answer.name !== 'resumed') throw new Error(`expected <resumed/>, got ${answer.toString()}`);
        await client.waitFor(`<message from='juliet@${PROSODY}/balcony' id='for-nurse'/>`, { timeoutMs: WAIT_MS });
        // Acknowledged and a clean </stream>: the session ends instead of hibernating again.
        await ackAndClose(client, answer);
      },
      { requires: pushed },
    );
    await report.check(
      'the app server exits cleanly on SIGTERM',
      async () => {
        const code = await appserver!.stop();
        if (code !== 0) throw new Error(`exit code ${code}\n${appserver!.output()}`);
      },
      { requires: attached },
    );
  } finally {
    for (const client of clients) client.dropTcp();
    await appserver?.stop();
    await prosody?.stop();
  }
}

interface AppServerProcess {
  httpPort: number;
  output(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `herald appserver --component ...` as a child process, as an admin would run it next to Prosody. */
async function startAppServerProcess(args: { prosody: Prosody; component: string; secret: string; dir: string }): Promise<AppServerProcess> {
  const httpPort = await freePort();
  const secretFile = join(args.dir, 'secret.txt');
  writeFileSync(secretFile, `${args.secret}\n`, { mode: 0o600 });
  const child: ChildProcess = spawn(
    process.execPath,
    [HERALD_CLI, 'appserver', '--component', `127.0.0.1:${args.prosody.ports.component}`, '--domain', args.component, '--secret-file', secretFile, '--data-dir', args.dir, '--http', String(httpPort)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((exitCode = code))));
  process.on('exit', () => child.kill('SIGKILL'));
  const ready = await Promise.race([untilHttp(httpPort), exited.then(() => false)]);
  if (!ready) throw new Error(`herald appserver exited (${exitCode}) or never served HTTP:\n${output}`);
  return {
    httpPort,
    output: () => output,
    async stop() {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      writeFileSync(join(args.dir, 'appserver.log'), output);
      return code;
    },
  };
}

async function untilHttp(port: number): Promise<boolean> {
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    try {
      await fetch(`http://127.0.0.1:${port}/push/inbox/none`);
      return true;
    } catch {
      await sleep(100);
    }
  }
  return false;
}

async function pollInbox(port: number, node: string): Promise<unknown[]> {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${port}/push/inbox/${node}`);
    const body = (await response.json()) as unknown;
    if (response.status !== 200) throw new Error(`GET /push/inbox/${node}: ${response.status} ${JSON.stringify(body)}`);
    if (Array.isArray(body) && body.length > 0) return body as unknown[];
    if (Date.now() > until) throw new Error(`no push at GET /push/inbox/${node} within ${WAIT_MS} ms`);
    await sleep(100);
  }
}
