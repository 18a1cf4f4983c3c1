// XEP-0215 External Service Discovery (1.0.0): tells the server's own users which STUN and TURN
// servers to use for calls (Jingle, XEP-0176), with short-lived TURN credentials made the way
// coturn's `use-auth-secret` (the "TURN REST API" draft) checks them: username
// '<expiry unix time>:<bare JID>', password base64(HMAC-SHA1(secret, username)). Like Prosody's
// mod_external_services and ejabberd's mod_stun_disco, credentials come inline in the services list
// (with restricted='1'), or only on a <credentials/> request for services configured `restricted`.
// Left out: pushing changed lists (§4.2 'action'), services other than STUN/TURN.
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { defineModule, duration, x, type Jid, type XmlElement } from '../server/module-api.js';
import { stanzaError } from '../server/errors.js';
import { dateTime } from '../server/protocol/xep0082.js';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

const DEFAULT_PORTS = { stun: 3478, turn: 3478, stuns: 5349, turns: 5349 } as const;

const serviceSchema = z
  .object({
    type: z.enum(['stun', 'stuns', 'turn', 'turns']).describe('stun, turn, or their TLS variants stuns/turns'),
    host: z.string().min(1).describe('Host name or IP address of the server'),
    port: z.number().int().min(1).max(65535).optional().describe('Port (default 3478, or 5349 for stuns/turns)'),
    transport: z.enum(['udp', 'tcp']).optional().describe('udp or tcp'),
    name: z.string().optional().describe('A name for people'),
    secret: z.string().min(1).optional().describe("This server's TURN REST secret (coturn static-auth-secret), if not the module's `secret`"),
    username: z.string().optional().describe('A fixed username, for servers with long-term credentials instead of a secret'),
    password: z.string().optional().describe('The password for `username`'),
    restricted: z.boolean().default(false).describe('Leave the credentials out of the list: clients ask for them with <credentials/>'),
  })
  .strict();
export type ExternalService = z.output<typeof serviceSchema>;

interface Credentials {
  username: string;
  password: string;
  expires?: Date;
}

export default defineModule({
  name: 'external_services',
  xeps: [{ xep: 215, version: '1.0.0', status: 'partial', note: 'no pushed updates' }],
  config: z
    .object({
      services: z
        .array(serviceSchema)
        .default([])
        .meta({
          description: 'STUN and TURN servers offered to users',
          example: [
            { type: 'stun', host: 'turn.example.org', port: 3478, transport: 'udp' },
            { type: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp' },
            { type: 'turns', host: 'turn.example.org', port: 5349, transport: 'tcp' },
          ],
        }),
      secret: z
        .string()
        .min(1)
        .optional()
        .meta({ description: "Shared secret for TURN REST credentials (coturn: use-auth-secret with static-auth-secret) of every turn/turns service", example: 'a long random string' }),
      credentials_ttl: duration().prefault('1 day').describe('How long TURN REST credentials stay valid'),
    })
    .strict(),
  setup(m) {
    const { services, secret, credentials_ttl: ttl } = m.config;
    m.feature(NS_EXTDISCO);

    m.iq.get(NS_EXTDISCO, 'services', ({ payload, from }) => {
      mustBeLocalUser(from);
      // XEP-0215 §4.2: a 'type' asks for the services of that type only.
      const type = payload.attrs.type;
      const result = x('services', { xmlns: NS_EXTDISCO, type });
      for (const service of services) {
        if (type !== undefined && service.type !== type) continue;
        const credentials = credentialsFor(service, from);
        result.append(serviceElement(service, credentials, !service.restricted));
      }
      return result;
    });

    m.iq.get(NS_EXTDISCO, 'credentials', ({ payload, from }) => {
      mustBeLocalUser(from);
      const wanted = payload.getChild('service');
      const host = wanted?.attrs.host;
      const type = wanted?.attrs.type;
      // XEP-0215 §4.3: the <service/> "MUST include the 'host' and 'type' attributes".
      if (!wanted || !host || !type) throw stanzaError.badRequest("<credentials/> needs a <service/> with 'host' and 'type'");
      const port = wanted.attrs.port;
      const result = x('credentials', { xmlns: NS_EXTDISCO });
      for (const service of services) {
        if (service.host !== host || service.type !== type || (port !== undefined && String(portOf(service)) !== port)) continue;
        const credentials = credentialsFor(service, from);
        if (credentials) result.append(serviceElement(service, credentials, true));
      }
      // XEP-0215 §4.3: "If the server cannot obtain credentials at the service, it returns … <item-not-found/>".
      if (result.children.length === 0) throw stanzaError.itemNotFound('No credentials for that service');
      return result;
    });

    /** Fresh credentials for a user, or undefined for a service that needs none. */
    function credentialsFor(service: ExternalService, user: Jid): Credentials | undefined {
      if (service.username !== undefined) return { username: service.username, password: service.password ?? '' };
      const key = service.secret ?? secret;
      if (key === undefined || (service.type !== 'turn' && service.type !== 'turns')) return undefined;
      return turnRestCredentials(key, user.bareString, new Date(Date.now() + ttl));
    }

    function mustBeLocalUser(from: Jid): void {
      // The credentials are the server's to hand out to its own users only (Prosody: c2s sessions only).
      if (from.domain !== m.host || from.local === '') throw stanzaError.forbidden('External services are for users of this server');
    }
  },
});

/** coturn's use-auth-secret scheme: the TURN server recomputes the HMAC and checks the expiry. */
export function turnRestCredentials(secret: string, user: string, expires: Date): Credentials {
  const username = `${Math.floor(expires.getTime() / 1000)}:${user}`;
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password, expires };
}

function portOf(service: ExternalService): number {
  return service.port ?? DEFAULT_PORTS[service.type];
}

function serviceElement(service: ExternalService, credentials: Credentials | undefined, withCredentials: boolean): XmlElement {
  const element = x('service', {
    type: service.type,
    host: service.host,
    port: String(portOf(service)),
    transport: service.transport,
    name: service.name,
    restricted: credentials ? '1' : undefined,
  });
  if (credentials && withCredentials) {
    element.attrs.username = credentials.username;
    element.attrs.password = credentials.password;
    if (credentials.expires) element.attrs.expires = dateTime(credentials.expires);
  }
  return element;
}
