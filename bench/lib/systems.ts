/** Starting the systems under test: Syndicast's API and worker roles, and the bare baselines. */
import type { Queue } from 'bullmq';
import type { Runtime } from '../../src/main/runtime.js';
import { startChild, type Child } from './proc.js';
import { youtubeQueues, type ServiceEnv } from './service.js';
import { bareStoreEnv, type BenchStore } from './topology.js';

export type ApiChild = Child<{ url: string }>;

/** Syndicast's API (bench/sut/service-api.ts: createRuntime + buildApp, as the api role). */
export function startServiceApi(se: ServiceEnv, profileDir?: string): Promise<ApiChild> {
  return startChild<{ url: string }>('bench/sut/service-api.ts', { name: 'syndicast-api', env: se.env, ready: 'ipc', profileDir });
}

/**
 * Syndicast's sync dispatcher alone (bench/sut/service-dispatch.ts, the `dispatch` role that every
 * `worker` process runs): for benches that run the API without mirror workers yet expect the
 * accepted events' sync jobs.
 */
export function startServiceDispatcher(se: ServiceEnv, profileDir?: string): Promise<Child> {
  return startChild('bench/sut/service-dispatch.ts', { name: 'syndicast-dispatch', env: se.env, ready: 'ipc', profileDir });
}

async function everyQueueHasWorker(queues: Queue[]): Promise<boolean> {
  const counts = await Promise.all(queues.map((q) => q.getWorkersCount()));
  return counts.every((n) => n > 0);
}

/**
 * Syndicast's mirror workers as production runs them: a separate process, `workers/mirror.ts`
 * (tsx), configured by environment only. Ready when every YouTube sync queue sees a worker.
 */
export function startServiceWorker(se: ServiceEnv, rt: Runtime, profileDir?: string): Promise<Child> {
  const queues = youtubeQueues(rt);
  return startChild('workers/mirror.ts', { name: 'syndicast-worker', env: se.env, ready: () => everyQueueHasWorker(queues), profileDir });
}

export interface BareApiOptions {
  redisUrl: string;
  /** Run on this store's topology (a cluster: BARE_REDIS_CLUSTER_NODES); `redisUrl` otherwise. */
  store?: BenchStore;
  secret: string;
  queue: string;
  prefix: string;
}

export function startBareApi(o: BareApiOptions, profileDir?: string, nodeArgs?: readonly string[]): Promise<ApiChild> {
  return startChild<{ url: string }>('bench/sut/bare-api.ts', {
    name: 'bare-api',
    env: { ...(o.store ? bareStoreEnv(o.store) : { BARE_REDIS_URL: o.redisUrl }), BARE_SECRET: o.secret, BARE_QUEUE: o.queue, BARE_PREFIX: o.prefix },
    ready: 'ipc',
    profileDir,
    nodeArgs,
  });
}

export interface BareWorkerOptions {
  redisUrl: string;
  /** Run on this store's topology (a cluster: BARE_REDIS_CLUSTER_NODES); `redisUrl` otherwise. */
  store?: BenchStore;
  queues: string[];
  prefix: string;
  concurrency: number;
  mode: 'noop' | 'chat';
  simBase?: string;
  chats?: Record<string, string>;
}

export function startBareWorker(o: BareWorkerOptions, profileDir?: string): Promise<Child> {
  return startChild('bench/sut/bare-worker.ts', {
    name: `bare-worker-${o.mode}`,
    env: {
      ...(o.store ? bareStoreEnv(o.store) : { BARE_REDIS_URL: o.redisUrl }),
      BARE_QUEUES: o.queues.join(','),
      BARE_PREFIX: o.prefix,
      BARE_CONCURRENCY: String(o.concurrency),
      BARE_MODE: o.mode,
      ...(o.simBase ? { BARE_SIM_URL: o.simBase } : {}),
      ...(o.chats ? { BARE_CHATS: JSON.stringify(o.chats) } : {}),
    },
    ready: 'ipc',
    profileDir,
  });
}

/** Jobs not finished yet (waiting, paused, prioritized, delayed or running). */
export async function pendingJobs(queues: Queue[]): Promise<number> {
  const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'paused', 'prioritized', 'delayed', 'active', 'waiting-children')));
  return counts.reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);
}

/** Jobs waiting to be picked up (the queue may be paused). */
export async function queuedJobs(queues: Queue[]): Promise<number> {
  const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'paused', 'prioritized')));
  return counts.reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);
}
