/**
 * Acknowledge only what a replica holds. Redis replicates asynchronously: a master that dies right
 * after answering a write can take that write with it when its replica is promoted. Before the API
 * answers 2xx to a request that wrote, `ReplicaAck.confirm()` sends `WAIT 1 <timeout>` on every master
 * connection the process writes through (the service's client and the BullMQ producer's), so the reply
 * is sent only once each master's replica(s) have everything this process wrote to it so far. A WAIT that
 * times out (replica unreachable, master dying) fails the request with a 503: the partner retries, and
 * the retry is idempotent (webhook-id inbox). A redirect's retry is not (a new click id; the first
 * click, stored on the master, stays orphaned if that master survives). Sync workers use the same setting before a
 * non-idempotent platform call: the step's first start is sent on the connection of the master holding
 * its intent (`nodeOf`) with a WAIT right behind it (`waitTurn`: one per master and event-loop turn), other starts are followed by
 * `confirmKey()` (a WAIT on that one master; IntentRepository.scoped), and a WAIT that times out makes
 * the step retry without calling.
 *
 * Concurrent requests share WAITs: while one WAIT per node is in flight, later callers join the next
 * one (issued when the current one returns), so under load a node sees about one WAIT per round trip
 * rather than one per request. A master with no connected replica (its replica was just promoted to
 * replace a dead master, say) is not waited on: the service keeps answering, with the same durability
 * as before the failover, and says so in its log once per node.
 *
 * `REDIS_WAIT_REPLICAS`: `auto` (default) = 1 for a Redis Cluster whose masters have replicas, 0 (off)
 * for a single Redis; a number n = wait for n replicas (at most as many as the master has connected),
 * for a single Redis with replicas as well. `REDIS_WAIT_TIMEOUT_MS` bounds each WAIT.
 */
import { Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { masters, type RedisClient } from './redis.js';
import { keySlot, masterByKey, nodeKey } from './slot.js';

export class ReplicaAckError extends Error {
  override name = 'ReplicaAckError';
  constructor(detail: string) {
    super(`NOREPLICAS write not acknowledged by a replica: ${detail}`);
  }
}

interface NodeState {
  /** The WAIT currently on the wire, if any. */
  inFlight?: Promise<void>;
  /** The WAIT callers who arrived while one was in flight will share. */
  next?: Promise<void>;
  /** The WAIT to be sent at the end of this event-loop turn (waitTurn), shared by this turn's callers. */
  turn?: Promise<void>;
  /** connected_slaves from INFO replication, and when it was read. */
  replicas: number;
  checkedAt: number;
  warned: boolean;
  /** The first INFO replication on this master while it is on the wire (until then `replicas` is a guess). */
  first?: Promise<void>;
  /** Whether an INFO replication of this master has answered (`replicas` is a reading, not the guess 1). */
  known: boolean;
}

const REPLICA_RECHECK_MS = 1000;
const RESOLVED = Promise.resolve();

export class ReplicaAck {
  private readonly nodes = new WeakMap<Redis, NodeState>();
  /** WAIT commands sent, and how many callers they served (for the benchmark's cost model). */
  readonly stats = { waits: 0, confirms: 0 };

  constructor(
    private readonly clients: RedisClient[],
    private readonly replicas: number,
    private readonly timeoutMs: number,
    private readonly log?: Logger,
  ) {}

  /**
   * How many replicas to wait for: `auto` = 1 on a Cluster, 0 on a single Redis. A master with no
   * connected replica is never waited on (see confirmNode), so `auto` on a Cluster without replicas
   * costs one INFO per master per second and nothing per request.
   */
  static replicasFor(setting: 'auto' | number, client: RedisClient): number {
    if (setting !== 'auto') return setting;
    return client instanceof Cluster ? 1 : 0;
  }

  /** Whether confirm() waits for anything (WAIT configured, or `auto` on a cluster with replicas). */
  get active(): boolean {
    return this.replicas > 0;
  }

  /**
   * A WAIT sent now on `node`, right behind writes just sent on that connection (pipelined: no round
   * trip in between), for callers who batch their own writes (the redirect's clicks per master,
   * LinkService): it covers everything sent on the connection before it, and resolves once a replica
   * holds it (rejects with ReplicaAckError when none does within the timeout). Undefined when nothing
   * is to be waited for (WAIT off, or a master with no connected replica).
   */
  waitNow(node: Redis): Promise<void> | undefined {
    const s = this.behindWrites(node);
    if (s === undefined || s instanceof Promise) return s;
    return this.sendWait(node, Math.min(this.replicas, s.replicas));
  }

  /**
   * What waitNow and waitTurn do before their WAIT: undefined when nothing is to be waited for (WAIT
   * off, or a master with no connected replica); for a master never asked yet, its replica count first
   * (one with none is not waited on, not WAITed the full timeout into a failed write) and then the
   * shared WAIT, still after the caller's writes (that promise); else the master's state, its replica
   * count re-read alongside, not before (this WAIT uses the last count known).
   */
  private behindWrites(node: Redis): NodeState | Promise<void> | undefined {
    if (this.replicas === 0) return undefined;
    const s = this.state(node);
    if (!s.known) return this.firstSight(node, s);
    if (Date.now() - s.checkedAt > REPLICA_RECHECK_MS) this.recheck(node, s).catch(() => undefined);
    if (s.replicas === 0) return undefined;
    this.stats.confirms++;
    return s;
  }

  /**
   * waitNow() shared by the callers of one event-loop turn: one WAIT on `node`, sent once the turn's
   * other work is done (process.nextTick), behind every write its callers sent on that connection
   * before they asked (no round trip in between). For writes that start many at once (the sync
   * workers' intent starts): one WAIT per master and turn instead of one each. Undefined when nothing
   * is to be waited for.
   */
  waitTurn(node: Redis): Promise<void> | undefined {
    const s = this.behindWrites(node);
    if (s === undefined || s instanceof Promise) return s;
    if (s.turn) return s.turn;
    const n = Math.min(this.replicas, s.replicas);
    const turn = new Promise<void>((resolve, reject) => {
      process.nextTick(() => {
        s.turn = undefined; // a caller after this point sent its write after this WAIT: it needs the next one
        this.sendWait(node, n).then(resolve, reject);
      });
    });
    s.turn = turn;
    return turn;
  }

  /** Resolves once every master this process wrote through has replicated its writes so far. */
  async confirm(): Promise<void> {
    if (this.replicas === 0) return;
    this.stats.confirms++;
    await Promise.all(this.clients.flatMap((c) => masters(c)).map((m) => this.confirmNode(m)));
  }

  /**
   * Resolves once the master that holds `key` (on the service's client, the first one given) has
   * replicated this process's writes to it so far: one node's WAIT instead of every master's. Used
   * before a non-idempotent platform call, for the intent that says it started (IntentRepository).
   * Nothing when WAIT is off, or that master has no connected replica.
   */
  async confirmKey(key: string): Promise<void> {
    if (this.replicas === 0) return;
    const client = this.clients[0];
    if (!client) return;
    this.stats.confirms++;
    const node = client instanceof Cluster ? masterByKey(client, client.slots[keySlot(key)]?.[0]) : client;
    // Slots not known (yet) or moving: every master, as confirm() does.
    if (!node) {
      await Promise.all(masters(client).map((m) => this.confirmNode(m)));
      return;
    }
    await this.confirmNode(node);
  }

  /**
   * The connection a write of `key` goes to, for a caller that sends the write there itself and its
   * WAIT right behind it (waitNow; no round trip in between): the one Redis, or the Cluster master
   * the slot map names for the key's slot. Undefined when WAIT is off or the slot map names none.
   */
  nodeOf(key: string): Redis | undefined {
    if (this.replicas === 0) return undefined;
    const client = this.clients[0];
    if (!client) return undefined;
    return client instanceof Cluster ? masterByKey(client, client.slots[keySlot(key)]?.[0]) : client;
  }

  private state(node: Redis): NodeState {
    let s = this.nodes.get(node);
    if (!s) {
      s = { replicas: 1, checkedAt: 0, warned: false, known: false };
      this.nodes.set(node, s);
    }
    return s;
  }

  /** The shared WAIT that covers what was written on `node` so far (no promise of its own per caller once the replica count is known). */
  private confirmNode(node: Redis): Promise<void> {
    const s = this.state(node);
    if (Date.now() - s.checkedAt > REPLICA_RECHECK_MS) return this.recheck(node, s).then(() => this.join(node, s));
    return this.join(node, s);
  }

  /**
   * A master not asked yet (waitNow, waitTurn): every caller until its first INFO answers waits for
   * that one reading, then joins the shared WAIT (none on a master with no replica). The WAIT is still
   * sent after each caller's writes.
   */
  private firstSight(node: Redis, s: NodeState): Promise<void> {
    this.stats.confirms++;
    s.first ??= this.recheck(node, s).finally(() => {
      s.first = undefined;
    });
    return s.first.catch(() => undefined).then(() => this.join(node, s));
  }

  private async recheck(node: Redis, s: NodeState): Promise<void> {
    s.checkedAt = Date.now();
    const info = await node.info('replication');
    s.replicas = Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0);
    s.known = true;
    if (s.replicas === 0 && !s.warned) {
      s.warned = true;
      this.log?.warn({ node: nodeKey(node) }, 'redis master has no connected replica: acknowledging its writes without WAIT');
    } else if (s.replicas > 0) s.warned = false;
  }

  private join(node: Redis, s: NodeState): Promise<void> {
    if (s.replicas === 0) return RESOLVED;
    const n = Math.min(this.replicas, s.replicas);
    if (!s.inFlight) {
      s.inFlight = this.wait(node, s, n);
      return s.inFlight;
    }
    // A WAIT is on the wire but may have been sent before our write: join the next one.
    s.next ??= s.inFlight.catch(() => undefined).then(() => {
      s.next = undefined;
      s.inFlight = this.wait(node, s, n);
      return s.inFlight;
    });
    return s.next;
  }

  private async wait(node: Redis, s: NodeState, n: number): Promise<void> {
    try {
      await this.sendWait(node, n);
    } finally {
      s.inFlight = undefined;
    }
  }

  /** One WAIT for `n` replicas on `node`; rejects with ReplicaAckError when fewer acknowledge in time. */
  private async sendWait(node: Redis, n: number): Promise<void> {
    this.stats.waits++;
    const acked = (await node.call('WAIT', n, this.timeoutMs)) as number;
    if (acked < n) throw new ReplicaAckError(`no replica acknowledged within ${this.timeoutMs} ms`);
  }
}
