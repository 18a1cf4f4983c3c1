// XEP-0050 Ad-Hoc Commands (1.3.0): the command machinery other modules use (the push app
// server's register-push-*, server administration). Commands live on the server's JID or on a
// component's; they are listed under the 'http://jabber.org/protocol/commands' disco node, and run
// in one stage (a form submitted with the first execute, as historic clients do) or several (an
// execute without a form gets the form back). Sessions expire after ten minutes.
import { randomBytes } from 'node:crypto';
import { defineModule, x, type Jid, type LocalComponent, type MaybePromise, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { buildForm, parseForm, type DataForm } from '../server/protocol/xep0004.js';
import { stanzaError } from '../server/errors.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const SESSION_TTL_MS = 10 * 60_000;
const MAX_SESSIONS = 10_000;

export type AdhocAction = 'execute' | 'next' | 'complete' | 'prev';
export interface AdhocNote {
  type: 'info' | 'warn' | 'error';
  text: string;
}

export interface AdhocRequest {
  from: Jid;
  action: AdhocAction;
  /** The submitted form, when the client sent one. */
  form: DataForm | undefined;
  /** Survives between the stages of one session. */
  state: Record<string, unknown>;
  stanza: XmlElement;
}

export type AdhocResponse =
  | { status: 'executing'; form: DataForm; actions?: ('next' | 'prev' | 'complete')[]; note?: AdhocNote }
  | { status: 'completed'; form?: DataForm; note?: AdhocNote };

export interface AdhocCommand {
  node: string;
  name: string;
  /** Who may list and run it (default: anyone). */
  allowed?(from: Jid): MaybePromise<boolean>;
  /** false: runs, but is left out of the command list (the app server's unconfigured backends). */
  listed?: boolean;
  run(request: AdhocRequest): MaybePromise<AdhocResponse>;
}

export interface AdhocService {
  /** Offers a command on the server's own JID ('host') or on a component's. */
  register(target: 'host' | LocalComponent, command: AdhocCommand): void;
}

declare module '../server/module-api.js' {
  interface Services {
    adhoc: AdhocService;
  }
}

interface CommandSession {
  command: AdhocCommand;
  owner: string;
  state: Record<string, unknown>;
  expires: number;
}

export default defineModule({
  name: 'adhoc',
  xeps: [{ xep: 50, version: '1.3.0', status: 'complete' }],
  depends: ['disco'],
  setup(m) {
    const disco = m.service('disco');
    const sessions = new Map<string, CommandSession>();
    const byTarget = new Map<string, Map<string, AdhocCommand>>();

    const listFor = async (commands: Map<string, AdhocCommand>, jid: string, from: Jid): Promise<XmlElement> => {
      const query = x('query', { xmlns: NS.DISCO_ITEMS, node: NS_COMMANDS });
      for (const command of commands.values()) {
        if (command.listed === false || (command.allowed && !(await command.allowed(from)))) continue;
        query.append(x('item', { jid, node: command.node, name: command.name }));
      }
      return query;
    };
    const commandInfo = async (command: AdhocCommand | undefined, from: Jid): Promise<XmlElement | null> => {
      if (!command || (command.allowed && !(await command.allowed(from)))) return null;
      return x(
        'query',
        { xmlns: NS.DISCO_INFO, node: command.node },
        x('identity', { category: 'automation', type: 'command-node', name: command.name }),
        x('feature', { var: NS_COMMANDS }),
        x('feature', { var: NS.DATA_FORMS }),
      );
    };

    const execute = async (commands: Map<string, AdhocCommand>, stanza: XmlElement, payload: XmlElement, from: Jid): Promise<XmlElement> => {
      const node = payload.attrs.node ?? '';
      const action = payload.attrs.action ?? 'execute';
      const sessionid = payload.attrs.sessionid;
      purgeExpired();
      let session: CommandSession | undefined;
      let id = sessionid;
      if (sessionid !== undefined) {
        session = sessions.get(sessionid);
        if (!session || session.owner !== from.toString() || session.command.node !== node) {
          throw stanzaError.badRequest('Unknown or expired session', { app: x('bad-sessionid', { xmlns: NS_COMMANDS }) });
        }
      } else {
        const command = commands.get(node);
        if (!command) throw stanzaError.itemNotFound('No such command');
        if (command.allowed && !(await command.allowed(from))) throw stanzaError.forbidden();
        if (sessions.size >= MAX_SESSIONS) throw stanzaError.resourceConstraint('Too many command sessions');
        id = randomBytes(9).toString('base64url');
        session = { command, owner: from.toString(), state: {}, expires: Date.now() + SESSION_TTL_MS };
      }
      if (action === 'cancel') {
        sessions.delete(id!);
        return x('command', { xmlns: NS_COMMANDS, node, sessionid: id, status: 'canceled' });
      }
      if (action !== 'execute' && action !== 'next' && action !== 'complete' && action !== 'prev') {
        throw stanzaError.badRequest('Unknown action', { app: x('malformed-action', { xmlns: NS_COMMANDS }) });
      }
      const formEl = payload.getChild('x', NS.DATA_FORMS);
      const form = formEl ? parseForm(formEl) : undefined;
      if (form?.type === 'cancel') {
        sessions.delete(id!);
        return x('command', { xmlns: NS_COMMANDS, node, sessionid: id, status: 'canceled' });
      }
      const response = await session.command.run({ from, action, form, state: session.state, stanza });
      const out = x('command', { xmlns: NS_COMMANDS, node, sessionid: id, status: response.status });
      if (response.status === 'executing') {
        session.expires = Date.now() + SESSION_TTL_MS;
        sessions.set(id!, session);
        const actions = response.actions ?? ['complete'];
        out.append(x('actions', { execute: actions.includes('next') ? 'next' : 'complete' }, ...actions.map((a) => x(a))));
      } else {
        sessions.delete(id!);
      }
      if (response.note) out.append(x('note', { type: response.note.type }, response.note.text));
      if (response.form) out.append(buildForm(response.form));
      return out;
    };

    function purgeExpired(): void {
      const now = Date.now();
      for (const [id, session] of sessions) if (session.expires < now) sessions.delete(id);
    }

    const hostCommands = new Map<string, AdhocCommand>();
    m.feature(NS_COMMANDS);
    disco.hostNode(NS_COMMANDS, { items: (from) => listFor(hostCommands, m.host, from) });
    m.iq.set(NS_COMMANDS, 'command', ({ stanza, payload, from }) => execute(hostCommands, stanza, payload, from), { scope: 'host' });

    m.provide('adhoc', {
      register(target, command) {
        if (target === 'host') {
          if (hostCommands.has(command.node)) throw new Error(`command ${command.node} is registered twice`);
          hostCommands.set(command.node, command);
          disco.hostNode(command.node, { info: (from) => commandInfo(command, from) });
          return;
        }
        let commands = byTarget.get(target.domain);
        if (!commands) {
          const own = new Map<string, AdhocCommand>();
          commands = own;
          byTarget.set(target.domain, own);
          target.iq('set', NS_COMMANDS, 'command', ({ stanza, payload, from }) => execute(own, stanza, payload, from));
          const previousInfo = target.infoNode;
          target.infoNode = (node, from) => (own.has(node) ? commandInfo(own.get(node), from) : previousInfo ? previousInfo(node, from) : null);
          const previousItems = target.itemsQuery;
          target.itemsQuery = (node, from) => {
            if (node === NS_COMMANDS) return listFor(own, target.domain, from);
            if (previousItems) return previousItems(node, from);
            if (node !== undefined) return null;
            const query = x('query', { xmlns: NS.DISCO_ITEMS });
            for (const item of target.items) query.append(x('item', { jid: item.jid, name: item.name, node: item.node }));
            return query;
          };
        }
        if (commands.has(command.node)) throw new Error(`command ${command.node} is registered twice on ${target.domain}`);
        commands.set(command.node, command);
      },
    });
  },
});
