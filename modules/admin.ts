// XEP-0133 Service Administration (1.3.0): ad-hoc commands (XEP-0050) on the server's JID for the
// administrators listed in the global `admins` key: add and delete users, change a password, end a
// user's sessions, user statistics, registered and online users (number and list), and an
// announcement to everyone online. Others neither see the commands nor may run them (forbidden).
// Like Prosody's mod_admin_adhoc, a refusal the admin should read (passwords differ, the account
// exists) completes the command with an error note rather than an IQ error.
// Left out: disabling accounts, getting passwords (only SCRAM keys are stored), last login, active
// and idle users, blacklists, message of the day, welcome message, restart and shutdown.
import { defineModule, makeJid, tryParseJid, x, type Jid, type Session } from '../server/module-api.js';
import { field, formValue, formValues, type DataForm, type FormField } from '../server/protocol/xep0004.js';
import type { AdhocNote, AdhocRequest, AdhocResponse } from './adhoc.js';

export const NS_ADMIN = 'http://jabber.org/protocol/admin';
const MAX_ITEMS_OPTIONS = ['25', '50', '75', '100', '150', '200', 'none'];

export default defineModule({
  name: 'admin',
  xeps: [{ xep: 133, version: '1.3.0', status: 'partial', note: 'users, sessions, statistics, announcements' }],
  depends: ['adhoc', 'roster'],
  setup(m) {
    const adhoc = m.service('adhoc');
    const roster = m.service('roster');
    const isAdmin = (from: Jid) => m.server.admins.has(from.bareString);

    /** A command that asks for a form first (or takes it with the first execute) and then acts. */
    function command(name: string, title: string, fields: FormField[], act: (form: DataForm, request: AdhocRequest) => Promise<AdhocResponse>): void {
      adhoc.register('host', {
        node: `${NS_ADMIN}#${name}`,
        name: title,
        allowed: isAdmin,
        run: (request) => (request.form?.type === 'submit' ? act(request.form, request) : { status: 'executing', form: adminForm('form', title, fields) }),
      });
    }

    /** A command that only reports (XEP-0133 §4.16-4.18: the numbers come at once). */
    function report(name: string, title: string, fields: () => Promise<FormField[]>): void {
      adhoc.register('host', {
        node: `${NS_ADMIN}#${name}`,
        name: title,
        allowed: isAdmin,
        run: async () => ({ status: 'completed', form: adminForm('result', title, await fields()) }),
      });
    }

    // XEP-0133 §4.1
    command('add-user', 'Add User', [
      field('accountjid', 'jid-single', { label: 'The Jabber ID for the account to be added', required: true }),
      field('password', 'text-private', { label: 'The password for this account', required: true }),
      field('password-verify', 'text-private', { label: 'Retype password', required: true }),
    ], async (form) => {
      const username = localAccount(formValue(form, 'accountjid'));
      const password = formValue(form, 'password') ?? '';
      if (username === undefined) return failed(`That is not an account of ${m.host}`);
      if (password === '') return failed('The password must not be empty');
      if (password !== formValue(form, 'password-verify')) return failed('The passwords differ');
      if (!(await m.accounts.create(username, password))) return failed('The account exists already');
      m.log.info({ user: username }, 'account added by an administrator');
      return done(`Added ${username}@${m.host}`);
    });

    // XEP-0133 §4.2
    command('delete-user', 'Delete User', [field('accountjids', 'jid-multi', { label: 'The Jabber ID(s) to delete', required: true })], async (form) => {
      const unknown: string[] = [];
      for (const jid of formValues(form, 'accountjids')) {
        const username = localAccount(jid);
        if (username === undefined || !(await m.accounts.delete(username))) unknown.push(jid);
        else m.log.info({ user: username }, 'account deleted by an administrator');
      }
      return unknown.length > 0 ? failed(`No such account: ${unknown.join(', ')}`) : done('Deleted');
    });

    // XEP-0133 §4.5: a bare JID ends every session of the account, a full JID that one.
    command('end-user-session', 'End User Session', [field('accountjids', 'jid-multi', { label: 'The Jabber ID(s) for which to end sessions', required: true })], async (form) => {
      let ended = 0;
      for (const text of formValues(form, 'accountjids')) {
        for (const session of sessionsOf(tryParseJid(text))) {
          session.close();
          ended++;
        }
      }
      return done(ended === 1 ? 'Ended 1 session' : `Ended ${ended} sessions`);
    });

    // XEP-0133 §4.7
    command('change-user-password', 'Change User Password', [
      field('accountjid', 'jid-single', { label: 'The Jabber ID for this account', required: true }),
      field('password', 'text-private', { label: 'The password for this account', required: true }),
    ], async (form) => {
      const username = localAccount(formValue(form, 'accountjid'));
      const password = formValue(form, 'password') ?? '';
      if (password === '') return failed('The password must not be empty');
      if (username === undefined || !(await m.accounts.setPassword(username, password))) return failed('No such account');
      m.log.info({ user: username }, 'password changed by an administrator');
      return done('Password changed');
    });

    // XEP-0133 §4.10
    command('user-stats', 'Get User Statistics', [field('accountjid', 'jid-single', { label: 'The Jabber ID for statistics', required: true })], async (form) => {
      const username = localAccount(formValue(form, 'accountjid'));
      if (username === undefined || !(await m.accounts.exists(username))) return failed('No such account');
      const sessions = m.sessions.resourcesOf(`${username}@${m.host}`);
      const stats = adminForm('result', 'User Statistics', [
        field('accountjid', 'jid-single', { values: [`${username}@${m.host}`] }),
        field('rostersize', 'text-single', { label: 'Roster size', values: [String((await roster.getItems(username)).length)] }),
        field('onlineresources', 'text-multi', { label: 'Online resources', values: sessions.map((s) => s.resource) }),
        field('ipaddresses', 'text-multi', { label: 'IP addresses', values: [...new Set(sessions.map((s) => s.connection.remoteAddress))] }),
      ]);
      return { status: 'completed', form: stats };
    });

    // XEP-0133 §4.16, §4.18
    report('get-registered-users-num', 'Get Number of Registered Users', async () => [
      field('registeredusersnum', 'text-single', { label: 'The number of registered users', values: [String((await m.accounts.list()).length)] }),
    ]);
    report('get-online-users-num', 'Get Number of Online Users', async () => [
      field('onlineusersnum', 'text-single', { label: 'The number of online users', values: [String(onlineUsers().length)] }),
    ]);

    // XEP-0133 §4.20, §4.21: with max_items in a first stage.
    const maxItems = field('max_items', 'list-single', { label: 'Maximum number of items to report', options: MAX_ITEMS_OPTIONS.map((value) => ({ value })) });
    command('get-registered-users-list', 'Get List of Registered Users', [maxItems], async (form) => {
      const jids = (await m.accounts.list()).map((username) => `${username}@${m.host}`);
      return listResult('Registered Users', 'registereduserjids', limit(jids, formValue(form, 'max_items')));
    });
    command('get-online-users-list', 'Get List of Online Users', [maxItems], async (form) => listResult('Online Users', 'onlineuserjids', limit(onlineUsers(), formValue(form, 'max_items'))));

    // XEP-0133 §4.23: a headline from the server to every online session.
    command('announce', 'Send Announcement to Online Users', [
      field('subject', 'text-single', { label: 'Subject' }),
      field('announcement', 'text-multi', { label: 'Announcement', required: true }),
    ], async (form) => {
      const body = formValues(form, 'announcement').join('\n');
      if (body.trim() === '') return failed('The announcement is empty');
      const subject = formValue(form, 'subject');
      let sent = 0;
      for (const session of m.sessions.all()) {
        if (session.state === 'closed') continue;
        m.route(x('message', { type: 'headline', from: m.host, to: session.fullJid }, subject ? x('subject', null, subject) : undefined, x('body', null, body)));
        sent++;
      }
      m.log.info({ sessions: sent }, 'announcement sent');
      return done(sent === 1 ? 'Sent to 1 session' : `Sent to ${sent} sessions`);
    });

    /** The localpart of one of our accounts named by a bare JID (or a bare username), else undefined. */
    function localAccount(text: string | undefined): string | undefined {
      const jid = text === undefined ? null : tryParseJid(text.includes('@') ? text : safeJid(text));
      if (!jid || jid.domain !== m.host || jid.local === '' || jid.resource !== '') return undefined;
      return jid.local;
    }

    function safeJid(local: string): string {
      try {
        return makeJid(local, m.host).toString();
      } catch {
        return '';
      }
    }

    function sessionsOf(jid: Jid | null): Session[] {
      if (!jid || jid.domain !== m.host || jid.local === '') return [];
      const sessions = m.sessions.resourcesOf(jid.bareString);
      return jid.resource === '' ? sessions : sessions.filter((session) => session.resource === jid.resource);
    }

    function onlineUsers(): string[] {
      const users = new Set<string>();
      for (const session of m.sessions.all()) if (session.state !== 'closed') users.add(session.bareJid);
      return [...users].sort();
    }
  },
});

function adminForm(type: 'form' | 'result', title: string, fields: FormField[]): DataForm {
  return { type, title, fields: [field('FORM_TYPE', 'hidden', { values: [NS_ADMIN] }), ...fields] };
}

function listResult(title: string, name: string, jids: string[]): AdhocResponse {
  return { status: 'completed', form: adminForm('result', title, [field(name, 'jid-multi', { values: jids })]) };
}

function limit(items: string[], maxItems: string | undefined): string[] {
  const max = Number(maxItems);
  return maxItems === undefined || maxItems === 'none' || !Number.isInteger(max) || max <= 0 ? items : items.slice(0, max);
}

function done(text: string): AdhocResponse {
  return { status: 'completed', note: note('info', text) };
}

function failed(text: string): AdhocResponse {
  return { status: 'completed', note: note('error', text) };
}

function note(type: AdhocNote['type'], text: string): AdhocNote {
  return { type, text };
}
