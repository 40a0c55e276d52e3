/**
 * Scheduled reconciliation through the scheduler (the external contract §6, issue 13): a partner whose
 * `reconcileCron` fires every second is picked up by the scheduler role of an `npm start`-style
 * process (api + worker + scheduler through startRoles), which requests the run, the reconcile worker
 * completes it, and the partner receives `reconciliation.completed` (signed) for a `scheduled` run
 * covering its look-back period. Nothing here calls the reconcile service directly.
 */
import { createServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let setup: TestService;
let svc: TestService;
let receiver: Server;
const received: { headers: Record<string, string>; body: string }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await svc?.close();
  await setup?.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

test('a partner reconcileCron tick becomes a completed scheduled reconciliation, reported to the partner', async () => {
  // The partner and its endpoint exist before the all-roles process starts (as after a deploy).
  setup = await startService();
  await createPartner(setup, 'cron', { reconcileLookbackDays: 2 });
  // Every second: the API refuses it (at most every 5 minutes, test/integration/reconcile-cron.test.ts),
  // so the test stores it as the repository would; the scheduler runs what is stored.
  await setup.rt.partners.update('cron', { reconcileCron: '* * * * * *' });
  const port = (receiver.address() as { port: number }).port;
  const ep = await setup.api('/v1/partners/cron/endpoints', { json: { url: `http://127.0.0.1:${port}/hooks`, events: ['reconciliation.completed'] } });
  expect(ep.status).toBe(201);
  const { secret } = (await ep.json()) as { secret: string };

  svc = await startService({ redis: setup.redis, workers: true, scheduler: true, env: { KEY_PREFIX: setup.config.keyPrefix, SECRETS_KEY: setup.config.secretsKey! } });
  expect(svc.roles).toEqual(['api', 'worker', 'scheduler']);
  const startedAt = Date.now();

  const hook = await waitFor(async () => received.find((r) => (JSON.parse(r.body) as { type: string }).type === 'reconciliation.completed'), 30_000, 100);
  new Webhook(secret).verify(hook.body, hook.headers); // throws unless signed with the endpoint's secret
  const { data } = JSON.parse(hook.body) as { data: { id: string; status: string; trigger: string; from: string; to: string } };
  expect(data).toMatchObject({ status: 'completed', trigger: 'scheduled' });
  // The look-back period: two days up to the tick.
  const toMs = Date.parse(data.to);
  expect(toMs).toBeGreaterThanOrEqual(startedAt - 1000);
  expect(toMs - Date.parse(data.from)).toBe(2 * 86_400_000);

  const rec = await svc.api(`/v1/reconciliations/${data.id}`);
  expect(rec.status).toBe(200);
  expect(await rec.json()).toMatchObject({ id: data.id, partnerId: 'cron', status: 'completed', trigger: 'scheduled' });
});
