/**
 * A Bambuser webhook that verifies (its custom header is the target's) but cannot be read — a payload
 * that is no object, a body that is no webhook event or no JSON — was answered 400, and Bambuser retries
 * a delivery until it gets a 200: forever (docs/platforms.md). No Bambuser topic carries orders, so
 * nothing would be stored from it either way: it is acknowledged (200, nothing stored), logged and
 * counted in syndicast_platform_webhooks_unreadable_total. One that does not verify is still 401, and
 * not counted. Real redis-server, real HTTP, the simulators.
 */
import { CREDENTIALS, webhookTargetPerFile } from '../helpers/platforms.js';
import type { TestService } from '../helpers/service.js';

const P = 'pwbbu';
const HEADER = CREDENTIALS.bambuser['webhookHeaderValue']!;
let svc: TestService;

webhookTargetPerFile(P, (s) => ({ id: 'bbu', platform: 'bambuser', name: 'bb', credentials: CREDENTIALS.bambuser, baseUrl: s.base('bambuser') }), ({ svc: started }) => {
  svc = started;
});

const post = (header: string, body: string): Promise<Response> => fetch(`${svc.url}/v1/platform-webhooks/bbu`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-webhook-secret': header }, body });
const counted = async (): Promise<number> => Number(/^syndicast_platform_webhooks_unreadable_total\{platform="bambuser"\} (\d+)$/m.exec(await (await fetch(`${svc.url}/metrics`)).text())?.[1] ?? 0);
const envelope = (payload: unknown): string => JSON.stringify({ collection: 'show', action: 'update', payload, eventId: 'ev-1', timestamp: '2026-12-07T10:00:00Z' });
const BODIES: [string, string][] = [
  ['a payload that is a string', envelope('s1')],
  ['a payload that is an array', envelope([{ id: 's1' }])],
  ['a payload that is null', envelope(null)],
  ['no webhook event', '{"nope":1}'],
  ['no JSON', 'collection=show'],
];

test.each(BODIES)('a verified Bambuser webhook with %s: 200, nothing stored, counted; unverified: 401, not counted', async (_what, body) => {
  const before = await counted();
  const r = await post(HEADER, body);
  expect([r.status, await r.json()]).toEqual([200, { received: 0, stored: 0, new: 0, otherTargetOrders: 0, conflicting: 0, conflictingOrders: [] }]);
  expect(await counted()).toBe(before + 1);
  expect((await post(`${HEADER}x`, body)).status).toBe(401);
  expect(await counted()).toBe(before + 1);
});
