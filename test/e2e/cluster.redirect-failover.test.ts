/**
 * Issue 12 §5 and §3 on a 3-master + 3-replica Redis Cluster (runs in `npm run test:cluster`): an API
 * process writes all its clicks on one master (its home master, LinkService.clickOnNode). That master
 * SIGKILLed in the middle of a steady stream of redirects: every answer is a 302 or a 503 (never a
 * hang, never a 500), the service picks another home master and recovers by itself once the replica
 * is promoted, and every click whose 302 went out is readable afterwards by its sclid.
 */
import type { Cluster } from 'ioredis';
import { keySlot } from '../../src/store/slot.js';
import { startCluster, testTopology, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startService, waitFor, type TestService } from '../helpers/service.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('redirects while the home master of the clicks fails over', () => {
  let cluster: TestRedisCluster;
  let svc: TestService;

  beforeAll(async () => {
    // A short node timeout: the replica is promoted about 2 s after its master stops answering.
    cluster = await startCluster({ nodeTimeoutMs: 2000 });
    svc = await startService({ redis: cluster });
  });

  afterAll(async () => {
    await svc?.close();
    await cluster?.destroy();
  });

  test('the home master killed mid-load: 302 or 503 only, recovery without help, every 302\'s click stored', async () => {
    const client = svc.rt.redis as Cluster;
    // links on shows of every master
    const urls = await Promise.all(
      Array.from({ length: 30 }, (_, i) => svc.rt.links.ensure({ partnerId: 'rf', showId: `fo-${i}`, targetId: 'yt', platform: 'youtube', productId: `p${i}`, url: `https://shop.example.com/p${i}` })),
    );
    const results: { status: number | 'hang' | 'error'; sclid?: string }[] = [];
    let stop = false;
    const loop = async (lane: number): Promise<void> => {
      for (let k = lane; !stop; k++) {
        try {
          const r = await Promise.race([
            fetch(urls[k % urls.length]!, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0' } }),
            // A generous bound: a request still open after 15 s counts as a hang.
            new Promise<'hang'>((res) => setTimeout(() => res('hang'), 15_000).unref()),
          ]);
          if (r === 'hang') results.push({ status: 'hang' });
          else {
            const loc = r.headers.get('location');
            results.push({ status: r.status, sclid: loc ? (new URL(loc).searchParams.get('sclid') ?? undefined) : undefined });
            await r.arrayBuffer();
          }
        } catch {
          results.push({ status: 'error' });
        }
        if (results.at(-1)?.status === 503) await new Promise((res) => setTimeout(res, 50));
      }
    };
    const lanes = Array.from({ length: 8 }, (_, i) => loop(i));
    let victimKey: string;
    try {
      await waitFor(async () => results.filter((r) => r.status === 302).length >= 200, 30_000);
      // the master the clicks are written on, as the clicks' keys say
      const last = results.filter((r) => r.status === 302).at(-1)!;
      victimKey = client.slots[keySlot(svc.rt.keys.click(last.sclid!))]![0]!;
      const victim = Number(victimKey.split(':')[1]);
      const before = results.length;
      await cluster.stopNode(victim, 'SIGKILL');
      await waitFor(async () => (await cluster.roles()).masters.filter((p) => p !== victim).length === 3, 30_000, 200);
      // The service follows without a restart: a steady run of 302s again.
      await waitFor(async () => {
        const tail = results.slice(before).slice(-100);
        return tail.length === 100 && tail.every((r) => r.status === 302);
      }, 60_000, 100);
    } finally {
      stop = true;
      await Promise.all(lanes);
    }
    const statuses = new Set(results.map((r) => r.status));
    expect([...statuses].every((s) => s === 302 || s === 503)).toBe(true);
    // Every click answered 302 is there after the failover (on the promoted replica or elsewhere).
    const acked = results.filter((r) => r.status === 302).map((r) => r.sclid!);
    expect(new Set(acked).size).toBe(acked.length);
    const missing: string[] = [];
    for (const id of acked) if ((await svc.rt.links.findClick(id)) === null) missing.push(id);
    expect(missing).toEqual([]);
    // After the failover the clicks are written on one master again.
    const after = acked.slice(-50).map((id) => client.slots[keySlot(svc.rt.keys.click(id))]![0]);
    expect(new Set(after).size).toBe(1);
    expect(after[0]).not.toBe(victimKey!); // a new home master, picked by the service itself
  }, 180_000);
});
