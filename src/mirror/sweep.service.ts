/**
 * The safety net behind the coalesced sync jobs: for every show that may still need work, enqueue a
 * sync for each enabled target whose mirror is behind the desired version or not yet finished. The
 * deduplicated enqueue is a no-op where a job already waits. Shows whose mirrors are all finished
 * leave the active set.
 */
import type { Logger } from 'pino';
import { isTerminal } from '../domain/mirror.js';
import type { SyncProducer } from '../queues/queues.js';
import type { PartnerRepository } from '../store/partner.repository.js';
import type { ShowRepository } from '../store/show.repository.js';

export class SweepService {
  constructor(
    private readonly shows: ShowRepository,
    private readonly partners: PartnerRepository,
    private readonly sync: SyncProducer,
    private readonly log: Logger,
  ) {}

  async sweep(): Promise<{ shows: number; enqueued: number; finished: number }> {
    const active = await this.shows.activeShows();
    let enqueued = 0;
    let finished = 0;
    for (const [partnerId, showId] of active) {
      const [bundle, desired] = await Promise.all([this.partners.bundle(partnerId), this.shows.desired(partnerId, showId)]);
      if (!desired) continue; // no snapshot yet: its first show event schedules the syncs
      const targets = bundle?.targets.filter((t) => t.enabled) ?? [];
      const mirrors = await this.shows.getMirrors(partnerId, showId, targets.map((t) => t.id));
      let allDone = true;
      for (const [i, t] of targets.entries()) {
        const m = mirrors[i];
        if (m && (isTerminal(m.state) || m.state === 'action_required') && m.syncedVersion >= desired.version) continue;
        allDone = false;
        // Work that a lost or dropped job would leave undone; otherwise the mirror is idle and current.
        const behind =
          !m ||
          m.syncedVersion < desired.version ||
          m.retries > 0 ||
          m.state === 'pending' ||
          m.state === 'provisioning' ||
          Object.values(m.pins).some((p) => p.state === 'pending');
        if (behind) {
          await this.sync.enqueue(t.platform, { partnerId, showId, targetId: t.id });
          enqueued += 1;
        }
      }
      if (allDone && (desired.state === 'ended' || desired.state === 'cancelled')) {
        await this.shows.markInactive(partnerId, showId);
        finished += 1;
      }
    }
    if (enqueued > 0) this.log.debug({ shows: active.length, enqueued, finished }, 'sweep');
    return { shows: active.length, enqueued, finished };
  }
}
