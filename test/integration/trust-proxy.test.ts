/**
 * TRUST_PROXY: whose X-Forwarded-For / X-Forwarded-Proto the API believes. A client that talks to the
 * API directly must not be able to choose the address its click is hashed under (one "buyer" per
 * click, or another buyer's address) nor the console cookie's Secure flag; a proxy that is trusted
 * does say who the client is, and only its own hop counts (an address the client put in front of
 * the header is not believed). The service ran with `trustProxy: true`: every peer was believed.
 * Real redis-server, real HTTP over loopback: a proxy at 127.0.0.2 (TRUST_PROXY=127.0.0.2) and a
 * client at 127.0.0.1 that it does not cover (the source address of the connection chosen with
 * `localAddress`).
 */
import { randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { ADMIN_KEY, startService, type TestService } from '../helpers/service.js';
import { startTestRedis } from '../helpers/redis-cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
/** TRUST_PROXY unset: the default, `loopback`. */
let byDefault: TestService;
/** TRUST_PROXY=false: no peer is believed. */
let none: TestService;
/** TRUST_PROXY=127.0.0.2: only a proxy at that address is believed. */
let listed: TestService;
const PROXY = '127.0.0.2';
const SECRETS_KEY = randomBytes(32).toString('base64');
const link = { partnerId: 'tp', showId: 'show-1', targetId: 'tt-main', platform: 'tiktok' as const, productId: 'p1', url: 'https://shop.example.com/p1' };

beforeAll(async () => {
  redis = await startTestRedis();
  byDefault = await startService({ redis, env: { SECRETS_KEY } });
  none = await startService({ redis, env: { SECRETS_KEY, TRUST_PROXY: 'false' } });
  listed = await startService({ redis, env: { SECRETS_KEY, TRUST_PROXY: PROXY } });
});
afterAll(async () => {
  await byDefault?.close();
  await none?.close();
  await listed?.close();
  await redis?.destroy();
});

/** One HTTP request from the source address `from` (a loopback address). */
function send(url: string, from: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', localAddress: from, headers: init.headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** The stored click's IP hash for a click from `from` with these headers. */
async function clickHash(svc: TestService, from: string, headers: Record<string, string> = {}): Promise<string> {
  const tracked = await svc.rt.links.ensure(link);
  const r = await send(tracked, from, { headers: { 'user-agent': 'Mozilla/5.0 Chrome/131.0', ...headers } });
  expect(r.status).toBe(302);
  const id = new URL(r.headers.location!).searchParams.get('sclid')!;
  const click = await svc.rt.links.findClick(id);
  expect(click?.ipHash).toMatch(/^\S+$/);
  return click!.ipHash;
}

/** The console sign-in's Set-Cookie, from `from`. */
async function signInCookie(svc: TestService, from: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await send(`${svc.url}/v1/ops/session`, from, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ key: ADMIN_KEY }) });
  expect(r.status).toBe(201);
  return String(r.headers['set-cookie']);
}

const CLIENT = '127.0.0.1';
const FORGED = '203.0.113.77';
const SECURE = /;\s*Secure/i;

test('TRUST_PROXY=false: a forged X-Forwarded-For or X-Forwarded-Proto changes nothing', async () => {
  const own = await clickHash(none, CLIENT);
  expect(await clickHash(none, CLIENT, { 'x-forwarded-for': FORGED })).toBe(own);
  expect(await clickHash(none, PROXY, { 'x-forwarded-for': FORGED })).toBe(await clickHash(none, PROXY));
  expect(await signInCookie(none, CLIENT, { 'x-forwarded-proto': 'https' })).not.toMatch(SECURE);
});

test('TRUST_PROXY=<the proxy>: a client that is not the proxy cannot forge X-Forwarded-For or X-Forwarded-Proto', async () => {
  const own = await clickHash(listed, CLIENT);
  expect(await clickHash(listed, CLIENT, { 'x-forwarded-for': FORGED })).toBe(own);
  expect(await clickHash(listed, CLIENT, { 'x-forwarded-for': `198.51.100.9, ${FORGED}` })).toBe(own);
  expect(await signInCookie(listed, CLIENT, { 'x-forwarded-proto': 'https' })).not.toMatch(SECURE);
});

test('TRUST_PROXY=<the proxy>: the proxy says who the client is, and only its own hop is believed', async () => {
  const viaProxy = await clickHash(listed, PROXY, { 'x-forwarded-for': CLIENT });
  // The same buyer as when it comes straight to the API, not the proxy's address.
  expect(viaProxy).toBe(await clickHash(listed, CLIENT));
  expect(viaProxy).not.toBe(await clickHash(listed, PROXY));
  // The client wrote an address of its choice in front; the proxy appended the one it saw.
  expect(await clickHash(listed, PROXY, { 'x-forwarded-for': `${FORGED}, ${CLIENT}` })).toBe(viaProxy);
  expect(await signInCookie(listed, PROXY, { 'x-forwarded-proto': 'https' })).toMatch(SECURE);
  expect(await signInCookie(listed, PROXY)).not.toMatch(SECURE);
});

test('TRUST_PROXY unset (loopback): a proxy on this host is believed', async () => {
  expect(byDefault.config.trustProxy).toEqual(['loopback']);
  const viaProxy = await clickHash(byDefault, PROXY, { 'x-forwarded-for': FORGED });
  expect(viaProxy).not.toBe(await clickHash(byDefault, PROXY));
  expect(await clickHash(byDefault, CLIENT, { 'x-forwarded-for': `198.51.100.9, ${FORGED}` })).toBe(viaProxy);
  expect(await signInCookie(byDefault, PROXY, { 'x-forwarded-proto': 'https' })).toMatch(SECURE);
});
