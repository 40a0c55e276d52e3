/**
 * The cap on a partner's webhook endpoints (OUTBOUND_ENDPOINTS_PER_PARTNER, README "Outbound webhooks"):
 * every message fans out to every endpoint that takes its type, so an unbounded list was a cost and
 * abuse vector (an operator key, or a script looping on POST, made a partner's every event thousands of
 * deliveries). One more is a 409 problem naming the cap and how to make room; nothing is created (no
 * record, no audit entry). The count is taken in the script that adds, so concurrent creates (real
 * Redis, parallel POSTs) stop at the cap exactly. The contract (§8) says nothing of a cap.
 */
import { keysMatching } from '../helpers/redis-cluster.js';
import { createPartner, serviceForFile, type TestService } from '../helpers/service.js';

const CAP = 3;
let svc: TestService;
serviceForFile((started) => (svc = started), { env: { OUTBOUND_ENDPOINTS_PER_PARTNER: String(CAP) } });

const create = (p: string, i: number) => svc.api(`/v1/partners/${p}/endpoints`, { json: { url: `http://127.0.0.1:9/hook${i}`, events: ['mirror.updated'] } });
const listed = async (p: string): Promise<string[]> => ((await (await svc.api(`/v1/partners/${p}/endpoints`)).json()) as { endpoints: { id: string }[] }).endpoints.map((e) => e.id);
const records = async (p: string): Promise<number> => (await keysMatching(svc.rt.redis, svc.rt.keys.endpoint(p, '*'))).length;
const createdEntries = async (p: string): Promise<number> => {
  const r = await svc.api(`/v1/audit?limit=500&partnerId=${p}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { entries: { action: string }[] }).entries.filter((e) => e.action === 'endpoint.created').length;
};

test('one endpoint over the cap is a 409 problem naming the cap and how to make room; nothing is created; a delete makes room', async () => {
  const p = 'capped';
  await createPartner(svc, p);
  const ids: string[] = [];
  for (let i = 0; i < CAP; i++) {
    const r = await create(p, i);
    expect(r.status).toBe(201);
    ids.push(((await r.json()) as { id: string }).id);
  }
  const over = await create(p, CAP);
  expect(over.status).toBe(409);
  expect(over.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = (await over.json()) as { status: number; detail: string };
  expect(problem.status).toBe(409);
  expect(problem.detail).toContain(`already has ${CAP} webhook endpoints`);
  expect(problem.detail).toContain('OUTBOUND_ENDPOINTS_PER_PARTNER');
  expect(problem.detail).toMatch(/delete one/);
  expect((await listed(p)).sort()).toEqual([...ids].sort());
  expect(await records(p)).toBe(CAP); // the refused endpoint's record is not left behind
  expect(await createdEntries(p)).toBe(CAP);

  // Another partner's endpoints are counted apart.
  await createPartner(svc, 'other');
  expect((await create('other', 0)).status).toBe(201);

  expect((await svc.api(`/v1/partners/${p}/endpoints/${ids[0]}`, { method: 'DELETE' })).status).toBe(204);
  expect((await create(p, CAP + 1)).status).toBe(201);
  expect(await listed(p)).toHaveLength(CAP);
});

test('concurrent creates stop at the cap exactly: parallel POSTs, CAP of them 201, the rest 409', async () => {
  const p = 'racing';
  await createPartner(svc, p);
  const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => create(p, i)));
  const statuses = answers.map((r) => r.status);
  expect(statuses.filter((s) => s === 201)).toHaveLength(CAP);
  expect(statuses.filter((s) => s === 409)).toHaveLength(24 - CAP);
  expect(await listed(p)).toHaveLength(CAP);
  expect(await records(p)).toBe(CAP);

  // The same in one turn of the event loop (each create's commands leave together): what a count read
  // before the add would let through all at once (parallel POSTs through HTTP interleave less: each
  // request's create tends to finish before the next one's reads its count).
  const q = 'racing-one-turn';
  await createPartner(svc, q);
  const made = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => svc.rt.outbound.createEndpoint(q, { url: `http://127.0.0.1:9/turn${i}`, events: ['mirror.updated'] })));
  expect(made.map((m) => (m.status === 'fulfilled' ? 201 : (m.reason as { status?: number }).status)).sort()).toEqual([...Array<number>(CAP).fill(201), ...Array<number>(12 - CAP).fill(409)]);
  expect(await listed(q)).toHaveLength(CAP);
  expect(await records(q)).toBe(CAP);
});
