/**
 * A sync job cannot run before the write that caused it (issue 8 item 8). The ingest used to enqueue
 * the jobs in parallel with the Lua write, on another connection, so a worker could take the job,
 * find nothing new and finish before the write landed, leaving the change to the sweep. On a single
 * Redis the write and its sync-dispatch entry are now one Lua step; this test covers the Redis
 * Cluster path (claim, write, then the entry as separate steps), which it forces here on a single
 * Redis (`singleNode` false: the same commands, each on one slot). The write is held back
 * deterministically (no sleeps): the real `ShowRepository.ingest` is wrapped so that it first waits
 * until the dispatcher has turned every dispatch entry written so far into jobs, and, if a sync job
 * was enqueued while the write had not been made yet, until that job has run to completion — the
 * worst interleaving an entry written alongside the write would allow. With the entry after the
 * write no job exists while the write is pending, and every event is mirrored by its own job, with no
 * sweep (the scheduler is not running).
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

/** Enqueues seen while a show write was in flight (they could run before it). */
const early: string[] = [];
/** Sweep entries (markActive) written while the show's write was in flight. */
const activeEarly: string[] = [];
let completedJobs = 0;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  svc = await startService({ workers: true });
  secret = await createPartner(svc, 'ew');
  const r = await svc.api('/v1/partners/ew/targets', {
    json: { id: 'ew-yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  for (const w of svc.workers) w.on('completed', () => (completedJobs += 1));

  const shows = svc.rt.shows;
  Object.defineProperty(shows, 'singleNode', { get: () => false });
  const producer = svc.rt.syncProducer;
  const write = shows.ingest.bind(shows);
  const markActive = shows.markActive.bind(shows);
  const enqueue = producer.enqueue.bind(producer);
  const enqueueBulk = producer.enqueueBulk.bind(producer);
  const pending = new Set<string>();
  let enqueuedDuringWrite = 0;
  const seen = (showId: string): void => {
    if (pending.has(showId)) {
      early.push(showId);
      enqueuedDuringWrite += 1;
    }
  };
  producer.enqueue = async (platform, job, delayMs) => {
    seen(job.showId);
    return enqueue(platform, job, delayMs);
  };
  producer.enqueueBulk = async (jobs) => {
    for (const { job } of jobs) seen(job.showId);
    return enqueueBulk(jobs);
  };
  shows.markActive = async (partnerId, showId) => {
    if (pending.has(showId)) activeEarly.push(showId);
    return markActive(partnerId, showId);
  };
  shows.ingest = async (partnerId, showId, ...rest) => {
    pending.add(showId);
    try {
      // Let everything the caller started alongside the write get going first (its commands go out
      // before the XLEN below on the same connection), and the dispatcher turn every entry into jobs.
      await new Promise((r) => setImmediate(r));
      await waitFor(async () => (await svc.rt.redis.xlen(svc.rt.keys.syncDispatch())) === 0, 20_000, 5);
      if (enqueuedDuringWrite > 0) {
        // A job exists before its write: let the worker run it to completion first.
        const before = completedJobs;
        await waitFor(async () => {
          if (completedJobs <= before) return false;
          const active = await Promise.all(syncQueues(svc).map((q) => q.getActiveCount()));
          return active.every((n) => n === 0);
        }, 20_000, 10);
        enqueuedDuringWrite = 0;
      }
      return await write(partnerId, showId, ...rest);
    } finally {
      pending.delete(showId);
    }
  };
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('each event is mirrored by the job it enqueued, which is added only after the write returned', async () => {
  const show = sampleShow('w1');
  expect((await sendEvent(svc, 'ew', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  await settled(syncQueues(svc));
  expect(await svc.rt.shows.getMirror('ew', 'w1', 'ew-yt')).toMatchObject({ state: 'ready', syncedVersion: 1 });

  expect((await sendEvent(svc, 'ew', secret, showEvent('show.updated', { ...show, title: 'New title' }, '2026-11-24T17:10:00Z'))).status).toBe(202);
  await settled(syncQueues(svc));
  const m = await svc.rt.shows.getMirror('ew', 'w1', 'ew-yt');
  expect(m).toMatchObject({ state: 'ready', syncedVersion: 2 });
  expect(m?.applied?.title).toBe('New title');
  expect(early).toEqual([]);
});

// The sweep drops a show only while its active-set score is the one it read. Marked alongside the
// write (another slot on a Cluster), a sweep could read the new score and the show's old, ended
// state before the write landed, then drop the show once the write had made it scheduled again.
test('the sweep entry (markActive) of a snapshot is written only after the show write returned', async () => {
  const show = sampleShow('w2');
  expect((await sendEvent(svc, 'ew', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, 'ew', secret, showEvent('show.ended', { ...show, state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, 'ew', secret, showEvent('show.scheduled', show, '2026-11-24T20:00:00Z'))).status).toBe(202);
  await settled(syncQueues(svc));
  expect(await svc.rt.shows.activeShows()).toContainEqual(['ew', 'w2']);
  expect(activeEarly).toEqual([]);
});
