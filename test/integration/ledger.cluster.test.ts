/**
 * The ledger's steps on a 3-master + 3-replica Redis Cluster (runs in `npm run test:cluster`): the
 * orders and refunds waiting at one moment go to each master as one call (LEDGER_NODE_BATCH_LUA, the
 * one-Redis batch per master), every step is stored exactly once with its own result, and a slot
 * map that names the wrong master, lost scripts and a master that refuses the call fall back to one
 * call per step through the Cluster client. Real redis-servers.
 */
import type { Cluster } from 'ioredis';
import type { Attribution, NormalizedOrder } from '../../src/domain/order.js';
import { AttributionRepository, ledgerBucket, type StoredOrder } from '../../src/store/attribution.repository.js';
import { Keys } from '../../src/store/keys.js';
import { waitForRedis } from '../../src/store/redis.js';
import { keySlot } from '../../src/store/slot.js';
import { startCluster, testTopology, type TestRedisCluster } from '../helpers/redis-cluster.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('ledger steps on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let client: Cluster;
  const keys = new Keys('lctest');
  const opts = { nowMs: Date.parse('2026-11-20T00:00:00Z'), holdMs: 86_400_000 };

  beforeAll(async () => {
    cluster = await startCluster();
    client = cluster.client() as Cluster;
    await waitForRedis(client);
  });
  afterAll(async () => {
    client?.disconnect();
    await cluster?.destroy();
  });

  const order = (id: string, amount: number): NormalizedOrder => ({
    ref: id,
    orderId: id,
    source: 'partner',
    targetId: undefined,
    clickId: `c-${id}`,
    showId: undefined,
    externalShowId: undefined,
    productId: 'p1',
    createdAt: '2026-11-10T10:00:00.000Z',
    total: { amount, currency: 'USD' },
    lines: [],
  });
  const attributed = (id: string): Attribution => ({ attributed: true, via: 'click', showId: 's1', targetId: 't1', productId: 'p1', clickId: `c-${id}`, rateBps: 1000 });

  /** Sum of a command's calls over the masters (INFO commandstats). */
  async function calls(cmd: string): Promise<number> {
    let n = 0;
    for (const node of client.nodes('master')) {
      const m = new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(await node.info('commandstats'));
      n += m ? Number(m[1]) : 0;
    }
    return n;
  }
  async function stored(repo: AttributionRepository, partnerId: string): Promise<StoredOrder[]> {
    const out: StoredOrder[] = [];
    for await (const page of repo.scan(partnerId)) out.push(...page);
    return out;
  }

  test('steps of one moment go per master: one call per master batch, each step stored once with its own result, a second time a no-op', async () => {
    const repo = new AttributionRepository(client, keys);
    const partnerId = 'lc1';
    const ids = Array.from({ length: 60 }, (_, i) => `o${i}`);
    // the buckets of these orders are on every master
    const masters = new Set(ids.map((id) => client.slots[keySlot(keys.ledgerOrders(partnerId, ledgerBucket(id)))]?.[0]));
    expect(masters.size).toBe(3);
    const c0 = (await calls('evalsha')) + (await calls('eval'));
    const first = await Promise.all(ids.map((id, i) => repo.applyOrder(partnerId, order(id, 1000 + i), attributed(id), opts)));
    const used = (await calls('evalsha')) + (await calls('eval')) - c0;
    expect(used).toBeLessThanOrEqual(3 * 2); // one call per master (a second at most if the steps came in two turns); was one per step: 60
    expect(first.every((r) => r.isNew && r.attributed)).toBe(true);
    expect(first.map((r) => r.accrued)).toEqual(ids.map((_, i) => Math.round((1000 + i) / 10)));
    // refunds, then the same orders and refunds again: nothing new, nothing counted twice
    const refunds = await Promise.all(ids.map((id) => repo.applyRefund(partnerId, id, { id: `r-${id}`, amount: 300, currency: 'USD', createdAt: '2026-11-11T00:00:00.000Z' }, opts)));
    expect(refunds.every((r) => r.isNew && r.reversal === 30)).toBe(true);
    const again = await Promise.all(ids.map((id, i) => repo.applyOrder(partnerId, order(id, 1000 + i), attributed(id), opts)));
    expect(again.every((r) => !r.isNew)).toBe(true);
    const refundsAgain = await Promise.all(ids.map((id) => repo.applyRefund(partnerId, id, { id: `r-${id}`, amount: 300, currency: 'USD', createdAt: '2026-11-11T00:00:00.000Z' }, opts)));
    expect(refundsAgain.every((r) => !r.isNew)).toBe(true);
    const rows = await stored(repo, partnerId);
    expect(rows).toHaveLength(60);
    for (const o of rows) {
      const i = Number(o.order.orderId.slice(1));
      expect(o.gross).toBe(1000 + i);
      expect(o.refunded).toBe(300);
      expect(o.accrued - o.reversed).toBe(Math.round((1000 + i - 300) / 10));
    }
  });

  test('a slot map that names the wrong master: the step goes again through the Cluster client, stored once', async () => {
    const repo = new AttributionRepository(client, keys);
    const partnerId = 'lc2';
    const key = keys.ledgerOrders(partnerId, ledgerBucket('w1'));
    const slot = keySlot(key);
    const right = client.slots[slot]![0]!;
    const wrong = client.nodes('master').map((m) => `${m.options.host}:${m.options.port}`).find((k) => k !== right)!;
    const slots = client.slots as string[][];
    const saved = slots[slot]!;
    slots[slot] = [wrong];
    let r;
    try {
      r = await repo.applyOrder(partnerId, order('w1', 5000), attributed('w1'), opts);
    } finally {
      slots[slot] = saved;
    }
    expect(r.isNew).toBe(true);
    expect(r.accrued).toBe(500);
    const rows = await stored(repo, partnerId);
    expect(rows.map((o) => [o.order.orderId, o.gross, o.accrued])).toEqual([['w1', 5000, 500]]);
  });

  test('after the masters lost their scripts, and when a master refuses the call, every step is still stored', async () => {
    const repo = new AttributionRepository(client, keys);
    const partnerId = 'lc3';
    for (const m of client.nodes('master')) await m.script('FLUSH');
    const ids = Array.from({ length: 12 }, (_, i) => `f${i}`);
    const a = await Promise.all(ids.map((id) => repo.applyOrder(partnerId, order(id, 2000), attributed(id), opts)));
    expect(a.every((r) => r.isNew && r.accrued === 200)).toBe(true);
    // one master's connection refuses the call as a whole: its steps go one by one through the client
    const m = client.nodes('master')[0]!;
    const evalsha = m.evalsha.bind(m);
    m.evalsha = (() => Promise.reject(new Error('ERR Error compiling script (new function): unknown flag'))) as typeof m.evalsha;
    try {
      const more = Array.from({ length: 12 }, (_, i) => `g${i}`);
      const b = await Promise.all(more.map((id) => repo.applyOrder(partnerId, order(id, 3000), attributed(id), opts)));
      expect(b.every((r) => r.isNew && r.accrued === 300)).toBe(true);
    } finally {
      m.evalsha = evalsha;
    }
    expect(await stored(repo, partnerId)).toHaveLength(24);
  });
});
