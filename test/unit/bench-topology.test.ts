/**
 * The benchmark harness's bookkeeping (no measurement): issue 12's goals with a CPU bound, the
 * topology knob, the bare queues' hash tags, and how acrossTopologies labels and keeps rows.
 */
import { pairedRatio, ratioRow, type BenchContext, type BenchResult, type Benchmark } from '../../bench/lib/bench.js';
import { renderMarkdown, summaryTable, type StoredResult } from '../../bench/lib/report.js';
import { pairCount, ratioOfPairs, runPairs } from '../../bench/lib/pairs.js';
import { median } from '../../bench/lib/stats.js';
import { acrossTopologies, bareQueuePrefix, benchTopologies } from '../../bench/lib/topology.js';

const ctx: BenchContext = { quick: true, log: () => undefined, profileDir: undefined, topology: 'single' };

function withTopology<T>(v: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.BENCH_TOPOLOGY;
  if (v === undefined) delete process.env.BENCH_TOPOLOGY;
  else process.env.BENCH_TOPOLOGY = v;
  return fn().finally(() => {
    if (before === undefined) delete process.env.BENCH_TOPOLOGY;
    else process.env.BENCH_TOPOLOGY = before;
  });
}

describe('ratioRow goals', () => {
  const row = (oursTp: number, oursCpu: number) =>
    ratioRow({
      scenario: 's',
      unit: 'syncs/s',
      ours: { throughput: oursTp, cpuMsPerOp: { worker: oursCpu } },
      baseline: { throughput: 100, cpuMsPerOp: { worker: 1 } },
      baselineLabel: 'b',
      ratioOf: 'throughput',
      goal: { ratio: 'throughput', min: 0.9, cpu: { process: 'worker', max: 1.3 } },
    });
  it('needs both the throughput ratio and the CPU bound', () => {
    expect(row(95, 1.2).met).toBe(true);
    expect(row(95, 1.4).met).toBe(false);
    expect(row(85, 1.2).met).toBe(false);
    expect(row(90, 1.3).met).toBe(true);
  });
  it('is not met when the CPU of that process is missing', () => {
    const r = ratioRow({ scenario: 's', unit: 'u', ours: { throughput: 100 }, baseline: { throughput: 100, cpuMsPerOp: { worker: 1 } }, baselineLabel: 'b', ratioOf: 'throughput', goal: { ratio: 'throughput', min: 0.9, cpu: { process: 'worker', max: 1.3 } } });
    expect(r.met).toBe(false);
  });

  // the relay row (BENCH_RELAY_PAIRS): one pair's ratio moved 1.10–1.36 between runs, so it is judged on the pairs' median
  const paired = (pairs?: ReturnType<typeof pairedRatio>) =>
    ratioRow({ scenario: 'cpu', unit: '% of a core', ours: { throughput: 0.36 }, baseline: { throughput: 0.25 }, baselineLabel: 'b', ratioOf: 'throughput', goal: { ratio: 'throughput', max: 1.2 }, ...(pairs ? { pairs } : {}) });
  const threePairs = (): ReturnType<typeof pairedRatio> =>
    pairedRatio([
      { ours: 0.345, baseline: 0.3, first: 'baseline', othersPct: { ours: 1, baseline: 40 } },
      { ours: 0.33, baseline: 0.3, first: 'ours' },
      { ours: 0.408, baseline: 0.3, first: 'baseline' },
    ]);
  const stored = (rows: BenchResult['rows']): StoredResult => ({
    name: 'relay', title: 'T', issue: '10', startedAt: '2026-12-07T21:00:00.000Z', durationS: 1, setup: {}, notes: [], rows, quick: false,
    machine: { cpuModel: 'c', cores: 2, memoryGiB: 4, os: 'linux', node: 'v20', redis: '7', commit: 'x' },
  });

  it('judges a row measured in pairs on the median of the pairs\' ratios, not on the ratio of the cells', () => {
    const r = paired(threePairs());
    expect(r.ratio).toBeCloseTo(1.15, 10);
    expect(r.met).toBe(true);
    expect(r.pairs?.min).toBeCloseTo(1.1, 10);
    expect(r.pairs?.max).toBeCloseTo(1.36, 10);
    expect(paired().ratio).toBeCloseTo(1.44, 10); // one measurement: the cells' ratio, as before
    expect(paired().met).toBe(false);
    expect([median([3, 1, 2]), median([1, 4, 2, 3]), median([])]).toEqual([2, 2.5, Number.NaN]);
  });

  it('shows the median with the spread and lists every pair; rows without pairs render as before', () => {
    expect(summaryTable([stored([paired(threePairs())])])).toContain('| 1.15 (median of 3 pairs, 1.10–1.36) | ≤ 1.2 ✅ |');
    const md = renderMarkdown([stored([paired(threePairs())])]);
    expect(md).toContain('1 (baseline first): ours 0.345, baseline 0.300, 1.15, others 1.0 % / 40.0 %; 2 (ours first): ours 0.330, baseline 0.300, 1.10; 3 (baseline first)');
    const old = renderMarkdown([stored([paired()])]);
    expect(old).toContain('| 1.44 | ≤ 1.2 ❌ |');
    expect(old).not.toMatch(/median|pairs/);
  });
});

describe('alternated pairs (bench/lib/pairs.ts: the relay and redirect rows)', () => {
  it('runs the baseline first in odd pairs and ours first in even ones, and keeps each side in its place', async () => {
    const order: string[] = [];
    const logged: number[] = [];
    const pairs = await runPairs(
      3,
      (side, k) => {
        order.push(`${k}${side}`);
        return Promise.resolve(side === 'ours' ? 10 * k : 20 * k);
      },
      (_pair, k) => logged.push(k),
    );
    expect(order).toEqual(['1baseline', '1ours', '2ours', '2baseline', '3baseline', '3ours']);
    expect(pairs).toEqual([
      { ours: 10, baseline: 20, first: 'baseline' },
      { ours: 20, baseline: 40, first: 'ours' },
      { ours: 30, baseline: 60, first: 'baseline' },
    ]);
    expect(logged).toEqual([1, 2, 3]);
  });

  it('judges on the median of the pairs\' ratios, with the other processes\' load of each side', () => {
    const r = ratioOfPairs(
      [
        { ours: { rps: 20, others: 1 }, baseline: { rps: 30, others: 2 }, first: 'baseline' },
        { ours: { rps: 18, others: 3 }, baseline: { rps: 36, others: 4 }, first: 'ours' },
        { ours: { rps: 21, others: 5 }, baseline: { rps: 30, others: 6 }, first: 'baseline' },
      ],
      (x) => x.rps,
      (x) => x.others,
    );
    expect([r.median, r.min, r.max].map((x) => Math.round(x * 1000) / 1000)).toEqual([0.667, 0.5, 0.7]);
    expect(r.each[1]).toEqual({ ours: 18, baseline: 36, ratio: 0.5, first: 'ours', othersPct: { ours: 3, baseline: 4 } });
  });

  it('reads the count from its variable: 3 by default, 1 quick, and refuses anything but a whole number ≥ 1', () => {
    const name = 'BENCH_TEST_PAIRS';
    try {
      delete process.env[name];
      expect([pairCount(name, false), pairCount(name, true)]).toEqual([3, 1]);
      process.env[name] = '5';
      expect(pairCount(name, true)).toBe(5);
      for (const bad of ['0', '2.5', 'two']) {
        process.env[name] = bad;
        expect(() => pairCount(name, false)).toThrow(name);
      }
    } finally {
      delete process.env[name];
    }
  });
});

describe('topologies', () => {
  it('BENCH_TOPOLOGY picks one or both, default both, and refuses anything else', async () => {
    await withTopology(undefined, async () => expect(benchTopologies()).toEqual(['single', 'cluster']));
    await withTopology('single', async () => expect(benchTopologies()).toEqual(['single']));
    await withTopology('cluster', async () => expect(benchTopologies()).toEqual(['cluster']));
    await withTopology('both', async () => expect(benchTopologies()).toEqual(['single', 'cluster']));
    await withTopology('sharded', async () => expect(() => benchTopologies()).toThrow(/BENCH_TOPOLOGY/));
  });

  it('hash-tags each bare queue on a cluster only', () => {
    expect(bareQueuePrefix('bare', 'bare-ingest', false)).toBe('bare');
    expect(bareQueuePrefix('bare', 'bare-ingest', true)).toBe('bare:{q:bare-ingest}');
  });

  const fake = (failOn?: string): Benchmark => ({
    name: 'x',
    title: 'X',
    issue: '12',
    run: (c: BenchContext): Promise<BenchResult> => {
      if (c.topology === failOn) return Promise.reject(new Error('no cluster'));
      return Promise.resolve({ name: 'x', title: 'X', issue: '12', startedAt: '', durationS: 1, setup: { n: 1, where: c.topology }, notes: [`ran on ${c.topology}`], rows: [ratioRow({ scenario: 'row', unit: 'u', ours: { throughput: 1 }, baseline: { throughput: 2 }, baselineLabel: 'b', ratioOf: 'throughput' })] });
    },
  });

  it('acrossTopologies runs each topology and labels its rows and notes', async () => {
    const r = await withTopology('both', () => acrossTopologies(fake()).run(ctx));
    expect(r.rows.map((x) => x.scenario)).toEqual(['one Redis: row', 'cluster 3+3 (WAIT 1): row']);
    expect(r.notes).toEqual(['one Redis: ran on single', 'cluster 3+3 (WAIT 1): ran on cluster']);
    expect(r.setup['where']).toBe('single');
    expect(r.setup['where (cluster)']).toBe('cluster');
    expect(r.failures).toBeUndefined();
  });

  it('keeps the rows of a topology that worked and records the one that failed', async () => {
    const r = await withTopology('both', () => acrossTopologies(fake('cluster')).run(ctx));
    expect(r.rows.map((x) => x.scenario)).toEqual(['one Redis: row']);
    expect(r.failures).toEqual(['cluster']);
    expect(r.notes.some((n) => n.startsWith('cluster 3+3 (WAIT 1): FAILED'))).toBe(true);
  });

  it('fails when every topology failed', async () => {
    await expect(withTopology('cluster', () => acrossTopologies(fake('cluster')).run(ctx))).rejects.toThrow('no cluster');
  });
});
