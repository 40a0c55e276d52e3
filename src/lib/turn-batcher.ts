/**
 * Explicit batching of Redis calls (ioredis' auto-pipelining stays off: src/store/redis.ts). The
 * requests that arrive in one event-loop turn leave together, as one call per `maxPerCall` of them,
 * at the end of that turn; while `maxInFlight` calls wait for their replies, new requests gather and
 * leave as soon as one of those replies is in. Under load requests gather while Redis answers; an idle
 * server gets a lone request right away. Each request still waits for the reply that has its own
 * result: `deliver` hands every request of a batch its part of the reply, `fail` the call's error.
 * Used for the redirect's clicks, the click lookups of attribution and the ledger steps.
 */
export interface TurnBatcherOptions<T, R> {
  maxPerCall: number;
  maxInFlight: number;
  send: (batch: T[]) => Promise<R>;
  deliver: (batch: T[], reply: R) => void;
  fail: (batch: T[], err: unknown) => void;
}

export class TurnBatcher<T, R> {
  private pending: T[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly opts: TurnBatcherOptions<T, R>) {}

  add(item: T): void {
    this.pending.push(item);
    if (!this.scheduled && this.inFlight < this.opts.maxInFlight) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private readonly flushNow = (): void => {
    this.scheduled = false;
    if (this.inFlight < this.opts.maxInFlight) this.flush();
  };

  /** A call's reply is in: the requests that gathered meanwhile leave before this batch is answered. */
  private readonly callDone = (): void => {
    if (--this.inFlight < this.opts.maxInFlight && this.pending.length > 0) this.flush();
  };

  private flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    const { maxPerCall, send, deliver, fail } = this.opts;
    for (let from = 0; from < pending.length; from += maxPerCall) {
      const batch = pending.length <= maxPerCall ? pending : pending.slice(from, from + maxPerCall);
      this.inFlight += 1;
      send(batch).then(
        (reply) => {
          this.callDone();
          deliver(batch, reply);
        },
        (err: unknown) => {
          this.callDone();
          fail(batch, err);
        },
      );
    }
  }
}
