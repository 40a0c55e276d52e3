/**
 * A change that lands while its show's sync is running must still be mirrored (ARCHITECTURE,
 * "Coalescing must not drop a change"). Two mechanisms cover the two windows, and each has a
 * deterministic test here — the sync is held at a known point by a hook, never by a sleep, and the
 * sweep (which would eventually paper over a lost change) is off:
 *
 * - during the sync, before its last version check: the sync reads the desired-state version again
 *   when it is done and syncs once more (SyncService.sync);
 * - after that check, while BullMQ still holds the job active: the producer's `keepLastIfActive`
 *   makes BullMQ add one more job when the active one finishes (a plain deduplicated add would be
 *   dropped, because the active job still owns the deduplication id). Run for both ways a show event
 *   makes its sync jobs: INGEST_SYNC_JOBS=inline (the ingest script's copy of BullMQ's add, which
 *   always stores the follow-up) and INGEST_SYNC_JOBS=dispatch (the dispatcher's addBulk with
 *   syncJobOpts, where the option itself decides; always so on a Redis Cluster).
 *
 * Real redis-server, real BullMQ, the YouTube simulator over real HTTP.
 */
import type { Job, Worker } from 'bullmq';
import { SyncService } from '../../src/mirror/sync.service.js';
import { startSyncWorkers } from '../../src/mirror/sync.worker.js';
import { syncJobId, type SyncJob } from '../../src/queues/queues.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
/** A second service whose show events make their sync jobs through the dispatcher (INGEST_SYNC_JOBS=dispatch). */
let viaDispatch: { svc: TestService; secret: string };
const P = 'race';

/** A promise the test resolves by hand. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

async function serviceWithTarget(env?: Record<string, string>): Promise<{ svc: TestService; secret: string }> {
  const s = await startService({ ...(env ? { env } : {}) }); // no workers, no scheduler: nothing but this file's own sync runs
  expect(s.scheduler).toBeUndefined();
  const sec = await createPartner(s, P);
  const r = await s.api(`/v1/partners/${P}/targets`, { json: { id: 'yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 1000 } });
  expect(r.status).toBe(201);
  return { svc: s, secret: sec };
}

beforeAll(async () => {
  sim = await startSim();
  ({ svc, secret } = await serviceWithTarget());
  viaDispatch = await serviceWithTarget({ INGEST_SYNC_JOBS: 'dispatch' });
});
afterAll(async () => {
  await svc?.close();
  await viaDispatch?.svc.close();
  await sim?.close();
});

async function titleOnYoutube(showId: string, on: TestService = svc): Promise<string | undefined> {
  const m = await on.rt.shows.getMirror(P, showId, 'yt');
  if (!m?.remote) return undefined;
  const effects = (await sim.effects('youtube')).filter((e) => e.externalId === m.remote!.externalId && (e.type === 'show.created' || e.type === 'show.updated'));
  return effects.at(-1)?.title;
}

async function queueIdle(on: TestService): Promise<boolean> {
  for (const q of on.rt.syncProducer.allQueues()) {
    const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
    if (Object.values(c).some((n) => n > 0)) return false;
  }
  return true;
}

test('a title change that lands while sync() is working is mirrored by that same sync (version re-check)', async () => {
  const showId = 'recheck';
  const held = gate();
  const release = gate();
  let calls = 0;
  // The same service the runtime builds, with a hook that holds the sync at a known point: after
  // it created the broadcast and saved the mirror, before its final version check.
  const rt = svc.rt;
  const service = new SyncService({
    redis: rt.redis,
    keys: rt.keys,
    box: rt.box,
    shows: rt.shows,
    partners: rt.partners,
    intents: rt.intents,
    links: rt.links,
    log: rt.log,
    timeoutMs: rt.config.platformTimeoutMs,
    maxRetries: rt.config.syncMaxRetries,
    platformSettings: { facebookGraphVersion: rt.config.facebookGraphVersion },
    leaseMs: rt.config.workerLockMs,
    destinations: rt.destinations,
    onMirrorChanged: async () => {
      if (++calls > 1) return;
      held.open();
      await release.wait;
    },
  });
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(showId, { title: 'Before' }), '2026-11-24T10:00:00Z'))).status).toBe(202);
  const running = service.sync({ partnerId: P, showId, targetId: 'yt' });
  await held.wait;
  expect(await titleOnYoutube(showId)).toBe('Before');
  expect((await sendEvent(svc, P, secret, showEvent('show.updated', sampleShow(showId, { title: 'After' }), '2026-11-24T11:00:00Z'))).status).toBe(202);
  release.open();
  expect(await running).toEqual({ kind: 'done', state: 'ready' });

  // Nothing else ran (no worker): the sync that was running when the change landed mirrored it.
  expect(await titleOnYoutube(showId)).toBe('After');
  const mirror = (await svc.rt.shows.getMirror(P, showId, 'yt'))!;
  expect(mirror.applied?.title).toBe('After');
  expect(mirror.syncedVersion).toBe(await svc.rt.shows.version(P, showId));
});

/** Whether an add for `dedupId` was deduplicated into a job already there (BullMQ's `deduplicated` event: kept as a follow-up or not). */
async function deduplicatedOnce(on: TestService, dedupId: string): Promise<boolean> {
  for (const q of on.rt.syncProducer.allQueues()) {
    const events = await on.rt.redis.xrange(q.keys.events!, '-', '+');
    if (events.some(([, f]: [string, string[]]) => f.includes('deduplicated') && f.includes(dedupId))) return true;
  }
  return false;
}

test.each(['inline', 'dispatch'] as const)(
  'a title change that lands after the last version check, while BullMQ still holds the job active, gets one more sync (keepLastIfActive; INGEST_SYNC_JOBS=%s)',
  async (mode) => {
    const on = mode === 'inline' ? { svc, secret } : viaDispatch;
    expect(on.svc.rt.config.ingestSyncJobs).toBe(mode);
    const showId = 'keep-last';
    const held = gate();
    const release = gate();
    const heldJobs: string[] = [];
    // The production worker wiring (queues, prefixes, options) around the runtime's SyncService; the
    // first job of this show is held after sync() returned — its version check done, the job active.
    const service = {
      sync: async (job: SyncJob) => {
        const out = await on.svc.rt.syncService.sync(job);
        if (job.showId === showId && heldJobs.length === 0) {
          heldJobs.push(job.showId);
          held.open();
          await release.wait;
        }
        return out;
      },
    } as unknown as SyncService;
    const workers: Worker[] = startSyncWorkers(service, { connection: on.svc.rt.bullConnection('worker'), keys: on.svc.rt.keys, shards: on.svc.config.syncShards, concurrency: 2, lockMs: on.svc.config.workerLockMs, log: on.svc.rt.log });
    const completed: string[] = [];
    for (const w of workers) w.on('completed', (job: Job<SyncJob>) => void (job.data.showId === showId && completed.push(String(job.id))));
    try {
      expect((await sendEvent(on.svc, P, on.secret, showEvent('show.scheduled', sampleShow(showId, { title: 'First' }), '2026-11-24T10:00:00Z'))).status).toBe(202);
      await held.wait;
      expect(await titleOnYoutube(showId, on.svc)).toBe('First');
      const active = (await Promise.all(on.svc.rt.syncProducer.allQueues().map((q) => q.getActiveCount()))).reduce((a, b) => a + b, 0);
      expect(active).toBe(1);

      expect((await sendEvent(on.svc, P, on.secret, showEvent('show.updated', sampleShow(showId, { title: 'Second' }), '2026-11-24T11:00:00Z'))).status).toBe(202);
      // The change's add reached BullMQ (at once inline; through the dispatcher otherwise) while the job is still held.
      await waitFor(() => deduplicatedOnce(on.svc, syncJobId({ partnerId: P, showId, targetId: 'yt' })), 10_000);
      release.open();
      // When the held job finishes BullMQ creates the follow-up in the same step, so once nothing is
      // waiting or running, nothing more will run: what is on YouTube then is final.
      await waitFor(async () => completed.length >= 1 && (await queueIdle(on.svc)), 30_000);
      expect(await titleOnYoutube(showId, on.svc)).toBe('Second');
      expect(completed).toHaveLength(2); // the held job and the one BullMQ kept for the change
    } finally {
      release.open();
      await Promise.all(workers.map((w) => w.close()));
    }
  },
);
