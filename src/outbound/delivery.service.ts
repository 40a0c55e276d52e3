/**
 * One delivery attempt of a message to an endpoint, and what to do next (README "Outbound webhooks").
 *
 * - 2xx: delivered; the endpoint's failure clock stops.
 * - 410 Gone: the endpoint is disabled at once; no retry.
 * - anything else (3xx — redirects are never followed —, 4xx, 5xx, timeout, network error, a
 *   destination the SSRF guard refuses): retry on RETRY_SCHEDULE_MS (±10 % jitter), or after the
 *   endpoint's Retry-After when that is longer.
 * - schedule exhausted (8 attempts over ≈ 27.5 h): the delivery is `failed`, and the endpoint is
 *   disabled if it has not answered a single 2xx — for any message — since this delivery's first
 *   attempt (its failure clock `failingSince` started at or before that attempt). An endpoint that
 *   still accepts other messages stays enabled; one that failed everything for the whole window is off.
 *
 * Every attempt is recorded on the endpoint's attempt log and in the message's delivery state.
 *
 * Fairness: while this process's delivery slots are nearly all taken (fewer than a partner's share left),
 * a partner already holding its share (`fairness.share`) of the attempts in flight is held back, so a
 * partner whose endpoints hang until the timeout cannot take every worker slot and hold the other
 * partners back. With slots to spare nothing waits; the cost is that a lone partner's burst runs on all
 * but a share of the slots. A held-back job is `deferred` (no attempt recorded) and *parked*: a delayed
 * job that an attempt of this process ending wakes (promotes) once its partner may start one again,
 * with a fallback delay of about 5 s (PARK_FALLBACK_MS) for a crash or a missed wake-up — not one that
 * runs again every second to be deferred again. A held-back job that needs no slot (its message or
 * delivery gone, finished or superseded, its endpoint disabled, deleted or no longer subscribed to the
 * message's type: settleWithoutSend) is settled at once.
 *
 * A share per partner alone does not protect anyone once five or more partners hang (each holds its
 * share and together they hold every slot). So a partner is also *slow* while one of its attempts has
 * been in flight for `slowMs` (half the timeout) or longer, and for `slowForMs` after such an attempt
 * ended; slow partners together hold at most `slots - reserve` slots, and a slow partner's attempt that
 * would take one of the last `reserve` slots is deferred too. However many partners hang, `reserve`
 * slots stay for partners whose endpoints answer, so their deliveries go out without waiting for a
 * timeout (a partner not yet known as slow can take a reserve slot for at most one timeout; after that
 * it is slow). Deferral is not an attempt: the retry schedule, the attempt log and the webhook-id are
 * those of the attempts that do go out.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { SecretUnreadableError, tryOpen, type SecretBox } from '../lib/crypto.js';
import { assertPublicDestination, DestinationLookupError, DestinationRefusedError } from '../lib/ssrf.js';
import type { DeliveryJob } from '../queues/delivery.queue.js';
import { signatureHeader } from '../sources/signature.js';
import type { EndpointRepository } from '../store/endpoint.repository.js';
import type { OutboundMessageRepository } from '../store/outbound-message.repository.js';
import { StoredRecordCorruptError } from '../store/stored-record.js';
import { newDelivery, type DeliveryState, type EndpointRecord, type OutboundEventType } from './outbound.types.js';
import { parseRetryAfter, RETRY_SCHEDULE_MS, retryDelayMs } from './retry-schedule.js';
import { postWebhook, type SendResult, type WebhookSender } from './webhook.sender.js';
import { maskEndpointUrl, maskHostIn } from '../relay/mask.js';
import { PARK_FALLBACK_MS, ParkedJobs } from '../queues/parking.js';

export const USER_AGENT = 'Syndicast-Webhooks/1';

export type DeliveryOutcome =
  | { kind: 'delivered'; statusCode: number }
  | { kind: 'retry'; delayMs: number; reason: string }
  /** `park`: waits for a slot of its partner (DeliveryService.park), `delayMs` is only the fallback. */
  | { kind: 'deferred'; delayMs: number; reason: string; park?: true }
  | { kind: 'failed'; reason: string; endpointDisabled: boolean }
  | { kind: 'skipped'; reason: string };

export interface DeliveryDeps {
  endpoints: EndpointRepository;
  messages: OutboundMessageRepository;
  box: SecretBox;
  log: Logger;
  timeoutMs: number;
  allowPrivateDestinations: boolean;
  /**
   * How long a message is kept (INBOX_TTL_DAYS) after its emit and, while a delivery of it retries,
   * after its next attempt: the message (and the delivery's state in it) is there when the retry runs,
   * and a delivery that fails for good stays visible for as long again.
   */
  messageTtlSec: number;
  /** Replaces RETRY_SCHEDULE_MS (tests shrink it to milliseconds). */
  retrySchedule?: readonly number[];
  rand?: () => number;
  send?: WebhookSender;
  /**
   * The process's delivery slots and one partner's share of them (default: no deferral); `reserve`
   * slots are kept from slow partners (default 0), who are slow for `slowForMs` (default 15 min) after
   * an attempt that took `slowMs` (default half the timeout) or longer. A job held back waits until a
   * slot of its partner frees, or at most `parkMs` (default PARK_FALLBACK_MS, jittered ×0.8–1.2).
   */
  fairness?: { slots: number; share: number; reserve?: number; slowMs?: number; slowForMs?: number; parkMs?: number };
}

/** How long one attempt's claim lasts: past the attempt's own deadline, with room for a busy loop. */
export function attemptClaimMs(timeoutMs: number): number {
  return 2 * timeoutMs + 10_000;
}

/** A retry that runs this much before its `nextAttemptAt` (clocks of two hosts) is not deferred. */
const EARLY_SLACK_MS = 1_000;

/** How long a partner stays slow after an attempt of its took half the timeout or more. */
export const SLOW_PARTNER_FOR_MS = 15 * 60_000;

/** How long a job the fairness rules hold back waits when no slot of its partner frees in this process first (src/queues/parking.ts). */
export { PARK_FALLBACK_MS };

/** A delivery's lastError when the endpoint's signing secret cannot be opened (docs/operations.md, "Secrets and rotation"). */
export const SECRET_UNREADABLE_DELIVERY_ERROR =
  "the endpoint's signing secret cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS: nothing was sent. Restore the key that sealed it and redeliver the message, or rotate the endpoint's secret";

/** What of an endpoint decides whether a delivery to it is sent (settleWithoutSend). */
export type EndpointGate = Pick<EndpointRecord, 'enabled' | 'disabledReason' | 'events'>;

/**
 * Whether delivery `d` (of run `run`) of `message` (its type) to endpoint `ep` is attempted (an
 * HTTP send: it needs a slot), or settled without one: the message gone, the
 * delivery gone, finished or superseded (skipped); the endpoint deleted, disabled, or no longer
 * subscribed to the type (failed, saved as such: a redelivery of it is refused, 409, for the same
 * reason). deliverClaimed settles by it; heldBack lets a job it settles through (it needs no slot),
 * so the two never disagree: a job of a type the endpoint was unsubscribed from was parked again and
 * again while its partner was over its share (heldBack knew only the delivery and `enabled`).
 */
export function settleWithoutSend<M extends { type: string }, E extends EndpointGate>(
  run: number,
  message: M | null | undefined,
  d: DeliveryState | undefined,
  ep: E | null,
): { send: { message: M; d: DeliveryState; ep: E } } | { settle: { kind: 'skipped'; reason: string } | { kind: 'failed'; reason: string; d: DeliveryState } } {
  if (!message) return { settle: { kind: 'skipped', reason: 'message no longer stored' } };
  if (!d || d.run !== run || d.state !== 'pending') return { settle: { kind: 'skipped', reason: 'delivery finished or superseded by a redelivery' } };
  if (!ep || !ep.enabled) {
    const reason = !ep ? 'endpoint deleted' : `endpoint disabled${ep.disabledReason ? ` (${ep.disabledReason})` : ''}`;
    return { settle: { kind: 'failed', reason, d } };
  }
  // The partner took the type off the endpoint's events since the message was made (its handler for
  // it is gone, say): settled like a disabled endpoint's delivery, not retried for the rest of the
  // schedule (≈ 27.5 h).
  const { type } = message;
  if (!(ep.events as readonly string[]).includes(type)) return { settle: { kind: 'failed', reason: `endpoint no longer subscribes to ${type}`, d } };
  return { send: { message, d, ep } };
}

export class DeliveryService {
  private readonly schedule: readonly number[];
  private readonly send: WebhookSender;
  /** Start times (ms) of each partner's attempts in flight in this process. */
  private readonly inFlight = new Map<string, number[]>();
  private inFlightTotal = 0;
  /** Partners slow until (ms): an attempt of theirs took `slowMs` or longer. */
  private readonly slowUntil = new Map<string, number>();
  /** Jobs held back until a slot of their partner frees, by partner. */
  private readonly parked: ParkedJobs;
  /** Sends whose outcome Redis refused to save, by delivery (UnsavedOutcome); not in time order (one kept again goes to the end with its old `at`). */
  private readonly unsaved = new Map<string, UnsavedOutcome>();
  /** When `unsaved` was last purged of outcomes older than UNSAVED_KEEP_MS (purgeUnsaved). */
  private unsavedPurgedAt = 0;

  constructor(private readonly deps: DeliveryDeps) {
    this.schedule = deps.retrySchedule ?? RETRY_SCHEDULE_MS;
    this.send = deps.send ?? postWebhook;
    this.parked = new ParkedJobs(deps.log, 'a delivery');
  }

  /**
   * One attempt, while this call holds the delivery's attempt claim (`claimAttempt`): a worker that
   * runs the same job while another's attempt is in flight — the other's BullMQ lock could not be
   * renewed (an event loop busy past the lock), so the job was taken for stalled and handed out again —
   * finds the claim held and defers, so a message never goes to an endpoint twice at once from healthy
   * workers. The claim outlives the attempt's deadline (twice the timeout plus 10 s) and is released
   * when the attempt's outcome is saved; after a crash it expires and the job is attempted again.
   *
   * A job the fairness rules hold back is deferred before the claim: the claim, the message with its
   * body and the release bought nothing, and while a partner's endpoints hang most of its jobs are
   * such. It reads the message's type, the delivery's state and the endpoint's `enabled` and `events`
   * (two small reads, no body): a job that needs no slot — settleWithoutSend, as deliverClaimed
   * decides: message or delivery gone, delivery finished or superseded, endpoint disabled, deleted or
   * no longer subscribed to the type — goes on and is settled now, a retry not yet due waits for its
   * time, and only a job with an attempt to make waits for a slot (`park`). The check after the claimed reads stays the one
   * that counts: concurrent jobs pass this one between awaits.
   */
  async deliver(job: DeliveryJob): Promise<DeliveryOutcome> {
    const { partnerId, messageId, endpointId } = job;
    const busy = this.unfair(partnerId, Date.now());
    const wait = busy === null ? null : await this.heldBack(job);
    if (wait) return wait;
    const token = randomUUID();
    if (!(await this.deps.messages.claimAttempt(partnerId, messageId, endpointId, token, attemptClaimMs(this.deps.timeoutMs)))) {
      return { kind: 'deferred', delayMs: this.deferMs(), reason: 'an attempt of this delivery is in flight on another worker' };
    }
    try {
      return await this.deliverClaimed(job);
    } finally {
      await this.deps.messages.releaseAttempt(partnerId, messageId, endpointId, token).catch((err: unknown) => {
        this.deps.log.warn({ err, partnerId, messageId, endpointId }, 'could not release a delivery attempt claim (it expires)');
      });
    }
  }

  /** A deferred job's wait: about a second (at most the attempt timeout), jittered ×0.5–1.5. */
  private deferMs(): number {
    return Math.round(Math.min(this.deps.timeoutMs, 1_000) * (0.5 + (this.deps.rand ?? Math.random)()));
  }

  /**
   * The wait of a job the fairness rules hold back, or null when it goes on: it needs no slot
   * (settled without an HTTP send by deliverClaimed), or its partner may start an attempt again by now.
   */
  private async heldBack(job: DeliveryJob): Promise<DeliveryOutcome | null> {
    const { partnerId, messageId, endpointId } = job;
    const [m, ep] = await Promise.all([this.deps.messages.deliveryState(partnerId, messageId, endpointId), this.deps.endpoints.gate(partnerId, endpointId)]);
    const d = m?.delivery;
    if (!d || 'settle' in settleWithoutSend(job.run, m, d, ep)) return null;
    const nowMs = Date.now();
    const early = notDue(d, nowMs);
    if (early) return early;
    const still = this.unfair(partnerId, nowMs);
    return still === null ? null : { kind: 'deferred', delayMs: this.parkMs(), reason: still, park: true };
  }

  /** A held-back job's fallback wait (PARK_FALLBACK_MS), jittered ×0.8–1.2. */
  private parkMs(): number {
    return Math.round((this.deps.fairness?.parkMs ?? PARK_FALLBACK_MS) * (0.8 + 0.4 * (this.deps.rand ?? Math.random)()));
  }

  /**
   * Registers a job deferred with `park` (now delayed until `untilMs`): the next time an attempt of
   * this process ends and the partner may start one, the first job of the partner waiting longest is
   * woken (`wake`: moved from delayed to waiting), one job per slot that frees, partners in turn. The
   * delayed job itself is the record: after a crash, or a wake-up that never comes, it runs at
   * `untilMs`; a job that ran meanwhile (its delay ended, a redelivery promoted it) is not woken.
   */
  park(partnerId: string, jobId: string, untilMs: number, wake: () => Promise<boolean>): void {
    this.parked.park(partnerId, jobId, untilMs, wake);
    // A slot may have freed while the job was being deferred: no wake-up was there for it then.
    if (this.unfair(partnerId, Date.now()) === null) this.wakeParked();
  }

  /** Forgets the parked jobs (the worker is closing): they run at the end of their delays, on any worker. */
  async unparkAll(): Promise<void> {
    await this.parked.clear();
  }

  /** A slot freed: wakes one parked job of the first partner (in turn) that may start an attempt now. */
  private wakeParked(): void {
    this.parked.wakeNext((partnerId) => this.unfair(partnerId, Date.now()) === null);
  }

  private async deliverClaimed(job: DeliveryJob): Promise<DeliveryOutcome> {
    const { partnerId, messageId, endpointId } = job;
    const { endpoints, messages } = this.deps;
    const log = this.deps.log.child({ partnerId, messageId, endpointId });
    // The message (with its body) and the endpoint in one round trip: a job settled without a send
    // (settleWithoutSend) read the endpoint for nothing, a job that is sent saves a round trip.
    const [stored, endpoint] = await Promise.all([messages.get(partnerId, messageId), endpoints.get(partnerId, endpointId)]);
    const check = settleWithoutSend(job.run, stored?.message, stored?.deliveries[endpointId], endpoint);
    const key = unsavedKey(partnerId, messageId, endpointId);
    if ('settle' in check) {
      this.unsaved.delete(key);
      const settled = check.settle;
      if (settled.kind === 'skipped') return settled;
      await messages.saveDelivery(partnerId, messageId, { ...settled.d, state: 'failed', lastError: settled.reason, nextAttemptAt: null });
      return { kind: 'failed', reason: settled.reason, endpointDisabled: false };
    }
    const { message, d, ep } = check.send;

    // The attempt's send went through in an earlier run of this job here whose save Redis refused
    // (maxmemory, READONLY: the run was handed back, hand-backs.ts): its outcome is saved now, not sent
    // again. Each such run sent it once more (same webhook-id), about every 5 s while Redis stayed at
    // maxmemory taking the claim's small write but not the outcome's.
    const kept = this.keptOutcome(key, d, ep.url);
    let nowMs: number;
    let res: SendResult;
    if (kept) {
      ({ at: nowMs, res } = kept);
    } else {
      nowMs = Date.now();
      // A job run before its retry is due (another worker's deferral of it while this delivery's last
      // attempt was in flight, see deliver) waits for the schedule.
      const early = notDue(d, nowMs);
      if (early) return early;
      // Checked again here, synchronously with taking the slot below: attempts may have started (or
      // ended) during the reads since deliver()'s pre-check.
      const busy = this.unfair(partnerId, nowMs);
      // Slots are scarce for this partner: it waits until one of its frees (park), while the jobs behind
      // this one (other partners') have the free slots.
      if (busy) return { kind: 'deferred', delayMs: this.parkMs(), reason: busy, park: true };
      const starts = this.inFlight.get(partnerId) ?? [];
      starts.push(nowMs);
      this.inFlight.set(partnerId, starts);
      this.inFlightTotal += 1;
      try {
        res = await this.attempt(ep, messageId, message.body, nowMs);
      } finally {
        this.inFlightTotal -= 1;
        starts.splice(starts.indexOf(nowMs), 1);
        if (starts.length === 0) this.inFlight.delete(partnerId);
        const ended = Date.now();
        if (ended - nowMs >= this.slowMs()) this.slowUntil.set(partnerId, ended + (this.deps.fairness?.slowForMs ?? SLOW_PARTNER_FOR_MS));
        this.wakeParked(); // a slot freed
      }
    }
    const outcome: UnsavedOutcome = kept ?? { run: d.run, attempts: d.attempts, url: ep.url, at: nowMs, res, logged: false };
    try {
      return await this.saveOutcome(job, d, ep, message.type, outcome, log);
    } catch (err) {
      this.keepOutcome(key, outcome);
      throw err;
    }
  }

  /**
   * The outcome kept for delivery `key` when it is the one of `d`'s next attempt (the same run, no
   * attempt saved since) and was sent to `url`, the endpoint's URL now, else none. An operator who
   * changed the URL since wants the message at the new one: the old URL's answer is not its delivery.
   */
  private keptOutcome(key: string, d: DeliveryState, url: string): UnsavedOutcome | undefined {
    const kept = this.unsaved.get(key);
    this.unsaved.delete(key);
    this.purgeUnsaved(Date.now());
    if (kept && kept.url !== url) return undefined;
    return kept && kept.run === d.run && kept.attempts === d.attempts && Date.now() - kept.at <= UNSAVED_KEEP_MS ? kept : undefined;
  }

  /** Keeps an outcome whose save failed for the job's next run here. */
  private keepOutcome(key: string, outcome: UnsavedOutcome): void {
    this.purgeUnsaved(Date.now());
    this.unsaved.set(key, outcome);
  }

  /**
   * Drops the kept outcomes older than UNSAVED_KEEP_MS (their job ran elsewhere, or ended): every one,
   * the map is not in time order (an outcome kept again goes to the end with its old `at`, and a purge
   * that stopped at the first fresh one left those behind it). On a keep and on a read, at most once
   * per UNSAVED_PURGE_MS: each is a pass over all of them.
   */
  private purgeUnsaved(nowMs: number): void {
    if (this.unsaved.size === 0 || nowMs - this.unsavedPurgedAt < UNSAVED_PURGE_MS) return;
    this.unsavedPurgedAt = nowMs;
    for (const [key, o] of this.unsaved) if (nowMs - o.at > UNSAVED_KEEP_MS) this.unsaved.delete(key);
  }

  /** Records attempt `o` of delivery `d` (its attempt log entry, the endpoint's clock, the delivery's state) and says what comes next. */
  private async saveOutcome(job: DeliveryJob, d: DeliveryState, ep: EndpointRecord, eventType: OutboundEventType, o: UnsavedOutcome, log: Logger): Promise<DeliveryOutcome> {
    const { endpoints, messages } = this.deps;
    const { partnerId, messageId, endpointId } = job;
    const { res, at: nowMs } = o;
    const now = new Date(nowMs);
    const runAttempt = d.runAttempts + 1;
    const runStartedAt = d.runStartedAt ?? now.toISOString();
    const ok = res.statusCode !== null && res.statusCode >= 200 && res.statusCode < 300;
    // The attempt log and lastError are read by viewer keys (and logged): the endpoint's host as maskUrl
    // shows it (Pipedream's token is its first label: `getaddrinfo ENOTFOUND eo….m.pipedream.net`).
    const error = ok ? null : maskHostIn(res.error ?? describeStatus(res.statusCode, res.location, o.url), o.url);
    if (!o.logged) {
      await endpoints.addAttempt(partnerId, endpointId, {
        messageId,
        eventType,
        attempt: d.attempts + 1,
        run: d.run,
        trigger: d.trigger,
        at: now.toISOString(),
        success: ok,
        statusCode: res.statusCode,
        error,
        durationMs: res.durationMs,
      });
      o.logged = true;
    }
    const next: DeliveryState = {
      ...d,
      attempts: d.attempts + 1,
      runAttempts: runAttempt,
      runStartedAt,
      lastAttemptAt: now.toISOString(),
      lastStatusCode: res.statusCode,
      lastError: error,
      nextAttemptAt: null,
    };

    if (ok) {
      await endpoints.recordSuccess(partnerId, endpointId, now);
      await messages.saveDelivery(partnerId, messageId, { ...next, state: 'delivered', deliveredAt: now.toISOString() });
      return { kind: 'delivered', statusCode: res.statusCode! };
    }
    if (res.statusCode === 410) {
      const disabled = await endpoints.disable(partnerId, endpointId, 'endpoint answered 410 Gone', now);
      await messages.saveDelivery(partnerId, messageId, { ...next, state: 'failed' });
      log.warn({ url: maskEndpointUrl(ep.url) }, 'webhook endpoint answered 410 Gone: disabled');
      return { kind: 'failed', reason: 'HTTP 410 Gone', endpointDisabled: disabled };
    }

    await endpoints.recordFailure(partnerId, endpointId, nowMs);
    const delayMs = retryDelayMs(runAttempt, { schedule: this.schedule, retryAfterMs: parseRetryAfter(res.retryAfter, nowMs), rand: this.deps.rand });
    if (delayMs === null) {
      const reason = `no 2xx since ${runStartedAt}: ${runAttempt} attempts of ${messageId} failed (last: ${error})`;
      const disabled = await endpoints.disableIfFailingSince(partnerId, endpointId, Date.parse(runStartedAt), reason, now);
      await messages.saveDelivery(partnerId, messageId, { ...next, state: 'failed' });
      log.warn({ url: maskEndpointUrl(ep.url), attempts: runAttempt, endpointDisabled: disabled, error }, 'webhook delivery failed after the whole retry schedule');
      return { kind: 'failed', reason: error ?? 'failed', endpointDisabled: disabled };
    }
    // The retry may come after the retention from the emit ends (a Retry-After of a day, a short
    // INBOX_TTL_DAYS): it would find the message gone, skip, and the delivery would vanish unfailed.
    // The message is kept past it in the same step as the retry's state (one script, one key).
    await messages.saveDelivery(partnerId, messageId, { ...next, nextAttemptAt: new Date(nowMs + delayMs).toISOString() }, Math.ceil(delayMs / 1000) + this.deps.messageTtlSec);
    log.debug({ attempt: runAttempt, delayMs, error }, 'webhook delivery failed; retrying');
    return { kind: 'retry', delayMs, reason: error ?? 'failed' };
  }

  /** Why `partnerId` may not start an attempt now (DeliveryService, "Fairness"), or null when it may. */
  private unfair(partnerId: string, nowMs: number): string | null {
    const fair = this.deps.fairness;
    if (!fair) return null;
    const held = this.inFlight.get(partnerId)?.length ?? 0;
    if (held >= fair.share && this.inFlightTotal >= fair.slots - fair.share) return `${held} deliveries of partner ${partnerId} in flight, ${this.inFlightTotal} in all`;
    const reserve = fair.reserve ?? 0;
    if (reserve <= 0 || this.inFlightTotal < fair.slots - reserve || !this.isSlow(partnerId, nowMs)) return null;
    let slowHeld = 0;
    for (const [p, starts] of this.inFlight) if (this.isSlow(p, nowMs)) slowHeld += starts.length;
    return slowHeld >= fair.slots - reserve ? `partner ${partnerId} is slow (an attempt took ${this.slowMs()} ms or more) and slow partners hold ${slowHeld} of ${fair.slots} slots` : null;
  }

  private isSlow(partnerId: string, nowMs: number): boolean {
    const until = this.slowUntil.get(partnerId);
    if (until !== undefined) {
      if (until > nowMs) return true;
      this.slowUntil.delete(partnerId);
    }
    const slowMs = this.slowMs();
    return (this.inFlight.get(partnerId) ?? []).some((t) => nowMs - t >= slowMs);
  }

  private slowMs(): number {
    return this.deps.fairness?.slowMs ?? Math.max(1, Math.floor(this.deps.timeoutMs / 2));
  }

  /**
   * The job failed for good on unexpected errors (not HTTP ones): BullMQ's 5 attempts (2 s backoff
   * doubling) used up, or at once on a record that does not read: leave a readable state behind. A signing secret no key opens (SecretUnreadableError) says what to do.
   */
  async markFailed(job: DeliveryJob, err: Error): Promise<void> {
    // The delivery's field alone: a message whose meta does not read (the job's StoredRecordCorruptError)
    // still has it marked failed, its lastError naming the key (saveDelivery writes while `meta` exists).
    let d: DeliveryState | undefined;
    try {
      d = await this.deps.messages.delivery(job.partnerId, job.messageId, job.endpointId);
    } catch (readErr) {
      // The delivery's own field does not read (not JSON, of another shape; a key of another type has
      // no field to write): replaced by a failed state built from the job, in a step that leaves a field
      // written meanwhile alone. The message's view shows the delivery failed (it answered the typed
      // 500) and a redelivery starts from it. What the field held (its attempts, their times) is not
      // known: counted from 0, the lastError says so. It was left as it was before, logged 'could not
      // mark delivery failed'.
      if (!(readErr instanceof StoredRecordCorruptError) || readErr.reason === 'a Redis key of another type') throw readErr;
      const lastError = `internal error: its stored state (field d:${job.endpointId} of Redis key ${readErr.key}) did not read (${readErr.reason}) and was replaced by this failed state; its attempts before are not known`;
      const replaced = await this.deps.messages.replaceUnreadableDelivery(job.partnerId, job.messageId, { ...newDelivery(job.endpointId, job.run, job.run === 1 ? 'event' : 'manual'), state: 'failed', lastError });
      // Not replaced: the field was written meanwhile (it may read now), or the message is gone. Said,
      // naming the key and the field, never what it held: a silent false hid a field never replaced.
      if (!replaced) this.deps.log.warn({ partnerId: job.partnerId, messageId: job.messageId, endpointId: job.endpointId, key: readErr.key, field: `d:${job.endpointId}` }, 'unreadable delivery state not replaced (written meanwhile, or its message is gone)');
      return;
    }
    if (!d || d.run !== job.run || d.state !== 'pending') return;
    await this.deps.messages.saveDelivery(job.partnerId, job.messageId, { ...d, state: 'failed', lastError: err instanceof SecretUnreadableError ? SECRET_UNREADABLE_DELIVERY_ERROR : `internal error: ${err.message}`, nextAttemptAt: null });
  }

  /**
   * Signs and sends; the SSRF guard runs again on every attempt (DNS answers change). The attempt's
   * deadline (timeoutMs) covers the guard's DNS lookup too: a name server that does not answer ends
   * the attempt as a timeout (retried), and the send gets what is left of the deadline. Both lookups are
   * the partner's (sharedLookup): an abandoned one keeps its threadpool thread, not every thread (and
   * all partners' together at most DNS_LOOKUP_CONCURRENCY threads).
   */
  private async attempt(ep: EndpointRecord, messageId: string, body: string, nowMs: number): Promise<SendResult> {
    const started = Date.now();
    const failed = (error: string): SendResult => ({ statusCode: null, retryAfter: undefined, location: undefined, error, durationMs: Date.now() - started });
    let timer: NodeJS.Timeout | undefined;
    try {
      const check = assertPublicDestination(ep.url, this.deps.allowPrivateDestinations, undefined, ep.partnerId);
      check.catch(() => undefined); // a lookup that answers after the deadline
      const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.deps.timeoutMs)));
      if ((await Promise.race([check, deadline])) === 'timeout') return failed(`timed out after ${this.deps.timeoutMs} ms: the DNS lookup of ${hostOf(ep.url)} did not answer`);
    } catch (err) {
      if (err instanceof DestinationLookupError) return failed(err.message);
      if (!(err instanceof DestinationRefusedError)) throw err;
      return failed(`destination refused: ${err.message}`);
    } finally {
      clearTimeout(timer);
    }
    const leftMs = this.deps.timeoutMs - (Date.now() - started);
    if (leftMs <= 0) return failed(`timed out after ${this.deps.timeoutMs} ms: the DNS lookup of ${hostOf(ep.url)} did not answer`);
    const timestamp = Math.floor(nowMs / 1000);
    const secrets = [this.deps.box.decrypt(ep.secretSealed)];
    // During a rotation's grace period the rotated-out secrets sign too, so the receiver can switch at
    // leisure; after two rotations within it the partner may still hold only the oldest of them.
    const previous = ep.previousSecretSealed && ep.previousSecretExpiresAt ? [{ sealed: ep.previousSecretSealed, expiresAt: ep.previousSecretExpiresAt }, ...ep.olderPreviousSecrets] : ep.olderPreviousSecrets;
    // A rotated-out secret no configured key opens (SECRETS_KEY changed without rotation) is left out:
    // it failed every delivery of the endpoint though the current secret signs. The current one is
    // needed (its SecretUnreadableError fails the delivery, markFailed).
    for (const p of previous) {
      if (Date.parse(p.expiresAt) <= nowMs) continue;
      const plain = tryOpen(() => this.deps.box.decrypt(p.sealed));
      if (plain !== undefined) secrets.push(plain);
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': messageId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': secrets.map((s) => signatureHeader(s, messageId, timestamp, body)).join(' '),
    };
    const checkedMs = Date.now() - started;
    const res = await this.send(ep.url, body, headers, { timeoutMs: leftMs, allowPrivate: this.deps.allowPrivateDestinations, owner: ep.partnerId });
    return { ...res, durationMs: res.durationMs + checkedMs };
  }
}

/**
 * A send whose outcome is not saved yet: the delivery's run and saved attempt count it was the next
 * attempt of, the URL it went to, when it was made, what the endpoint answered, and whether its attempt log entry is written.
 */
interface UnsavedOutcome {
  run: number;
  attempts: number;
  /** The endpoint's URL it was sent to. */
  url: string;
  at: number;
  res: SendResult;
  logged: boolean;
}

/**
 * How long an unsaved outcome is kept for its job's next run here: well past the hand-back's wait
 * (REDIS_REFUSED_RETRY_MS, 5 s by default) and a Redis at maxmemory for a while; a job that ran on another worker
 * meanwhile sends again there, as any run of a job whose outcome was not saved does.
 */
const UNSAVED_KEEP_MS = 10 * 60_000;
/** At most one purge of the kept outcomes per this many ms (purgeUnsaved). */
const UNSAVED_PURGE_MS = 10_000;

const unsavedKey = (partnerId: string, messageId: string, endpointId: string): string => `${partnerId}\u0000${messageId}\u0000${endpointId}`;

/** The wait of a delivery whose next attempt is not due yet (more than EARLY_SLACK_MS ahead), or null. */
function notDue(d: DeliveryState, nowMs: number): DeliveryOutcome | null {
  const dueInMs = d.nextAttemptAt ? Date.parse(d.nextAttemptAt) - nowMs : 0;
  return dueInMs > EARLY_SLACK_MS ? { kind: 'deferred', delayMs: dueInMs, reason: `next attempt not due before ${d.nextAttemptAt}` } : null;
}

function describeStatus(status: number | null, location: string | undefined, url: string): string {
  if (status === null) return 'no response';
  if (status >= 300 && status < 400) return `HTTP ${status}: redirect not followed${location ? ` (Location: ${shownLocation(location, url)})` : ''}`;
  return `HTTP ${status}`;
}

/** A redirect's target as maskEndpointUrl shows an endpoint's url (the receiver's new URL carries its token as the old one did). */
function shownLocation(location: string, url: string): string {
  let target: string;
  try {
    target = new URL(location, url).href;
  } catch {
    return '***';
  }
  return maskEndpointUrl(target).slice(0, 200);
}

/** The host of an endpoint URL, for an error (never its path or query). */
function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '[invalid url]';
  }
}
