// Reading another process's CPU time and memory from /proc (Linux), so the runner can say how busy
// the server was during a measurement and how much memory it holds.

import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds used so far by a process (all its threads), or NaN off Linux. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in KiB (VmRSS), or NaN when unavailable. */
export function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Measures a process's CPU use between start() and stop(), as a fraction of one core. */
export class CpuMeter {
  private startCpu = 0;
  private startTime = 0;

  constructor(private readonly pid: number) {}

  start(): void {
    this.startCpu = this.pid === process.pid ? ownCpuSeconds() : cpuSeconds(this.pid);
    this.startTime = performance.now();
  }

  /** Fraction of one core used since start() (1.0 = one core busy all the time). */
  stop(): number {
    const cpu = (this.pid === process.pid ? ownCpuSeconds() : cpuSeconds(this.pid)) - this.startCpu;
    return cpu / ((performance.now() - this.startTime) / 1000);
  }
}

function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Busy CPU time of the whole machine (all cores), in seconds, from /proc/stat; NaN off Linux. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!; // steal (f[7]) is not ours to count: see stealSeconds
    return busy / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds so far of every process on the machine, by pid, with its command name. */
function allProcesses(): Map<number, { name: string; cpu: number }> {
  const out = new Map<number, { name: string; cpu: number }>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(entry), { name, cpu: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond() });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU time the hypervisor took from this (virtual) machine, all cores, in seconds. */
export function stealSeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f[7] ?? 0) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU use of the server, the generator and everything else on the machine over a window, in
 * cores. "Others" above a few percent means another program competed and the figures are suspect;
 * `busiest` names the other processes that used the most.
 */
export class LoadMeter {
  private readonly server: CpuMeter;
  private readonly generator: CpuMeter;
  private machineStart = 0;
  private timeStart = 0;
  private processesStart = new Map<number, { name: string; cpu: number }>();
  private stealStart = 0;

  constructor(private readonly serverPid: number) {
    this.server = new CpuMeter(serverPid);
    this.generator = new CpuMeter(process.pid);
  }

  start(): void {
    this.server.start();
    this.generator.start();
    this.machineStart = machineBusySeconds();
    this.stealStart = stealSeconds();
    this.processesStart = allProcesses();
    this.timeStart = performance.now();
  }

  stop(): { server: number; generator: number; others: number; steal: number; busiest: string[] } {
    const server = this.server.stop();
    const generator = this.generator.stop();
    const seconds = (performance.now() - this.timeStart) / 1000;
    const machine = (machineBusySeconds() - this.machineStart) / seconds;
    const busiest: { label: string; cores: number }[] = [];
    for (const [pid, now] of allProcesses()) {
      if (pid === this.serverPid || pid === process.pid) continue;
      const cores = (now.cpu - (this.processesStart.get(pid)?.cpu ?? 0)) / seconds;
      if (cores >= 0.02) busiest.push({ label: `${now.name}[${pid}] ${(cores * 100).toFixed(0)}%`, cores });
    }
    busiest.sort((a, b) => b.cores - a.cores);
    const steal = (stealSeconds() - this.stealStart) / seconds;
    return { server, generator, others: Math.max(0, machine - server - generator), steal, busiest: busiest.slice(0, 5).map((b) => b.label) };
  }
}
