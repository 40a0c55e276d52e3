/**
 * `npm start` with PORT=0 (README "Configuration": `0`, any free port) and no PUBLIC_BASE_URL, whose
 * default is `http://localhost:{PORT}`: the tracked links follow the port the API bound. They were
 * `http://localhost:0/l/…`, which no buyer can open. A real src/main/all.ts child process, a Whatnot
 * show linked by hand on the simulator (a pin needs a platform show), one pin.
 */
import { serviceEnv } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, sendEvent, waitFor } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

let redis: TestRedis;
let sim: TestSim;
let child: WorkerProcess;

beforeAll(async () => {
  [redis, sim] = await Promise.all([startRedis(), startSim()]);
}, 30_000);
afterAll(async () => {
  await child?.kill('SIGTERM');
  await Promise.all([redis?.destroy(), sim?.close()]);
});

test('PORT=0 without PUBLIC_BASE_URL: tracked links name the port the API bound', async () => {
  const env = serviceEnv(redis.env, 0, { LOG_LEVEL: 'info', ALLOW_PRIVATE_DESTINATIONS: 'true' });
  child = spawnWorker(env, 'src/main/all.ts');
  const url = await waitFor(async () => /"msg":"syndicast started[^\n]*/.exec(child.output()) && /"url":"(http:\/\/[^"]+)"/.exec(child.output())?.[1], 60_000, 100);
  const port = new URL(url).port;
  expect(port).not.toBe('0');
  const api = async (path: string, json?: unknown, method = json === undefined ? 'GET' : 'POST'): Promise<Response> =>
    fetch(url + path, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) }, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });

  const partner = await api('/v1/partners', { id: 'p0', name: 'Port zero' });
  expect(partner.status).toBe(201);
  const { webhookSecret } = (await partner.json()) as { webhookSecret: string };
  const target = await api('/v1/partners/p0/targets', { id: 'wn', platform: 'whatnot', name: 'Whatnot', baseUrl: sim.base('whatnot'), credentials: { accessToken: 'wn_sim_access_token_seller_a' }, commissionRateBps: 100 });
  expect(target.status).toBe(201);
  const show = { id: 's1', title: 'Zero', scheduledAt: '2030-01-01T18:00:00Z', state: 'live', products: [{ id: 'sku-1', title: 'Pan', price: { amount: 100, currency: 'USD' }, url: 'https://shop.example.com/pan' }], pinnedProductIds: ['sku-1'] };
  expect((await sendEvent({ url }, 'p0', webhookSecret, { type: 'show.live', occurredAt: new Date().toISOString(), data: { show } })).status).toBe(202);
  const made = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Zero' })) as { externalId: string };
  expect((await api('/v1/partners/p0/shows/s1/mirrors/wn', { externalId: made.externalId }, 'PUT')).status).toBe(200);

  const linkUrl = await waitFor(async () => {
    const view = (await (await api('/v1/partners/p0/shows/s1')).json()) as { mirrors: { pins: { linkUrl: string | null }[] }[] };
    return view.mirrors[0]?.pins[0]?.linkUrl;
  }, 30_000, 100);
  expect(linkUrl).toMatch(new RegExp(`^http://localhost:${port}/l/[A-Za-z0-9_-]+$`));
  const click = await fetch(linkUrl.replace('localhost', '127.0.0.1'), { redirect: 'manual' });
  expect(click.status).toBe(302);
}, 90_000);
