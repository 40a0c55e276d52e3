/**
 * Sync runs played one by one at a target rate limit of 1 (test/integration/youtube.start-one-token,
 * pins.one-token): before each run the limiter's keys are emptied, so each run gets one token.
 */
import { keysMatching } from './redis-cluster.js';
import type { TestService } from './service.js';

export type SyncJob = { partnerId: string; showId: string; targetId: string };

/**
 * Up to `max` runs of the job, each after its target's limiter keys were emptied (`limitKeys`: the
 * window only, or every key of the limiter), until one is done; the delays' reasons.
 */
export async function oneTokenRuns(svc: TestService, job: SyncJob, name: string, max: number, limitKeys: 'window' | '*'): Promise<string[]> {
  const reasons: string[] = [];
  for (let run = 0; run < max; run++) {
    for (const k of await keysMatching(svc.rt.redis, svc.rt.keys.targetLimit('*', limitKeys))) await svc.rt.redis.del(k);
    const outcome = await svc.rt.syncService.sync(job, { token: `${name}-${run}` });
    if (outcome.kind === 'done') break;
    reasons.push(outcome.reason);
  }
  return reasons;
}
