/**
 * Issue 12 §3, on a 3-master + 3-replica Redis Cluster (runs in `npm run test:cluster`):
 * - a write is acknowledged only once a replica holds it (WAIT): with the replicas frozen the API
 *   answers 503, and the partner's retry (same webhook-id) is accepted once they are back;
 * - a master SIGKILLed in the middle of a steady stream of partner events: every answer is a 202 or a
 *   503 (never a hang, never a 500), the service recovers by itself once the replica is promoted, and
 *   every event answered 202 is readable afterwards (nothing acknowledged was lost in the failover).
 */
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { startCluster, testTopology, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('Redis Cluster failover', () => {
  let cluster: TestRedisCluster;
  let svc: TestService;
  let sim: TestSim;
  let secret: string;

  beforeAll(async () => {
    // A short node timeout: the replica is promoted about 2 s after its master stops answering.
    cluster = await startCluster({ nodeTimeoutMs: 2000 });
    sim = await startSim();
    svc = await startService({ redis: cluster });
    secret = await createPartner(svc, 'fo');
    const r = await svc.api('/v1/partners/fo/targets', {
      json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
  });

  afterAll(async () => {
    await svc?.close();
    await cluster?.destroy();
    await sim?.close();
  });

  test('WAIT is on by default for a cluster with replicas', () => {
    expect(svc.config.redisWaitReplicas).toBe('auto');
    expect(svc.rt.replicaAck.active).toBe(true);
  });

  test('with the replicas frozen a write is not acknowledged (503); the retry is, once they answer', async () => {
    const { replicas } = await cluster.roles();
    expect(replicas).toHaveLength(3);
    const event = showEvent('show.scheduled', sampleShow('frozen'), new Date().toISOString());
    for (const p of replicas) cluster.signalNode(p, 'SIGSTOP');
    let refused: Response;
    try {
      refused = await sendEvent(svc, 'fo', secret, event, { webhookId: 'msg_frozen' });
    } finally {
      for (const p of replicas) cluster.signalNode(p, 'SIGCONT');
    }
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/replica/);
    // The partner retries with the same webhook-id: accepted once, stored.
    const accepted = await waitFor(async () => {
      const r = await sendEvent(svc, 'fo', secret, event, { webhookId: 'msg_frozen' });
      return r.status === 503 ? undefined : r;
    });
    expect([200, 202]).toContain(accepted.status);
    expect((await svc.api('/v1/partners/fo/shows/frozen')).status).toBe(200);
  });

  test('with the replicas frozen a sync step is not sent to the platform (its start is not on a replica); once they answer it is, once', async () => {
    const event = showEvent('show.scheduled', sampleShow('sync-frozen'), new Date(Date.now() + 86_400_000).toISOString());
    expect((await sendEvent(svc, 'fo', secret, event)).status).toBe(202);
    const seen = (await sim.control('GET', '/_sim/youtube/requests')) as { seq: number }[];
    const since = seen.at(-1)?.seq ?? 0;
    const job = { partnerId: 'fo', showId: 'sync-frozen', targetId: 'yt' };
    const effectsBefore = (await sim.effects('youtube')).length;
    const { replicas } = await cluster.roles();
    for (const p of replicas) cluster.signalNode(p, 'SIGSTOP');
    let frozen: SyncOutcome;
    try {
      frozen = await svc.rt.syncService.sync(job, { token: 'frozen-run' });
    } finally {
      for (const p of replicas) cluster.signalNode(p, 'SIGCONT');
    }
    expect(frozen).toMatchObject({ kind: 'delay', reason: 'replica_unconfirmed' });
    expect((await sim.control('GET', `/_sim/youtube/requests?since=${since}`)) as unknown[]).toEqual([]);
    let outcome: SyncOutcome | undefined;
    for (let i = 0; i < 30; i++) {
      outcome = await svc.rt.syncService.sync(job, { token: `thawed-run-${i}` });
      if (outcome.kind !== 'delay') break;
      await new Promise((res) => setTimeout(res, Math.min(outcome!.kind === 'delay' ? outcome!.delayMs : 0, 1000)));
    }
    expect(outcome).toEqual({ kind: 'done', state: 'ready' });
    // The start's WAIT goes to the one master holding the intent, not to all three.
    const waits = svc.rt.replicaAck.stats.waits;
    await svc.rt.replicaAck.confirmKey(svc.rt.keys.intent('fo', 'sync-frozen', 'yt', 'g0:create:probe'));
    expect(svc.rt.replicaAck.stats.waits - waits).toBe(1);
    const m = (await svc.rt.shows.getMirror('fo', 'sync-frozen', 'yt'))!;
    const created = (await sim.effects('youtube')).slice(effectsBefore).filter((e) => e.type === 'show.created');
    expect(created.map((e) => e.externalId)).toEqual([m.remote!.externalId]);
  }, 60_000);

  test('a master killed mid-load: 202 or 503 only, recovery without help, no acknowledged event lost', async () => {
    const results: { showId: string; status: number | 'hang' | 'error' }[] = [];
    let stop = false;
    let n = 0;
    const loop = async (lane: number): Promise<void> => {
      while (!stop) {
        const showId = `l${lane}-${++n}`;
        const event = showEvent('show.scheduled', sampleShow(showId), new Date().toISOString());
        try {
          const r = await Promise.race([
            sendEvent(svc, 'fo', secret, event, { webhookId: `msg_${showId}` }),
            // A generous bound: a request still open after 15 s counts as a hang.
            new Promise<'hang'>((res) => setTimeout(() => res('hang'), 15_000).unref()),
          ]);
          results.push({ showId, status: r === 'hang' ? 'hang' : r.status });
          if (r !== 'hang') await r.arrayBuffer();
        } catch {
          results.push({ showId, status: 'error' });
        }
        if (results.at(-1)?.status === 503) await new Promise((res) => setTimeout(res, 50));
      }
    };
    const lanes = Array.from({ length: 4 }, (_, i) => loop(i));
    try {
      await waitFor(async () => results.filter((r) => r.status === 202).length >= 40, 30_000);
      const { masters } = await cluster.roles();
      const victim = masters[0]!;
      const before = results.length;
      await cluster.stopNode(victim, 'SIGKILL');
      // The kill bites: writes are refused while the slots of the dead master have no master.
      await waitFor(async () => results.slice(before).some((r) => r.status === 503), 30_000);
      // The replica is promoted by the cluster itself; the service follows without a restart.
      await waitFor(async () => (await cluster.roles()).masters.filter((p) => p !== victim).length === 3, 30_000, 200);
      await waitFor(async () => {
        const tail = results.slice(before).slice(-60);
        return tail.length === 60 && tail.every((r) => r.status === 202);
      }, 60_000, 100);
    } finally {
      stop = true;
      await Promise.all(lanes);
    }
    const statuses = new Set(results.map((r) => r.status));
    expect([...statuses].sort()).toEqual([202, 503]);
    // Every event answered 202 is there after the failover.
    const acked = results.filter((r) => r.status === 202).map((r) => r.showId);
    const missing: string[] = [];
    for (const id of acked) if ((await svc.api(`/v1/partners/fo/shows/${id}`)).status !== 200) missing.push(id);
    expect(missing).toEqual([]);
  }, 180_000);
});
