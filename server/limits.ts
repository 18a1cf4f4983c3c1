// Abuse limits shared by all connections: open connections and failed logins per IP address, and
// the per-connection read rate (a token bucket). Loopback is exempt by default (limits.exempt) so
// local tests and benchmarks with thousands of connections from 127.0.0.1 are not throttled.

export interface LimitsConfig {
  max_connections_per_ip: number;
  auth_failures_per_ip: number;
  auth_failure_window: number;
  read_rate: number;
  read_burst: number;
  exempt: string[];
}

export class IpLimiter {
  private readonly connections = new Map<string, number>();
  private readonly failures = new Map<string, number[]>();
  private readonly exempt: Set<string>;
  private lastSweep = 0;

  constructor(private readonly config: LimitsConfig) {
    this.exempt = new Set(config.exempt.map(normalizeIp));
  }

  isExempt(ip: string): boolean {
    return this.exempt.has(normalizeIp(ip));
  }

  /** Counts a new connection; false when the IP is over its limit (the connection is refused). */
  openConnection(ip: string): boolean {
    const key = normalizeIp(ip);
    const count = this.connections.get(key) ?? 0;
    if (count >= this.config.max_connections_per_ip && !this.exempt.has(key)) return false;
    this.connections.set(key, count + 1);
    return true;
  }

  closeConnection(ip: string): void {
    const key = normalizeIp(ip);
    const count = (this.connections.get(key) ?? 1) - 1;
    if (count <= 0) this.connections.delete(key);
    else this.connections.set(key, count);
  }

  recordAuthFailure(ip: string, now = Date.now()): void {
    const key = normalizeIp(ip);
    if (this.exempt.has(key)) return;
    const list = this.recentFailures(key, now);
    list.push(now);
    this.failures.set(key, list);
    // Addresses that failed once and never came back would otherwise stay forever: an attacker with
    // many addresses (an IPv6 /64) could grow this map without bound. Sweep once per window.
    if (now - this.lastSweep >= this.config.auth_failure_window) {
      this.lastSweep = now;
      for (const other of [...this.failures.keys()]) this.recentFailures(other, now);
    }
  }

  /** Addresses with failures still inside the window (for tests and metrics). */
  get trackedAddresses(): number {
    return this.failures.size;
  }

  /** True when the IP has failed too often recently: further attempts are refused without a look. */
  authBlocked(ip: string, now = Date.now()): boolean {
    const key = normalizeIp(ip);
    if (this.exempt.has(key)) return false;
    return this.recentFailures(key, now).length >= this.config.auth_failures_per_ip;
  }

  private recentFailures(key: string, now: number): number[] {
    const list = this.failures.get(key);
    if (!list) return [];
    const cutoff = now - this.config.auth_failure_window;
    const recent = list.filter((t) => t > cutoff);
    if (recent.length === 0) this.failures.delete(key);
    else this.failures.set(key, recent);
    return recent;
  }
}

/** A token bucket: `take(n)` returns 0 when allowed now, else how many ms to wait. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly rate: number, private readonly burst: number, now = Date.now()) {
    this.tokens = burst;
    this.last = now;
  }

  take(amount: number, now = Date.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    this.tokens -= amount;
    if (this.tokens >= 0) return 0;
    return Math.ceil((-this.tokens * 1000) / this.rate);
  }
}

/** '::ffff:127.0.0.1' and '127.0.0.1' are the same client. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
