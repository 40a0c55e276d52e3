/**
 * autocannon, programmatic, the same way for ours and for the baseline: fixed connections, bounded
 * by duration AND by request count, every request taken from a caller-supplied generator (a
 * pre-signed pool, a list of link codes...).
 */
import autocannon from 'autocannon';
import type { Measure } from './bench.js';
import { mean, round } from './stats.js';

export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Hard cap on requests (also the size of a pre-signed pool). */
  maxRequests: number;
  next: () => Pick<autocannon.Request, 'method' | 'path' | 'headers' | 'body'>;
  /** Status codes that count as success (default 2xx). */
  ok?: (status: number) => boolean;
  /**
   * autocannon's sampling interval (default 1000 ms). A run that ends by `maxRequests` ends at the
   * next sample, so its duration (and the rps from it) is rounded UP to this interval: at 1 s, a
   * system serving the cap in 3.1 s is reported at the cap / 4 s. A short interval measures it.
   */
  sampleIntMs?: number;
}

export interface LoadResult {
  /** Successful responses per second. */
  rps: number;
  ok: number;
  total: number;
  durationS: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const r = await autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    maxOverallRequests: o.maxRequests,
    timeout: 10,
    ...(o.sampleIntMs !== undefined ? { sampleInt: o.sampleIntMs } : {}),
    requests: [{ setupRequest: (req) => ({ ...req, ...o.next() }) }],
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count ?? 0;
  const isOk = o.ok ?? ((s: number) => s >= 200 && s < 300);
  const ok = Object.entries(statusCodes).reduce((n, [code, c]) => (isOk(Number(code)) ? n + c : n), 0);
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    rps: ok / r.duration,
    ok,
    total,
    durationS: r.duration,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
  };
}

/** One load run with the CPU time each process used during it (ms). */
export type LoadRun = LoadResult & { cpu: Record<string, number> };

/** CPU ms per successful request, by process, over all `runs`. */
export function cpuPerOp(runs: LoadRun[]): Record<string, number> {
  const ok = runs.reduce((n, r) => n + r.ok, 0);
  const out: Record<string, number> = {};
  for (const k of Object.keys(runs[0]?.cpu ?? {})) out[k] = round(runs.reduce((n, r) => n + (r.cpu[k] ?? 0), 0) / ok, 3);
  return out;
}

/** The runs of one system as a result Measure: means of the rounds, and each round under extra.rounds. */
export function measureLoad(runs: LoadRun[]): Measure {
  return {
    cpuMsPerOp: cpuPerOp(runs),
    throughput: round(mean(runs.map((r) => r.rps)), 0),
    p50: round(mean(runs.map((r) => r.p50)), 2),
    p99: round(mean(runs.map((r) => r.p99)), 2),
    count: runs.reduce((n, r) => n + r.ok, 0),
    extra: { rounds: runs.map((r) => ({ rps: round(r.rps, 0), p50: r.p50, p90: r.p90, p99: r.p99, max: r.max, ok: r.ok, errors: r.errors, statusCodes: r.statusCodes, cpuMs: r.cpu })) },
  };
}
