// XEP-0157 Contact Addresses for XMPP Services (1.1.1): whom to write about abuse, security issues,
// support, ... as a XEP-0128 form (FORM_TYPE http://jabber.org/network/serverinfo) in the server's
// disco#info. Like Prosody's mod_server_contact_info, the admin addresses default to the configured
// `admins` as xmpp: URIs. Every value is a URI (mailto:, xmpp:, https:, tel:).
import { z } from 'zod';
import { defineModule } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { buildForm, type FormField } from '../server/protocol/xep0004.js';

// XEP-0157 §5 (registered fields): '<kind>-addresses', each a list of URIs.
const KINDS = ['abuse', 'admin', 'feedback', 'sales', 'security', 'status', 'support'] as const;

const uris = (what: string, example: string) =>
  z
    .array(z.string().regex(/^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/, "expected a URI such as 'mailto:abuse@example.org' or 'xmpp:admin@example.org'"))
    .optional()
    .meta({ description: `URIs for ${what}`, example: [example] });

export default defineModule({
  name: 'contact_info',
  xeps: [{ xep: 157, version: '1.1.1', status: 'complete' }],
  depends: ['disco'],
  config: z
    .object({
      abuse: uris('abuse reports', 'mailto:abuse@example.org'),
      admin: uris('the administrators (absent: xmpp: URIs of `admins`)', 'xmpp:admin@example.org'),
      feedback: uris('feedback', 'mailto:feedback@example.org'),
      sales: uris('sales', 'mailto:sales@example.org'),
      security: uris('security reports', 'mailto:security@example.org'),
      status: uris('service status (a status page)', 'https://status.example.org'),
      support: uris('support', 'xmpp:support@conference.example.org?join'),
    })
    .strict(),
  setup(m) {
    const addresses: Record<(typeof KINDS)[number], string[]> = {
      abuse: m.config.abuse ?? [],
      admin: m.config.admin ?? [...m.server.admins].map((jid) => `xmpp:${jid}`),
      feedback: m.config.feedback ?? [],
      sales: m.config.sales ?? [],
      security: m.config.security ?? [],
      status: m.config.status ?? [],
      support: m.config.support ?? [],
    };
    // XEP-0157 §3: only the fields that have addresses; no form at all when none is known.
    const fields: FormField[] = KINDS.filter((kind) => addresses[kind].length > 0).map((kind) => ({ var: `${kind}-addresses`, type: 'list-multi', values: addresses[kind] }));
    if (fields.length === 0) return;
    m.discoExtension(buildForm({ type: 'result', fields: [{ var: 'FORM_TYPE', type: 'hidden', values: [NS.SERVERINFO] }, ...fields] }));
  },
});
