// Where a remote domain's server is (RFC 6120 §3.2): a static route from `s2s.host_map` first, else
// the domain's SRV records — _xmpps-server._tcp (direct TLS, XEP-0368) and _xmpp-server._tcp
// (STARTTLS) mixed into one list as XEP-0368 §3 asks, ordered by priority and weighted-random by
// weight (RFC 2782) — else the domain itself on port 5269. `s2s.dns_servers` sends the queries to
// other servers (tests use a stub on loopback); then host names are resolved there too.

import { Resolver, promises as dnsPromises, type SrvRecord } from 'node:dns';
import { isIP } from 'node:net';

export const DEFAULT_S2S_PORT = 5269;

export interface S2sTarget {
  /** Host name or IP literal to connect to. */
  host: string;
  port: number;
  /** XEP-0368: connect with TLS at once (from an _xmpps-server record). */
  directTls: boolean;
  source: 'host_map' | 'srv' | 'fallback';
}

/** No way to reach the domain: RFC 6120 §10.4.3 remote-server-not-found. */
export class ResolveError extends Error {}

export interface ResolverOptions {
  hostMap: Map<string, string>;
  dnsServers: string[];
  /** For tests of the weighted order: a number in [0, 1). */
  random?: () => number;
}

export class S2sResolver {
  private readonly resolver: Resolver;
  private readonly custom: boolean;
  private readonly random: () => number;

  constructor(private readonly options: ResolverOptions) {
    this.resolver = new Resolver({ timeout: 3000, tries: 2 });
    this.custom = options.dnsServers.length > 0;
    if (this.custom) this.resolver.setServers(options.dnsServers);
    this.random = options.random ?? Math.random;
  }

  /** The targets to try, in order; throws ResolveError when there are none. */
  async resolve(domain: string): Promise<S2sTarget[]> {
    const mapped = this.options.hostMap.get(domain);
    if (mapped !== undefined) return [{ ...parseHostPort(mapped), directTls: false, source: 'host_map' }];
    if (isIP(domain) !== 0) return [{ host: domain, port: DEFAULT_S2S_PORT, directTls: false, source: 'fallback' }];
    const [direct, starttls] = await Promise.all([this.srv(`_xmpps-server._tcp.${domain}`), this.srv(`_xmpp-server._tcp.${domain}`)]);
    // RFC 2782: a single record with target '.' means the service is decidedly not available there.
    // XEP-0368 §4: for _xmpps-server that only rules out direct TLS.
    const usable = [
      ...(direct === 'refused' ? [] : direct.map((r) => ({ ...r, directTls: true }))),
      ...(starttls === 'refused' ? [] : starttls.map((r) => ({ ...r, directTls: false }))),
    ];
    if (usable.length > 0) return orderSrv(usable, this.random).map((r) => ({ host: r.name, port: r.port, directTls: r.directTls, source: 'srv' as const }));
    if (starttls === 'refused' || direct === 'refused') throw new ResolveError(`${domain} says it offers no server-to-server service`);
    // RFC 6120 §3.2.2: no SRV records: the domain's own address records, on the default port.
    return [{ host: domain, port: DEFAULT_S2S_PORT, directTls: false, source: 'fallback' }];
  }

  /** IP addresses of a host name (IPv6 and IPv4), through the configured DNS servers when set. */
  async addresses(host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    if (!this.custom) {
      const all = await dnsPromises.lookup(host, { all: true }).catch(() => []);
      return all.map((a) => a.address);
    }
    const [v6, v4] = await Promise.all([
      new Promise<string[]>((resolve) => this.resolver.resolve6(host, (err, a) => resolve(err ? [] : a))),
      new Promise<string[]>((resolve) => this.resolver.resolve4(host, (err, a) => resolve(err ? [] : a))),
    ]);
    return [...v6, ...v4];
  }

  private srv(name: string): Promise<SrvRecord[] | 'refused'> {
    return new Promise((resolve) => {
      this.resolver.resolveSrv(name, (err, records) => {
        // NXDOMAIN, no data, or an unreachable DNS server: no records, fall back as RFC 6120 allows.
        if (err || records.length === 0) return resolve([]);
        if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) return resolve('refused');
        resolve(records.filter((r) => r.name !== '.' && r.name !== ''));
      });
    });
  }
}

/** 'host:port', '[v6]:port', 'host' (port 5269). Throws on anything else. */
export function parseHostPort(value: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value.trim());
  const plain = /^([^:\s]+)(?::(\d+))?$/.exec(value.trim());
  const match = bracketed ?? plain;
  if (!match?.[1]) {
    if (isIP(value.trim()) === 6) return { host: value.trim(), port: DEFAULT_S2S_PORT };
    throw new Error(`'${value}' is not host:port`);
  }
  const port = match[2] === undefined ? DEFAULT_S2S_PORT : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`'${value}' has no valid port`);
  return { host: match[1], port };
}

/**
 * RFC 2782 ordering: lowest priority first; within one priority, repeatedly pick a record at
 * random with probability proportional to its weight (zero-weight records first in the running
 * sum, so they are picked only rarely when others have weight).
 */
export function orderSrv<T extends { priority: number; weight: number }>(records: T[], random: () => number = Math.random): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const out: T[] = [];
  for (const priority of priorities) {
    const group = records.filter((r) => r.priority === priority).sort((a, b) => (a.weight === 0 ? -1 : 0) - (b.weight === 0 ? -1 : 0));
    while (group.length > 0) {
      const total = group.reduce((sum, r) => sum + r.weight, 0);
      const pick = Math.floor(random() * (total + 1)); // uniform in 0..total, inclusive
      let running = 0;
      let index = group.length - 1;
      for (let i = 0; i < group.length; i++) {
        running += group[i]!.weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      out.push(group.splice(index, 1)[0]!);
    }
  }
  return out;
}
