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
 * a partner already holding its share (`fairness.share`) of the attempts in flight is `deferred` (waits
 * as a delayed job, no attempt recorded), so a partner whose endpoints hang until the timeout cannot take
 * every worker slot and hold the other partners back. With slots to spare nothing waits; the cost is that a
 * lone partner's burst runs on all but a share of the slots.
 */
import type { Logger } from 'pino';
import type { SecretBox } from '../lib/crypto.js';
import { assertPublicDestination, DestinationLookupError, DestinationRefusedError } from '../lib/ssrf.js';
import type { DeliveryJob } from '../queues/delivery.queue.js';
import { signatureHeader } from '../sources/signature.js';
import type { EndpointRepository } from '../store/endpoint.repository.js';
import type { OutboundMessageRepository } from '../store/outbound-message.repository.js';
import type { DeliveryState, EndpointRecord } from './outbound.types.js';
import { parseRetryAfter, RETRY_SCHEDULE_MS, retryDelayMs } from './retry-schedule.js';
import { postWebhook, type SendResult, type WebhookSender } from './webhook.sender.js';

export const USER_AGENT = 'Syndicast-Webhooks/1';

export type DeliveryOutcome =
  | { kind: 'delivered'; statusCode: number }
  | { kind: 'retry'; delayMs: number; reason: string }
  | { kind: 'deferred'; delayMs: number; reason: string }
  | { kind: 'failed'; reason: string; endpointDisabled: boolean }
  | { kind: 'skipped'; reason: string };

export interface DeliveryDeps {
  endpoints: EndpointRepository;
  messages: OutboundMessageRepository;
  box: SecretBox;
  log: Logger;
  timeoutMs: number;
  allowPrivateDestinations: boolean;
  /** Replaces RETRY_SCHEDULE_MS (tests shrink it to milliseconds). */
  retrySchedule?: readonly number[];
  rand?: () => number;
  send?: WebhookSender;
  /** The process's delivery slots and one partner's share of them (default: no deferral). */
  fairness?: { slots: number; share: number };
}

export class DeliveryService {
  private readonly schedule: readonly number[];
  private readonly send: WebhookSender;
  private readonly inFlight = new Map<string, number>();
  private inFlightTotal = 0;

  constructor(private readonly deps: DeliveryDeps) {
    this.schedule = deps.retrySchedule ?? RETRY_SCHEDULE_MS;
    this.send = deps.send ?? postWebhook;
  }

  async deliver(job: DeliveryJob): Promise<DeliveryOutcome> {
    const { partnerId, messageId, endpointId } = job;
    const { endpoints, messages } = this.deps;
    const log = this.deps.log.child({ partnerId, messageId, endpointId });
    const stored = await messages.get(partnerId, messageId);
    if (!stored) return { kind: 'skipped', reason: 'message no longer stored' };
    const d = stored.deliveries[endpointId];
    if (!d || d.run !== job.run || d.state !== 'pending') return { kind: 'skipped', reason: 'delivery finished or superseded by a redelivery' };

    const ep = await endpoints.get(partnerId, endpointId);
    if (!ep || !ep.enabled) {
      const reason = !ep ? 'endpoint deleted' : `endpoint disabled${ep.disabledReason ? ` (${ep.disabledReason})` : ''}`;
      await messages.saveDelivery(partnerId, messageId, { ...d, state: 'failed', lastError: reason, nextAttemptAt: null });
      return { kind: 'failed', reason, endpointDisabled: false };
    }

    const held = this.inFlight.get(partnerId) ?? 0;
    const fair = this.deps.fairness;
    if (fair && held >= fair.share && this.inFlightTotal >= fair.slots - fair.share) {
      // Slots are scarce and this partner holds its share: back in about a second (jittered), when
      // attempts have ended and the jobs behind this one (other partners') have had the free slots.
      const delayMs = Math.round(Math.min(this.deps.timeoutMs, 1_000) * (0.5 + (this.deps.rand ?? Math.random)()));
      return { kind: 'deferred', delayMs, reason: `${held} deliveries of partner ${partnerId} in flight, ${this.inFlightTotal} in all` };
    }
    this.inFlight.set(partnerId, held + 1);
    this.inFlightTotal += 1;
    const now = new Date();
    const nowMs = now.getTime();
    const runAttempt = d.runAttempts + 1;
    const runStartedAt = d.runStartedAt ?? now.toISOString();
    let res: SendResult;
    try {
      res = await this.attempt(ep, messageId, stored.message.body, nowMs);
    } finally {
      this.inFlightTotal -= 1;
      const left = (this.inFlight.get(partnerId) ?? 1) - 1;
      if (left > 0) this.inFlight.set(partnerId, left);
      else this.inFlight.delete(partnerId);
    }
    const ok = res.statusCode !== null && res.statusCode >= 200 && res.statusCode < 300;
    const error = ok ? null : (res.error ?? describeStatus(res.statusCode, res.location));
    await endpoints.addAttempt(partnerId, endpointId, {
      messageId,
      eventType: stored.message.type,
      attempt: d.attempts + 1,
      run: d.run,
      trigger: d.trigger,
      at: now.toISOString(),
      success: ok,
      statusCode: res.statusCode,
      error,
      durationMs: res.durationMs,
    });
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
      log.warn({ url: redactUrl(ep.url) }, 'webhook endpoint answered 410 Gone: disabled');
      return { kind: 'failed', reason: 'HTTP 410 Gone', endpointDisabled: disabled };
    }

    await endpoints.recordFailure(partnerId, endpointId, nowMs);
    const delayMs = retryDelayMs(runAttempt, { schedule: this.schedule, retryAfterMs: parseRetryAfter(res.retryAfter, nowMs), rand: this.deps.rand });
    if (delayMs === null) {
      const reason = `no 2xx since ${runStartedAt}: ${runAttempt} attempts of ${messageId} failed (last: ${error})`;
      const disabled = await endpoints.disableIfFailingSince(partnerId, endpointId, Date.parse(runStartedAt), reason, now);
      await messages.saveDelivery(partnerId, messageId, { ...next, state: 'failed' });
      log.warn({ url: redactUrl(ep.url), attempts: runAttempt, endpointDisabled: disabled, error }, 'webhook delivery failed after the whole retry schedule');
      return { kind: 'failed', reason: error ?? 'failed', endpointDisabled: disabled };
    }
    await messages.saveDelivery(partnerId, messageId, { ...next, nextAttemptAt: new Date(nowMs + delayMs).toISOString() });
    log.debug({ attempt: runAttempt, delayMs, error }, 'webhook delivery failed; retrying');
    return { kind: 'retry', delayMs, reason: error ?? 'failed' };
  }

  /** The job died on unexpected errors (not HTTP ones): leave a readable state behind. */
  async markFailed(job: DeliveryJob, reason: string): Promise<void> {
    const stored = await this.deps.messages.get(job.partnerId, job.messageId);
    const d = stored?.deliveries[job.endpointId];
    if (!d || d.run !== job.run || d.state !== 'pending') return;
    await this.deps.messages.saveDelivery(job.partnerId, job.messageId, { ...d, state: 'failed', lastError: `internal error: ${reason}`, nextAttemptAt: null });
  }

  /** Signs and sends; the SSRF guard runs again on every attempt (DNS answers change). */
  private async attempt(ep: EndpointRecord, messageId: string, body: string, nowMs: number): Promise<SendResult> {
    try {
      await assertPublicDestination(ep.url, this.deps.allowPrivateDestinations);
    } catch (err) {
      if (err instanceof DestinationLookupError) return { statusCode: null, retryAfter: undefined, location: undefined, error: err.message, durationMs: 0 };
      if (!(err instanceof DestinationRefusedError)) throw err;
      return { statusCode: null, retryAfter: undefined, location: undefined, error: `destination refused: ${err.message}`, durationMs: 0 };
    }
    const timestamp = Math.floor(nowMs / 1000);
    const secrets = [this.deps.box.decrypt(ep.secretSealed)];
    // During a rotation's grace period both signatures go out, so the receiver can switch at leisure.
    if (ep.previousSecretSealed && ep.previousSecretExpiresAt && Date.parse(ep.previousSecretExpiresAt) > nowMs) secrets.push(this.deps.box.decrypt(ep.previousSecretSealed));
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': messageId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': secrets.map((s) => signatureHeader(s, messageId, timestamp, body)).join(' '),
    };
    return this.send(ep.url, body, headers, { timeoutMs: this.deps.timeoutMs, allowPrivate: this.deps.allowPrivateDestinations });
  }
}

function describeStatus(status: number | null, location: string | undefined): string {
  if (status === null) return 'no response';
  if (status >= 300 && status < 400) return `HTTP ${status}: redirect not followed${location ? ` (Location: ${withoutQuery(location)})` : ''}`;
  return `HTTP ${status}`;
}

function withoutQuery(location: string): string {
  return location.split(/[?#]/, 1)[0]!.slice(0, 200);
}

/** Logs carry the endpoint's origin only (paths and queries may hold tokens). */
function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '[invalid url]';
  }
}
