// XEP-0199 XMPP Ping (2.0.1): answers pings to the server and, on behalf of an account, to its
// bare JID. Server-initiated pings to idle clients are left to stream management's <r/>.
import { defineModule } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';

export default defineModule({
  name: 'ping',
  xeps: [{ xep: 199, version: '2.0.1', status: 'complete' }],
  setup(m) {
    m.feature(NS.PING);
    m.iq.get(NS.PING, 'ping', () => undefined, { scope: 'host' });
    m.iq.get(NS.PING, 'ping', () => undefined, { scope: 'account' });
  },
});
