/**
 * Starting and stopping the roles. Shutdown on SIGTERM/SIGINT: stop accepting HTTP, let workers
 * finish (or hand back) their active jobs, close Redis — within SHUTDOWN_TIMEOUT_MS (close-with-grace).
 */
import type { Worker } from 'bullmq';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { effectiveTimeoutMs, type Config } from '../config/config.js';
import { SyncDispatcher } from '../mirror/sync.dispatcher.js';
import { createRedis, redisRefusesConnections, type RedisClient } from '../store/redis.js';
import { StartupError } from '../store/embedded-redis.js';
import { createRuntime, type Runtime } from './runtime.js';
import { catchStopSignals, REPEATED_SIGNAL_MS, STOP_SIGNALS, type StopSignals } from './stop-signals.js';
import { configOrExit } from './entry.js';
import { throwIfStopped, unlessStopped } from '../lib/startup-stop.js';
import { createLogger } from '../lib/logger.js';
import { FfmpegNotFoundError, ffmpegPath } from '../lib/ffmpeg-path.js';
import type { IngestEdge } from '../relay/ingest.edge.js';
import type { RelayService } from '../relay/relay.service.js';
import type { SchedulerHandle } from './scheduler.js';
import { PLATFORMS } from '../targets/target.adapter.js';
import { CLOSE_WAIT_MS, closeQueue } from '../queues/close-queue.js';

/**
 * `edge`: the RTMP ingest edge alone (part of `relay` unless RELAY_EDGE=none; tests run it apart).
 * `dispatch`: the sync dispatcher alone (part of `worker`; the test harness and the benchmarks run it
 * beside an API without sync workers).
 */
export type Role = 'api' | 'worker' | 'scheduler' | 'relay' | 'edge' | 'dispatch';

export interface Started {
  runtime: Runtime;
  app?: FastifyInstance;
  url?: string;
  workers: Worker[];
  scheduler?: SchedulerHandle;
  /** The sync dispatcher (roles `worker` and `dispatch`). */
  dispatcher?: SyncDispatcher;
  edge?: IngestEdge;
  relay?: RelayService;
  /** Worker / scheduler processes with METRICS_PORT: where their /metrics is served. */
  metricsUrl?: string;
  /**
   * `exiting`: the process exits right after (main's shutdown): waits for Redis end once it has been
   * unreachable for REDIS_GONE_MS, leaving what still waits for it behind. Without it (tests, a failed
   * start) everything is closed however long Redis takes. `drainMs` (main's shutdown:
   * SHUTDOWN_DRAIN_MS): the API first drains this long (app.drain()) before it closes.
   */
  stop(opts?: { exiting?: boolean; drainMs?: number }): Promise<void>;
}

/**
 * A port this process could not listen on, as the paragraph main() prints (exit 1) naming the setting
 * to change; null for an error that is not about the setting (a bug: it keeps its stack).
 */
export function listenFailure(
  err: unknown,
  what: { setting: 'PORT' | 'RELAY_RTMP_PORT' | 'METRICS_PORT' | 'SIM_PORT' | 'SIM_RTMP_PORT'; port: number; host: string; serves: string; hostSetting?: 'HOST' | 'SIM_HOST'; who?: string },
): StartupError | null {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const HOST = what.hostSetting ?? 'HOST';
  const where = `${HOST}=${what.host} ${what.setting}=${what.port}`;
  const head = `${what.who ?? 'Syndicast'} cannot listen on ${where} (${what.serves})`;
  switch (code) {
    case 'EADDRINUSE':
      return new StartupError(
        `${head}: port ${what.port} is already in use on ${what.host} (${code}), by another Syndicast or another program. ` +
          `Stop that program, or set ${what.setting} to a free port (${what.setting}=0 takes any free one).`,
      );
    case 'EACCES':
      return new StartupError(
        `${head}: this user may not listen on port ${what.port} (${code}; ports below 1024 need privileges). Set ${what.setting} to a port above 1023.`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return new StartupError(
        `${head}: ${HOST}=${what.host} is neither an IP address nor a name that resolves (${code}). ` +
          `Set ${HOST} to an address of this machine: 127.0.0.1 (this machine only), 0.0.0.0 (every interface, containers) or :: (IPv6).`,
      );
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
    case 'EINVAL':
      return new StartupError(
        `${head}: ${HOST}=${what.host} is not an address of this machine (${code}). ` +
          `Set ${HOST} to an address of this machine: 127.0.0.1 (this machine only), 0.0.0.0 (every interface, containers) or :: (IPv6).`,
      );
    default:
      return null;
  }
}

async function listening<T>(listen: Promise<T>, what: Parameters<typeof listenFailure>[1]): Promise<T> {
  try {
    return await listen;
  } catch (err) {
    throw listenFailure(err, what) ?? err;
  }
}

/** Shutdown stops waiting for Redis once it has been unreachable this long (see started.stop). */
export const REDIS_GONE_MS = 1_000;

/**
 * Resolves once Redis has not been reachable (connection not ready), or has had no answer to a PING,
 * for REDIS_GONE_MS (checked every 100 ms). A frozen Redis (its process stopped, a paused VM or
 * container) keeps its connections open and the clients `ready`: by status alone the shutdown waited
 * for it until SHUTDOWN_TIMEOUT_MS. A PING is sent while none is outstanding; a Redis that answers it
 * within REDIS_GONE_MS is there, however long the shutdown's own commands take (a worker finishing its
 * job). The PINGs go on a connection of their own (a duplicate of `shared`, disconnected by cancel()):
 * on the shared one they queued behind its other commands (ReplicaAck's `WAIT`, up to
 * REDIS_WAIT_TIMEOUT_MS; a request's slow command), and a healthy Redis counted as gone (relay children
 * killed, workers not waited for).
 */
export function untilRedisGone(shared: RedisClient): { promise: Promise<void>; cancel(): void } {
  const client = shared.duplicate();
  client.on('error', () => undefined); // an unreachable Redis is what this watches for, not an error to report
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    let downSince: number | undefined;
    let answeredAt = Date.now();
    let pinging = false;
    let tickAt = Date.now();
    timer = setInterval(() => {
      // A tick this late means a blocked event loop: a PONG may be waiting unread (timers run before I/O).
      const late = Date.now() - tickAt > 500;
      tickAt = Date.now();
      // 'end' is the runtime's own QUIT at the close's end: not an outage.
      if (client.status === 'end') downSince = undefined;
      else if (client.status !== 'ready') downSince ??= Date.now();
      else {
        // (Ready again after an outage: its PING starts the count anew.)
        if (downSince !== undefined) answeredAt = Date.now();
        downSince = undefined;
        if (!pinging) {
          pinging = true;
          client.ping().then(
            () => {
              pinging = false;
              answeredAt = Date.now();
            },
            () => (pinging = false), // timed out or dropped: no answer
          );
        }
        if (!late && answeredAt <= Date.now() - REDIS_GONE_MS) resolve();
      }
      if (downSince !== undefined && downSince <= Date.now() - REDIS_GONE_MS) resolve();
    }, 100);
  });
  return {
    promise,
    cancel: () => {
      clearInterval(timer);
      client.disconnect();
    },
  };
}

/** After the drain (SHUTDOWN_DRAIN_MS > 0): how long every request is answered 503 before the API stops listening. */
export const REFUSE_MS = 500;
/** Then: how long connections accepted last have to deliver their request before the idle ones are closed. */
export const CLOSE_SETTLE_MS = 200;

/**
 * How long app.close() waits for the requests still open before it cuts their connections: at most
 * APP_CLOSE_GRACE_MS, and a quarter of SHUTDOWN_TIMEOUT_MS when that is shorter. An answer takes
 * milliseconds; what is still open after that is a client that does not finish sending its request
 * (one header line every few seconds: a slow client or a slowloris) or a handler that hangs. app.close()
 * waited for those without bound: one such connection held every SIGTERM for all of SHUTDOWN_TIMEOUT_MS,
 * the workers never got to hand their jobs back, and the process was killed with exit 1.
 */
export const APP_CLOSE_GRACE_MS = 5_000;
export function appCloseGraceMs(shutdownTimeoutMs: number): number {
  return Math.min(APP_CLOSE_GRACE_MS, Math.floor(shutdownTimeoutMs / 4));
}

/** app.close(), with the connections still open after `graceMs` destroyed (closeAllConnections) so that it ends. */
async function closeApp(app: FastifyInstance, graceMs: number): Promise<void> {
  const cut = setTimeout(() => {
    app.log.warn({ graceMs }, 'shutdown: closing the HTTP connections whose requests did not finish in time');
    app.server.closeAllConnections();
  }, graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

/** A sync run this long makes its target slow (src/mirror/target-cap.ts): half its platform's timeout. */
function halfOf(timeoutMs: number): number {
  return Math.max(1, Math.floor(timeoutMs / 2));
}

/** How long a start that failed part-way may take to close what it had opened before the error is reported. */
const FAILED_START_CLOSE_MS = 10_000;

/**
 * `log`: the process's logger (else the runtime makes one). `stop`: aborted by a stop signal, the start
 * gives up (StartupStopped) at its next step or wait, after closing what it had started.
 */
export async function startRoles(roles: Role[], config: Config, opts: { logger?: boolean; log?: Logger; stop?: AbortSignal } = {}): Promise<Started> {
  // A process that serves HTTP gets the fail-fast command client whatever other roles share it: a
  // request must be answered 503 while Redis is down, not queued until it is back (the external contract §3). Its
  // workers' own commands then fail fast too and BullMQ retries the job; the BullMQ workers keep
  // their blocking connections (`bullConnection('worker')`, maxRetriesPerRequest: null).
  const rt = await createRuntime(config, roles.includes('api') ? 'api' : 'worker', { log: opts.log, stop: opts.stop });
  let metricsServer: { url: string; close(): Promise<void> } | undefined;
  const started: Started = {
    runtime: rt,
    workers: [],
    stop: async ({ exiting = false, drainMs = 0 } = {}) => {
      // The API first stops being ready and keeps serving for drainMs, every answer with `Connection:
      // close`: closed at once, its keep-alive connections were destroyed while their clients were
      // sending the next request (ECONNRESET on every rolling deploy). The rest below runs meanwhile.
      let drained: Promise<void> = Promise.resolve();
      if (started.app && drainMs > 0) {
        started.app.drain();
        drained = new Promise((r) => setTimeout(r, drainMs));
      }
      // The relay's close, the workers finishing or handing back their jobs, the dispatcher, the queues
      // and QUIT wait for Redis. While Redis is down none of it can finish (a worker connection's
      // commands wait in its offline queue), and the process sat out all of SHUTDOWN_TIMEOUT_MS and
      // exited 1, past Docker's 10 s grace. Once Redis has been unreachable for REDIS_GONE_MS those
      // waits end: nothing acknowledged is in this process (an event is acknowledged once stored), the
      // jobs it still held are taken over as stalled after WORKER_LOCK_MS (their intents repeat no
      // side effect), and its relay leases expire after RELAY_LEASE_MS.
      const gone = exiting ? untilRedisGone(rt.redis) : { promise: new Promise<void>(() => undefined), cancel: () => undefined };
      // ffmpeg children first: none may outlive this process.
      const relay = started.relay;
      // (LOG_LEVEL=debug: each step as it begins, so that a shutdown that does not end shows what it waits on.)
      rt.log.debug('shutdown: closing the relay');
      if (relay && !(await Promise.race([relay.close().then(() => true), gone.promise.then(() => false)]))) await relay.stopChildren();
      rt.log.debug('shutdown: closing the edge');
      await started.edge?.close();
      await metricsServer?.close();
      await drained;
      if (started.app && drainMs > 0) {
        // Then 503 + Retry-After for REFUSE_MS while still listening: clients still coming straight here
        // (no load balancer) back off instead of sitting in the accept queue when it closes (the kernel
        // resets those). Then no new connection; those accepted last deliver their requests and get the
        // 503 before app.close() closes the connections left idle.
        started.app.refuse();
        await new Promise((r) => setTimeout(r, REFUSE_MS));
        started.app.stopListening();
        await new Promise((r) => setTimeout(r, CLOSE_SETTLE_MS));
      }
      rt.log.debug('shutdown: closing the API');
      if (started.app) await closeApp(started.app, appCloseGraceMs(config.shutdownTimeoutMs));
      const done = await Promise.race([
        (async () => {
          rt.log.debug('shutdown: closing the dispatcher');
          await started.dispatcher?.close();
          rt.log.debug('shutdown: closing the workers');
          await Promise.all(started.workers.map((w) => closeQueue(w, CLOSE_WAIT_MS, false))); // a close waits for its running jobs
          rt.log.debug('shutdown: closing the scheduler');
          await started.scheduler?.close();
          rt.log.debug('shutdown: closing the runtime');
          await rt.close();
          return true;
        })(),
        gone.promise.then(() => false),
      ]);
      gone.cancel();
      if (!done) {
        rt.log.warn({ workerLockMs: config.workerLockMs }, 'shutting down while Redis is unreachable: not waiting for it; jobs still held are taken over as stalled jobs');
        rt.closeNow();
      }
      await rt.redisInfo.stop();
    },
  };
  try {
    await startRolesOn(started, roles, config, opts, (s) => (metricsServer = s));
  } catch (err) {
    // Whatever started before the failure stops (workers hand back their jobs, the redis-server this
    // process spawned is stopped rather than left running), within a bound: the error is what matters.
    // Given up on a stop signal, the process exits right after: an unreachable Redis is not waited for.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      started.stop({ exiting: opts.stop?.aborted ?? false }).catch((e: unknown) => rt.log.warn({ err: e }, 'could not close everything after a failed start')),
      new Promise((r) => (timer = setTimeout(r, FAILED_START_CLOSE_MS))),
    ]);
    clearTimeout(timer);
    throw err;
  }
  return started;
}

/**
 * The modules only some roles run, imported when the roles start rather than with this module: a worker,
 * relay or scheduler process does not load fastify and the routes (about a fifth of the module graph),
 * an API process not the relay and the workers, and a start that fails before its roles run (Redis,
 * DATA_DIR) says so without loading them (the test suite's in-process services and child processes
 * paid for all of it each time). All are loaded at once, before the first port is bound: nothing
 * loads (event loop blocked while a module evaluates) once the API answers.
 */
async function roleModules(roles: Role[], config: Config) {
  const when = <T>(on: boolean, load: () => Promise<T>): Promise<T | undefined> => (on ? load() : Promise.resolve(undefined));
  const [edge, api, metrics, worker, scheduler, relay] = await Promise.all([
    when(embeddedEdge(roles, config), () => import('../relay/ingest.edge.js')),
    when(roles.includes('api'), () => import('../api/app.js')),
    when(!roles.includes('api') && config.metricsPort !== undefined, () => import('../lib/metrics.js')),
    when(roles.includes('worker'), async () => {
      const [sync, cap, runs, attribution, delivery, reconcile] = await Promise.all([
        import('../mirror/sync.worker.js'),
        import('../mirror/target-cap.js'),
        import('../store/target-runs.repository.js'),
        import('../attribution/attribution.worker.js'),
        import('../outbound/delivery.worker.js'),
        import('../reconcile/reconcile.worker.js'),
      ]);
      return { ...sync, ...cap, ...runs, ...attribution, ...delivery, ...reconcile };
    }),
    when(roles.includes('scheduler'), async () => {
      const [scheduler, sweep, orderSweep] = await Promise.all([import('./scheduler.js'), import('../mirror/sweep.service.js'), import('../attribution/order-event.sweep.js')]);
      return { ...scheduler, ...sweep, ...orderSweep };
    }),
    when(roles.includes('relay'), async () => {
      const [relay, updated] = await Promise.all([import('../relay/relay.service.js'), import('../outbound/mirror-updated.js')]);
      return { ...relay, ...updated };
    }),
  ]);
  return { edge, api, metrics, worker, scheduler, relay };
}

/** Whether this process runs the embedded RTMP ingest edge. */
function embeddedEdge(roles: Role[], config: Config): boolean {
  return roles.includes('edge') || (roles.includes('relay') && config.relayEdge === 'embedded');
}

/**
 * The roles on a runtime. Ports are bound first (edge, API, metrics): a port in use or a HOST that
 * cannot be bound stops the start before any worker, dispatcher, scheduler or relay has run. Before
 * them, the relay's ffmpeg is found: its probe (`ffmpeg -version`, spawnSync) blocks the event loop,
 * and run once the API listened it held the requests that came right after /health/ready said 200
 * (seconds for a cold binary on a loaded machine: the API client's command timed out and a healthy
 * Redis was a 503).
 */
async function startRolesOn(
  started: Started,
  roles: Role[],
  config: Config,
  opts: { logger?: boolean; stop?: AbortSignal },
  setMetricsServer: (s: { url: string; close(): Promise<void> }) => void,
): Promise<void> {
  const rt = started.runtime;
  const step = (): void => throwIfStopped(opts.stop);
  step();
  const ffmpeg = roles.includes('relay') ? ffmpegPath(config.ffmpegPath) : undefined;
  const m = await roleModules(roles, config);
  step();
  if (m.edge) {
    const { EDGE_PLAY_LABEL, startIngestEdge } = m.edge;
    started.edge = await listening(
      startIngestEdge({
        port: config.relayRtmpPort,
        host: config.host,
        relay: rt.relay,
        shows: rt.shows,
        log: rt.log.child({ module: 'ingest-edge' }),
        internalUrl: config.relayEdgeInternalUrl,
        sourceTtlMs: config.relaySourceTtlMs,
        pendingPerAddress: config.relayRtmpPendingPerAddress,
        playKeys: rt.box.derivedKeys(EDGE_PLAY_LABEL),
        // This process's relay starts the show's readers at once (it starts none before a publish).
        onSource: (show) => started.relay?.wake(show),
      }),
      { setting: 'RELAY_RTMP_PORT', port: config.relayRtmpPort, host: config.host, serves: 'the RTMP ingest edge of the video relay' },
    );
    rt.setRelayEdgePort(started.edge.port);
  }
  if (m.api) {
    step();
    const app = await m.api.buildApp(rt, { logger: opts.logger ?? true });
    started.app = app;
    step();
    started.url = await listening(app.listen({ port: config.port, host: config.host }), { setting: 'PORT', port: config.port, host: config.host, serves: 'the HTTP API' });
    const bound = app.server.address();
    if (bound && typeof bound === 'object') rt.setApiPort(bound.port);
  }
  if (m.metrics && config.metricsPort !== undefined) {
    step();
    const metricsServer = await listening(m.metrics.serveProcessMetrics(config.host, config.metricsPort, { idleMs: config.httpIdleTimeoutMs, requestMs: config.httpRequestTimeoutMs }), {
      setting: 'METRICS_PORT',
      port: config.metricsPort,
      host: config.host,
      serves: "this process's /metrics",
    });
    setMetricsServer(metricsServer);
    started.metricsUrl = metricsServer.url;
  }
  step();
  if (m.worker) {
    const { startSyncWorkers, TargetRunCap, TargetRunRepository, startAttributionWorker } = m.worker;
    // SYNC_TARGET_CONCURRENCY (unset: half a queue's slots, at least 1; 0: no cap).
    const targetCap = config.syncTargetConcurrency ?? Math.max(1, Math.floor(config.workerConcurrency / 2));
    started.workers = startSyncWorkers(rt.syncService, {
      ...(targetCap > 0
        ? {
            cap: new TargetRunCap(
              new TargetRunRepository(rt.redis, rt.keys),
              // Slow: a run took half its platform's effective timeout.
              {
                cap: targetCap,
                leaseMs: config.workerLockMs,
                slowMs: halfOf(config.platformTimeoutMs),
                platformSlowMs: Object.fromEntries(PLATFORMS.map((p) => [p, halfOf(effectiveTimeoutMs(p, config.platformTimeoutMs, config.platformTimeoutsMs))])),
              },
              rt.log.child({ module: 'sync-worker' }),
            ),
          }
        : {}),
      connection: rt.bullConnection('worker'),
      keys: rt.keys,
      shards: config.syncShards,
      concurrency: config.workerConcurrency,
      lockMs: config.workerLockMs,
      refusedRetryMs: config.redisRefusedRetryMs,
      log: rt.log.child({ module: 'sync-worker' }),
      onRun: async (job, outcome, durationMs, error) => {
        await rt.activity
          .append(job.partnerId, job.showId, { kind: 'sync', targetId: job.targetId, outcome, durationMs, ...(error ? { error } : {}) })
          .catch((err: unknown) => rt.log.warn({ err, ...job }, 'could not record a sync run'));
      },
    });
    started.workers.push(
      startAttributionWorker(rt.attribution, {
        connection: rt.bullConnection('worker'),
        keys: rt.keys,
        concurrency: config.workerConcurrency,
        lockMs: config.workerLockMs,
        refusedRetryMs: config.redisRefusedRetryMs,
        log: rt.log.child({ module: 'attribution-worker' }),
        orderEvents: rt.orderEvents,
      }),
    );
  }
  if (roles.includes('worker') || roles.includes('dispatch')) {
    // Its own blocking connection, which it closes itself (not one of the runtime's).
    const dispatchRedis = createRedis({ url: rt.redisInfo.url || undefined, clusterNodes: config.redisClusterNodes }, 'worker', 'syndicast-dispatch');
    dispatchRedis.on('error', () => undefined); // the dispatcher logs its failed calls and retries
    started.dispatcher = new SyncDispatcher({
      redis: dispatchRedis,
      keys: rt.keys,
      partners: rt.partners,
      producer: rt.syncProducer,
      log: rt.log.child({ module: 'sync-dispatch' }),
      reclaimMs: config.dispatchReclaimMs,
    });
    started.dispatcher.start();
  }
  if (m.worker) {
    const { startDeliveryWorker, startReconcileWorker } = m.worker;
    started.workers.push(
      startDeliveryWorker(rt.delivery, { connection: rt.bullConnection('worker'), keys: rt.keys, concurrency: config.outboundConcurrency, lockDurationMs: config.workerLockMs, attemptTimeoutMs: config.outboundTimeoutMs, refusedRetryMs: config.redisRefusedRetryMs, log: rt.log.child({ module: 'delivery-worker' }) }),
      startReconcileWorker(rt.reconcile, { connection: rt.bullConnection('worker'), keys: rt.keys, refusedRetryMs: config.redisRefusedRetryMs, log: rt.log.child({ module: 'reconcile-worker' }) }),
    );
  }
  step();
  if (m.scheduler) {
    const { startScheduler, SweepService, OrderEventSweep } = m.scheduler;
    const sweep = new SweepService(rt.shows, rt.partners, rt.syncProducer, rt.log.child({ module: 'sweep' }), config.sweepPageSize, rt.box.keyring);
    started.scheduler = await unlessStopped(startScheduler({
      connection: () => rt.bullConnection('worker'),
      keys: rt.keys,
      sweep,
      orderSweep: new OrderEventSweep(rt.orderEvents, rt.attribution, rt.log.child({ module: 'order-sweep' }), { graceMs: config.pendingOrderGraceMs, pageSize: config.sweepPageSize }),
      sweepIntervalMs: config.sweepIntervalMs,
      log: rt.log,
      reconcile: { partners: rt.partners, service: rt.reconcile },
      audit: rt.audit,
      readiness: rt.readiness,
    }), opts.stop);
  }
  step();
  if (m.relay) {
    const { RelayService, relayUpdatedHook } = m.relay;
    const onRelayChange = relayUpdatedHook(rt.outbound);
    const edge = started.edge;
    started.relay = new RelayService({
      relay: rt.relay,
      shows: rt.shows,
      partners: rt.partners,
      box: rt.box,
      destinations: rt.destinations,
      ffmpeg: ffmpeg!,
      log: rt.log.child({ module: 'relay' }),
      leaseMs: config.relayLeaseMs,
      pollMs: config.relayPollMs,
      stallMs: config.relayStallMs,
      startTimeoutMs: config.relayStartTimeoutMs,
      startConcurrency: config.relayStartConcurrency,
      armedReaders: config.relayArmedReaders,
      httpTimeouts: { idleMs: config.httpIdleTimeoutMs, requestMs: config.httpRequestTimeoutMs },
      hlsFetchTimeoutMs: config.relayHlsFetchTimeoutMs,
      sourceTtlMs: config.relaySourceTtlMs,
      edgeUrl: () => edge?.internalUrl ?? config.relayEdgeInternalUrl,
      publisherDataAt: edge ? (input) => edge.publisherDataAt(input) : undefined,
      // A single Redis: while nothing listens at its address, shows keep their readers (renewAll).
      redisRefuses: config.redisClusterNodes || !rt.redisInfo.url ? undefined : () => redisRefusesConnections(rt.redisInfo.url),
      onStateChange: async (partnerId, showId, mirror, status, view) => {
        await onRelayChange(partnerId, showId, mirror, status, view);
        // Video reaches the platform: a mirror waiting for it can go live now, not at its next retry.
        if (status.state === 'sending' && mirror.state === 'ready') await rt.syncProducer.enqueue(mirror.platform, { partnerId, showId, targetId: mirror.targetId });
      },
    });
    started.relay.start();
  }
}

/**
 * Entry for a process: load config, start the roles, wire signals. Exit 1 with a clear message on bad
 * config or no Redis. `stop`: the stop signals, caught by the entry before it loaded this module (else
 * here): a SIGTERM/SIGINT during the start (loading, waiting for Redis, starting the roles) gives the
 * start up, closes what it had opened (a redis-server it spawned is stopped with SIGTERM) and exits 0.
 */
export async function main(roles: Role[], stop: StopSignals = catchStopSignals(), config: Config = configOrExit()): Promise<void> {
  const log = createLogger(config.logLevel);
  // A start given up must end as a shutdown would: within SHUTDOWN_TIMEOUT_MS, else exit 1.
  let giveUpTimer: NodeJS.Timeout | undefined;
  const bound = (): void => {
    giveUpTimer = setTimeout(() => {
      process.stderr.write(`the start did not stop within SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs} ms of ${String(stop.signal.reason)}; killed by timeout\n`);
      process.exit(1);
    }, config.shutdownTimeoutMs);
  };
  if (stop.signal.aborted) bound();
  else stop.signal.addEventListener('abort', bound, { once: true });
  let started: Started;
  try {
    throwIfStopped(stop.signal);
    started = await startRoles(roles, config, { log, stop: stop.signal });
  } catch (err) {
    if (stop.signal.aborted) {
      // Whatever the start was doing failed because it was given up: the stop asked for, not an error.
      log.info({ signal: stop.signal.reason as NodeJS.Signals, roles }, 'stopped during start-up');
      process.exit(0);
    }
    if (err instanceof StartupError || err instanceof FfmpegNotFoundError) {
      process.stderr.write(`\n${err.message}\n\n`);
      process.exit(1);
    }
    throw err;
  }
  stop.signal.removeEventListener('abort', bound);
  clearTimeout(giveUpTimer); // closeWithGrace bounds the shutdown from here on
  const { runtime } = started;
  runtime.log.info(
    { roles, url: started.url, metrics: started.metricsUrl, redis: runtime.redisInfo.source, dataDir: config.dataDir },
    `syndicast started (${roles.join(', ')})${started.url ? ` on ${started.url}` : ''}; redis: ${runtime.redisInfo.source}`,
  );
  let stopSignal: NodeJS.Signals | undefined;
  let closing = false;
  const grace = closeWithGrace({ delay: config.shutdownTimeoutMs, skip: [...STOP_SIGNALS] }, async ({ signal, err }) => {
    closing = true;
    if (err) runtime.log.error({ err }, 'shutting down after an error');
    else runtime.log.info({ signal: signal ?? stopSignal }, 'shutting down');
    await started.stop({ exiting: true, drainMs: config.shutdownDrainMs });
  });
  stop.whenStarted({
    start: (signal) => {
      stopSignal = signal;
      grace.close(); // ends the process: exit 0, or 1 after SHUTDOWN_TIMEOUT_MS
    },
    repeated: (signal) => runtime.log.info({ signal }, `${signal} again within ${REPEATED_SIGNAL_MS} ms of the first: the same stop, delivered twice; still shutting down`),
    closing: () => closing,
  });
}

export { onStopSignals, REPEATED_SIGNAL_MS } from './stop-signals.js';
