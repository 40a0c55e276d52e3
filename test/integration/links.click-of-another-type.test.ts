/**
 * LinkService.findClick (attribution's click lookup) on a click key of another type, on one Redis and on
 * a Redis Cluster (one node holding every slot, in this file whatever the run's topology):
 * - one Redis: MGET answers nil for it as for no key, and the order was booked `unknown_click` for
 *   good; a miss now asks the key's TYPE, and another type is the click's StoredRecordCorruptError;
 * - a Cluster: each master's batch GETs under pcall, and a key that answered an error is read again
 *   through the Cluster client, whose raw WRONGTYPE was retried 12 times; it is the click's
 *   StoredRecordCorruptError too.
 * A missing click is still null, and the other clicks of the same batch still read.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { LinkService } from '../../src/links/link.service.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis, waitForRedis, type RedisClient } from '../../src/store/redis.js';
import { StoredRecordCorruptError } from '../../src/store/stored-record.js';
import { startOneNodeCluster, type OneNodeCluster } from '../helpers/redis-cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let single: TestRedis;
let cluster: OneNodeCluster;
const clients: RedisClient[] = [];
beforeAll(async () => {
  [single, cluster] = await Promise.all([startRedis(), startOneNodeCluster()]);
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([single?.destroy(), cluster?.destroy()]);
});

const keys = new Keys('clk');
const link = { code: 'c1', partnerId: 'p', showId: 's1', targetId: 't1', platform: 'youtube' as const, productId: 'p1', url: 'https://shop.example.com/p1' };

test.each([
  ['one Redis', () => ({ url: single.url })],
  ['a Redis Cluster', () => ({ clusterNodes: cluster.clusterNodes })],
])('on %s a click key of another type is the click\'s StoredRecordCorruptError (never no click, nor a raw WRONGTYPE); a missing click is null, the batch\'s other click reads', async (_where, target) => {
  const redis = createRedis(target(), 'worker', 'clicks-test');
  clients.push(redis);
  await waitForRedis(redis);
  const links = new LinkService(redis, keys, new SecretBox(randomBytes(32).toString('base64')), 'http://localhost');
  const good = await links.recordClick(link, '203.0.113.9');
  const wrong = `clk_wrong${clients.length}`;
  await redis.hset(keys.click(wrong), 'partnerId', 'hand edit');

  // In one batch (one MGET on one Redis, one call per master on a Cluster).
  const [a, b, c] = await Promise.allSettled([links.findClick(good.id), links.findClick(wrong), links.findClick('clk_none')]);
  expect(a).toMatchObject({ status: 'fulfilled', value: { id: good.id, partnerId: 'p' } });
  expect(c).toEqual({ status: 'fulfilled', value: null });
  expect(b.status).toBe('rejected');
  const err = (b as PromiseRejectedResult).reason as unknown;
  expect(err).toBeInstanceOf(StoredRecordCorruptError);
  expect(err).toMatchObject({ family: 'click', id: wrong, key: keys.click(wrong), reason: 'a Redis key of another type' });
}, 30_000);
