/**
 * A target disabled while the relay pushes to its mirror: the relay stops that destination and the
 * partner's `mirror.updated` for it says what the show view says — `enabled: false`, and the note
 * that the target is disabled as `lastError` — not the mirror as it was while enabled.
 */
import { createServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { disabledTargetNote } from '../../src/mirror/show.view.js';
import { waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { platformsPerFile } from '../helpers/platforms.js';
import { encode, goLive, scheduleRelayedShow, viewOf, type Encoder } from '../helpers/relay.js';

interface Message {
  type: string;
  data: { targetId: string; enabled: boolean; lastError: string | null; relay?: { state: string } };
}

let svc: TestService;
let sim: TestSim;
let secret: string;
let receiver: Server;
let endpointSecret: string;
const received: Message[] = [];
const P = 'relay-dis';

// The receiver closes first (this afterAll runs before platformsPerFile's), then the service and the simulators.
afterAll(() => {
  receiver?.closeAllConnections();
  receiver?.close();
});

platformsPerFile(P, async (started) => {
  ({ svc, sim, secret } = started);
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      received.push(new Webhook(endpointSecret).verify(Buffer.concat(chunks).toString('utf8'), headers) as Message);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const ep = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/h`, events: ['mirror.updated'] } });
  expect(ep.status).toBe(201);
  endpointSecret = ((await ep.json()) as { secret: string }).secret;
}, { workers: true, scheduler: true, relay: true });

test("the relay's mirror.updated for a destination stopped because its target was disabled says enabled: false, as the show view does", async () => {
  await scheduleRelayedShow(svc, sim, P, secret, 'dis1');
  await goLive(svc, P, secret, 'dis1');
  const v0 = await viewOf(svc, P, 'dis1');
  let enc: Encoder | undefined;
  try {
    enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
    await waitFor(async () => (await viewOf(svc, P, 'dis1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    const sending = await waitFor(async () => received.find((m) => m.data.targetId === 'bambuser' && m.data.relay?.state === 'sending'), 20_000);
    expect(sending.data.enabled).toBe(true);

    const r = await svc.api(`/v1/partners/${P}/targets/bambuser`, { method: 'PATCH', json: { enabled: false } });
    expect(r.status).toBe(200);
    const stopped = await waitFor(async () => received.find((m) => m.data.targetId === 'bambuser' && m.data.relay?.state === 'stopped'), 30_000);
    expect({ enabled: stopped.data.enabled, lastError: stopped.data.lastError }).toEqual({ enabled: false, lastError: disabledTargetNote('bambuser') });
    const view = (await viewOf(svc, P, 'dis1')).mirrors.find((m) => m.targetId === 'bambuser') as { enabled?: boolean; lastError: string | null } | undefined;
    expect(view && { enabled: view.enabled, lastError: view.lastError }).toEqual({ enabled: false, lastError: disabledTargetNote('bambuser') });
  } finally {
    await enc?.stop();
  }
  await goLive(svc, P, secret, 'dis1', 'ended');
}, 180_000);
