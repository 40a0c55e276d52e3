/**
 * An endpoint's failure clock (`failingSince`, src/store/outbound.scripts.ts) with attempts that overlap:
 * a delivery worker runs many attempts to one endpoint at once, and an attempt's outcome is recorded
 * when it ends, with the time it started. The clock decides whether an exhausted delivery disables the
 * endpoint ("no 2xx since the delivery's first attempt"), so:
 * - a failure of an attempt that started before a later-started attempt succeeded does not start it
 *   (the endpoint answered 2xx after that attempt began: it works);
 * - a success of an attempt that started before the clock started does not stop it (it says nothing
 *   about the failures after its start).
 * Real redis-server.
 */
import { createPartner, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
const P = 'efc';

serviceForFile((started) => (svc = started));

async function newEndpoint(partnerId = P): Promise<string> {
  const { endpoint } = await svc.rt.outbound.createEndpoint(partnerId, { url: 'http://127.0.0.1:9/hook', events: ['attribution.order_attributed'] });
  return endpoint.id;
}

async function failingSince(id: string): Promise<number | null> {
  return (await svc.rt.outbound.endpoints.get(P, id))!.failingSince;
}

test('a failed attempt that began before a later-begun attempt succeeded does not start the clock, nor disable the endpoint', async () => {
  const endpoints = svc.rt.outbound.endpoints;
  const id = await newEndpoint();
  const t0 = Date.now() - 60_000;
  // Attempt A begins at t0 + 10 s and hangs; attempt B begins at t0 + 20 s and gets a 2xx; A then times out.
  await endpoints.recordSuccess(P, id, new Date(t0 + 20_000));
  await endpoints.recordFailure(P, id, t0 + 10_000);
  expect(await failingSince(id)).toBeNull();
  expect(await endpoints.disableIfFailingSince(P, id, t0, 'no 2xx since t0')).toBe(false);
  expect((await endpoints.get(P, id))!.enabled).toBe(true);
  // A failure of an attempt that began after the success does start it.
  await endpoints.recordFailure(P, id, t0 + 30_000);
  expect(await failingSince(id)).toBe(t0 + 30_000);
});

test('a success of an attempt that began before the clock started does not stop it', async () => {
  const endpoints = svc.rt.outbound.endpoints;
  const id = await newEndpoint();
  const t0 = Date.now() - 60_000;
  // Attempt A begins at t0 and is slow; attempt B begins at t0 + 10 s and fails; A then gets its 2xx.
  await endpoints.recordFailure(P, id, t0 + 10_000);
  await endpoints.recordSuccess(P, id, new Date(t0));
  expect(await failingSince(id)).toBe(t0 + 10_000);
  expect(await endpoints.disableIfFailingSince(P, id, t0 + 10_000, 'no 2xx since t0 + 10 s')).toBe(true);
  // A success that began after the clock started stops it.
  const other = await newEndpoint();
  await endpoints.recordFailure(P, other, t0 + 10_000);
  await endpoints.recordSuccess(P, other, new Date(t0 + 20_000));
  expect(await failingSince(other)).toBeNull();
});

test('an operator who enables a disabled endpoint again starts it with no failure clock (the API shows failingSince null, not last week)', async () => {
  const p = 'efc-api';
  await createPartner(svc, p);
  const id = await newEndpoint(p);
  const since = Date.now() - 7 * 86_400_000;
  await svc.rt.outbound.endpoints.recordFailure(p, id, since);
  expect(await svc.rt.outbound.endpoints.disableIfFailingSince(p, id, since, 'no 2xx for a week')).toBe(true);
  expect(await (await svc.api(`/v1/partners/${p}/endpoints/${id}`)).json()).toMatchObject({ enabled: false, failingSince: new Date(since).toISOString() });
  const patched = await svc.api(`/v1/partners/${p}/endpoints/${id}`, { method: 'PATCH', json: { enabled: true } });
  expect(patched.status).toBe(200);
  expect(await patched.json()).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
  expect((await svc.rt.outbound.endpoints.get(p, id))!.failingSince).toBeNull();
});
