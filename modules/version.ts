// XEP-0092 Software Version (1.1): the server's name and version. An IQ to a user's full JID is a
// question for that client, and the router delivers it there.
import { release, type } from 'node:os';
import { z } from 'zod';
import { defineModule, x } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';

export default defineModule({
  name: 'version',
  xeps: [{ xep: 92, version: '1.1', status: 'complete' }],
  config: z
    .object({
      // XEP-0092 §5: "an application MUST provide a way for a human user or administrator to
      // disable sharing of information about the operating system"; Herald shares nothing by default.
      show_os: z.boolean().default(false).describe('Name the operating system in software version answers'),
    })
    .strict(),
  setup(m) {
    m.feature(NS.VERSION);
    const os = m.config.show_os ? `${type()} ${release()}` : undefined;
    m.iq.get(
      NS.VERSION,
      'query',
      () => x('query', { xmlns: NS.VERSION }, x('name', null, m.server.name), x('version', null, m.server.version), os !== undefined && x('os', null, os)),
      { scope: 'host' },
    );
  },
});
