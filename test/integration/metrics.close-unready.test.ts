/**
 * Closing the API while the connections of its metrics' queue handles (the reconcile and scheduler
 * queues) never got ready — Redis refuses them (maxclients here; unreachable from the start or at the
 * wrong moment elsewhere). The metrics' close waited for those connections to be ready before
 * closing their queues, and only the runtime's close, after it, ends the connections: the close
 * never ended (an afterAll that timed out). Real redis-server; maxclients lets the service's own two
 * connections in and refuses every later one.
 */
import type { Redis } from 'ioredis';
import { startService, type TestService } from '../helpers/service.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
let admin: Redis;
let svc: TestService | undefined;
let closing: Promise<void> | undefined;

beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client() as Redis;
}, 30_000);
afterAll(async () => {
  await admin.config('SET', 'maxclients', '10000');
  await (closing ?? svc?.close());
  admin.disconnect();
  await redis.destroy();
});

test('the API closes within 5 s while the connections of its metrics queue handles are refused', async () => {
  const clients = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1]);
  // This connection, the service's command client and its BullMQ producer connection: no more.
  await admin.config('SET', 'maxclients', String(clients + 2));
  svc = await startService({ redis });
  expect(Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1])).toBe(clients + 2);
  const t0 = Date.now();
  closing = svc.close();
  const ended = await Promise.race([closing.then(() => 'closed'), new Promise<string>((r) => setTimeout(() => r('still closing'), 5_000))]);
  expect({ ended, ms: Date.now() - t0 < 5_000 }).toEqual({ ended: 'closed', ms: true });
}, 60_000);
