// The sandbox inbox, for integration testers (DESIGN.md §4 "Sandbox inbox"):
//   GET /push/inbox/{node} → 200 + JSON array, oldest first, of { node, backend, received, payload };
//                            200 [] before the first push; 404 when no sandbox registration has the node.
//   GET /push/inbox        → 200 + { "<node>": [...] } for every sandbox registration (what
//                            `herald push inbox` prints); only for requests from this machine, since
//                            node names are what lets anyone read a node's pushes.
// and the same in-process as the 'sandboxInbox' service.
import type { HttpRequestContext, ModuleContext } from '../../server/module-api.js';
import type { SandboxBackend, SandboxInbox, SandboxPush } from './backends/sandbox.js';
import type { Registrations } from './registrations.js';

export function serveSandboxInbox(m: ModuleContext<unknown>, sandbox: SandboxBackend, registrations: Registrations): void {
  const isSandboxNode = async (node: string) => (await registrations.byNode(node))?.backend === 'sandbox';

  const inbox: SandboxInbox = {
    list: async (node) => ((await isSandboxNode(node)) ? sandbox.pushes(node) : undefined),
    all: async () => {
      const out: Record<string, SandboxPush[]> = {};
      for (const registration of await registrations.all()) {
        if (registration.backend === 'sandbox') out[registration.node] = sandbox.pushes(registration.node);
      }
      return out;
    },
    next: (node, options) => sandbox.next(node, options?.timeoutMs),
    failNext: (node, kind, options) => sandbox.failNext(node, kind, options),
  };
  m.provide('sandboxInbox', inbox);

  m.httpRoute('GET', '/push/inbox', async ({ req, res, rest }: HttpRequestContext) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body, null, 2) + '\n');
    };
    if (rest.length === 0) {
      if (!fromThisMachine(req.socket.remoteAddress, req.headers)) return reply(403, { error: 'the list of nodes is only shown to requests from this machine' });
      return reply(200, await inbox.all());
    }
    const pushes = rest.length === 1 ? await inbox.list(rest[0]!) : undefined;
    if (!pushes) return reply(404, { error: 'no sandbox registration with this node' });
    return reply(200, pushes);
  });
}

/** Loopback, and not relayed by a proxy on this machine (which would make anyone look local). */
function fromThisMachine(address: string | undefined, headers: Record<string, string | string[] | undefined>): boolean {
  const loopback = address === '::1' || address?.startsWith('127.') === true || address?.startsWith('::ffff:127.') === true;
  return loopback && headers['x-forwarded-for'] === undefined && headers.forwarded === undefined;
}
