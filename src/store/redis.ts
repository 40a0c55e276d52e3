/**
 * Redis connections. The API's client fails fast (no offline queue, short command timeout) so that an
 * outage becomes a 503 rather than a hung request; BullMQ workers need maxRetriesPerRequest: null.
 * REDIS_CLUSTER_NODES switches to a Redis Cluster: every key we use carries a {hash tag}.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { Cluster, Command, Redis, type RedisOptions } from 'ioredis';
import { closeHandler } from 'ioredis/built/redis/event_handler.js';
import { clusterConnection } from '../config/config.js';
import { REDIS_REFUSAL_ALTERNATION } from '../lib/redis-refusals.js';
import { storedRecordsUnreadable } from '../lib/metrics.js';
import { isWrongType, StoredRecordCorruptError, type StoredFamily } from './stored-record.js';

export type RedisClient = Redis | Cluster;

/** An ioredis custom command: `redis.<name>(...)` runs `lua` (EVALSHA, EVAL once a server lacks it). */
export interface RedisScript {
  /** Omitted: the caller passes the number of keys first. */
  numberOfKeys?: number;
  lua: string;
}

/**
 * Defines on `redis` (one connection or a Cluster) each of `scripts` it does not have yet: every store
 * over the same client makes its own, and the first one defines them.
 */
export function defineRedisScripts(redis: RedisClient, scripts: Readonly<Record<string, RedisScript>>): void {
  for (const name in scripts) {
    if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, scripts[name]!);
  }
}

export interface RedisTarget {
  url?: string;
  clusterNodes?: string;
}

export type ConnectionRole = 'api' | 'worker';

// Auto-pipelining stays off: ioredis' auto-pipeline can resolve fewer results than commands and then
// throws `results[i] is not iterable` outside any caller (seen once in our five-platform property test;
// redis/ioredis#1931, where it crashed a server), and on a Cluster it groups EVALSHA by the wrong slot
// (redis/ioredis#2109). Correctness first; the benchmarks measure what it costs.
function roleOptions(role: ConnectionRole): RedisOptions {
  return role === 'api'
    ? { enableOfflineQueue: false, commandTimeout: 2000, maxRetriesPerRequest: 1, connectTimeout: 2000, enableAutoPipelining: false }
    : { maxRetriesPerRequest: null, enableAutoPipelining: false };
}

const BATCHED = Symbol('syndicast.writesBatched');

const ENDS_BETWEEN_RECONNECTS = Symbol('syndicast.endsBetweenReconnects');

/**
 * ioredis 5.11.1: disconnect() on a client waiting between two reconnect attempts (status
 * 'reconnecting': the timer of its next attempt is set, its socket is already closed) clears that timer
 * and closes the closed socket, so no 'close' event ever follows: the client stays 'reconnecting'
 * forever and every command queued on it (a BullMQ worker's blocking read, the dispatcher's
 * XREADGROUP) never settles. Whoever waits for those (Worker.close(), SyncDispatcher.close(), and so the
 * shutdown) hung until SHUTDOWN_TIMEOUT_MS and the process exited 1; it happened to SIGTERM sent just
 * after Redis came back from an outage, while the main client was ready again but the other connections
 * were still waiting for their next attempt. Such a client now ends as ioredis ends one disconnected
 * before it ever connected (status 'wait'): its close handler runs, status 'end', queued commands
 * rejected with "Connection is closed.". On the prototype, so that the connections BullMQ duplicates
 * itself (blocking connections) are covered too. A Cluster has its own disconnect: clusterEndWhenIdle.
 *
 * Likewise for what was in flight when the outage began: ioredis keeps those commands aside
 * (prevCommandQueue) to send them again once the connection is ready, and rejects them only while
 * they are still its command queue, i.e. until the first reconnect gets its socket. A client
 * disconnected after that and before 'ready' (status 'connect': connected, its handshake and ready
 * check under way, tens to hundreds of ms on a loaded machine) ended, and those commands never
 * settled: the sync dispatcher's XREADGROUP BLOCK, so SyncDispatcher.close() and the SIGTERM after an
 * outage hung (all roles in one process, SHUTDOWN_DRAIN_MS=0: the CI's npm-start.redis-down, then 2 of
 * 10 loaded runs by hand). A disconnect that does not reconnect now rejects them with the same error.
 */
/** The commands in flight when the connection dropped, kept to be sent again at 'ready': rejected, none is sent again. */
function rejectUnfulfilled(client: Redis): void {
  const c = client as unknown as { prevCommandQueue: { shift(): { command: { reject(err: Error): void } } | undefined } | null };
  const queue = c.prevCommandQueue;
  if (!queue) return;
  c.prevCommandQueue = null;
  for (let item = queue.shift(); item; item = queue.shift()) item.command.reject(new Error('Connection is closed.'));
}

/** Replaces `proto[method]` with `patched(the original)`, once however often this module is loaded (`mark` says it is done). */
function patchOnce<T extends Redis | Cluster, M extends 'disconnect' | 'quit'>(proto: T, method: M, mark: symbol, patched: (original: T[M]) => T[M]): void {
  const marks = proto as unknown as Record<symbol, true | undefined>;
  if (marks[mark]) return;
  marks[mark] = true;
  proto[method] = patched(proto[method]);
}

function endBetweenReconnects(): void {
  patchOnce(Redis.prototype, 'disconnect', ENDS_BETWEEN_RECONNECTS, (disconnect) => function (this: Redis, reconnect = false): void {
    const betweenAttempts = !reconnect && this.status === 'reconnecting' && (this as unknown as { reconnectTimeout: unknown }).reconnectTimeout != null;
    disconnect.call(this, reconnect);
    if (betweenAttempts && this.status === 'reconnecting') closeHandler(this)();
    if (!reconnect) rejectUnfulfilled(this);
  });
}
endBetweenReconnects();

const CLUSTER_ENDS_WHEN_IDLE = Symbol('syndicast.clusterEndsWhenIdle');
const CLUSTER_QUITS_WHEN_IDLE = Symbol('syndicast.clusterQuitsWhenIdle');

interface ClusterInternals {
  status: string;
  connectionPool: { getNodes(role: 'all'): unknown[] };
  flushQueue(err: Error): void;
  invokeReadyDelayedCallbacks(err: Error): void;
  handleCloseEvent(): void;
}

/** No node in the pool, none ending, and 'reconnecting' or 'connecting': nothing will drain to end it. */
function idleCluster(cluster: Cluster): boolean {
  const c = cluster as unknown as ClusterInternals;
  // A connect past its seeds (a 'refresh' listener) whose nodes are ending drains and closes by itself.
  return (c.status === 'reconnecting' || c.status === 'connecting') && c.connectionPool.getNodes('all').length === 0 && cluster.listenerCount('refresh') === 0;
}

/** Ends an idle Cluster its disconnect()/quit() left 'disconnecting': status 'end' at once, only 'end' emitted. */
function endIdleCluster(cluster: Cluster): void {
  const c = cluster as unknown as ClusterInternals;
  if (c.status !== 'disconnecting') return;
  const closed = new Error('Connection is closed.');
  c.flushQueue(closed);
  c.invokeReadyDelayedCallbacks(closed);
  // At once, and no 'close': BullMQ's bzpopmin wrapper catches the flushed BZPOPMIN in a microtask and
  // reconnects the client (disconnect(false), connect()) unless it is 'end' by then (Worker.close()
  // waits for 'end' before it turns that off): a close a tick later found it connecting, it never ended
  // and Worker.close() hung. A connect() in the same turn still gets ready: its listeners are
  // once('close'), and no 'close' comes (handleCloseEvent: manuallyClosing, so 'end', no retry).
  c.handleCloseEvent();
}

/**
 * ioredis 5.11.1: a Cluster's disconnect() goes to 'disconnecting' and ends once its node pool drains
 * (every node's 'end' → 'close' → 'end', offline queue flushed). With no node in the pool, nothing ever
 * drains: a Cluster waiting between reconnect attempts ('reconnecting', its pool emptied by the outage)
 * or connecting before its startup nodes resolved stayed 'disconnecting' for ever, and the commands in
 * its offline queue never settled. After a whole-cluster outage, a SIGTERM before the dispatcher's
 * Cluster retried (up to 2 s) left SyncDispatcher.close() waiting on its queued XGROUP/XREADGROUP, and
 * the process exited 1 at SHUTDOWN_TIMEOUT_MS; BullMQ's Cluster blocking connections the same. Such a
 * Cluster now ends at once as one disconnected in 'wait' does (its reconnect timer is already cleared):
 * queued commands and pipelines rejected with "Connection is closed.", status 'end' at once (only 'end'
 * emitted, no 'close': a connect() in the same turn connects, as an unpatched one does); quit() the
 * same. A Cluster with
 * nodes, or whose nodes are ending, ends through them as before (each node's disconnect:
 * endBetweenReconnects).
 */
function clusterEndWhenIdle(): void {
  patchOnce(Cluster.prototype, 'disconnect', CLUSTER_ENDS_WHEN_IDLE, (disconnect) => function (this: Cluster, reconnect = false): void {
    const idle = !reconnect && idleCluster(this);
    disconnect.call(this, reconnect);
    if (idle) endIdleCluster(this);
  });
  // quit() the same: with no node it resolved 'OK' at once and stayed 'disconnecting' for good.
  patchOnce(Cluster.prototype, 'quit', CLUSTER_QUITS_WHEN_IDLE, (quit) => function (this: Cluster, ...args: unknown[]) {
    const quitIdle = idleCluster(this);
    const ret = (quit as (...a: unknown[]) => Promise<'OK'>).apply(this, args);
    if (quitIdle) endIdleCluster(this);
    return ret;
  } as Cluster['quit']);
}
clusterEndWhenIdle();

const TIMEOUT_AFTER_IO = Symbol('syndicast.timeoutAfterIo');

/**
 * ioredis 5.11.1: a command's `commandTimeout` timer rejects it ("Command timed out") in the timers
 * phase of the event loop, before the poll phase reads the socket. After the process's event loop
 * stalled past the timeout (a long GC pause, a starved machine), a command Redis had executed and
 * answered was rejected with its reply already waiting in the socket: the API answered 503 to an event
 * it had stored (safe: the partner's retry is a duplicate; but a 5xx for no outage). Seen in a loaded
 * CI, where two plain order.created got 503 on one Redis; shown by a probe (SET, 2.5 s stall, timeout,
 * key set). The rejection now waits one turn (setImmediate: after the poll phase), so a reply already
 * received settles the command first. A Redis that does not answer is still a timeout, one turn later.
 */
function timeoutAfterIo(): void {
  interface TimedCommand {
    [TIMEOUT_AFTER_IO]?: true;
    _commandTimeoutTimer?: NodeJS.Timeout;
    isResolved: boolean;
    reject(err: Error): void;
    setTimeout(ms: number): void;
  }
  const proto = Command.prototype as unknown as TimedCommand;
  if (proto[TIMEOUT_AFTER_IO]) return;
  proto[TIMEOUT_AFTER_IO] = true;
  proto.setTimeout = function (this: TimedCommand, ms: number): void {
    if (this._commandTimeoutTimer) return;
    this._commandTimeoutTimer = setTimeout(() => {
      setImmediate(() => {
        if (!this.isResolved) this.reject(new Error('Command timed out'));
      });
    }, ms);
  };
}
timeoutAfterIo();

/**
 * The commands a process writes to one connection in one turn of the event loop leave in one socket
 * write (cork now, uncork on the next tick: one writev). ioredis writes every command on its own, and
 * on loopback each write is a syscall that also runs the receiving side's TCP path: a large part of a
 * worker's CPU per job. Nothing else changes: the same commands in the same order on the same
 * connection, each with its own reply (no pipeline, no MULTI); a write waits at most until the current
 * tick's callbacks and microtasks are done.
 */
export function batchWritesPerTick(socket: Duplex): void {
  const s = socket as Duplex & { [BATCHED]?: true };
  if (s[BATCHED]) return;
  s[BATCHED] = true;
  const write = s.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    s.uncork();
  };
  s.write = function (this: Duplex, ...args: unknown[]): boolean {
    if (!corked && !s.destroyed) {
      corked = true;
      s.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Duplex['write'];
}

/**
 * Runs `fn`, which issues commands on `client`, with the client's socket corked: the commands it writes
 * leave in one socket write when it returns (one writev), each still its own command with its own
 * reply (no pipeline, no MULTI). For a caller that issues many commands at once on a connection that
 * writes each on its own (the API's: ShowRepository.ingestOne's calls of one event-loop turn). A
 * Cluster, or a client without an open socket: `fn` as it is.
 */
export function inOneWrite<T>(client: RedisClient, fn: () => T): T {
  const s = client instanceof Cluster ? undefined : (client as unknown as { stream?: Duplex }).stream;
  if (!s || s.destroyed) return fn();
  s.cork();
  try {
    return fn();
  } finally {
    s.uncork();
  }
}

/** batchWritesPerTick on every connection the client opens (each reconnect has a new socket). */
function batchClientWrites(client: Redis): void {
  client.on('connect', () => {
    const stream = (client as unknown as { stream?: Duplex }).stream;
    if (stream) batchWritesPerTick(stream);
  });
}

export function createRedis(target: RedisTarget, role: ConnectionRole, name = 'syndicast'): RedisClient {
  const base: RedisOptions = {
    ...roleOptions(role),
    connectionName: `${name}-${role}`,
    // Keep reconnecting (capped backoff); the API answers 503 meanwhile.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
  };
  if (target.clusterNodes) {
    // The seeds' user and password go to every node (redisOptions): the seeds, the nodes learnt from
    // them, and every duplicate() (BullMQ's blocking connections) of this Cluster.
    const { seeds, username, password } = clusterConnection(target.clusterNodes);
    const cluster = new Cluster(seeds, { redisOptions: { ...base, username, password }, enableOfflineQueue: base.enableOfflineQueue ?? true, enableAutoPipelining: false });
    if (role === 'worker') cluster.on('+node', (node: Redis) => batchClientWrites(node));
    return cluster;
  }
  const client = new Redis(target.url ?? 'redis://127.0.0.1:6379', base);
  // Workers: many jobs at once, each a few commands per step (the API keeps one write per command).
  if (role === 'worker') batchClientWrites(client);
  return client;
}

/** A server's refusal of a connection's credentials (none given, or a wrong user or password). */
const AUTH_REFUSED = /\b(?:NOAUTH|WRONGPASS)\b/;

/**
 * Why no seed of REDIS_CLUSTER_NODES can be reached at all: none of their host names resolves
 * (ENOTFOUND, the name does not exist: a typo, `REDIS_CLUSTER_NODES=garbage`, which reads as the host
 * `garbage` on port 6379) on any of `tries` looks, `gapMs` apart. The start waited its 15 s ready wait
 * for a name that does not exist, then said only that no node answered; an unreachable REDIS_URL is
 * given up after ~3 s the same way (resolveRedis). Null when any seed's host resolves (an IP address
 * always does), or a look-up fails otherwise (EAI_AGAIN: the DNS may answer later): left to the ready wait.
 * `look` is the system's resolver (tests give one that answers `.invalid` names without a DNS server).
 */
export async function unresolvableClusterSeeds(clusterNodes: string, tries = 5, gapMs = 500, look: (host: string) => Promise<unknown> = lookup): Promise<string | null> {
  const { seeds } = clusterConnection(clusterNodes);
  const hosts = [...new Set(seeds.map(({ host }) => host))];
  let failures: string[] = [];
  for (let i = 0; i < tries; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    const looks = await Promise.all(hosts.map((host) => look(host).then(() => null, (err: NodeJS.ErrnoException) => (err.code === 'ENOTFOUND' ? `"${host}" (${err.message})` : undefined))));
    if (looks.some((l) => l === null || l === undefined)) return null;
    failures = looks as string[];
  }
  return (
    `no seed's host name resolves: ${failures.join(', ')}, on each of ${tries} looks ${gapMs / 1000} s apart. ` +
    `Check the names: each seed is host:port (a host alone is port 6379), an IPv6 address in brackets ([fd00::5]:7000), or redis://user:password@host:port`
  );
}

/**
 * Why no seed of REDIS_CLUSTER_NODES can serve as a cluster although one answers, as a sentence naming
 * the seed and what to do: a single Redis (cluster support disabled), a cluster node with no slot
 * assigned (the cluster was never created), or a node that refuses the seeds' password, or requires one
 * and none was given (NOAUTH, WRONGPASS: a misconfiguration, not an outage, as a wrong password in
 * REDIS_URL; the message names no password). The Cluster client would only retry "Failed to refresh
 * slots cache" until the start gives up with no word on why. Null once any seed is a cluster node with
 * slots, or when none answers (left to the Cluster client and its ready wait).
 */
export async function clusterSeedProblem(clusterNodes: string, timeoutMs = 2000): Promise<string | null> {
  const { seeds, username, password } = clusterConnection(clusterNodes);
  const problems = await Promise.all(
    seeds.map(async ({ host, port }) => {
      const node = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      // No ready check (its INFO is one more round trip): CLUSTER INFO is the check. A refusal of the
      // password (or of none) closes the connection; the command then says only "Connection is closed.".
      const c = new Redis({ host, port, username, password, lazyConnect: true, connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, enableReadyCheck: false, retryStrategy: () => null });
      // A seed that does not answer is not what this looks for; a refused AUTH arrives only as this
      // event (the command then fails with "Connection is closed.").
      let authError: string | undefined;
      c.on('error', (e: Error) => (authError ??= AUTH_REFUSED.test(e.message) ? e.message : undefined));
      try {
        await c.connect();
        const info = String(await c.cluster('INFO'));
        if (!/^cluster_slots_assigned:0\s*$/m.test(info)) return 'usable';
        return `${node} is a Redis Cluster node, but no hash slot is assigned to any node: the cluster has not been created (redis-cli --cluster create <every node's host:port> --cluster-replicas 1).`;
      } catch (err) {
        const reply = (err as Error).message;
        if (authError !== undefined || AUTH_REFUSED.test(reply)) {
          if (password !== undefined) {
            return (
              `${node} refused the ${username === undefined ? 'password (default user)' : `user "${username}" and password`} given in REDIS_CLUSTER_NODES (it answered: "${authError ?? reply}"). ` +
              `Check ${username === undefined ? 'it' : 'them'} against the nodes' requirepass or ACL users; every seed gives ${username === undefined ? 'it' : 'them'} as redis://user:password@host:port (redis://:password@host:port for the default user).`
            );
          }
          return (
            `${node} requires a password and refused a connection without one (it answered: "${authError ?? reply}"). ` +
            `Give it on every seed of REDIS_CLUSTER_NODES, as REDIS_URL takes it: redis://user:password@host:port (redis://:password@host:port for the default user).`
          );
        }
        if (!/cluster support disabled/i.test(reply)) return null;
        return (
          `${node} is a single Redis, not a Redis Cluster node (CLUSTER INFO: "${reply}"). ` +
          `For a single Redis, set REDIS_URL=redis://${node} and leave REDIS_CLUSTER_NODES unset; for a Redis Cluster, list its nodes (redis-server --cluster-enabled yes).`
        );
      } finally {
        c.disconnect();
      }
    }),
  );
  if (problems.includes('usable')) return null;
  return problems.find((p) => p !== null) ?? null;
}

/**
 * Whether nothing listens at a single Redis's address right now: a TCP connection to its host and port
 * is refused (ECONNREFUSED, the host answered that no server listens there). Then no process can reach
 * that Redis, and nothing in it changes, until a server listens there again. False when the connection
 * is made (a Redis is there: frozen, loading, or slow) and when no answer comes within `timeoutMs` or any
 * other error (a host or network that does not answer: others may reach it). A `redis://` or
 * `rediss://` URL (a unix socket: false); the relay's lease renewal asks it (src/relay/relay.service.ts).
 */
export function redisRefusesConnections(url: string, timeoutMs = 500): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const u = new URL(url);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return Promise.resolve(false);
    host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    port = Number(u.port || 6379);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (refused: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(refused);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(false));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || ((err as { errors?: NodeJS.ErrnoException[] }).errors?.every((e) => e.code === 'ECONNREFUSED') ?? false)));
  });
}

/**
 * The servers that take writes: each master of a Cluster (as the client's slot map names them; none
 * before it first knew the slots), or the one Redis. What runs "on every master" (a WAIT, a durability
 * check, a SCAN of one key space) runs on these: a command sent through a Cluster client reaches one node.
 */
export function masters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Wait until the client is ready (or throw after timeoutMs). */
export async function waitForRedis(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(t);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/**
 * ioredis's and Node's own messages for a connection that is not there. Case-sensitive.
 */
const UNAVAILABLE =
  /Connection is closed|Stream isn't writeable|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|Failed to refresh slots cache|Cluster isn't ready|None of startup nodes|connect ETIMEDOUT|Reached the max retries|Too many Cluster redirections/;

/**
 * Redis's answers for a server that cannot take the command now (REDIS_REFUSAL_REPLIES), anywhere in
 * the message (a script's error quotes the reply of the call it made). Case-sensitive, as whole words:
 * with `i` and no boundaries any error whose message said "loading" or "misconfigured" (a bug of ours)
 * was a 503 telling the client to retry, and BUSYGROUP (XGROUP CREATE of a group that exists) and
 * BUSYKEY (RESTORE onto a key) are answers about the command, not an unavailable Redis. BUSY: a script
 * (EVAL, FCALL) has run past busy-reply-threshold (lua-time-limit) and Redis answers every other command
 * with BUSY until it ends or is killed.
 */
const REFUSED = new RegExp(`\\b${REDIS_REFUSAL_ALTERNATION}\\b`);

/**
 * Errors that mean "Redis is unavailable" (→ 503): it cannot be reached or it refuses for now, as
 * opposed to bugs. MISCONF: Redis refuses writes because it cannot persist them (a snapshot that failed
 * with stop-writes-on-bgsave-error, an AOF it cannot write: a full disk); it was a 500 "internal error"
 * to a partner whose event was not stored. Only an `Error` of this realm counts. Not to be confused
 * with src/lib/redis-outage-log.ts' isRedisUnreachable (the connection only, read by shape).
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err instanceof LateWriteError) return true;
  return UNAVAILABLE.test(err.message) || REFUSED.test(err.message);
}

/**
 * An error that says one stored record does not read (an operator's hand edit, a half-migrated key):
 * a StoredRecordCorruptError (src/store/stored-record.ts), or, read without it, its JSON does not
 * parse (SyntaxError) or its key holds another type (WRONGTYPE, also quoted in a script's error). Code that skips the one item on it (the sweep, the readiness tick, the partner list)
 * rethrows every other error: an unavailable Redis fails the whole operation (a 503, a failed tick),
 * never a partial list answered 200 or shows "skipped" one by one.
 */
export function isUnreadableRecord(err: unknown): boolean {
  if (err instanceof StoredRecordCorruptError) return true;
  if (!(err instanceof Error) || isRedisUnavailable(err)) return false;
  return err instanceof SyntaxError || isWrongType(err);
}

/**
 * Counts a record that does not read (isUnreadableRecord) under `family`, unless it is a
 * StoredRecordCorruptError: that one was counted when it was made (corruptRecord).
 */
export function countUnreadable(err: unknown, family: StoredFamily): void {
  if (!(err instanceof StoredRecordCorruptError)) storedRecordsUnreadable.inc({ family });
}

/**
 * For a read's `.catch`: `value` for a record that does not read (counted under `family` by
 * countUnreadable; not counted without one: the caller counts), any other error (Redis unavailable)
 * thrown again, so a list or a board fails rather than answering a partial one.
 */
export function unreadableAs<T>(value: T, family?: StoredFamily): (err: unknown) => T {
  return (err) => {
    if (!isUnreadableRecord(err)) throw err;
    if (family !== undefined) countUnreadable(err, family);
    return value;
  };
}

/**
 * How long after Redis's clock was read (`writeDeadline`) a create may still be applied. A command
 * written to a Redis that then froze (SIGSTOP, a stalled host) stays in its socket: the API's client
 * rejects it after `commandTimeout` (2000 ms, a 503), and Redis ran it anyway once it went on. A create
 * applied that way left a partner (or an API key) whose secret, shown only in the 201, nobody ever saw;
 * the client's retry got 409. Below the API's commandTimeout: a guarded write Redis runs after the
 * client gave up on it is a no-op.
 */
export const WRITE_DEADLINE_MS = 1000;

/** A guarded write Redis ran after its deadline, and so did not apply (a 503: the retry makes it). */
export class LateWriteError extends Error {
  override name = 'LateWriteError';
  constructor(what: string) {
    super(`${what}: Redis ran the write after its deadline (it stalled); nothing was written`);
  }
}

const REDIS_NOW_MS_LUA = `local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Redis's clock (TIME) in ms since the epoch, converted in one place (REDIS_NOW_MS_LUA). With `key`,
 * read in that key's slot (on a Cluster, the node that serves it); without, on any node.
 */
export async function redisNowMs(client: RedisClient, key?: string): Promise<number> {
  return Number(key === undefined ? await client.eval(REDIS_NOW_MS_LUA, 0) : await client.eval(REDIS_NOW_MS_LUA, 1, key));
}

/**
 * The deadline (Redis ms) for a guarded write of `key`: Redis's own clock, read in `key`'s slot (on a
 * Cluster, the node that will run the write), plus WRITE_DEADLINE_MS. The write's script starts with
 * LATE_WRITE_LUA. The write is sent after this read returned, so it times out in the client no earlier
 * than this read + commandTimeout: past the deadline.
 */
export async function writeDeadline(redis: RedisClient, key: string): Promise<number> {
  return (await redisNowMs(redis, key)) + WRITE_DEADLINE_MS;
}

/** A script's first line: returns -1 (no write) when Redis's clock is past `deadline` (an ARGV, from writeDeadline). */
export function lateWriteLua(deadline: string): string {
  return `do local t = redis.call('TIME') if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(${deadline}) then return -1 end end`;
}
