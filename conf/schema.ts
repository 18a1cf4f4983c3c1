// The global config schema. Module keys live with their modules (`config:` in defineModule) and are
// validated under `modules.<name>`. Every key has a default and a description; the example config
// (conf/herald.example.yml) documents the same keys, and a test keeps the two in step.
import { z } from 'zod';
import { bytes, duration } from './units.js';

const port = () => z.number().int().min(0).max(65535);

export const listenSchema = z
  .object({
    interfaces: z.array(z.string()).default(['*']).describe("Addresses to listen on: '*' for all, 'localhost' for 127.0.0.1 and ::1, or IP addresses"),
    c2s: port().default(5222).describe('Client connections with STARTTLS (0 disables)'),
    c2s_direct_tls: port().default(5223).describe('Client connections with direct TLS, XEP-0368 (0 disables)'),
    s2s: port().default(5269).describe('Server-to-server connections (federation)'),
    s2s_direct_tls: port().default(0).describe('Server-to-server connections with direct TLS, XEP-0368 (0 disables); announce it with an _xmpps-server._tcp SRV record'),
    component: port().default(5347).describe('External components, XEP-0114 (listens only when `components` has entries)'),
    component_interfaces: z
      .array(z.string())
      .default(['localhost'])
      .describe("Addresses for the component listener: components are trusted programs and XEP-0114 has no TLS, so this machine only by default"),
    http: port().default(5280).describe('Plain HTTP: WebSocket, host-meta, push inbox, upload'),
    http_interfaces: z.array(z.string()).default(['localhost']).describe('Addresses for the plain HTTP listener'),
    https: port().default(5281).describe('HTTPS: the same services over TLS'),
  })
  .strict();

export const tlsSchema = z
  .object({
    cert: z.string().optional().meta({ description: 'PEM certificate (chain) file; absent: a self-signed certificate in data_dir', example: '/etc/herald/fullchain.pem' }),
    key: z.string().optional().meta({ description: 'PEM private key file for tls.cert', example: '/etc/herald/privkey.pem' }),
  })
  .strict();

export const httpSchema = z
  .object({
    websocket_path: z.string().startsWith('/').default('/xmpp-websocket').describe('Path of the XMPP-over-WebSocket endpoint (RFC 7395)'),
    websocket_url: z
      .string()
      .url()
      .optional()
      .meta({ description: 'Public WebSocket URL announced in host-meta (XEP-0156); absent: derived from each request', example: 'wss://chat.example.org/xmpp-websocket' }),
    see_other_uri: z
      .string()
      .url()
      .optional()
      .meta({ description: 'Send every WebSocket client elsewhere with <close see-other-uri/> (RFC 7395 §3.6.1)', example: 'wss://other.example.org/xmpp-websocket' }),
    trusted_proxies: z
      .array(z.string())
      .default(['127.0.0.1', '::1'])
      .describe('Reverse proxies whose X-Forwarded-For/-Proto are believed and whose connections count as encrypted'),
  })
  .strict();

export const c2sSchema = z
  .object({
    require_encryption: z.boolean().default(true).describe('Require STARTTLS before authentication'),
    allow_plain_auth: z.boolean().default(true).describe('Offer SASL PLAIN (only ever over TLS)'),
    auth_timeout: duration().prefault('60s').describe('Close streams that have not authenticated within this time'),
    max_auth_failures: z.number().int().min(1).max(10).default(3).describe('Failed SASL attempts on one stream before it is closed'),
    keepalive_interval: duration().prefault('5 minutes').describe('Send a whitespace keepalive after this much silence'),
    max_resources: z.number().int().min(1).max(1000).default(20).describe('Connected resources per account'),
    resume_timeout: duration().prefault('300s').describe('XEP-0198: how long a lost session waits to be resumed, unless the client asks for less'),
    max_resume_timeout: duration().prefault('1 hour').describe('XEP-0198: the longest resume window a client may ask for'),
    sm_max_queue: z.number().int().min(10).max(100_000).default(1000).describe('XEP-0198: stanzas queued for a hibernated session before it is ended'),
    sm_ack_after: z.number().int().min(1).max(1000).default(5).describe('XEP-0198: unacknowledged stanzas after which the server asks for an ack'),
    sm_ack_timeout: duration().prefault('60s').describe('XEP-0198: a requested ack that does not come within this time marks the connection dead'),
    channel_binding_fallback: z
      .boolean()
      .default(true)
      .describe("Accept SCRAM's 'y' flag after the client failed -PLUS with a channel binding Herald does not offer (older clients know only tls-unique)"),
  })
  .strict();

export const s2sSchema = z
  .object({
    require_encryption: z.boolean().default(true).describe('Require TLS (STARTTLS or direct TLS) on server-to-server streams, both ways'),
    require_valid_certificates: z
      .boolean()
      .default(false)
      .describe('Federate only with servers whose certificate is valid for their domain (SASL EXTERNAL); false also allows Server Dialback over TLS with any certificate'),
    ca_file: z
      .string()
      .optional()
      .meta({ description: "PEM file of CA certificates trusted for peers' certificates, in addition to the usual public CAs", example: '/etc/herald/federation-ca.pem' }),
    host_map: z
      .record(z.string(), z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)(:\d{1,5})?$/, "expected 'host:port', '[IPv6]:port' or 'host'"))
      .default({})
      .meta({ description: 'Static routes, domain → "host:port", used instead of DNS (also for dialback connect-back)', example: { 'chat.example.net': '192.0.2.10:5269' } }),
    dns_servers: z.array(z.string()).default([]).describe("DNS servers ('ip' or 'ip:port') for the SRV and address lookups; empty: the system's"),
    connect_timeout: duration().prefault('30s').describe('Time to connect to and authenticate with another server before waiting stanzas bounce with remote-server-timeout'),
    idle_timeout: duration().prefault('5 minutes').describe('Close server-to-server connections that carried no stanza for this long'),
    keepalive_interval: duration().prefault('60s').describe('Send a whitespace keepalive after this much silence on a server-to-server connection'),
    max_queue: z.number().int().min(1).max(100_000).default(1000).describe('Stanzas held per remote domain while its connection is being set up; more bounce with resource-constraint'),
  })
  .strict();

export const componentSchema = z
  .object({
    secret: z.string().min(1).meta({ description: 'The shared secret the component proves in its handshake (XEP-0114)', example: 'a long random string' }),
  })
  .strict();

export const limitsSchema = z
  .object({
    max_stanza_size: bytes().prefault('256 KiB').describe('Largest stanza accepted, in bytes'),
    max_xml_depth: z.number().int().min(4).max(1000).default(64).describe('Deepest XML nesting accepted'),
    max_attributes: z.number().int().min(4).max(1000).default(64).describe('Most attributes on one element'),
    max_attribute_length: bytes().prefault('16 KiB').describe('Longest attribute value, in characters'),
    max_connections_per_ip: z.number().int().min(1).default(32).describe('Open connections from one IP address'),
    auth_failures_per_ip: z.number().int().min(1).default(20).describe('Failed logins from one IP within auth_failure_window before further attempts are refused'),
    auth_failure_window: duration().prefault('5 minutes').describe('Window for auth_failures_per_ip'),
    read_rate: bytes().prefault('128 KiB').describe('Bytes per second a connection may send (token bucket; reading pauses beyond it)'),
    read_burst: bytes().prefault('1 MiB').describe('Token bucket size for read_rate'),
    max_write_queue: bytes().prefault('2 MiB').describe('Unsent bytes queued for a slow reader before its stream is closed'),
    exempt: z.array(z.string()).default(['127.0.0.1', '::1']).describe('Addresses exempt from per-IP limits and read_rate'),
  })
  .strict();

export const configSchema = z
  .object({
    domain: z.string().min(1).prefault('localhost').describe('The XMPP domain served'),
    admins: z
      .array(z.string())
      .default([])
      .meta({ description: 'Server administrators, as bare JIDs: they may run the admin commands (XEP-0133) and invite new users (XEP-0401)', example: ['admin@example.org'] }),
    data_dir: z.string().prefault('./data').describe('Directory for the SQLite database, the generated certificate and uploads'),
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).prefault('info').describe('Log detail on stdout: trace, debug, info, warn, error, fatal or silent'),
    listen: listenSchema.default(listenSchema.parse({})).describe('Ports and addresses to listen on; a port of 0 turns that listener off'),
    tls: tlsSchema.default({}).describe('The certificate for c2s and s2s TLS'),
    c2s: c2sSchema.default(c2sSchema.parse({})).describe('Client connections'),
    http: httpSchema.default(httpSchema.parse({})).describe('HTTP listeners: WebSocket, host-meta'),
    s2s: s2sSchema.default(s2sSchema.parse({})).describe('Federation with other XMPP servers (server-to-server)'),
    components: z
      .record(z.string(), componentSchema)
      .default({})
      .meta({
        description: 'External components (XEP-0114) by domain: gateways, bots, `herald appserver`; they connect to listen.component',
        example: { 'gateway.example.org': { secret: 'a long random string' } },
      }),
    limits: limitsSchema.default(limitsSchema.parse({})).describe('Abuse limits: stanza sizes, connections and logins per IP, read rates'),
    modules: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).default({}).describe('Per-module settings, by module name'),
    modules_disabled: z.array(z.string()).default([]).describe('Built-in modules not to load'),
  })
  .strict();

export type HeraldConfig = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
