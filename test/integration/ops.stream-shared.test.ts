/**
 * `GET /v1/ops/stream` opened many times at once (console tabs, or a script holding a viewer or partner
 * key): every stream read the whole board from Redis and serialised it itself every second, so a
 * hundred streams were a hundred board reads a second — on a running `npm start` that held the event
 * loop until signed events timed out into 503s with Redis up and idle. Now the streams that show the
 * same board share one read per interval; a partner key's stream still shows its own partner only.
 * Counted in Redis's own command statistics (the board's read of each partner's earlier shows is its
 * only ZREVRANGEBYSCORE here), real HTTP.
 */
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let partnerKey: string;

beforeAll(async () => {
  // Thirty streams of one key: above the per-key cap's default (ops.stream-cap), raised here.
  svc = await startService({ env: { OPS_STREAMS_PER_KEY: '40' } });
  for (const p of ['p1', 'p2']) {
    const secret = await createPartner(svc, p);
    const now = Date.now();
    const ev = showEvent('show.scheduled', sampleShow(`${p}-today`, { scheduledAt: new Date(now + 3_600_000).toISOString() }), new Date(now - 60_000).toISOString());
    expect((await sendEvent(svc, p, secret, ev)).status).toBe(202);
  }
  const k = await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId: 'p2' } });
  expect(k.status).toBe(201);
  partnerKey = ((await k.json()) as { key: string }).key;
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

async function boardReads(): Promise<number> {
  const info = await svc.rt.redis.info('commandstats');
  return Number(/cmdstat_zrevrangebyscore:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

interface Stream {
  boards: { me: { role: string }; partners: { id: string }[]; shows: { showId: string }[] }[];
  close(): void;
}

function openStream(key: string): Stream {
  const ctrl = new AbortController();
  const s: Stream = { boards: [], close: () => ctrl.abort() };
  void fetch(`${svc.url}/v1/ops/stream`, { headers: { authorization: `Bearer ${key}` }, signal: ctrl.signal })
    .then(async (r) => {
      let text = '';
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString('utf8');
        let end;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const frame = text.slice(0, end);
          text = text.slice(end + 2);
          const data = /^event: board\ndata: (.*)$/s.exec(frame)?.[1];
          if (data) s.boards.push(JSON.parse(data) as Stream['boards'][number]);
        }
      }
    })
    .catch(() => undefined);
  return s;
}

test('thirty streams of one board share its reads; a partner key\'s stream shows its own partner only', async () => {
  const before = await boardReads();
  const streams = Array.from({ length: 30 }, () => openStream(ADMIN_KEY));
  const own = openStream(partnerKey);
  try {
    await waitFor(async () => streams.every((s) => s.boards.length > 0) && own.boards.length > 0, 20_000);
    const reads = (await boardReads()) - before;
    // One board read is one ZREVRANGEBYSCORE per partner it shows (two for the admin board, one for
    // p2's). Each stream reading for itself made at least 30 × 2 + 1; shared, a few intervals' worth.
    expect(reads).toBeLessThan(30);
    for (const s of streams) {
      expect(s.boards[0]!.me.role).toBe('admin');
      expect(s.boards[0]!.partners.map((p) => p.id).sort()).toEqual(['p1', 'p2']);
      expect(s.boards[0]!.shows.map((r) => r.showId).sort()).toEqual(['p1-today', 'p2-today']);
    }
    expect(own.boards[0]!.me.role).toBe('partner');
    expect(own.boards[0]!.partners.map((p) => p.id)).toEqual(['p2']);
    expect(own.boards[0]!.shows.map((r) => r.showId)).toEqual(['p2-today']);
  } finally {
    for (const s of [...streams, own]) s.close();
  }
}, 60_000);

test('HEAD /v1/ops/stream is answered with the stream\'s headers and no body (it was never answered)', async () => {
  const r = await fetch(`${svc.url}/v1/ops/stream`, { method: 'HEAD', headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(15_000) });
  expect([r.status, r.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8']);
  expect(await r.text()).toBe('');
}, 30_000);
