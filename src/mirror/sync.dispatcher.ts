/**
 * The sync dispatcher: turns the sync-dispatch stream (Keys.syncDispatch, one entry per accepted show
 * event, written by the ingest in the same Lua step as the event on a single Redis) into coalesced
 * sync jobs, one per (show, enabled target), with one addBulk per queue per batch. It runs in every
 * process with the `worker` role (and the `dispatch` role alone); several of them share the stream
 * through one consumer group.
 *
 * Crash safety (at-least-once): an entry is acknowledged and deleted (one Lua step) only after its jobs
 * were added. An entry read by a dispatcher that died (kill -9, lost connection) stays in the group's
 * pending list and is taken over (XAUTOCLAIM) by any dispatcher once it has been pending for
 * DISPATCH_RECLAIM_MS; a dispatcher whose add failed reads its own pending entries again first. A job
 * added twice is coalesced by BullMQ's deduplication id, and a sync run is idempotent anyway (version
 * checks and intents), so dispatching an entry again is harmless. The sweep (SweepService) stays the
 * safety net behind all of it.
 *
 * Promptness: a blocking XREADGROUP wakes on the first new entry; everything that arrived meanwhile
 * comes in the same read (up to `batch`), so under load one read and one addBulk serve many events.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Result } from 'ioredis';
import type { SyncJob, SyncProducer } from '../queues/queues.js';
import type { Platform } from '../targets/target.adapter.js';
import type { Keys } from '../store/keys.js';
import type { PartnerBundle, PartnerRepository } from '../store/partner.repository.js';
import { defineRedisScripts, isRedisUnavailable, type RedisClient } from '../store/redis.js';

export const DISPATCH_GROUP = 'dispatch';

/** KEYS: the dispatch stream. ARGV: group, then entry ids. Acknowledges and deletes them in one step. */
const ACK_DELETE_LUA = `
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scDispatchAckDel(stream: string, group: string, ...ids: string[]): Result<number, Context>;
  }
}

type Entry = [id: string, fields: string[] | null];

export interface SyncDispatcherOptions {
  /** A connection of its own, closed by close(): the dispatcher blocks on it (XREADGROUP BLOCK). */
  redis: RedisClient;
  keys: Keys;
  partners: PartnerRepository;
  producer: Pick<SyncProducer, 'enqueueBulk'>;
  log: Logger;
  /** Entries pending this long with another consumer are taken over (config dispatchReclaimMs). */
  reclaimMs: number;
  /** Entries per read (and so at most per addBulk round). */
  batch?: number;
}

export class SyncDispatcher {
  private readonly consumer = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly batch: number;
  private readonly blockMs: number;
  private closing = false;
  private dispatching = false;
  private loop: Promise<void> | undefined;
  /** Entries dispatched since start (tests, metrics). */
  dispatched = 0;

  constructor(private readonly o: SyncDispatcherOptions) {
    this.batch = o.batch ?? 500;
    // Bounded, so that the takeover of other consumers' entries runs on time while no event arrives.
    this.blockMs = Math.max(50, Math.min(1000, Math.floor(o.reclaimMs / 2)));
    defineRedisScripts(o.redis, { scDispatchAckDel: { numberOfKeys: 1, lua: ACK_DELETE_LUA } });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Stops: a batch being dispatched gets up to 2 s to finish, then the connection is closed (a read,
   * a takeover check, or a call queued while Redis is down, end at once). A batch cut short stays
   * pending and is taken over by another dispatcher: nothing is lost, at worst dispatched twice.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.dispatching && this.loop) await Promise.race([this.loop, new Promise((r) => setTimeout(r, 2000).unref())]);
    // Disconnected once only: a second disconnect of an ended stream leaves ioredis' 2 s destroy timer running.
    this.o.redis.disconnect();
    await this.loop;
  }

  private async run(): Promise<void> {
    const stream = this.o.keys.syncDispatch();
    let ownPending = true; // after a start or a failure: this consumer's own unacknowledged entries first
    let lastReclaim = 0;
    let failures = 0;
    while (!this.closing) {
      try {
        if (failures > 0 || lastReclaim === 0) await this.ensureGroup(stream);
        if (Date.now() - lastReclaim >= this.o.reclaimMs / 2) {
          await this.reclaim(stream);
          lastReclaim = Date.now();
        }
        const reply = (
          ownPending
            ? await this.o.redis.xreadgroup('GROUP', DISPATCH_GROUP, this.consumer, 'COUNT', this.batch, 'STREAMS', stream, '0')
            : await this.o.redis.xreadgroup('GROUP', DISPATCH_GROUP, this.consumer, 'COUNT', this.batch, 'BLOCK', this.blockMs, 'STREAMS', stream, '>')
        ) as [string, Entry[]][] | null;
        const entries = reply?.[0]?.[1] ?? [];
        if (ownPending && entries.length === 0) ownPending = false;
        if (entries.length > 0) await this.dispatch(stream, entries);
        failures = 0;
      } catch (err) {
        if (this.closing) break;
        failures += 1;
        ownPending = true;
        this.o.log.warn({ err: { message: (err as Error).message }, failures }, 'sync dispatch failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 5), 2000)));
        if (this.closing) break;
      }
    }
  }

  private async ensureGroup(stream: string): Promise<void> {
    try {
      await this.o.redis.xgroup('CREATE', stream, DISPATCH_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /** Takes over entries another dispatcher read and never acknowledged (it stopped), and dispatches them. */
  private async reclaim(stream: string): Promise<void> {
    let cursor = '0-0';
    for (let round = 0; round < 100; round++) {
      const [next, entries] = (await this.o.redis.xautoclaim(stream, DISPATCH_GROUP, this.consumer, this.o.reclaimMs, cursor, 'COUNT', this.batch)) as [string, Entry[], string[]?];
      if (entries.length > 0) {
        this.o.log.info({ entries: entries.length }, 'sync dispatch: took over entries of a stopped dispatcher');
        await this.dispatch(stream, entries);
      }
      if (next === '0-0') return;
      cursor = next;
    }
  }

  /**
   * A partner whose stored record cannot be read (not an outage: a broken document) must not hold up
   * every other partner's dispatch: its entries are dropped with an error logged, and its shows are left
   * to the sweep. An outage throws, and the batch is retried.
   */
  private async bundleOf(partnerId: string): Promise<PartnerBundle | null> {
    try {
      return await this.o.partners.bundleCached(partnerId);
    } catch (err) {
      if (isRedisUnavailable(err)) throw err;
      this.o.log.error({ err, partnerId }, 'sync dispatch: partner record unreadable; its shows are left to the sweep');
      return null;
    }
  }

  private async dispatch(stream: string, entries: Entry[]): Promise<void> {
    this.dispatching = true;
    try {
      await this.dispatchBatch(stream, entries);
    } finally {
      this.dispatching = false;
    }
  }

  private async dispatchBatch(stream: string, entries: Entry[]): Promise<void> {
    const shows = new Map<string, SyncJob>();
    const debug = this.o.log.isLevelEnabled('debug');
    const requestIds = new Map<string, string[]>();
    for (const [, fields] of entries) {
      if (!fields) continue; // deleted meanwhile (dispatched by another consumer): only the ack is left
      let partnerId = '';
      let showId = '';
      let requestId = '';
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === 'p') partnerId = fields[i + 1]!;
        else if (fields[i] === 's') showId = fields[i + 1]!;
        else if (fields[i] === 'r') requestId = fields[i + 1]!;
      }
      if (!partnerId || !showId) continue;
      const key = `${partnerId}\u0000${showId}`;
      // Coalesced: one job per (show, target) per batch; the first event's request id names it.
      if (!shows.has(key)) shows.set(key, { partnerId, showId, targetId: '', ...(requestId ? { requestId } : {}) });
      if (debug && requestId) requestIds.set(key, [...(requestIds.get(key) ?? []), requestId]);
    }
    // The partner's enabled targets, as the API used to read them for its enqueue (at most
    // BUNDLE_CACHE_MS old in another process; this process's own target writes drop the entry). A target
    // added or enabled since is kicked by that change itself (targets route) and swept.
    const bundles = new Map<string, Promise<PartnerBundle | null>>();
    const jobs: { platform: Platform; job: SyncJob }[] = [];
    for (const show of shows.values()) {
      let b = bundles.get(show.partnerId);
      if (!b) bundles.set(show.partnerId, (b = this.bundleOf(show.partnerId)));
      const bundle = await b;
      for (const t of bundle?.targets ?? []) if (t.enabled) jobs.push({ platform: t.platform, job: { ...show, targetId: t.id } });
    }
    if (jobs.length > 0) await this.o.producer.enqueueBulk(jobs);
    await this.o.redis.scDispatchAckDel(stream, DISPATCH_GROUP, ...entries.map(([id]) => id));
    this.dispatched += entries.length;
    if (debug) {
      for (const [key, show] of shows) this.o.log.debug({ partnerId: show.partnerId, showId: show.showId, requestIds: requestIds.get(key) ?? [] }, 'syncs queued');
    }
  }
}
