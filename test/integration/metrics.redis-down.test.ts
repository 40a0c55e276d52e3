/**
 * /metrics while Redis is down: the gauges read from Redis at scrape time (mirrors, pins, outbound
 * endpoints; queue depths already were) are absent — unknown — rather than 0, which reads as "no failed
 * mirror, no disabled endpoint" and resolves the alerts on them for as long as the outage lasts;
 * `syndicast_redis_up` says 0, and the exposition stays promtool-clean. Real redis-server, stopped and
 * started again under the running service. With it, creates under a frozen Redis (SIGSTOP): their 503
 * must not turn into a partner or key, secret never seen, when Redis goes on (the retry got 409).
 */
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { newMirror } from '../../src/domain/mirror.js';
import { CREATE_LUA, SET_RECORD_LUA } from '../../src/store/apikey.repository.js';
import { writeDeadline } from '../../src/store/redis.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  const secret = await createPartner(svc, 'pm');
  expect((await svc.api('/v1/partners/pm/targets?verify=false', { json: { id: 'pm-wn', platform: 'whatnot', name: 'WN', credentials: { accessToken: 'a' }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 100 } })).status).toBe(201);
  expect((await sendEvent(svc, 'pm', secret, showEvent('show.scheduled', sampleShow('s1', { scheduledAt: new Date(Date.now() + 3_600_000).toISOString() }), new Date().toISOString()))).status).toBe(202);
  await svc.rt.shows.saveMirror('pm', 's1', { ...newMirror('pm-wn', 'whatnot'), state: 'failed', lastError: 'whatnot: refused' });
});
afterAll(async () => {
  await svc?.close();
});

const scrape = async (): Promise<string> => {
  const r = await fetch(`${svc.url}/metrics`);
  expect(r.status).toBe(200);
  return r.text();
};
const samples = (text: string, family: string): string[] => text.split('\n').filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family} `));

test('Redis down: mirrors, pins and endpoints are absent from /metrics, not 0; back once Redis is', async () => {
  expect(samples(await scrape(), 'syndicast_mirrors')).toContain('syndicast_mirrors{platform="whatnot",state="failed"} 1');
  await svc.redis.stop();
  try {
    const down = await scrape();
    expect(samples(down, 'syndicast_redis_up')).toEqual(['syndicast_redis_up 0']);
    for (const family of ['syndicast_mirrors', 'syndicast_pins', 'syndicast_outbound_endpoints', 'syndicast_queue_jobs']) expect([family, samples(down, family)]).toEqual([family, []]);
    execFileSync('promtool', ['check', 'metrics'], { input: down });
  } finally {
    await svc.redis.start();
  }
  let up = '';
  for (let i = 0; i < 50 && !up.includes('state="failed"} 1'); i++) {
    up = await scrape();
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(samples(up, 'syndicast_mirrors')).toContain('syndicast_mirrors{platform="whatnot",state="failed"} 1');
  expect(samples(up, 'syndicast_outbound_endpoints')).toEqual(['syndicast_outbound_endpoints{state="enabled"} 0', 'syndicast_outbound_endpoints{state="disabled"} 0']);
});

test('Redis frozen (accepts connections, answers nothing): /metrics still answers within a scrape timeout, redis_up 0', async () => {
  const c = new Redis(svc.redis.url);
  const pid = Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
  c.disconnect();
  expect(pid).toBeGreaterThan(0);
  process.kill(pid, 'SIGSTOP');
  try {
    // Prometheus' default scrape_timeout is 10 s: an answer after that is a failed scrape, and the one
    // series that says Redis is the problem (redis_up 0) is never seen. The queue depths were read
    // through BullMQ's connections, which have no command timeout: the scrape waited for Redis.
    const started = Date.now();
    const r = await fetch(`${svc.url}/metrics`, { signal: AbortSignal.timeout(8_000) });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(samples(text, 'syndicast_redis_up')).toEqual(['syndicast_redis_up 0']);
    expect(samples(text, 'syndicast_queue_jobs')).toEqual([]);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}, 30_000);

test('Redis frozen during a create: 503, and the retry after Redis resumes gets a usable answer (the late write was a no-op)', async () => {
  const c = new Redis(svc.redis.url);
  const pid = Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
  expect(pid).toBeGreaterThan(0);
  const partner = { id: 'pm-frozen', name: 'Frozen' };
  const key = { role: 'viewer', name: 'frozen viewer' };
  const keysBefore = ((await (await svc.api('/v1/api-keys')).json()) as { keys: unknown[] }).keys.length;
  process.kill(pid, 'SIGSTOP');
  try {
    const [p, k] = await Promise.all([svc.api('/v1/partners', { json: partner }), svc.api('/v1/api-keys', { json: key })]);
    expect([p.status, k.status]).toEqual([503, 503]);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  // The frozen server now runs what was written to it before the 503s: the creates must not happen.
  await c.ping();
  c.disconnect();
  const retry = await svc.api('/v1/partners', { json: partner });
  expect(retry.status).toBe(201);
  expect(((await retry.json()) as { webhookSecret?: string }).webhookSecret).toMatch(/./);
  const keys = ((await (await svc.api('/v1/api-keys')).json()) as { keys: { name: string | null }[] }).keys;
  // No key whose secret nobody saw: the retry creates the only one.
  expect([keys.length - keysBefore, keys.filter((x) => x.name === key.name).length]).toEqual([0, 0]);
  expect((await svc.api('/v1/api-keys', { json: key })).status).toBe(201);
}, 30_000);

test('Redis frozen after a create read its deadline: the create times out, and Redis running it later writes nothing', async () => {
  const c = new Redis(svc.redis.url);
  const pid = Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
  expect(pid).toBeGreaterThan(0);
  const { redis, keys } = svc.rt;
  const key = keys.partner('pm-late');
  const record = keys.apiKey('late-hash');
  const [deadline, indexDeadline, recordDeadline] = await Promise.all([writeDeadline(redis, key), writeDeadline(redis, keys.apiKeyIndex()), writeDeadline(redis, record)]);
  process.kill(pid, 'SIGSTOP');
  try {
    // The API's client: commandTimeout 2000 ms, past the deadline (WRITE_DEADLINE_MS after the read).
    const writes = [
      redis.scCreatePartner(key, keys.auditPending({ partnerId: 'pm-late' }), '{"id":"pm-late"}', '[]', '', '', deadline),
      redis.eval(CREATE_LUA, 2, keys.apiKeyIndex(), keys.auditPending('keys'), 'key_late', '{}', '', '', indexDeadline),
      redis.eval(SET_RECORD_LUA, 1, record, '{}', recordDeadline),
    ];
    for (const w of await Promise.allSettled(writes)) expect(w.status === 'rejected' && String(w.reason)).toMatch('Command timed out');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await c.ping();
  expect([await c.exists(key), await c.hexists(keys.apiKeyIndex(), 'key_late'), await c.exists(record)]).toEqual([0, 0, 0]);
  c.disconnect();
}, 30_000);
