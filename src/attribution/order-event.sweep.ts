/**
 * The safety net behind the attribution queue, as the mirror sweep is behind the sync queues: every
 * stored partner order event carries a pending mark (written with it, src/store/show.repository.ts)
 * until attribution has handled it. An event still marked after `graceMs` — its job was never added
 * (the partner got a 503 after the write and stopped retrying), was lost, or failed all its attempts
 * — is read back from the order's event log and handed to attribution here. The ledger step is
 * idempotent (an order is stored once, a refund once by its id), so a job and the sweep handling the
 * same event still book it once. Orders with no mark left leave the pending-orders set.
 */
import type { Logger } from 'pino';
import { PartnerEventSchema } from '../domain/events.js';
import type { OrderEventRepository } from '../store/show.repository.js';
import type { AttributionService } from './attribution.service.js';
import { storedRecordsUnreadable } from '../lib/metrics.js';
import { countUnreadable, isUnreadableRecord } from '../store/redis.js';
import { isWrongType, StoredRecordCorruptError } from '../store/stored-record.js';

export interface OrderEventSweepResult {
  orders: number;
  handled: number;
  settled: number;
}

export class OrderEventSweep {
  constructor(
    private readonly orderEvents: OrderEventRepository,
    private readonly attribution: AttributionService,
    private readonly log: Logger,
    private readonly opts: { graceMs: number; pageSize: number; now?: () => number },
  ) {}

  async sweep(): Promise<OrderEventSweepResult> {
    const now = this.opts.now ? this.opts.now() : Date.now();
    let orders = 0;
    let handled = 0;
    let settled = 0;
    for await (const page of this.orderEvents.pendingOrderPages(this.opts.pageSize)) {
      orders += page.length;
      // Orders of a page concurrently, each order's events in log order. An order one of whose keys
      // does not read (WRONGTYPE on its pending mark, its event log or a key its handling writes) is
      // logged (once per order: the sweep meets it every tick until an operator repairs it), counted,
      // and passed over alone: before, its error failed the whole sweep, tick after tick, for every
      // pending order of every partner.
      const results = await Promise.all(
        page.map(async (o) => {
          const done = { n: 0 };
          try {
            const settledNow = await this.sweepOrder(o, now, done);
            return { n: done.n, settled: settledNow };
          } catch (err) {
            if (!isUnreadableRecord(err)) throw err;
            this.passOver(o, err);
            return { n: done.n, settled: false };
          }
        }),
      );
      for (const r of results) {
        handled += r.n;
        settled += r.settled ? 1 : 0;
      }
    }
    if (handled > 0) this.log.info({ orders, handled, settled }, 'order event sweep handed stored events to attribution');
    return { orders, handled, settled };
  }

  /** Orders this sweep logged as unreadable (the first tick that met each; bounded). */
  private readonly loggedUnreadable = new Set<string>();

  /** An order passed over because a key of it does not read: counted each time, logged once. */
  private passOver(o: { partnerId: string; orderId: string }, err: unknown): void {
    countUnreadable(err, 'order');
    const id = `${o.partnerId}\n${o.orderId}`;
    if (this.loggedUnreadable.has(id)) return;
    if (this.loggedUnreadable.size >= 10_000) this.loggedUnreadable.clear();
    this.loggedUnreadable.add(id);
    // Which record (a click its handling reads that is not JSON, say: not always a key of another type):
    // its family and key when the error names them; a bare WRONGTYPE or SyntaxError names none.
    const which = err instanceof StoredRecordCorruptError ? { family: err.family, key: err.key, reason: err.reason } : { reason: isWrongType(err) ? 'a Redis key of another type' : 'not JSON' };
    this.log.error({ partnerId: o.partnerId, orderId: o.orderId, ...which, err: { message: err instanceof Error ? err.message : String(err) } }, 'pending order unreadable (a stored record it reads does not read); passed over by the sweep until it is repaired');
  }

  /** One order's events past the grace handed to attribution (`done.n` counts them); whether the order left the pending set. */
  private async sweepOrder(o: { partnerId: string; orderId: string; member: string; score: string }, now: number, done: { n: number }): Promise<boolean> {
    const pending = await this.orderEvents.pendingEvents(o.partnerId, o.orderId);
    for (const { eventId, storedAtMs } of pending) {
      if (now - storedAtMs < this.opts.graceMs) continue; // its job is probably still on it
      const raw = await this.orderEvents.event(o.partnerId, o.orderId, eventId);
      const parsed = raw === null ? null : PartnerEventSchema.safeParse(jsonOrUndefined(raw));
      if (raw !== null && !parsed?.success) storedRecordsUnreadable.inc({ family: 'order' });
      if (parsed?.success) {
        // No store mark here (the log keeps the event only): an order.created's recorded
        // currency is read (one command; the sweep hands on only events whose job failed or never came).
        await this.attribution.handlePartnerEvent(o.partnerId, parsed.data);
        done.n += 1;
      } else {
        this.log.error({ partnerId: o.partnerId, orderId: o.orderId, eventId }, 'pending order event missing or unreadable; dropped from the sweep');
      }
      await this.orderEvents.handled(o.partnerId, o.orderId, eventId);
    }
    return await this.orderEvents.settle(o.partnerId, o.orderId, o.member, o.score);
  }
}

/** The stored text's JSON, or undefined when it is not JSON (the schema then refuses it: dropped, logged). */
function jsonOrUndefined(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
