/**
 * The benchmark harness's bookkeeping (no measurement): issue 12's goals with a CPU bound, the
 * topology knob, the bare queues' hash tags, and how acrossTopologies labels and keeps rows.
 */
import { ratioRow, type BenchContext, type BenchResult, type Benchmark } from '../../bench/lib/bench.js';
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
