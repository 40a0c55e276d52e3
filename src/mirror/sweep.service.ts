/**
 * The safety net behind the coalesced sync jobs: for every show that may still need work, enqueue a
 * sync for each enabled target whose mirror is behind the desired version or not yet finished. The
 * deduplicated enqueue is a no-op where a job already waits. Shows whose mirrors are all finished
 * leave the active set, unless the show was marked active again after the sweep read it.
 */
import type { Logger } from 'pino';
import { cleanupPending, isTerminal, mayHoldPlatformShow, refusedRetryDue, stillUnreadable, type MirrorDoc } from '../domain/mirror.js';
import type { DesiredShow } from '../domain/desired-state.js';
import type { SyncProducer } from '../queues/queues.js';
import type { PartnerBundle, PartnerRepository } from '../store/partner.repository.js';
import type { ShowRepository } from '../store/show.repository.js';
import { isUnreadableRecord } from '../store/redis.js';

export class SweepService {
  constructor(
    private readonly shows: ShowRepository,
    private readonly partners: PartnerRepository,
    private readonly sync: SyncProducer,
    private readonly log: Logger,
    /** Active shows read per round trip (config sweepPageSize); every page is swept. */
    private readonly pageSize = 500,
    /** This process's keys (SecretBox.keyring): a mirror failed on an unreadable secret under them is not run again. */
    private readonly keyring = '',
  ) {}

  async sweep(): Promise<{ shows: number; enqueued: number; finished: number }> {
    let shows = 0;
    let enqueued = 0;
    let finished = 0;
    // One bundle read per partner per sweep, however many of its shows are active.
    const bundles = new Map<string, Promise<PartnerBundle | null>>();
    const bundleOf = (partnerId: string): Promise<PartnerBundle | null> => {
      let b = bundles.get(partnerId);
      if (!b) {
        b = this.partners.bundle(partnerId);
        bundles.set(partnerId, b);
      }
      return b;
    };
    for await (const page of this.shows.activeShowEntries(this.pageSize)) {
      shows += page.length;
      // One show whose records do not read (a hand-edited or half-migrated snapshot: invalid JSON, a
      // wrong type) fails alone, logged with its ids, and is tried again by the next sweep: before, its
      // error rejected the whole page and every other active show after it went unswept, sweep after sweep.
      const results = await Promise.all(
        page.map(({ partnerId, showId, score }) =>
          this.sweepShow(partnerId, showId, score, bundleOf).catch((err: unknown) => {
            if (!isUnreadableRecord(err)) throw err;
            this.log.error({ err, partnerId, showId }, 'sweep: show skipped, its stored records do not read');
            return { enqueued: 0, finished: false };
          }),
        ),
      );
      for (const r of results) {
        enqueued += r.enqueued;
        finished += r.finished ? 1 : 0;
      }
    }
    if (enqueued > 0) this.log.debug({ shows, enqueued, finished }, 'sweep');
    return { shows, enqueued, finished };
  }

  /** `score`: the show's score in the active set as the walk read it (before its mirrors were read). */
  private async sweepShow(partnerId: string, showId: string, score: string, bundleOf: (partnerId: string) => Promise<PartnerBundle | null>): Promise<{ enqueued: number; finished: boolean }> {
    const [bundle, desired] = await Promise.all([bundleOf(partnerId), this.shows.desired(partnerId, showId)]);
    if (!desired) return { enqueued: 0, finished: false }; // no snapshot yet: its first show event schedules the syncs
    // Disabled targets too: one switched off while its mirror was on air is not finished, and the show
    // stays in the set so that re-enabling it (kicked for active shows only) drives the platform to the
    // show's state; dropped, its broadcast was left live for good. Nothing is enqueued for it.
    const targets = bundle?.targets ?? [];
    const mirrors = await this.shows.getMirrors(partnerId, showId, targets);
    let enqueued = 0;
    let allDone = true;
    const now = Date.now();
    for (const [i, t] of targets.entries()) {
      const m = mirrors[i];
      // (Not one failed on a secret no key opened (unreadable): it may have synced the show's version
      // before it failed (a live mirror's delayed pin job), and a restored key must still take it up.)
      // A withdrawn mirror whose clean-up failed for now (RemoteShow.data `cleanup`, bounded by
      // SyncService's CLEANUP_TRIES) is not finished: no event comes for it, only this sweep runs it again.
      const cleanupLeft = t.enabled && !!m && cleanupPending(m);
      if (m && (isTerminal(m.state) || m.state === 'action_required') && m.syncedVersion >= desired.version && m.unreadable === undefined && !cleanupLeft) continue;
      if (!t.enabled) {
        // Never mirrored there (or nothing made remotely yet): nothing to finish on the platform. A
        // create whose outcome is unknown (mayHoldPlatformShow) may have made a show there: kept too,
        // so re-enabling the target looks for it, and a target DELETE (its active shows) still sees it.
        if (m && (m.remote !== undefined || mayHoldPlatformShow(m))) allDone = false;
        continue;
      }
      allDone = false;
      // Failed on a secret no key opened, and nothing changed since (the version, the target's
      // credentials, this process's keys): a run would only fail it and log again, every sweep, for
      // ever. Kept in the set, so that a restart with the restored key (other keys) runs it again.
      if (m && stillUnreadable(m, desired.version, t.credentialsSealed, this.keyring)) continue;
      // Work that a lost or dropped job would leave undone; otherwise the mirror is idle and current.
      const behind =
        !m ||
        m.syncedVersion < desired.version ||
        m.unreadable !== undefined || // failed on an unreadable secret, and something changed since (above)
        m.retries > 0 ||
        m.state === 'pending' ||
        m.state === 'provisioning' ||
        cleanupLeft ||
        Object.values(m.pins).some((p) => p.state === 'pending') ||
        refusedPinDue(m, desired, now);
      if (behind) {
        const job = { partnerId, showId, targetId: t.id };
        await this.sync.enqueue(t.platform, job);
        enqueued += 1;
        // Its job may sit delayed for long (Facebook's schedule window: up to 3 days), and an event's
        // sync is coalesced into that delayed job: a show moved to now or started early was not synced
        // before the wait ran out. The show changed since the wait began: look again now.
        // (Only then: the waiting run did not sync the version it saw either, so syncedVersion says nothing here.)
        const changed = typeof m?.waiting === 'number' ? m.waiting < desired.version : m?.waiting === true && m.syncedVersion < desired.version;
        if (changed) await this.sync.promote(t.platform, job);
      }
    }
    if (allDone && (desired.state === 'ended' || desired.state === 'cancelled')) {
      // Only while nobody marked the show again since the walk read it (before the mirrors above were
      // read): a resync or a link (both mark the show before they change its mirror) that came in
      // between would otherwise be dropped from the set right after it put the show back, and a target
      // DELETE (which walks the set) missed the mirror it just made pending or linked.
      const removed = await this.shows.markInactive(partnerId, showId, score);
      return { enqueued, finished: removed };
    }
    return { enqueued, finished: false };
  }
}

/**
 * Whether a pin of the live show that the platform refused for a reason the seller can mend there (a
 * listing not made yet) is due for another attempt: the sweep is what starts it (SyncService asks again
 * only then), so that no delayed job of up to 5 min holds the mirror's other events (a show's end, other
 * pins: an event is coalesced into a delayed job). Not once the show is over or the pin no longer wanted.
 */
export function refusedPinDue(m: Pick<MirrorDoc, 'pins'>, desired: Pick<DesiredShow, 'state' | 'pinned'>, now: number): boolean {
  if (desired.state !== 'live') return false;
  for (const [productId, p] of Object.entries(m.pins)) {
    if (p.state === 'failed' && desired.pinned.has(productId) && refusedRetryDue(p.refused, now)) return true;
  }
  return false;
}
