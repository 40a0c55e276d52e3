/** Where the numbers came from: machine, runtime, Redis, commit, and how expensive an fsync is here. */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, release, totalmem, platform } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { summarize, round } from './stats.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  redis: string;
  commit: string;
}

function quiet(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  const redis = /v=(\S+)/.exec(quiet('redis-server', ['--version']))?.[1] ?? 'unknown';
  // read-only git: which commit the service code came from, and whether the tree had local changes
  const head = quiet('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = quiet('git', ['status', '--porcelain', '--', 'src', 'workers']) !== '';
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    os: `${platform()} ${release()}`,
    node: process.version,
    redis,
    commit: head + (dirty ? ' (with uncommitted changes in src/ or workers/)' : ''),
  };
}

/** p50/p99 of write(4 KiB)+fsync in `dir`: the floor under every `appendfsync always` acknowledgement. */
export function fsyncProbe(dir: string, n = 200): { p50Ms: number; p99Ms: number } {
  const file = join(dir, 'fsync-probe');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      writeSync(fd, buf);
      fsyncSync(fd);
      samples.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const s = summarize(samples);
  return { p50Ms: round(s.p50, 3), p99Ms: round(s.p99, 3) };
}

/** CPU time counters: the whole machine (/proc/stat) and this process plus its reaped children. */
export interface CpuSnapshot {
  busy: number;
  total: number;
  ours: number;
}

export function cpuSnapshot(): CpuSnapshot {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...f] = line.trim().split(/\s+/);
    const n = f.map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = n;
    const busy = user + nice + system + irq + softirq + steal;
    // /proc/self/stat after the command name: utime stime cutime cstime are fields 14-17
    const self = readFileSync('/proc/self/stat', 'utf8');
    const rest = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
    const ours = (rest[11] ?? 0) + (rest[12] ?? 0) + (rest[13] ?? 0) + (rest[14] ?? 0);
    return { busy, total: busy + idle + iowait, ours };
  } catch {
    return { busy: 0, total: 0, ours: 0 };
  }
}

export interface CpuShare {
  /** Share of the machine's CPU capacity that was busy, %. */
  machineBusyPct: number;
  /** Of capacity, used by this benchmark (bench process, systems under test, redis-server), %. */
  benchPct: number;
  /** Of capacity, used by everything else on the machine, %. */
  othersPct: number;
}

/** Children must have exited (been reaped) by `b` for their time to count as ours. */
export function cpuShare(a: CpuSnapshot, b: CpuSnapshot): CpuShare {
  const total = b.total - a.total;
  if (total <= 0) return { machineBusyPct: Number.NaN, benchPct: Number.NaN, othersPct: Number.NaN };
  const busy = ((b.busy - a.busy) / total) * 100;
  const bench = ((b.ours - a.ours) / total) * 100;
  return { machineBusyPct: round(busy, 1), benchPct: round(bench, 1), othersPct: round(Math.max(0, busy - bench), 1) };
}

/** How busy the machine is right now (sampled over `ms`), %. */
export async function busyNow(ms = 2000): Promise<number> {
  const a = cpuSnapshot();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuSnapshot();
  return b.total > a.total ? round(((b.busy - a.busy) / (b.total - a.total)) * 100, 1) : 0;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const v = Number(quiet('getconf', ['CLK_TCK']));
    clockTicks = Number.isFinite(v) && v > 0 ? v : 100;
  }
  return clockTicks;
}

/** CPU time (user + system) a live process has used so far, ms; NaN when it cannot be read. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (((rest[11] ?? 0) + (rest[12] ?? 0)) * 1000) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU used by named processes between start and stop, ms. CPU per operation barely moves when
 * other work competes for the cores, unlike throughput: it is the contention-proof comparison.
 */
export function cpuMeter(pids: Record<string, number | undefined | readonly (number | undefined)[]>): () => Record<string, number> {
  // several processes under one name (the six redis-servers of a cluster) count as one
  const cpu = (p: number | undefined | readonly (number | undefined)[]): number => (Array.isArray(p) ? (p as (number | undefined)[]).reduce<number>((n, x) => n + processCpuMs(x), 0) : processCpuMs(p as number | undefined));
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpu(pid)]));
  return () => Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, round(cpu(pid) - (start[k] ?? Number.NaN), 0)]));
}
