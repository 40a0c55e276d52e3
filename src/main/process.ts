/**
 * Starting and stopping the roles. Shutdown on SIGTERM/SIGINT: stop accepting HTTP, let workers
 * finish (or hand back) their active jobs, close Redis — within SHUTDOWN_TIMEOUT_MS (close-with-grace).
 */
import type { Worker } from 'bullmq';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { loadConfig, ConfigError, type Config } from '../config/config.js';
import { buildApp } from '../api/app.js';
import { startSyncWorkers } from '../mirror/sync.worker.js';
import { startDeliveryWorker } from '../outbound/delivery.worker.js';
import { startAttributionWorker } from '../attribution/attribution.worker.js';
import { SweepService } from '../mirror/sweep.service.js';
import { OrderEventSweep } from '../attribution/order-event.sweep.js';
import { startReconcileWorker } from '../reconcile/reconcile.worker.js';
import { RedisUnavailableError } from '../store/embedded-redis.js';
import { createRuntime, type Runtime } from './runtime.js';
import { startScheduler, type SchedulerHandle } from './scheduler.js';

export type Role = 'api' | 'worker' | 'scheduler';

export interface Started {
  runtime: Runtime;
  app?: FastifyInstance;
  url?: string;
  workers: Worker[];
  scheduler?: SchedulerHandle;
  stop(): Promise<void>;
}

export async function startRoles(roles: Role[], config: Config, opts: { logger?: boolean } = {}): Promise<Started> {
  // A process that serves HTTP gets the fail-fast command client whatever other roles share it: a
  // request must be answered 503 while Redis is down, not queued until it is back (CONTRACT §3). Its
  // workers' own commands then fail fast too and BullMQ retries the job; the BullMQ workers keep
  // their blocking connections (`bullConnection('worker')`, maxRetriesPerRequest: null).
  const rt = await createRuntime(config, roles.includes('api') ? 'api' : 'worker');
  const started: Started = { runtime: rt, workers: [], stop: async () => undefined };
  if (roles.includes('worker')) {
    started.workers = startSyncWorkers(rt.syncService, {
      connection: rt.bullConnection('worker'),
      keys: rt.keys,
      shards: config.syncShards,
      concurrency: config.workerConcurrency,
      lockMs: config.workerLockMs,
      log: rt.log.child({ module: 'sync-worker' }),
    });
    started.workers.push(
      startAttributionWorker(rt.attribution, {
        connection: rt.bullConnection('worker'),
        keys: rt.keys,
        concurrency: config.workerConcurrency,
        lockMs: config.workerLockMs,
        log: rt.log.child({ module: 'attribution-worker' }),
        orderEvents: rt.orderEvents,
      }),
    );
  }
  if (roles.includes('worker')) {
    started.workers.push(
      startDeliveryWorker(rt.delivery, { connection: rt.bullConnection('worker'), keys: rt.keys, concurrency: config.outboundConcurrency, lockDurationMs: config.workerLockMs, log: rt.log.child({ module: 'delivery-worker' }) }),
      startReconcileWorker(rt.reconcile, { connection: rt.bullConnection('worker'), keys: rt.keys, log: rt.log.child({ module: 'reconcile-worker' }) }),
    );
  }
  if (roles.includes('scheduler')) {
    const sweep = new SweepService(rt.shows, rt.partners, rt.syncProducer, rt.log.child({ module: 'sweep' }), config.sweepPageSize);
    started.scheduler = await startScheduler({
      connection: () => rt.bullConnection('worker'),
      keys: rt.keys,
      sweep,
      orderSweep: new OrderEventSweep(rt.orderEvents, rt.attribution, rt.log.child({ module: 'order-sweep' }), { graceMs: config.pendingOrderGraceMs, pageSize: config.sweepPageSize }),
      sweepIntervalMs: config.sweepIntervalMs,
      log: rt.log,
      reconcile: { partners: rt.partners, service: rt.reconcile },
    });
  }
  if (roles.includes('api')) {
    const app = await buildApp(rt, { logger: opts.logger ?? true });
    started.url = await app.listen({ port: config.port, host: config.host });
    started.app = app;
  }
  started.stop = async () => {
    await started.app?.close();
    await Promise.all(started.workers.map((w) => w.close()));
    await started.scheduler?.close();
    await rt.close();
    await rt.redisInfo.stop();
  };
  return started;
}

/** Entry for a process: load config, start the roles, wire signals. Exit 1 with a clear message on bad config or no Redis. */
export async function main(roles: Role[]): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  let started: Started;
  try {
    started = await startRoles(roles, config);
  } catch (err) {
    if (err instanceof RedisUnavailableError) {
      process.stderr.write(`\n${err.message}\n\n`);
      process.exit(1);
    }
    throw err;
  }
  const { runtime } = started;
  runtime.log.info(
    { roles, url: started.url, redis: runtime.redisInfo.source, dataDir: config.dataDir },
    `syndicast started (${roles.join(', ')})${started.url ? ` on ${started.url}` : ''}; redis: ${runtime.redisInfo.source}`,
  );
  closeWithGrace({ delay: config.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err) runtime.log.error({ err }, 'shutting down after an error');
    else runtime.log.info({ signal }, 'shutting down');
    await started.stop();
  });
}
