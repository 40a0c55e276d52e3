/**
 * The ops board's read: every partner is listed as before, but a partner without a show in the range
 * the board reads (a week back to the window ahead) and without a live show costs two counts, sent with
 * the others' in one write, not a bundle read and five index reads. Nothing is written for the board on
 * the show-write path; a show written a moment ago is on the next board. Counted with MONITOR, not
 * timed. Real Redis.
 */
import type { Redis } from 'ioredis';
import { newMirror } from '../../src/domain/mirror.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const secrets = new Map<string, string>();
const HOUR = 3_600_000;
const EMPTY = Number(process.env['BOARD_EMPTY'] ?? 150);
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
    const marker = `board-read-marker-${Date.now()}`;
    await svc.rt.redis.echo(marker);
    await waitFor(async () => seen.some((c) => c.includes(marker)));
    return seen;
  } finally {
    mon.disconnect();
  }
}

const ids = (b: Board): string[] => b.shows.map((s) => `${s.partnerId}/${s.showId}`).sort();

const ALL = ['busy', 'legacy', 'lively', ...Array.from({ length: EMPTY }, (_, i) => `empty-${i}`)].sort();
const perPartnerReads = (commands: string[], partner: string): string[] => commands.filter((c) => c.includes(`{p:${partner}}`) && /^(hgetall|zrangebyscore|zrevrangebyscore|smembers) /i.test(c));

test('the board lists every partner and their shows, and reads rows only of the partners with shows in its range or live', async () => {
  const now = Date.now();
  await send('busy', 'show.scheduled', sampleShow('today', { scheduledAt: iso(now + 2 * HOUR) }));
  await send('busy', 'show.live', sampleShow('old-live', { scheduledAt: iso(now - 10 * 24 * HOUR), state: 'live' }));
  await send('busy', 'show.ended', sampleShow('old-ended', { scheduledAt: iso(now - 3 * 24 * HOUR), state: 'ended' }));
  await send('legacy', 'show.scheduled', sampleShow('soon', { scheduledAt: iso(now + 3 * HOUR) }));
  await send('lively', 'show.live', sampleShow('far-live', { scheduledAt: iso(now + 9 * 24 * HOUR), state: 'live' }));
  // A failure: a mirror that needs action comes first.
  await svc.rt.shows.saveMirror('busy', 'today', { ...newMirror('wn', 'whatnot'), state: 'failed', lastError: 'whatnot: refused' });

  const first = await board();
  expect(ids(first)).toEqual(['busy/old-live', 'busy/today', 'legacy/soon', 'lively/far-live']);
  expect(first.shows[0]).toMatchObject({ showId: 'today', mirrors: [expect.objectContaining({ needsAction: true })] });
  expect(first.partners.map((p) => p.id).sort()).toEqual(ALL);

  let again: Board | undefined;
  const commands = await commandsDuring(async () => (again = await board()));
  // BOARD_EMPTY=2000 BOARD_COUNT=1: the command count of one board read (the MONITOR marker not counted).
  if (process.env['BOARD_COUNT']) console.log(`board of ${ALL.length} partners: ${commands.length - 1} commands`);
  expect(ids(again!)).toEqual(ids(first));
  expect(again!.partners.map((p) => p.id).sort()).toEqual(ALL);
  // A partner without shows: no bundle, no show-index range, no live-show list read.
  for (let i = 0; i < EMPTY; i += 1) expect(perPartnerReads(commands, `empty-${i}`)).toEqual([]);
  expect(perPartnerReads(commands, 'busy').length).toBeGreaterThan(0);
  expect(perPartnerReads(commands, 'lively').length).toBeGreaterThan(0);
  // The count pass's SCARD of a partner's live-show index is passed on: a partner with shows in range
  // but none live (legacy) has its index read by no other command; one with a live show, once more.
  const liveIndexReads = (partner: string): string[] => commands.filter((c) => c.includes(`{p:${partner}}:live `) || c.endsWith(`{p:${partner}}:live`)).filter((c) => !/^scard /i.test(c));
  expect(liveIndexReads('legacy')).toEqual([]);
  expect(liveIndexReads('busy')).toHaveLength(1);
});

test('a show written after a board is on the next one; a partner whose live show ended is not read again', async () => {
  const now = Date.now();
  await board();
  await send('empty-7', 'show.scheduled', sampleShow('new', { scheduledAt: iso(now + 5 * HOUR) }));
  await send('empty-8', 'show.live', sampleShow('went-live', { scheduledAt: iso(now - 30 * 24 * HOUR), state: 'live' }));
  const b = await board();
  expect(ids(b)).toEqual(expect.arrayContaining(['empty-7/new', 'empty-8/went-live']));
  await send('empty-8', 'show.ended', sampleShow('went-live', { scheduledAt: iso(now - 30 * 24 * HOUR), state: 'ended' }), now - 30_000);
  expect(ids(await board())).not.toContain('empty-8/went-live');
  const commands = await commandsDuring(() => board());
  expect(perPartnerReads(commands, 'empty-8')).toEqual([]);
});
