// XEP-0077 In-Band Registration (2.4): creating an account from the client before logging in
// (off unless `allow_registration`), and, once logged in, reading one's registration, changing the
// password and deleting the account. Like Prosody's mod_register: the legacy <username/> and
// <password/> fields plus an equivalent data form (XEP-0004), a per-IP throttle on new accounts,
// and registration only over an encrypted stream when c2s.require_encryption (the core refuses any
// pre-TLS element but STARTTLS then). Other modules may vouch for a registration on the
// 'register:authorize' hook (invitation tokens, XEP-0445, in modules/invites.ts), which opens it for
// that connection even when allow_registration is off.
// Left out: CAPTCHAs (XEP-0158), extra fields (email, ...), redirection to a web page (§5), and
// registration with services other than the server itself.

import { z } from 'zod';
import { defineModule, duration, makeJid, x, type IqRequest, type XmlElement } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { defineErrors, stanzaError, type StanzaError } from '../server/errors.js';

/**
 * 'register:authorize': an in-band registration before login, looked at before the form is given or
 * anything is checked (`username` undefined) and again just before `username` is created. A handler
 * returns STOP to vouch for it (the invites module, for a valid token): that opens registration even
 * without allow_registration. It may set `refusal` to refuse it (a name reserved by an invitation).
 */
export interface RegisterAuthorizeEvent {
  /** The client connection (PreAuthIqRequest.stream). */
  stream: object;
  payload: XmlElement;
  username: string | undefined;
  refusal?: StanzaError;
}

/** What the register module offers others (`m.service('register')`). */
export interface RegisterService {
  /**
   * Some registrations are vouched for (invitations): announce in-band registration (XEP-0077 §8)
   * even without allow_registration, as clients such as Conversations look for the stream feature
   * before they send an invitation token.
   */
  announceForVouchers(): void;
}

declare module '../server/module-api.js' {
  interface Services {
    register: RegisterService;
  }
}

declare module '../server/hooks.js' {
  interface Hooks {
    'register:authorize': RegisterAuthorizeEvent;
    /** An account was created by in-band registration on this connection (after 'user:created'). */
    'register:registered': { stream: object; username: string };
  }
}

const INSTRUCTIONS = 'Choose a username and password for use with this service.';

const errors = defineErrors({
  missingFields: ['modify', 'not-acceptable', 'Both a username and a password are required'],
  badUsername: ['modify', 'not-acceptable', 'The requested username is invalid'],
  badPassword: ['modify', 'not-acceptable', 'The password contains characters that are not allowed'],
  conflict: ['cancel', 'conflict', 'The requested username already exists'],
  throttled: ['wait', 'policy-violation', 'Too many registrations from this IP address recently'],
  notRegistered: ['auth', 'registration-required', 'Log in to cancel a registration'],
  passwordChangeDisabled: ['cancel', 'not-allowed', 'Password changes are disabled on this server'],
  insecureChannel: ['modify', 'not-authorized', 'Password changes need an encrypted connection'],
  wrongUsername: ['modify', 'bad-request', 'The username is not that of this account'],
});

export default defineModule({
  name: 'register',
  xeps: [{ xep: 77, version: '2.4', status: 'partial', note: 'no CAPTCHA, no extra fields, no redirection' }],
  config: z
    .object({
      allow_registration: z.boolean().default(false).describe('Let anyone create an account from their client before logging in (XEP-0077)'),
      registration_throttle: z.number().int().min(0).default(3).describe('New accounts one IP address may register per registration_throttle_period (0: no limit; limits.exempt addresses are not counted)'),
      registration_throttle_period: duration().prefault('1 hour').describe('Window for registration_throttle'),
      min_password_length: z.number().int().min(1).max(1024).default(6).describe('Shortest password accepted at registration and password change, in characters'),
      password_change: z.boolean().default(true).describe('Let logged-in users change their password in-band (XEP-0077 §3.3)'),
    })
    .strict(),
  setup(m) {
    const config = m.config;
    /** Recent registration times per IP address, for the throttle (memory only: a restart forgets). */
    const recentByAddress = new Map<string, number[]>();

    m.feature(NS.REGISTER);

    let vouchersAnnounced = false;
    m.provide('register', { announceForVouchers: () => void (vouchersAnnounced = true) });
    // XEP-0077 §8: the stream feature says registration is possible before authentication.
    m.streamFeature('pre-auth', () => (config.allow_registration || vouchersAnnounced ? x('register', { xmlns: NS.REGISTER_FEATURE }) : undefined));
    // Without allow_registration, only registrations another module vouches for on the
    // 'register:authorize' hook (an invitation token, XEP-0445) go ahead; the others get
    // service-unavailable, as XEP-0077 §3.1 asks of a host that "does not support in-band registration",
    // before anything else is looked at (so a closed server does not even reveal which names are taken).
    m.preAuthIq('get', NS.REGISTER, 'query', async ({ payload, stream }) => {
      if (!config.allow_registration && !(await authorize(stream, payload, undefined))) throw stanzaError.serviceUnavailable();
      return registrationForm();
    });
    m.preAuthIq('set', NS.REGISTER, 'query', async ({ payload, remoteAddress, stream }) => {
      if (!config.allow_registration && !(await authorize(stream, payload, undefined))) throw stanzaError.serviceUnavailable();
      // XEP-0077 §3.2 via Prosody: nothing to cancel before logging in.
      if (payload.getChild('remove')) throw errors.notRegistered();
      const { username, password } = submittedFields(payload);
      // XEP-0077 §3.1: "If the requesting entity does not provide all of the requested information
      // … (this includes providing an empty password element) … MUST return a <not-acceptable/> error".
      if (!username || !password) throw errors.missingFields();
      const local = localpartOf(username, m.host);
      checkPassword(password, config.min_password_length);
      if (throttled(remoteAddress)) {
        m.log.info({ ip: remoteAddress }, 'registration throttled');
        throw errors.throttled();
      }
      if (await m.accounts.exists(local)) throw errors.conflict();
      // Asked again with the username, once nothing else can refuse: a voucher uses its token up here.
      if (!(await authorize(stream, payload, local)) && !config.allow_registration) throw stanzaError.serviceUnavailable();
      if (!(await refusingBadPasswords(() => m.accounts.create(local, password)))) throw errors.conflict(); // lost a race
      recordRegistration(remoteAddress);
      m.log.info({ user: local, ip: remoteAddress }, 'account registered in-band');
      await m.fire('register:registered', { stream, username: local });
    });

    /** Runs 'register:authorize': true when a module vouched for the registration; throws its refusal. */
    async function authorize(stream: object, payload: XmlElement, username: string | undefined): Promise<boolean> {
      const event: RegisterAuthorizeEvent = { stream, payload, username };
      const vouched = await m.fire('register:authorize', event);
      if (event.refusal) throw event.refusal;
      return vouched;
    }

    // Once logged in: to the account itself (no 'to') or, as XEP-0077's examples do, to the server.
    for (const scope of ['self', 'host'] as const) {
      m.iq.get(NS.REGISTER, 'query', (request) => registeredInfo(accountOf(request)), { scope });
      m.iq.set(NS.REGISTER, 'query', (request) => (request.payload.getChild('remove') ? removeAccount(request) : changePassword(request)), { scope });
    }

    async function removeAccount(request: IqRequest): Promise<undefined> {
      const username = accountOf(request);
      // XEP-0077 §3.2: bad-request when "the <remove/> element was not the only child element".
      if (request.payload.elements().length !== 1) throw stanzaError.badRequest('<remove/> must be the only child of <query/>');
      if (!(await m.accounts.exists(username))) throw errors.notRegistered();
      // XEP-0077 §3.2: the server answers, then "SHOULD … return a <not-authorized/> stream error and
      // terminate all active sessions": so the result goes out before accounts.delete closes the stream.
      request.session?.sendRaw(resultFor(request));
      await m.accounts.delete(username);
      m.log.info({ user: username }, 'account removed in-band');
      return undefined; // the router's own result finds the stream closed and is dropped
    }

    async function changePassword(request: IqRequest): Promise<undefined> {
      const username = accountOf(request);
      if (!config.password_change) throw errors.passwordChangeDisabled();
      // XEP-0077 §3.3: not-authorized when "the server … does not consider the channel safe enough".
      if (request.session && !request.session.connection.secure) throw errors.insecureChannel();
      const { username: named, password } = submittedFields(request.payload);
      // XEP-0077 §3.3: bad-request when the request "does not contain complete information"; an
      // empty password "MUST NOT" become the new one.
      if (!named || !password) throw stanzaError.badRequest('Both <username/> and <password/> are required');
      if (!namesAccount(named, username, m.host)) throw errors.wrongUsername();
      checkPassword(password, config.min_password_length);
      await refusingBadPasswords(() => m.accounts.setPassword(username, password));
      m.log.info({ user: username }, 'password changed in-band');
      return undefined;
    }

    function throttled(address: string): boolean {
      if (config.registration_throttle === 0 || m.isExemptAddress(address)) return false;
      return recentRegistrations(address).length >= config.registration_throttle;
    }

    function recordRegistration(address: string): void {
      if (config.registration_throttle === 0 || m.isExemptAddress(address)) return;
      recentByAddress.set(address, [...recentRegistrations(address), Date.now()]);
    }

    function recentRegistrations(address: string): number[] {
      const cutoff = Date.now() - config.registration_throttle_period;
      const recent = (recentByAddress.get(address) ?? []).filter((time) => time > cutoff);
      if (recent.length === 0) recentByAddress.delete(address);
      else recentByAddress.set(address, recent);
      return recent;
    }

    // Forget addresses whose window has passed, so the map cannot grow without bound.
    m.every(Math.max(60_000, config.registration_throttle_period), () => {
      for (const address of [...recentByAddress.keys()]) recentRegistrations(address);
    });
  },
});

/** XEP-0077 §3.1 example 2, plus the same fields as a data form (§4, FORM_TYPE jabber:iq:register). */
function registrationForm(): XmlElement {
  return x(
    'query',
    { xmlns: NS.REGISTER },
    x('instructions', null, INSTRUCTIONS),
    x('username'),
    x('password'),
    x(
      'x',
      { xmlns: NS.DATA_FORMS, type: 'form' },
      x('title', null, 'Creating a new account'),
      x('instructions', null, INSTRUCTIONS),
      x('field', { type: 'hidden', var: 'FORM_TYPE' }, x('value', null, NS.REGISTER)),
      x('field', { type: 'text-single', var: 'username', label: 'Username' }, x('required')),
      x('field', { type: 'text-private', var: 'password', label: 'Password' }, x('required')),
    ),
  );
}

/** XEP-0077 §3.1 for a logged-in user: <registered/> and the current details (never the password). */
function registeredInfo(username: string): XmlElement {
  return x('query', { xmlns: NS.REGISTER }, x('registered'), x('username', null, username), x('password'));
}

/** Username and password from the legacy fields or, when present, a submitted data form. */
function submittedFields(query: XmlElement): { username: string | undefined; password: string | undefined } {
  const form = query.getChild('x', NS.DATA_FORMS);
  if (form && form.attrs.type === 'submit') {
    const value = (name: string) => form.getChildren('field').find((field) => field.attrs.var === name)?.getChildText('value');
    return { username: nonEmpty(value('username')), password: nonEmpty(value('password')) };
  }
  return { username: nonEmpty(query.getChildText('username')), password: nonEmpty(query.getChildText('password')) };
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

/** The requested username as a localpart of ours: RFC 7622 rules, like any JID; else not-acceptable. */
function localpartOf(username: string, host: string): string {
  try {
    return makeJid(username.trim(), host).local;
  } catch {
    throw errors.badUsername();
  }
}

/** A password change names the account as a localpart or, as some clients send it, as a bare JID. */
function namesAccount(named: string, username: string, host: string): boolean {
  const text = named.trim();
  const at = text.lastIndexOf('@');
  try {
    if (at === -1) return makeJid(text, host).local === username;
    const jid = makeJid(text.slice(0, at), text.slice(at + 1));
    return jid.local === username && jid.domain === host;
  } catch {
    return false;
  }
}

function checkPassword(password: string, minLength: number): void {
  if ([...password].length < minLength) {
    throw stanzaError.notAcceptable(`The password must be at least ${minLength} characters long`);
  }
}

/** Runs an account write; a password SASLprep refuses (RFC 4013 §2.3: controls, ...) is not-acceptable. */
async function refusingBadPasswords<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof Error && err.name === 'SaslprepError') throw errors.badPassword();
    throw err;
  }
}

/** The account an IQ speaks for: the addressed account ('self'), or the sender's own (to the server). */
function accountOf(request: IqRequest): string {
  if (request.username !== '') return request.username;
  // Sent to the server: only a local user may manage their registration; others have none here.
  if (!request.session) throw stanzaError.serviceUnavailable();
  return request.session.username;
}

/** The empty result the router would send, built early (account removal answers before closing). */
function resultFor(request: IqRequest): XmlElement {
  const reply = x('iq', { type: 'result', id: request.stanza.attrs.id, to: request.from.toString() });
  if (request.stanza.attrs.to !== undefined) reply.attrs.from = request.stanza.attrs.to;
  return reply;
}
