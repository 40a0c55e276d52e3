/**
 * A sync dispatcher process that reads dispatch entries and then never gets its jobs added (its
 * producer hangs): it prints `read <n>` once it holds entries unacknowledged, so a test can SIGKILL
 * it right there — the crash between "event marked" and "jobs exist" (test/integration/sync.dispatch.test.ts).
 * Configured by the same environment as the service (REDIS_URL or REDIS_CLUSTER_NODES, KEY_PREFIX).
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { SecretBox } from '../../src/lib/crypto.js';
import { SyncDispatcher } from '../../src/mirror/sync.dispatcher.js';
import { Keys } from '../../src/store/keys.js';
import { PartnerRepository } from '../../src/store/partner.repository.js';
import { createRedis, waitForRedis } from '../../src/store/redis.js';

const config = loadConfig(process.env, '/nonexistent');
const redis = createRedis({ url: config.redisUrl, clusterNodes: config.redisClusterNodes }, 'worker', 'dispatch-stuck');
await waitForRedis(redis);
const keys = new Keys(config.keyPrefix);
const dispatcher = new SyncDispatcher({
  redis,
  keys,
  partners: new PartnerRepository(redis, keys, new SecretBox(randomBytes(32).toString('base64'))),
  producer: {
    enqueueBulk: (jobs) => {
      process.stdout.write(`read ${jobs.length}\n`);
      return new Promise<void>(() => undefined); // never: the process is killed while it waits here
    },
  },
  log: pino({ level: 'silent' }),
  reclaimMs: config.dispatchReclaimMs,
});
dispatcher.start();
