/**
 * `GET /v1/ops/stream` and a client that stops reading (a laptop gone to sleep with the console open,
 * or any key holder — a partner key too — who opens the stream and reads nothing). The stream wrote
 * every changed board regardless, so once the kernel's socket buffers were full each board (~100 KB
 * on a real board, a change about every second) queued in the API process: a running `npm start`
 * grew ~1.3 MB/s with five such connections (RSS 267 → 376 MB in 90 s). Now nothing is written (or
 * read from Redis) while the socket has not drained, and the board the client gets when it reads
 * again is the current one: the boards in between are skipped, never queued. Real Redis, real HTTP.
 */
import { createConnection } from 'node:net';
import { buildApp } from '../../src/api/app.js';
import { newMirror } from '../../src/domain/mirror.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  const secret = await createPartner(svc, 'p1');
  const r = await svc.api('/v1/partners/p1/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'a' }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  const now = Date.now();
  expect((await sendEvent(svc, 'p1', secret, showEvent('show.scheduled', sampleShow('today', { scheduledAt: new Date(now + 3_600_000).toISOString() }), new Date(now - 60_000).toISOString()))).status).toBe(202);
});

afterAll(async () => {
  await svc?.close();
});

/**
 * The stream ticks every TICK_MS here (1 s in production): the board changes once per tick, so eight
 * changes take a few seconds, not eight. Each test's own app on the service's runtime.
 */
const TICK_MS = 250;
const CHANGE_EVERY_MS = 400;

async function streamApp(opts: { opsStreamStallMs?: number } = {}): Promise<{ app: Awaited<ReturnType<typeof buildApp>>; port: number }> {
  const app = await buildApp(svc.rt, { logger: false, dashboard: false, opsStreamIntervalMs: TICK_MS, ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as { port: number }).port };
}

/** A board of ~`mb` MB: the mirror's lastError, tagged so each board can be told apart. */
async function setBoard(tag: string, mb: number): Promise<void> {
  const m = (await svc.rt.shows.getMirror('p1', 'today', 'wn')) ?? newMirror('wn', 'whatnot');
  await svc.rt.shows.saveMirror('p1', 'today', { ...m, lastError: `<${tag}>` + 'x'.repeat(mb * 1024 * 1024) });
}

test('a stream whose client reads nothing does not queue every changed board: the client gets the current board when it reads again', async () => {
  const changes = 8;
  let boards: (string | undefined)[] = [];
  const { app, port } = await streamApp();
  try {
    await setBoard('b0', 0);
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('latin1').on('data', (d: string) => (text += d));
    await new Promise<void>((res) => socket.once('connect', () => res()));
    socket.write(`GET /v1/ops/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`);
    await waitFor(async () => text.includes('<b0>'), 10_000);

    // The client stops reading; the board changes eight times, 2 MB each (16 MB in all: far more than
    // the kernel's socket buffers, 4 MB + the receive window here), one change per stream tick.
    socket.pause();
    for (let i = 1; i <= changes; i++) {
      await setBoard(`b${i}`, 2);
      await new Promise((r) => setTimeout(r, CHANGE_EVERY_MS));
    }

    // Reading again: the last board arrives; the ones the process held back were never queued.
    socket.resume();
    await waitFor(async () => text.includes(`<b${changes}>`), 30_000);
    await new Promise((r) => setTimeout(r, 2 * TICK_MS)); // anything still queued would arrive now
    socket.destroy();
    boards = [...text.matchAll(/"lastError":"<(b\d+)>/g)].map((m) => m[1]);
  } finally {
    await app.close();
  }
  expect(boards[0]).toBe('b0');
  expect(boards[boards.length - 1]).toBe(`b${changes}`);
  // What the kernel buffers took before the socket stopped draining (at most 2 of these boards),
  // then the current one: never all eight.
  expect(boards.length).toBeLessThanOrEqual(5);
}, 60_000);

test('a stream whose client reads nothing for longer than the stall bound is closed (its key is not checked while it stalls)', async () => {
  // A 1 s bound (STREAM_STALL_MS, 60 s, in production).
  const { app, port } = await streamApp({ opsStreamStallMs: 1_000 });
  try {
    await setBoard('c0', 0);
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('latin1').on('data', (d: string) => (text += d));
    let closedAt: number | undefined;
    socket.once('close', () => (closedAt = Date.now()));
    await new Promise<void>((res) => socket.once('connect', () => res()));
    socket.write(`GET /v1/ops/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`);
    await waitFor(async () => text.includes('<c0>'), 10_000);
    socket.pause();
    // 2 MB boards until the socket stops draining (the kernel's buffers full), then the bound.
    for (let i = 1; i <= 8; i++) {
      await setBoard(`c${i}`, 2);
      await new Promise((r) => setTimeout(r, CHANGE_EVERY_MS));
    }
    // Reading again: what the kernel held arrives, then the end (a paused socket reports no close).
    socket.resume();
    await waitFor(async () => closedAt !== undefined, 10_000).finally(() => socket.destroy());
    expect(text).not.toContain('<c8>'); // closed while stalled, not after
  } finally {
    await app.close();
  }
}, 60_000);
