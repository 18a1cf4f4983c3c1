// Invitations: XEP-0401 Ad-hoc Account Invitation Generation (0.5.0), XEP-0445 Pre-Authenticated
// In-Band Registration (0.2.0) and XEP-0379 Pre-Authenticated Roster Subscription (0.3.0).
// An invitation is a single-use token that expires, behind an xmpp: URI: 'xmpp:<domain>?register;
// preauth=T' creates an account (admins: `herald invite`, or the urn:xmpp:invite#create-account
// command), 'xmpp:<user>@<domain>?roster;preauth=T;ibr=y' makes the invitee a contact of the user,
// with a new account here if they have none (urn:xmpp:invite#invite, `herald invite --roster-of`).
// A token opens in-band registration even when allow_registration is off (the register module's
// 'register:authorize' hook); inviter and invitee end up subscribed to each other, as Prosody's
// mod_invites_register does. Tokens live in the store (hashed), so the CLI can add them while the
// server runs. Left out: a landing page served by Herald (point `landing_page` at one), listing and
// revoking invitations, roles carried by invitations, password resets.
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { defineModule, duration, makeJid, Priority, STOP, x, type Jid, type MapStore } from '../server/module-api.js';
import { stanzaError } from '../server/errors.js';
import { field, formValue, parseBoolean, type DataForm } from '../server/protocol/xep0004.js';
import { dateTime } from '../server/protocol/xep0082.js';
import type { RegisterAuthorizeEvent } from './register.js';
import type { AdhocResponse } from './adhoc.js';

export const NS_PARS = 'urn:xmpp:pars:0';
const NS_IBR_TOKEN = 'urn:xmpp:ibr-token:0';
/** The stream feature of XEP-0401 before 0.5 (XEP-0445 split off): what Conversations looks for. */
const NS_INVITE_LEGACY = 'urn:xmpp:invite';
const NODE_INVITE = 'urn:xmpp:invite#invite';
const NODE_CREATE_ACCOUNT = 'urn:xmpp:invite#create-account';
const FORM_INVITATION = 'urn:xmpp:invite#invitation';
/** The module's store name for tokens: `store.map(host, 'invites', INVITE_TOKENS)` from the CLI. */
export const INVITE_TOKENS = 'tokens';
/** How long a registration in progress holds a token against other connections. */
const CLAIM_MS = 30_000;

export interface Invite {
  /** 'account': xmpp:<domain>?register; 'contact': xmpp:<inviter>?roster (XEP-0379). */
  kind: 'account' | 'contact';
  /** Localpart of the user the invitee becomes a contact of. */
  inviter?: string;
  /** An account invitation for this name only (XEP-0445 §6: reserved until the token expires). */
  username?: string;
  /** The token may create an account (contact invitations: the URI says ibr=y). */
  register: boolean;
  created: number;
  expires: number;
}

export interface IssuedInvite {
  token: string;
  uri: string;
  landingUrl: string | undefined;
  expires: Date;
}

export const invitesConfig = z
  .object({
    expiry: duration().prefault('7 days').describe('How long an invitation stays valid (`herald invite --expires` chooses per invitation)'),
    allow_contact_invites: z.boolean().default(true).describe('Users may invite contacts (urn:xmpp:invite#invite, XEP-0379 pre-authenticated subscription)'),
    allow_user_invites: z
      .boolean()
      .default(false)
      .describe("Users' invitations may create accounts here (ibr=y), and users may run create-account; admins always may"),
    landing_page: z
      .string()
      .regex(/^https?:\/\//, 'expected an http(s) URL')
      .optional()
      .meta({ description: 'A web page for invitations, with {token}, {uri} (URL-encoded xmpp: URI) and {host} filled in', example: 'https://invite.example.org/#{token}' }),
  })
  .strict();

export default defineModule({
  name: 'invites',
  xeps: [
    { xep: 401, version: '0.5.0', status: 'complete' },
    { xep: 445, version: '0.2.0', status: 'complete' },
    { xep: 379, version: '0.3.0', status: 'partial', note: 'server side: tokens issued here' },
  ],
  depends: ['register', 'roster', 'adhoc'],
  config: invitesConfig,
  setup(m) {
    const config = m.config;
    const tokens = m.store.map<Invite>(INVITE_TOKENS);
    const roster = m.service('roster');
    /** XEP-0445: the token a connection presented (checked then, expiry included), by connection. */
    const presented = new WeakMap<object, string>();
    /** Tokens a registration is using right now (hash → connection), so two cannot share one. */
    const claims = new Map<string, { stream: object; at: number }>();

    m.service('register').announceForVouchers();
    m.streamFeature('pre-auth', (stream) => (stream.username === undefined ? x('register', { xmlns: NS_IBR_TOKEN }) : undefined));
    m.streamFeature('pre-auth', (stream) => (stream.username === undefined ? x('register', { xmlns: NS_INVITE_LEGACY }) : undefined));

    // XEP-0445 §5: the token before the registration; checked (expiry too) now and only now.
    m.preAuthIq('set', NS_PARS, 'preauth', async ({ payload, stream }) => {
      const found = await lookup(payload.attrs.token);
      if (!found?.invite.register) throw stanzaError.itemNotFound('The provided token is invalid or expired');
      presented.set(stream, found.hash);
    });

    m.on('register:authorize', (event) => authorize(event));
    m.on('register:registered', async ({ stream, username }) => {
      const hash = presented.get(stream);
      const claim = hash === undefined ? undefined : claims.get(hash);
      if (hash === undefined || claim?.stream !== stream) return;
      const invite = await tokens.get('', hash);
      // Single use: gone once the account exists (XEP-0445 §5: "not … used until the actual registration has succeeded").
      await tokens.delete('', hash);
      claims.delete(hash);
      presented.delete(stream);
      m.log.info({ user: username, inviter: invite?.inviter }, 'account registered with an invitation');
      if (invite?.inviter !== undefined && (await m.accounts.exists(invite.inviter))) await befriend(invite.inviter, username);
    });

    // XEP-0379 §3.4: an existing account's subscription request carrying the token is approved at
    // once, and the inviter asks back, for a mutual subscription (as Prosody does).
    m.on('presence/bare', async ({ stanza, from, to }) => {
      const token = stanza.attrs.type === 'subscribe' ? stanza.getChild('preauth', NS_PARS)?.attrs.token : undefined;
      if (token === undefined) return;
      const found = await lookup(token);
      if (!found || found.invite.kind !== 'contact' || found.invite.inviter !== to.local || from.bareString === to.bareString) return;
      await tokens.delete('', found.hash);
      const contact = from.bareString;
      const item = (await roster.getItem(to.local, contact)) ?? { jid: contact, subscription: 'none' as const, groups: [] };
      // RFC 6121 §3.4 pre-approval: the presence module then approves the request it is about to see.
      const asksBack = item.subscription !== 'to' && item.subscription !== 'both' && !item.ask;
      await roster.setItem(to.local, { ...item, approved: true, ...(asksBack && { ask: 'subscribe' as const }) });
      if (asksBack) m.routeFrom(makeJid(to.local, m.host), x('presence', { type: 'subscribe', to: contact }));
      m.log.info({ user: to.local }, 'contact invitation used');
    }, Priority.DEFAULT + 10);

    registerCommands();
    m.every(3_600_000, async () => {
      for (const { key, value } of await tokens.list('')) if (value.expires < Date.now()) await tokens.delete('', key);
    });

    /** 'register:authorize' (modules/register.ts): vouches for registrations that carry a good token. */
    async function authorize(event: RegisterAuthorizeEvent): Promise<typeof STOP | undefined> {
      // The token from XEP-0445's <preauth/> IQ, or (older clients) a <preauth/> inside the registration.
      const inline = event.payload.getChild('preauth', NS_PARS)?.attrs.token;
      const found = inline !== undefined ? await lookup(inline) : await byHash(presented.get(event.stream));
      const valid = found?.invite.register ? found : undefined;
      if (event.username === undefined) return valid ? STOP : undefined;
      const reserved = await reservation(event.username);
      if (reserved !== undefined && reserved !== valid?.hash) {
        event.refusal = stanzaError.conflict('This username is reserved by an invitation');
        return undefined;
      }
      if (!valid) return undefined;
      if (valid.invite.kind === 'account' && valid.invite.username !== undefined && valid.invite.username !== event.username) {
        event.refusal = stanzaError.notAcceptable(`This invitation is for the username ${valid.invite.username}`);
        return undefined;
      }
      const claim = claims.get(valid.hash);
      if (claim && claim.stream !== event.stream && claim.at > Date.now() - CLAIM_MS) return undefined;
      claims.set(valid.hash, { stream: event.stream, at: Date.now() });
      presented.set(event.stream, valid.hash);
      return STOP;
    }

    /** A usable invitation for a token: known, not expired, its inviter still there. */
    async function lookup(token: string | undefined): Promise<{ hash: string; invite: Invite } | undefined> {
      if (token === undefined || token === '') return undefined;
      const found = await byHash(hashToken(token));
      return found && found.invite.expires > Date.now() ? found : undefined;
    }

    /** The invitation behind a hash that was checked earlier: XEP-0445 §5, expiry is not looked at again. */
    async function byHash(hash: string | undefined): Promise<{ hash: string; invite: Invite } | undefined> {
      if (hash === undefined) return undefined;
      const invite = await tokens.get('', hash);
      if (!invite || (invite.inviter !== undefined && !(await m.accounts.exists(invite.inviter)))) return undefined;
      return { hash, invite };
    }

    /** The token hash of a valid account invitation reserving `username` (XEP-0445 §6), if any. */
    async function reservation(username: string): Promise<string | undefined> {
      const now = Date.now();
      return (await tokens.list('')).find(({ value }) => value.kind === 'account' && value.username === username && value.expires > now)?.key;
    }

    /** Mutual subscription, pushed to both (XEP-0401 §5.5: the inviter learns of the new contact at once). */
    async function befriend(inviter: string, invitee: string): Promise<void> {
      for (const [user, contact] of [[inviter, invitee], [invitee, inviter]] as const) {
        const jid = `${contact}@${m.host}`;
        const item = await roster.getItem(user, jid);
        await roster.setItem(user, { jid, ...(item?.name !== undefined && { name: item.name }), groups: item?.groups ?? [], subscription: 'both' });
      }
    }

    function registerCommands(): void {
      const adhoc = m.service('adhoc');
      const isLocal = (from: Jid) => from.domain === m.host && from.local !== '';
      const isAdmin = (from: Jid) => m.server.admins.has(from.bareString);
      const mayCreateAccounts = (from: Jid) => isAdmin(from) || (isLocal(from) && config.allow_user_invites);
      // XEP-0401 §4.1: a user's invitation comes at once, with no form.
      adhoc.register('host', {
        node: NODE_INVITE,
        name: 'Invite user',
        allowed: (from) => isLocal(from) && (config.allow_contact_invites || isAdmin(from)),
        run: async ({ from }) => {
          const issued = await issueInvite(tokens, m.host, { kind: 'contact', inviter: from.local, register: mayCreateAccounts(from), ttl: config.expiry, landingPage: config.landing_page });
          m.log.info({ user: from.local }, 'contact invitation created');
          return invitationResult(issued);
        },
      });
      // XEP-0401 §4.4: an account, with a name chosen now or by the invitee, optionally subscribed to the inviter.
      adhoc.register('host', {
        node: NODE_CREATE_ACCOUNT,
        name: 'Create account',
        allowed: mayCreateAccounts,
        run: async ({ from, form }): Promise<AdhocResponse> => {
          if (form?.type !== 'submit') return { status: 'executing', form: createAccountForm() };
          const name = formValue(form, 'username')?.trim();
          let username: string | undefined;
          try {
            username = name ? makeJid(name, m.host).local : undefined;
          } catch {
            return { status: 'completed', note: { type: 'error', text: `${name} is not a valid username` } };
          }
          if (username !== undefined && ((await m.accounts.exists(username)) || (await reservation(username)) !== undefined)) {
            return { status: 'completed', note: { type: 'error', text: `${username}@${m.host} exists already or is reserved` } };
          }
          const subscribe = parseBoolean(formValue(form, 'roster-subscription')) === true;
          const issued = await issueInvite(tokens, m.host, { kind: 'account', username, inviter: subscribe ? from.local : undefined, register: true, ttl: config.expiry, landingPage: config.landing_page });
          m.log.info({ user: from.local, username }, 'account invitation created');
          return invitationResult(issued);
        },
      });
    }
  },
});

/**
 * Stores a new invitation and returns its token and URIs. `tokens` is the module's map: in the
 * server m.store.map('tokens'), from the CLI store.map(domain, 'invites', INVITE_TOKENS).
 */
export async function issueInvite(
  tokens: MapStore<Invite>,
  host: string,
  options: { kind: Invite['kind']; inviter?: string; username?: string; register: boolean; ttl: number; landingPage?: string },
): Promise<IssuedInvite> {
  const token = newToken();
  const now = Date.now();
  const invite: Invite = { kind: options.kind, register: options.register, created: now, expires: now + options.ttl };
  if (options.inviter !== undefined) invite.inviter = options.inviter;
  if (options.username !== undefined) invite.username = options.username;
  await tokens.set('', hashToken(token), invite);
  // XEP-0401 §4.1 and §4.4 URI formats; ibr=y only when the token may create an account here.
  const uri =
    options.kind === 'contact'
      ? `xmpp:${encodeURIComponent(options.inviter ?? '')}@${host}?roster;preauth=${token}${options.register ? ';ibr=y' : ''}`
      : `xmpp:${options.username !== undefined ? `${encodeURIComponent(options.username)}@` : ''}${host}?register;preauth=${token}`;
  const landingUrl = options.landingPage?.replaceAll('{token}', token).replaceAll('{uri}', encodeURIComponent(uri)).replaceAll('{host}', host);
  return { token, uri, landingUrl, expires: new Date(invite.expires) };
}

/** XEP-0401: "a securely generated random alpha-numeric string" (24 characters, ~142 bits). */
function newToken(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let token = '';
  while (token.length < 24) {
    for (const byte of randomBytes(32)) {
      // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
      if (byte < 248 && token.length < 24) token += alphabet[byte % 62];
    }
  }
  return token;
}

/** Tokens are stored hashed: a copy of the database does not hand out invitations. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function createAccountForm(): DataForm {
  return {
    type: 'form',
    title: 'Create an account invitation',
    fields: [
      field('username', 'text-single', { label: 'Username (empty: the invitee chooses)' }),
      field('roster-subscription', 'boolean', { label: 'Add the new account to my contacts', values: ['0'] }),
    ],
  };
}

/** XEP-0401 §4.1: the result form (FORM_TYPE urn:xmpp:invite#invitation). */
function invitationResult(issued: IssuedInvite): AdhocResponse {
  const fields = [
    field('FORM_TYPE', 'hidden', { values: [FORM_INVITATION] }),
    field('uri', 'text-single', { label: 'Invitation URI', values: [issued.uri] }),
    ...(issued.landingUrl !== undefined ? [field('landing-url', 'text-single', { label: 'Invitation web page', values: [issued.landingUrl] })] : []),
    field('expire', 'text-single', { label: 'Valid until', values: [dateTime(issued.expires)] }),
  ];
  return { status: 'completed', form: { type: 'result', fields } };
}
