/** CPU and memory of process trees (a relay process and its ffmpeg children), read from /proc. */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticks: number | undefined;
function ticksPerSecond(): number {
  if (ticks === undefined) {
    let v = Number.NaN;
    try {
      v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      // default below
    }
    ticks = Number.isFinite(v) && v > 0 ? v : 100;
  }
  return ticks;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** user + system CPU of the process itself, ms */
  cpuMs: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(rest[1]), cpuMs: ((Number(rest[11]) + Number(rest[12])) * 1000) / ticksPerSecond() };
  } catch {
    return undefined;
  }
}

/** Every live process in the trees under `roots` (roots included). */
export function treePids(roots: readonly number[]): number[] {
  const all: ProcStat[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(Number(d));
    if (st) all.push(st);
  }
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out = new Set<number>();
  const stack = roots.filter((r) => all.some((p) => p.pid === r));
  while (stack.length) {
    const p = stack.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    stack.push(...(children.get(p) ?? []));
  }
  return [...out];
}

/** CPU ms used so far by each live process of the trees, by pid. */
export function treeCpu(roots: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of treePids(roots)) {
    const st = readStat(pid);
    if (st) m.set(pid, st.cpuMs);
  }
  return m;
}

/** CPU used between two treeCpu() snapshots, ms (a process that appeared in between counts from 0). */
export function cpuBetween(a: Map<number, number>, b: Map<number, number>, only?: (pid: number) => boolean): number {
  let sum = 0;
  for (const [pid, ms] of b) if (!only || only(pid)) sum += ms - (a.get(pid) ?? 0);
  return sum;
}

/** Proportional set size of the trees, KiB (shared pages split among the processes sharing them); RSS when PSS is unreadable. */
export function treeMemoryKiB(roots: readonly number[]): { pssKiB: number; rssKiB: number; processes: number } {
  let pss = 0;
  let rss = 0;
  const pids = treePids(roots);
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      rss += Number(/^Rss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    } catch {
      try {
        const s = readFileSync(`/proc/${pid}/status`, 'utf8');
        const r = Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0);
        rss += r;
        pss += r;
      } catch {
        // gone
      }
    }
  }
  return { pssKiB: pss, rssKiB: rss, processes: pids.length };
}

/** The command name of a process (`ffmpeg`, `node`), '' when gone. */
export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * CPU ms used so far by the threads of one process: `main` (the main thread, Node's event loop), the
 * others summed by thread name (Node 20 leaves V8's GC/compiler helpers and libuv's pool named
 * `node`); empty when the process is gone.
 */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')).trim();
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(rest[11]) + Number(rest[12])) * 1000) / ticksPerSecond();
      out.set(name, (out.get(name) ?? 0) + ms);
    } catch {
      // thread gone
    }
  }
  return out;
}
