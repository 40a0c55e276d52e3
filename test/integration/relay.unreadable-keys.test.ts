/**
 * The relay's stream keys sealed under a key this service no longer has (SECRETS_KEY changed, or
 * SECRETS_KEY_PREVIOUS removed, without rotation): the show's own ingest key (the edge input every
 * destination of the show reads), and an operator-given mirror ingest key (PUT …/mirrors/{targetId}).
 * The show's key made every pass of that show throw ("relay pass failed for a show", a warning every
 * RELAY_POLL_MS, forever), no destination status saying why, and GET show a 503 for the whole show; a
 * mirror's key was dropped without a word (the destination never started, its status idle). Now: the
 * show's destinations are `failed` with a lastError saying what to restore, logged once, no ffmpeg
 * started; a mirror whose key cannot be opened is failed alone, the show's other destinations and the
 * other shows go on; the show view answers with the keys marked unreadable; a restored key is relayed
 * again on the next pass. The real RelayService (its passes run by hand), real Redis.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { newMirror } from '../../src/domain/mirror.js';
import { SecretBox } from '../../src/lib/crypto.js';
import type { DestinationGuard } from '../../src/lib/destination-guard.js';
import type { RelayService } from '../../src/relay/relay.service.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { logSink } from '../helpers/log-sink.js';
import { addOfflineWhatnotTarget, handRunRelay, linkOperatorMirror } from '../helpers/hand-relay.js';
import type { ShowViewT } from '../helpers/relay.js';

let svc: TestService;
let relay: RelayService | undefined;
const lines: string[] = [];
beforeAll(async () => {
  svc = await startService({});
});
afterAll(async () => {
  await relay?.close();
  for (const r of relays) await r.close();
  await svc.close();
});

const lost = new SecretBox(randomBytes(32).toString('base64'));
const P = 'rk';
const OP_KEY = (showId: string, targetId: string): string => `op-key-${showId}-${targetId}-secret`;

async function liveShowWithMirrors(secret: string, showId: string, lostFor: string[] = []): Promise<void> {
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  for (const targetId of ['rk-a', 'rk-b']) await linkOperatorMirror(svc, P, showId, targetId, OP_KEY(showId, targetId), lostFor.includes(targetId) ? lost : svc.rt.box);
}

let partner: Promise<string> | undefined;
/** The partner P with its targets rk-a and rk-b (made once, for the tests of this file); its webhook secret. */
function partnerWithTargets(): Promise<string> {
  partner ??= (async () => {
    const secret = await createPartner(svc, P);
    for (const id of ['rk-a', 'rk-b']) await addOfflineWhatnotTarget(svc, P, id);
    return secret;
  })();
  return partner;
}

async function view(showId: string): Promise<ShowViewT & { mirrors: { ingest?: Record<string, unknown> }[] }> {
  const r = await svc.api(`/v1/partners/${P}/shows/${showId}`);
  expect(r.status).toBe(200); // was a 503 for the whole show (its key unreadable)
  return (await r.json()) as ShowViewT & { mirrors: { ingest?: Record<string, unknown> }[] };
}

test("a show's or a mirror's stream key no configured key opens: that relay failed saying what to restore, logged once, the rest relayed; the restored key relays again", async () => {
  const secret = await partnerWithTargets();
  await liveShowWithMirrors(secret, 'rk-1');
  await liveShowWithMirrors(secret, 'rk-2', ['rk-b']);
  // rk-1's own stream key sealed again under the lost key.
  const showKey = await svc.rt.relay.ingestKey(P, 'rk-1');
  const ingestHash = svc.rt.keys.relayIngest(P, 'rk-1');
  const readable = (await svc.rt.redis.hget(ingestHash, 'sealed'))!;
  await svc.rt.redis.hset(ingestHash, 'sealed', lost.encrypt(showKey));

  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  relay = handRunRelay(svc, { log, leaseMs: 10_000 }); // no publish: a destination that is relayed waits idle
  for (let pass = 0; pass < 3; pass++) await relay.tick();

  const v1 = await view('rk-1');
  expect(v1.show.ingest).toEqual({ url: expect.any(String) as string, streamKeyUnreadable: true });
  for (const m of v1.mirrors) {
    expect(m.relay).toMatchObject({ state: 'failed', lastError: expect.stringMatching(/^not relayed: the show's stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS .*restore the key that sealed it, or issue a new stream key \(POST …\/ingest\/rotate\)/) as string });
  }
  const v2 = await view('rk-2');
  const [a, b] = ['rk-a', 'rk-b'].map((t) => v2.mirrors.find((m) => m.targetId === t)!);
  expect(a!.relay.state).toBe('idle');
  expect(a!.relay.lastError).toMatch(/waiting for the show's stream/);
  expect(a!.ingest).toEqual({ url: 'rtmp://live.example.com/app', streamKey: OP_KEY('rk-2', 'rk-a') });
  expect(b!.relay).toMatchObject({ state: 'failed', lastError: expect.stringMatching(/^not relayed: this mirror's stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS .*restore the key that sealed it/) as string });
  expect(b!.ingest).toEqual({ url: 'rtmp://live.example.com/app', streamKeyUnreadable: true });
  expect(relay.pids()).toEqual([]);

  // Three passes, one line each (at error level), no secret in any line, no pass that failed.
  const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
  expect(logged.filter((l) => /show's stream key cannot be opened/.test(l.msg)).map((l) => l.level)).toEqual([50]);
  expect(logged.filter((l) => /mirror's stream key cannot be opened/.test(l.msg)).map((l) => l.level)).toEqual([50]);
  expect(logged.filter((l) => /relay pass failed|relay tick failed/.test(l.msg))).toEqual([]);
  expect(lines.filter((l) => [showKey, OP_KEY('rk-2', 'rk-b'), OP_KEY('rk-1', 'rk-a')].some((k) => l.includes(k)))).toEqual([]);

  // The key restored (sealed as before): the next pass relays the show again.
  await svc.rt.redis.hset(ingestHash, 'sealed', readable);
  await relay.tick();
  for (const m of (await view('rk-1')).mirrors) expect(m.relay.state).toBe('idle');
  expect(logged.length).toBeLessThan(lines.length); // "opens again" is said
});

/** Log lines of the relays below, parsed. */
type Line = { msg: string; level: number; showId?: string; targetId?: string; lastError?: string };
const relays: RelayService[] = [];
/**
 * A RelayService (passes run by hand) whose ingest hosts resolve, or not (a resolver that times out:
 * `dns.down = true`), with an edge input: the destinations' checks run and their pushes start.
 */
function relayWithResolver(): { relay: RelayService; seen: Line[]; dns: { down: boolean } } {
  const dns = { down: false };
  const destinations: DestinationGuard = {
    allowPrivate: false,
    httpAgent: undefined,
    httpsAgent: undefined,
    lookup: svc.rt.destinations.lookup,
    checkHost: () => undefined,
    resolve: async () => {
      if (dns.down) throw new Error('resolver timed out');
      return { address: '203.0.113.7', family: 4 };
    },
  };
  const { log, lines: seen } = logSink<Line>('debug');
  const r = handRunRelay(svc, { destinations, log, edgeUrl: () => 'rtmp://127.0.0.1:9/live' });
  relays.push(r);
  return { relay: r, seen, dns };
}

/** The show's own stream key sealed under the lost key; the function puts the readable one back. */
async function showKeyLost(showId: string): Promise<() => Promise<void>> {
  const ingestHash = svc.rt.keys.relayIngest(P, showId);
  const showKey = await svc.rt.relay.ingestKey(P, showId);
  const readable = (await svc.rt.redis.hget(ingestHash, 'sealed'))!;
  await svc.rt.redis.hset(ingestHash, 'sealed', lost.encrypt(showKey));
  return async () => void (await svc.rt.redis.hset(ingestHash, 'sealed', readable));
}

test("a destination dropped while the show's key is unreadable forgets its check-failure streak: back later, no stray \"passes again\"", async () => {
  const secret = await partnerWithTargets();
  await liveShowWithMirrors(secret, 'rk-3');
  const { relay: streakRelay, seen, dns } = relayWithResolver();
  const rkA = (msg: string) => seen.filter((l) => l.showId === 'rk-3' && l.targetId === 'rk-a' && l.msg === msg);
  const setMirror = (state: 'live' | 'ended') =>
    svc.rt.shows.updateMirror(P, 'rk-3', 'rk-a', () => newMirror('rk-a', 'whatnot'), (m) => {
      m.state = state;
      return true;
    });

  await streakRelay.tick(); // checked, pushes started
  dns.down = true;
  await streakRelay.tick(); // rk-a's check fails while its push runs: a streak, warned once
  expect(rkA('relay destination check failed; its running push goes on').map((l) => l.level)).toEqual([40]);
  // One pass with the show's key unreadable and rk-a's mirror no longer ready: rk-a is dropped.
  const restore = await showKeyLost('rk-3');
  await setMirror('ended');
  await streakRelay.tick();
  // Back: key restored, mirror live, the host resolves. rk-a is a new destination whose check passes.
  await restore();
  await setMirror('live');
  dns.down = false;
  await streakRelay.tick();
  expect((await view('rk-3')).mirrors.find((m) => m.targetId === 'rk-a')!.relay.state).not.toBe('failed');
  // The dropped destination's streak ended with it (as a drop in an ordinary pass ends it): its new
  // life's first passing check is no "passes again" (the old key-unreadable drop kept the streak).
  expect(rkA('relay destination check passes again')).toEqual([]);
  expect(seen.filter((l) => /relay pass failed/.test(l.msg))).toEqual([]);
}, 60_000);

test("the show's key restored while its destinations' check fails: they say the check failed, not that the key cannot be opened", async () => {
  const secret = await partnerWithTargets();
  await liveShowWithMirrors(secret, 'rk-4');
  const { relay: r, dns } = relayWithResolver();
  await r.tick(); // checked, pushes started
  const restore = await showKeyLost('rk-4');
  await r.tick();
  for (const m of (await view('rk-4')).mirrors) expect(m.relay.lastError).toMatch(/show's stream key cannot be opened/);
  // Restored, and this pass's check of the ingest host fails: the operator is told that, not to
  // restore a key already restored (the failed-for-the-key destination was kept as it was).
  await restore();
  dns.down = true;
  await r.tick();
  for (const m of (await view('rk-4')).mirrors) expect(m.relay).toMatchObject({ state: 'failed', lastError: 'destination refused: resolver timed out' });
  // And once the host resolves again, relayed as usual.
  dns.down = false;
  await r.tick();
  for (const m of (await view('rk-4')).mirrors) expect(m.relay.state).not.toBe('failed');
}, 60_000);
