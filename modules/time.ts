// XEP-0202 Entity Time (2.0): the server's clock, as UTC and its offset from UTC. An IQ to a user's
// full JID is for the client, and the router delivers it there.
import { z } from 'zod';
import { defineModule, x } from '../server/module-api.js';
import { NS } from '../server/protocol/ns.js';
import { dateTime, timeZoneOffset } from '../server/protocol/xep0082.js';

export default defineModule({
  name: 'time',
  xeps: [{ xep: 202, version: '2.0', status: 'complete' }],
  config: z.object({}).strict(),
  setup(m) {
    m.feature(NS.TIME);
    m.iq.get(
      NS.TIME,
      'time',
      () => {
        const now = new Date();
        // §2: <tzo/> in XEP-0082's TZD format, <utc/> a dateTime "MUST be expressed in UTC".
        return x('time', { xmlns: NS.TIME }, x('tzo', null, timeZoneOffset(now)), x('utc', null, dateTime(now)));
      },
      { scope: 'host' },
    );
  },
});
