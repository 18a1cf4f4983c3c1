// XEP-0313 §4 queries: the <query/> a client sends (its XEP-0004 filter form, its XEP-0059 <set/>,
// <flip-page/>), the form of supported fields it may ask for (§4.1.5), and the messages and <fin/>
// that answer it (§4.2, §4.3).
import { x, parseXml, tryParseJid, type Jid, type XmlElement } from '../../server/module-api.js';
import { NS } from '../../server/protocol/ns.js';
import { buildForm, field, parseBoolean, parseForm, type DataForm } from '../../server/protocol/xep0004.js';
import { dateTime } from '../../server/protocol/xep0082.js';
import { NS_RSM, buildRsm, parseRsm, type RsmRequest } from '../../server/protocol/xep0059.js';
import { stanzaError } from '../../server/errors.js';
import { NS_MAM, NS_MAM_1, type MamNamespace } from './rules.js';

const NS_XDATA_VALIDATE = 'http://jabber.org/protocol/xdata-validate';

/** More ids than any page holds is a client bug, not a query. */
const MAX_IDS = 1000;

export interface MamQuery {
  /** The namespace the query came in (urn:xmpp:mam:1 or :2): results and <fin/> answer in it. */
  ns: MamNamespace;
  queryId: string | undefined;
  with: Jid | undefined;
  /** ms since the epoch, inclusive. */
  start: number | undefined;
  end: number | undefined;
  afterId: string | undefined;
  beforeId: string | undefined;
  ids: string[] | undefined;
  rsm: RsmRequest;
  flip: boolean;
}

/** Reads a query (§4.1); bad values are bad-request, unknown fields feature-not-implemented. */
export function parseQuery(payload: XmlElement): MamQuery {
  const query: MamQuery = {
    ns: payload.attrs.xmlns === NS_MAM_1 ? NS_MAM_1 : NS_MAM,
    queryId: payload.attrs.queryid,
    with: undefined,
    start: undefined,
    end: undefined,
    afterId: undefined,
    beforeId: undefined,
    ids: undefined,
    rsm: {},
    flip: payload.getChild('flip-page') !== undefined,
  };
  const set = payload.getChild('set', NS_RSM);
  if (set) query.rsm = parseRsm(set);
  const formElement = payload.getChild('x', NS.DATA_FORMS);
  if (formElement) readForm(parseForm(formElement), query);
  return query;
}

function readForm(form: DataForm, query: MamQuery): void {
  for (const { var: name, values } of form.fields) {
    const value = values[0]?.trim();
    switch (name) {
      case 'FORM_TYPE':
        // §4.1: "The hidden FORM_TYPE field MUST be set to this protocol's namespace".
        if (value !== query.ns) throw stanzaError.badRequest(`FORM_TYPE must be ${query.ns}`);
        break;
      case 'with':
        if (!value) break;
        query.with = tryParseJid(value) ?? undefined;
        if (!query.with) throw stanzaError.badRequest(`'with' is not a JID: ${value}`);
        break;
      case 'start':
        if (value) query.start = timestamp(value, 'start', false);
        break;
      case 'end':
        if (value) query.end = timestamp(value, 'end', true);
        break;
      case 'after-id':
        if (value) query.afterId = value;
        break;
      case 'before-id':
        if (value) query.beforeId = value;
        break;
      case 'ids': {
        const ids = values.map((v) => v.trim()).filter((v) => v !== '');
        if (ids.length > MAX_IDS) throw stanzaError.policyViolation(`At most ${MAX_IDS} ids per query`);
        if (ids.length > 0) query.ids = ids;
        break;
      }
      case 'include-groupchat':
        // §4.1.4: understood (urn:xmpp:mam:2#groupchat-field); user archives hold no groupchat
        // messages, so either answer gives the same results.
        if (value !== undefined && parseBoolean(value) === undefined) throw stanzaError.badRequest("'include-groupchat' must be a boolean");
        break;
      default:
        // §4.1.5: "If a client includes a form field that the server does not recognise, the server
        // MUST respond with a 'feature-not-implemented' error."
        throw stanzaError.featureNotImplemented(`Unknown field '${name ?? ''}'`);
    }
  }
}

/**
 * §4.1.2: start and end are XEP-0082 DateTimes. The archive keeps milliseconds while clients
 * usually know whole seconds (the delay stamps Herald sends): an 'end' without fractions covers its
 * whole second, so a message stamped 12:00:00 is inside end=12:00:00Z, as with second-based servers.
 */
function timestamp(value: string, name: string, isEnd: boolean): number {
  const parsed = parseDateTime(value);
  if (parsed === undefined) throw stanzaError.badRequest(`'${name}' is not a XEP-0082 DateTime: ${value}`);
  return isEnd && !value.includes('.') ? parsed + 999 : parsed;
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/;

/** XEP-0082 §3.3 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD) in ms since the epoch; undefined when malformed. */
export function parseDateTime(value: string): number | undefined {
  const match = DATETIME.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) return undefined;
  if (match[9] !== undefined && (Number(match[9]) > 23 || Number(match[10]) > 59)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** §4.1.5: the fields this server supports, for an IQ get (the spec's own example, minus the custom ones). */
export function queryForm(ns: MamNamespace = NS_MAM): XmlElement {
  const form = buildForm({
    type: 'form',
    fields: [
      field('FORM_TYPE', 'hidden', { values: [ns] }),
      field('with', 'jid-single'),
      field('start', 'text-single'),
      field('end', 'text-single'),
      field('before-id', 'text-single'),
      field('after-id', 'text-single'),
      field('ids', 'list-multi'),
      field('include-groupchat', 'boolean'),
    ],
  });
  // "the server MUST include a XEP-0122 <validate/> element that signals the list is open".
  const ids = form.getChildren('field').find((f) => f.attrs.var === 'ids');
  ids?.append(x('validate', { xmlns: NS_XDATA_VALIDATE, datatype: 'xs:string' }, x('open')));
  return x('query', { xmlns: ns }, form);
}

/** One archived message as a query result (§4.2): <result><forwarded><delay/><message/></forwarded></result>. */
export function resultMessage(options: { ns?: MamNamespace; to: string; from?: string; queryId: string | undefined; id: string; stamp: number; message: XmlElement }): XmlElement {
  const { message } = options;
  // XEP-0297: the forwarded stanza is qualified by jabber:client, which <forwarded/> would otherwise hide.
  message.attrs = { xmlns: NS.CLIENT, ...message.attrs };
  return x(
    'message',
    { to: options.to, from: options.from },
    x(
      'result',
      { xmlns: options.ns ?? NS_MAM, queryid: options.queryId, id: options.id },
      // "SHOULD also contain a <delay/> element ... the time the message was originally received".
      x('forwarded', { xmlns: NS.FORWARD_0 }, x('delay', { xmlns: NS.DELAY, stamp: dateTime(new Date(options.stamp)) }), message),
    ),
  );
}

/** §4.3: the IQ result's <fin/> with the page's RSM description. stable: Herald's archive is one database. */
export function finElement(page: { complete: boolean; first?: string; firstIndex?: number; last?: string; count: number }, ns: MamNamespace = NS_MAM): XmlElement {
  return x(
    'fin',
    { xmlns: ns, complete: page.complete ? 'true' : 'false', stable: 'true' },
    buildRsm({ first: page.first, firstIndex: page.firstIndex, last: page.last, count: page.count }),
  );
}

/** A stored stanza back as an element; undefined when it cannot be read (logged by the caller). */
export function readStored(xml: string): XmlElement | undefined {
  try {
    return parseXml(xml);
  } catch {
    return undefined;
  }
}
