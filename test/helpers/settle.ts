/**
 * "Nothing more will happen" without a fixed sleep: a queue is settled when it holds no job that is
 * waiting, running, delayed or prioritized, and (sync queues) the sync-dispatch stream holds no entry
 * the dispatcher has not turned into jobs yet. The ingest's 202 waits for its dispatch entry, the
 * dispatcher deletes an entry only after its jobs exist, other producers add jobs before they
 * answer, and BullMQ adds a keep-last follow-up in the same step that finishes the active job, so once every queue that could act is empty, no further effect can arrive from it.
 */
import type { Queue } from 'bullmq';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import type { Platform } from '../../src/targets/target.adapter.js';
import { waitFor, type TestService } from './service.js';

const BUSY = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

export async function queuesIdle(queues: Queue[]): Promise<boolean> {
  for (const q of queues) {
    // A sync queue is idle only once no accepted event waits for the dispatcher to make its job.
    const prefix = /^(.*):\{q:sync-[a-z]+-\d+\}$/.exec(q.opts.prefix ?? '')?.[1];
    if (prefix !== undefined && (await ((await q.client) as unknown as RedisClient).xlen(new Keys(prefix).syncDispatch())) > 0) return false;
    const counts = await q.getJobCounts(...BUSY);
    if (BUSY.some((s) => (counts[s] ?? 0) > 0)) return false;
  }
  return true;
}

/** Waits until the given queues are settled (see above). */
export async function settled(queues: Queue[], timeoutMs = 30_000): Promise<void> {
  await waitFor(() => queuesIdle(queues), timeoutMs, 25);
}

/** The sync queues of the service (all platforms, or some). */
export function syncQueues(svc: TestService, platforms?: Platform[]): Queue[] {
  const all = svc.rt.syncProducer.allQueues();
  if (!platforms) return all;
  return all.filter((q) => platforms.some((p) => q.name.startsWith(`sync-${p}-`)));
}
