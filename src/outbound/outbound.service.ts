/**
 * Outbound webhooks to partners (README "Outbound webhooks"): endpoints, `emit` (one message per idempotency key,
 * one delivery job per subscribed enabled endpoint), manual redelivery and the message view.
 * Attempts themselves are DeliveryService's.
 */
import type { Logger } from 'pino';
import { sha256Hex, type SecretBox } from '../lib/crypto.js';
import { conflict, notFound } from '../lib/errors.js';
import { pathId, randomId, sortableId } from '../lib/ids.js';
import type { DeliveryProducer } from '../queues/delivery.queue.js';
import { promoteIfDelayed } from '../queues/promote.js';
import { newWebhookSecret } from '../sources/signature.js';
import type { PendingAudit } from '../store/audit.repository.js';
import type { EndpointRepository } from '../store/endpoint.repository.js';
import type { OutboundMessageRepository } from '../store/outbound-message.repository.js';
import { isPlainObject, parseStored } from '../store/stored-record.js';
import { newDelivery, type DeliveryState, type EndpointRecord, type OutboundEventType, type OutboundMessage } from './outbound.types.js';

export interface OutboundDeps {
  endpoints: EndpointRepository;
  messages: OutboundMessageRepository;
  producer: DeliveryProducer;
  box: SecretBox;
  log: Logger;
  /** How long messages (and idempotency keys) are kept; well beyond the ≈ 27 h retry schedule. */
  messageTtlSec: number;
  /** After a rotation, deliveries are signed with the old secret too for this long. */
  secretRotationGraceMs: number;
  /** The most endpoints a partner may have (OUTBOUND_ENDPOINTS_PER_PARTNER): every message fans out to each. */
  endpointsPerPartner: number;
}

export interface EmitResult {
  /** null when no enabled endpoint of the partner subscribes to the type (nothing is stored). */
  messageId: string | null;
  /** The idempotency key was seen before: the earlier message is returned, nothing is sent twice. */
  duplicate: boolean;
  endpointIds: string[];
}

export interface EndpointInput {
  url: string;
  events: OutboundEventType[];
  description?: string | undefined;
}

export class OutboundService {
  readonly endpoints: EndpointRepository;
  constructor(private readonly deps: OutboundDeps) {
    this.endpoints = deps.endpoints;
  }

  /** The delivery queue (dashboard, metrics). */
  get queue(): DeliveryProducer['queue'] {
    return this.deps.producer.queue;
  }

  /** `audit`: the creation's audit entry, recorded pending with the endpoint (EndpointRepository.create). */
  async createEndpoint(partnerId: string, input: EndpointInput, audit?: (endpointId: string) => PendingAudit): Promise<{ endpoint: EndpointRecord; secret: string }> {
    const secret = newWebhookSecret();
    const now = new Date().toISOString();
    const endpoint: EndpointRecord = {
      id: randomId('ep_'),
      partnerId,
      url: input.url,
      events: [...new Set(input.events)],
      description: input.description ?? null,
      enabled: true,
      secretSealed: this.deps.box.encrypt(secret),
      previousSecretSealed: null,
      previousSecretExpiresAt: null,
      olderPreviousSecrets: [],
      disabledAt: null,
      disabledReason: null,
      failingSince: null,
      lastSuccessAt: null,
      createdAt: now,
      updatedAt: now,
    };
    const cap = this.deps.endpointsPerPartner;
    if (!(await this.deps.endpoints.create(endpoint, cap, audit?.(endpoint.id)))) {
      throw conflict(`partner ${partnerId} already has ${cap} webhook endpoints, the most a partner may have (OUTBOUND_ENDPOINTS_PER_PARTNER): delete one (DELETE /v1/partners/${pathId(partnerId)}/endpoints/{endpointId}) to add another; nothing was created`);
    }
    return { endpoint, secret };
  }

  /** New secret (returned once); the rotated-out ones keep signing alongside it for their grace period. */
  async rotateSecret(partnerId: string, endpointId: string, audit?: PendingAudit): Promise<{ secret: string; previousSecretValidUntil: string }> {
    const secret = newWebhookSecret();
    const validUntil = new Date(Date.now() + this.deps.secretRotationGraceMs).toISOString();
    // One atomic step (current → previous, new → current): a read-then-write would let two
    // concurrent rotations both demote the same old secret and lose the first new one.
    const ok = await this.deps.endpoints.rotateSecret(partnerId, endpointId, this.deps.box.encrypt(secret), validUntil, new Date(), audit);
    if (!ok) throw notFound(`endpoint ${endpointId}`);
    return { secret, previousSecretValidUntil: validUntil };
  }

  /**
   * Sends `{type, timestamp, data}` to every enabled endpoint of the partner that subscribes to
   * `type`, at least once. The same `idempotencyKey` (per partner, for messageTtlSec) yields the same
   * message: a producer that retries does not send twice. Safe to call again after a crash halfway.
   */
  async emit(partnerId: string, type: OutboundEventType, data: object, idempotencyKey: string): Promise<EmitResult> {
    return this.emitMade(partnerId, type, () => ({ data, idempotencyKey }));
  }

  /**
   * emit() whose payload and idempotency key are made only when an enabled endpoint subscribes to
   * the type: a sync reports every mirror change (mirror.updated), and building the payload and
   * hashing it into its key was a visible part of a pin sync's CPU also for partners with nobody to tell.
   */
  async emitMade(
    partnerId: string,
    type: OutboundEventType,
    make: () => { data: object; idempotencyKey: string },
    before?: () => Promise<void>,
  ): Promise<EmitResult> {
    // The cached list (EndpointRepository.listCached: ≤ 1 s old, this process's own changes at once).
    const subscribed = (await this.deps.endpoints.listCached(partnerId)).filter((e) => e.enabled && e.events.includes(type));
    if (subscribed.length === 0) return { messageId: null, duplicate: false, endpointIds: [] };
    // A caller's last check before anything is stored (a sync: its target still exists); it throws to stop.
    await before?.();
    const { data, idempotencyKey } = make();
    const { messages, producer, messageTtlSec } = this.deps;
    const candidate = sortableId('msg_');
    const holder = await messages.claim(partnerId, sha256Hex(idempotencyKey), candidate, messageTtlSec);
    const messageId = holder ?? candidate;
    const timestamp = new Date().toISOString();
    const message: OutboundMessage = { id: messageId, partnerId, type, timestamp, body: JSON.stringify({ type, timestamp, data }) };
    // Creating is idempotent too: when an earlier call claimed the key but died before storing the
    // message, this call stores it; otherwise the stored one (and its endpoint list) stands.
    await messages.create(
      message,
      subscribed.map((e) => newDelivery(e.id, 1, 'event')),
      messageTtlSec,
    );
    const stored = await messages.get(partnerId, messageId);
    if (!stored) throw new Error(`message ${messageId} vanished right after it was stored`);
    // A pending run-1 delivery either has its job (add is then a no-op) or lost it in a crash.
    const pending = Object.values(stored.deliveries).filter((d) => d.state === 'pending' && d.run === 1 && d.runAttempts === 0);
    await Promise.all(pending.map((d) => producer.enqueue({ partnerId, messageId, endpointId: d.endpointId, run: 1 })));
    return { messageId, duplicate: holder !== null, endpointIds: Object.keys(stored.deliveries) };
  }

  /**
   * Manual redelivery (operator): a delivery still retrying is tried now; a finished one (delivered or
   * failed) starts a new run with a fresh schedule. The webhook-id stays the message id.
   */
  async redeliver(partnerId: string, messageId: string, endpointId?: string): Promise<string[]> {
    const { messages, endpoints, producer } = this.deps;
    const stored = await messages.get(partnerId, messageId);
    if (!stored) throw notFound(`message ${messageId}`);
    const ids = endpointId ? [endpointId] : Object.keys(stored.deliveries);
    const queued: string[] = [];
    const refused: string[] = [];
    for (const id of ids) {
      const ep = await endpoints.get(partnerId, id);
      const refuse = !ep ? notFound(`endpoint ${id}`) : !ep.enabled ? conflict(`endpoint ${id} is disabled; enable it first (PATCH enabled: true)`) : !ep.events.includes(stored.message.type) ? conflict(`endpoint ${id} does not subscribe to ${stored.message.type}`) : null;
      if (refuse) {
        if (endpointId) throw refuse;
        refused.push(refuse.message);
        continue;
      }
      const d = stored.deliveries[id];
      if (d?.state === 'pending' && (await this.nudge(partnerId, d, messageId))) {
        queued.push(id);
        continue;
      }
      // The next run's job must not be a finished one: a job id still kept (failed jobs 7 days) makes
      // the add a no-op, and the redelivery answered 202 and sent nothing. The stored run can be older
      // than a finished job's: a delivery whose state did not read is rebuilt from the job that failed
      // (DeliveryService.markFailed), and a stalled older run's job failing late writes its own run.
      // A job of the run still to run (another redelivery's just now) is the one that sends it.
      let run = (d?.run ?? 0) + 1;
      while (await this.finishedJob(messageId, id, run)) run++;
      await messages.saveDelivery(partnerId, messageId, newDelivery(id, run, 'manual', d?.attempts ?? 0));
      await producer.enqueue({ partnerId, messageId, endpointId: id, run });
      queued.push(id);
    }
    // Every endpoint of the message refused (deleted, disabled, unsubscribed since): nothing is sent.
    // A 202 `endpointIds: []` said "queued" and was audited as a redelivery that delivered nothing.
    if (queued.length === 0) throw conflict(`message ${messageId} has no endpoint to deliver it to now${refused.length > 0 ? `: ${refused.join('; ')}` : ''}; nothing was queued`);
    await messages.touch(partnerId, messageId, this.deps.messageTtlSec);
    return queued;
  }

  /** Whether run `run` of a delivery has a job that is done with (failed, or completed and kept). */
  private async finishedJob(messageId: string, endpointId: string, run: number): Promise<boolean> {
    const job = await this.deps.producer.find({ messageId, endpointId, run });
    if (!job) return false;
    const state = await job.getState();
    return state === 'failed' || state === 'completed';
  }

  /** A pending delivery with a live job: run a delayed one now. False when its job is gone. */
  private async nudge(partnerId: string, d: DeliveryState, messageId: string): Promise<boolean> {
    const job = await this.deps.producer.find({ messageId, endpointId: d.endpointId, run: d.run });
    if (!job) return false;
    let state = await job.getState();
    if (state === 'delayed') {
      // The retry is due now: DeliveryService waits out a job run before its delivery's nextAttemptAt
      // (a job taken over mid-attempt), so the promoted job would otherwise wait for the old schedule.
      if (d.nextAttemptAt !== null) await this.deps.messages.saveDelivery(partnerId, messageId, { ...d, nextAttemptAt: new Date().toISOString() });
      if (await promoteIfDelayed(job)) return true;
      // It left the delayed state since getState (its delay ended, another process promoted it, or it
      // ran and was removed): what it is now decides, as below.
      state = await job.getState();
    }
    return state === 'waiting' || state === 'active' || state === 'prioritized' || state === 'waiting-children';
  }

  async message(partnerId: string, messageId: string) {
    const stored = await this.deps.messages.get(partnerId, messageId);
    if (!stored) return null;
    const { message, deliveries } = stored;
    // A body that is not a JSON object is the message's StoredRecordCorruptError (a typed 500), never a SyntaxError quoting it.
    const payload = parseStored<{ data: unknown }>('message', messageId, this.deps.messages.keyOf(partnerId, messageId), message.body, isPlainObject);
    return {
      id: message.id,
      type: message.type,
      timestamp: message.timestamp,
      data: payload.data,
      deliveries: Object.values(deliveries)
        .sort((a, b) => a.endpointId.localeCompare(b.endpointId))
        .map((d) => ({
          endpointId: d.endpointId,
          state: d.state,
          attempts: d.attempts,
          run: d.run,
          trigger: d.trigger,
          lastAttemptAt: d.lastAttemptAt,
          lastStatusCode: d.lastStatusCode,
          lastError: d.lastError,
          nextAttemptAt: d.nextAttemptAt,
          deliveredAt: d.deliveredAt,
        })),
    };
  }

  async close(): Promise<void> {
    await this.deps.producer.close();
  }
}
