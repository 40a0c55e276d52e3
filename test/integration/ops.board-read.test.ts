/**
 * The ops board's partner index (Keys.boardDays, Keys.boardLive): the board reads only the partners
 * with shows in its window or live, not every partner (2,000 partners without shows were 2,000+
 * partner reads each second of an open stream). What it lists is unchanged; a show written after the
 * first board joins it through the index the write keeps; shows stored before the index existed are
 * added by each process's first board (the build). Counted with MONITOR, not timed. Real Redis.
 */
import type { Redis } from 'ioredis';
import { newMirror } from '../../src/domain/mirror.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const secrets = new Map<string, string>();
const HOUR = 3_600_000;
const EMPTY = 150;
const iso = (ms: number): string => new Date(ms).toISOString();

interface Board {
  partners: { id: string }[];
  shows: { partnerId: string; showId: string; state: string; mirrors: { needsAction: boolean }[] }[];
}

beforeAll(async () => {
  svc = await startService();
  for (const id of ['busy', 'legacy', 'lively']) secrets.set(id, await createPartner(svc, id));
  const r = await svc.api('/v1/partners/busy/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'a', webhookSecret: 'whsec_' + Buffer.from('x'.repeat(24)).toString('base64') }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  for (let i = 0; i < EMPTY; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, EMPTY - i) }, async (_, j) => secrets.set(`empty-${i + j}`, await createPartner(svc, `empty-${i + j}`))));
  }
});

afterAll(async () => {
  await svc?.close();
});

async function send(partnerId: string, type: string, show: Record<string, unknown>, occurredAt = Date.now() - 60_000): Promise<void> {
  expect((await sendEvent(svc, partnerId, secrets.get(partnerId)!, showEvent(type, show, iso(occurredAt)))).status).toBe(202);
}

async function board(): Promise<Board> {
  const r = await svc.api('/v1/ops/board', { key: ADMIN_KEY });
  expect(r.status).toBe(200);
  return (await r.json()) as Board;
}

/** The commands clients sent Redis while `fn` ran (MONITOR; all of them: a marker sent after `fn` is awaited). */
async function commandsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const mon = await (svc.rt.redis as Redis).monitor();
  mon.on('error', () => undefined);
  mon.on('monitor', (_t: string, args: string[]) => seen.push(args.join(' ')));
  try {
    await fn();
    const marker = `board-index-marker-${Date.now()}`;
    await svc.rt.redis.echo(marker);
    await waitFor(async () => seen.some((c) => c.includes(marker)));
    return seen;
  } finally {
    mon.disconnect();
  }
}

const ids = (b: Board): string[] => b.shows.map((s) => `${s.partnerId}/${s.showId}`).sort();

test('the board reads only the partners with shows in its window or live, and lists what it did', async () => {
  const now = Date.now();
  await send('busy', 'show.scheduled', sampleShow('today', { scheduledAt: iso(now + 2 * HOUR) }));
  await send('busy', 'show.live', sampleShow('old-live', { scheduledAt: iso(now - 10 * 24 * HOUR), state: 'live' }));
  await send('busy', 'show.ended', sampleShow('old-ended', { scheduledAt: iso(now - 3 * 24 * HOUR), state: 'ended' }));
  await send('legacy', 'show.scheduled', sampleShow('soon', { scheduledAt: iso(now + 3 * HOUR) }));
  await send('lively', 'show.live', sampleShow('far-live', { scheduledAt: iso(now + 9 * 24 * HOUR), state: 'live' }));
  // A failure: a mirror that needs action comes first.
  await svc.rt.shows.saveMirror('busy', 'today', { ...newMirror('wn', 'whatnot'), state: 'failed', lastError: 'whatnot: refused' });
  // As a deployment from before the index left it: the shows are there, the board's index is not.
  await svc.rt.redis.del(svc.rt.keys.boardDays(), svc.rt.keys.boardLive());

  // The first board of this process builds the index from the partners' show indexes.
  const first = await board();
  expect(ids(first)).toEqual(['busy/old-live', 'busy/today', 'legacy/soon', 'lively/far-live']);
  expect(first.shows[0]).toMatchObject({ showId: 'today', mirrors: [expect.objectContaining({ needsAction: true })] });
  expect(first.partners.map((p) => p.id)).toEqual(['busy', 'legacy', 'lively']);

  let again: Board | undefined;
  const commands = await commandsDuring(async () => (again = await board()));
  expect(ids(again!)).toEqual(ids(first));
  expect(again!.shows[0]!.showId).toBe('today');
  // No partner without shows was read: not its document, not its show index.
  expect(commands.filter((c) => c.includes('{p:empty-'))).toEqual([]);
  expect(commands.filter((c) => c.includes('{p:busy}')).length).toBeGreaterThan(0);
});

test("a show written after the index was built joins the board through the index its write keeps; a partner whose live shows ended leaves the live marks", async () => {
  const now = Date.now();
  await board();
  await send('empty-7', 'show.scheduled', sampleShow('new', { scheduledAt: iso(now + 5 * HOUR) }));
  await send('empty-8', 'show.live', sampleShow('went-live', { scheduledAt: iso(now - 30 * 24 * HOUR), state: 'live' }));
  const b = await board();
  expect(ids(b)).toEqual(expect.arrayContaining(['empty-7/new', 'empty-8/went-live']));
  expect(await svc.rt.redis.zscore(svc.rt.keys.boardLive(), 'empty-8')).not.toBeNull();
  await send('empty-8', 'show.ended', sampleShow('went-live', { scheduledAt: iso(now - 30 * 24 * HOUR), state: 'ended' }), now - 30_000);
  expect(ids(await board())).not.toContain('empty-8/went-live');
  expect(await svc.rt.redis.zscore(svc.rt.keys.boardLive(), 'empty-8')).toBeNull();
  // Read no more: its last show ended.
  const commands = await commandsDuring(() => board());
  expect(commands.filter((c) => c.includes('{p:empty-8}'))).toEqual([]);
});

test("the Cluster path's index write (indexSnapshot, after the show's write) keeps the board's index too", async () => {
  const at = Date.now() + HOUR;
  await svc.rt.shows.indexSnapshot('empty-9', 'cl', '0001', at, true);
  const day = Math.floor(at / 86_400_000);
  expect(await svc.rt.redis.zscore(svc.rt.keys.boardDays(), `${day}:empty-9`)).toBe(String(day * 86_400_000));
  expect(await svc.rt.redis.zscore(svc.rt.keys.boardLive(), 'empty-9')).not.toBeNull();
});
