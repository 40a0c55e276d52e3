/**
 * Outbound messages: one hash per message — `meta`, the exact `body` every attempt sends, and one
 * `d:<endpointId>` field per delivery — plus an idempotency claim per (partner, producer key), so a
 * producer that emits the same event twice gets the same message back.
 */
import type { DeliveryState, OutboundMessage } from '../outbound/outbound.types.js';
import { idRecord, type IdRecord } from '../lib/id-record.js';
import type { Keys } from './keys.js';
import { defineOutboundScripts } from './outbound.scripts.js';
import type { RedisClient } from './redis.js';
import { isPlainObject, parseStored, readStored } from './stored-record.js';

/** A stored message's `meta` (JSON `null`, an array or an object without its fields is not one). */
function isMessageMeta(v: unknown): v is Omit<OutboundMessage, 'body'> {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['partnerId'] === 'string' && typeof v['type'] === 'string' && typeof v['timestamp'] === 'string';
}

/** A stored delivery's state (its `d:<endpointId>` field). */
function isDeliveryState(v: unknown): v is DeliveryState {
  return isPlainObject(v) && typeof v['endpointId'] === 'string' && typeof v['state'] === 'string' && typeof v['run'] === 'number' && typeof v['attempts'] === 'number' && typeof v['runAttempts'] === 'number';
}

/** Whether a stored delivery's bytes read (as `delivery()` reads them, as UTF-8 text, uncounted). */
function readsAsDelivery(raw: Buffer): boolean {
  try {
    return isDeliveryState(JSON.parse(raw.toString('utf8')));
  } catch {
    return false;
  }
}

export interface StoredMessage {
  message: OutboundMessage;
  /** Keyed by endpoint id (prototype-less, src/lib/id-record.ts). */
  deliveries: IdRecord<DeliveryState>;
}

export class OutboundMessageRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    defineOutboundScripts(redis);
  }

  /**
   * Claims `keyHash` for `messageId`. Returns null when this call claimed it, else the message id
   * that holds it.
   */
  async claim(partnerId: string, keyHash: string, messageId: string, ttlSec: number): Promise<string | null> {
    const key = this.keys.outboundIdempotency(partnerId, keyHash);
    for (let i = 0; i < 3; i++) {
      if ((await this.redis.set(key, messageId, 'EX', ttlSec, 'NX')) === 'OK') return null;
      const holder = await this.redis.get(key);
      if (holder) return holder;
      // expired between SET NX and GET: claim again
    }
    throw new Error('idempotency claim did not settle');
  }

  /** Stores the message and its initial deliveries once; false when it already existed. */
  async create(m: OutboundMessage, deliveries: DeliveryState[], ttlSec: number): Promise<boolean> {
    const { body, ...meta } = m;
    const pairs = deliveries.flatMap((d) => [`d:${d.endpointId}`, JSON.stringify(d)]);
    return (await this.redis.scObMessageCreate(this.keys.outboundMessage(m.partnerId, m.id), JSON.stringify(meta), body, ttlSec, ...pairs)) === 1;
  }

  /** The message's key (what a StoredRecordCorruptError about it names). */
  keyOf(partnerId: string, messageId: string): string {
    return this.keys.outboundMessage(partnerId, messageId);
  }

  /**
   * The message and its deliveries; null when gone. One that does not read (a key of another type, its
   * meta or a delivery not JSON or not of its shape) is a StoredRecordCorruptError naming the message.
   */
  async get(partnerId: string, messageId: string): Promise<StoredMessage | null> {
    const key = this.keyOf(partnerId, messageId);
    const h = await readStored('message', messageId, key, () => this.redis.hgetall(key));
    if (!h['meta'] || h['body'] === undefined) return null;
    const deliveries = idRecord<DeliveryState>();
    for (const [f, v] of Object.entries(h)) if (f.startsWith('d:')) deliveries[f.slice(2)] = parseStored<DeliveryState>('message', messageId, key, v, isDeliveryState);
    return { message: { ...parseStored<Omit<OutboundMessage, 'body'>>('message', messageId, key, h['meta'], isMessageMeta), body: h['body'] }, deliveries };
  }

  /**
   * A message's type and one delivery's state (undefined when gone) without the message body (one
   * HMGET), or null when the message is gone: what DeliveryService reads of a job the fairness rules
   * hold back.
   */
  async deliveryState(partnerId: string, messageId: string, endpointId: string): Promise<{ type: OutboundMessage['type']; delivery: DeliveryState | undefined } | null> {
    const key = this.keyOf(partnerId, messageId);
    const [meta, d] = await readStored('message', messageId, key, () => this.redis.hmget(key, 'meta', `d:${endpointId}`));
    if (!meta) return null;
    // Read as get() reads them: one that does not read is the same StoredRecordCorruptError.
    return { type: parseStored<Omit<OutboundMessage, 'body'>>('message', messageId, key, meta, isMessageMeta).type, delivery: d ? parseStored<DeliveryState>('message', messageId, key, d, isDeliveryState) : undefined };
  }

  /**
   * One delivery's state alone (undefined when it or the message is gone), its meta and body not read:
   * what marking a delivery failed needs, so a message whose meta does not read still has that delivery
   * marked (DeliveryService.markFailed). A delivery that does not read is a StoredRecordCorruptError.
   */
  async delivery(partnerId: string, messageId: string, endpointId: string): Promise<DeliveryState | undefined> {
    const key = this.keyOf(partnerId, messageId);
    const d = await readStored('message', messageId, key, () => this.redis.hget(key, `d:${endpointId}`));
    return d ? parseStored<DeliveryState>('message', messageId, key, d, isDeliveryState) : undefined;
  }

  /**
   * Replaces one delivery's state that does not read (not JSON, or of another shape) with `d`
   * (DeliveryService.markFailed: a failed state built from its job), in one step that compares the
   * field with the text read: a field written in between (a redelivery's state, an operator's repair)
   * is left alone, as is a message that is gone. The field is read and compared as bytes: one that is
   * not valid UTF-8 (a value cut mid-character) read as a string comes back with U+FFFD in place of
   * its bytes, never equal to what Redis holds, and was never replaced. The unreadable text itself is
   * never returned nor logged. True when replaced.
   */
  async replaceUnreadableDelivery(partnerId: string, messageId: string, d: DeliveryState): Promise<boolean> {
    const key = this.keyOf(partnerId, messageId);
    const field = `d:${d.endpointId}`;
    const raw = await readStored('message', messageId, key, () => this.redis.hgetBuffer(key, field));
    if (raw === null || readsAsDelivery(raw)) return false;
    return (await this.redis.scObHsetIfSame(key, 'meta', field, raw, JSON.stringify(d))) === 1;
  }

  /**
   * Writes one delivery's state while the message exists. With `keepAtLeastSec`, in the same step the
   * message is kept at least that long from now (EXPIRE GT, in Lua for Redis 6.2: never shortened): a delivery that schedules
   * its next attempt keeps its message until then and a retention period after it, and a retry is never
   * saved with the message's old TTL (a crash or Redis error between two calls left it so).
   */
  async saveDelivery(partnerId: string, messageId: string, d: DeliveryState, keepAtLeastSec = 0): Promise<boolean> {
    return (await this.redis.scObHsetKeep(this.keys.outboundMessage(partnerId, messageId), 'meta', keepAtLeastSec, `d:${d.endpointId}`, JSON.stringify(d))) === 1;
  }

  /**
   * Claims the one attempt in flight of a delivery for `ttlMs` (true when this call has it). Another
   * worker that runs the same job meanwhile (its BullMQ lock lost while the attempt was in flight)
   * finds it held and waits instead of sending the message a second time at once.
   */
  async claimAttempt(partnerId: string, messageId: string, endpointId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.outboundAttempt(partnerId, messageId, endpointId), token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Ends this holder's claim (a claim that expired and was taken by another is left alone). */
  async releaseAttempt(partnerId: string, messageId: string, endpointId: string, token: string): Promise<void> {
    await this.redis.scObReleaseIfHeld(this.keys.outboundAttempt(partnerId, messageId, endpointId), token);
  }

  /**
   * Keeps a message that is being redelivered around for another retention period. Never shortens it
   * (GT): another endpoint's retry may have kept the message longer (saveDelivery), and a shorter TTL
   * would let that retry find the message gone and end `skipped`.
   */
  async touch(partnerId: string, messageId: string, ttlSec: number): Promise<void> {
    await this.redis.scObExpireGt(this.keys.outboundMessage(partnerId, messageId), ttlSec);
  }
}
