/**
 * Where WAIT is on (REDIS_WAIT_REPLICAS), a non-idempotent step's `started` intent record must be on
 * a replica before its platform call is made (IntentRepository.scoped → ReplicaAck.confirmKey): a
 * failover right after the start would otherwise promote a replica without it, and the retry would
 * call the platform again without looking for what the first call made. A real redis-server master
 * with one real replica started here (frozen with SIGSTOP), the YouTube simulator over HTTP.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { testPort } from '../helpers/ports.js';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { spawnRedisServer, startRedis, waitReady, type TestRedis } from '../helpers/redis-server.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let master: TestRedis;
let replica: ChildProcess | undefined;
let replicaDir: string;
let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  master = await startRedis();
  replicaDir = mkdtempSync(join(tmpdir(), 'syndicast-replica-'));
  const port = await testPort();
  replica = spawnRedisServer(['--port', String(port), '--bind', '127.0.0.1', '--dir', replicaDir, '--save', '', '--appendonly', 'no', '--replicaof', '127.0.0.1', String(master.port), '--loglevel', 'warning'], { stdio: 'ignore' });
  await waitReady(port, 10_000, replica.pid);
  const probe = new Redis({ port: master.port, host: '127.0.0.1' });
  try {
    await waitFor(async () => /connected_slaves:1/.test(await probe.info('replication')), 10_000);
    // The replica has synced and acknowledges (WAIT answers 1 at once).
    await waitFor(async () => ((await probe.call('WAIT', 1, 200)) as number) === 1, 10_000);
  } finally {
    probe.disconnect();
  }
  sim = await startSim();
  // WAIT for one replica (a single Redis: `auto` would be off), each WAIT bounded to 1 s (it was 300 ms:
  // the steps run right after SIGCONT must be acknowledged within it, by a replica just woken, which a
  // loaded machine may schedule late; a frozen replica is refused after the bound all the same).
  svc = await startService({ redis: master, dispatch: false, env: { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '1000' } });
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
  if (replica && replica.exitCode === null) {
    replica.kill('SIGCONT');
    replica.kill('SIGKILL');
  }
  await master?.destroy();
  if (replicaDir) rmSync(replicaDir, { recursive: true, force: true });
});

test('with the replica not acknowledging, the step is not sent to the platform and the run retries; once it does, one show is created', async () => {
  expect(svc.rt.replicaAck.active).toBe(true);
  const secret = await createPartner(svc, 'rw');
  const r = await svc.api('/v1/partners/rw/targets', {
    json: { id: 'rw-yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, 'rw', secret, showEvent('show.scheduled', sampleShow('rw1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  // Saving the target checked its credentials with the platform: the requests after that are the run's.
  const checked = (await sim.control('GET', '/_sim/youtube/requests')) as { seq: number }[];
  const sinceSaved = checked.at(-1)?.seq ?? 0;
  const job = { partnerId: 'rw', showId: 'rw1', targetId: 'rw-yt' };
  const intentKeys = async (): Promise<string[]> => svc.rt.redis.keys(`${svc.rt.keys.showTag('rw', 'rw1')}:intent:*`);

  replica!.kill('SIGSTOP'); // the replica acknowledges nothing (still connected, as far as the master knows)
  let frozen: SyncOutcome;
  try {
    frozen = await svc.rt.syncService.sync(job, { token: 'job-token-frozen' });
  } finally {
    replica!.kill('SIGCONT');
  }
  expect(frozen).toMatchObject({ kind: 'delay', reason: 'replica_unconfirmed' });
  // Nothing was sent to YouTube for the step (no request at all after the target was saved) …
  const sent = (await sim.control('GET', `/_sim/youtube/requests?since=${sinceSaved}`)) as { method: string; path: string }[];
  expect(sent).toEqual([]);
  expect((await sim.effects('youtube')).filter((e) => e.type === 'show.created')).toEqual([]);
  // … the unconfirmed start was forgotten (the retry does not wait out an attempt that sent nothing),
  // and the mirror says why it waits, without using up its retry budget.
  expect(await intentKeys()).toEqual([]);
  const waiting = (await svc.rt.shows.getMirror('rw', 'rw1', 'rw-yt'))!;
  expect(waiting.lastError).toMatch(/replica/);
  expect(waiting.retries).toBe(0);

  // The replica answers again: the next run creates the show, once.
  const waitsBefore = svc.rt.replicaAck.stats.waits;
  let outcome: SyncOutcome | undefined;
  for (let i = 0; i < 20; i++) {
    outcome = await svc.rt.syncService.sync(job, { token: `job-token-${i}` });
    if (outcome.kind !== 'delay') break;
    await sleep(Math.min(outcome.delayMs, 1000));
  }
  expect(outcome).toEqual({ kind: 'done', state: 'ready' });
  expect(svc.rt.replicaAck.stats.waits).toBeGreaterThan(waitsBefore); // its steps' starts were WAITed for
  const m = (await svc.rt.shows.getMirror('rw', 'rw1', 'rw-yt'))!;
  const created = (await sim.effects('youtube')).filter((e) => e.type === 'show.created');
  expect(created.map((e) => e.externalId)).toEqual([m.remote!.externalId]);
});

test('an unconfirmed restart of a step an earlier run left started (its lookup found nothing) stays started: the lookup may have lagged behind that run\'s object, so the retry looks again before it sends', async () => {
  // It was forgotten: the retry sent the request without a lookup, and a list that had lagged behind
  // the earlier attempt's object (a YouTube broadcast) let it make a second one.
  const [P, S, T] = ['rw', 'rw2', 'rw-yt'];
  const got = await svc.rt.intents.acquire(P, S, T, 'job-token-restart', 60_000);
  if (!('lease' in got)) throw new Error('lease not acquired');
  const { lease } = got;
  const key = svc.rt.keys.intent(P, S, T, 'g0:test:step');
  // An earlier run started the step long ago and never recorded a result (its attempt has settled).
  const earlier = new Date(Date.now() - 3_600_000).toISOString();
  await svc.rt.redis.set(key, JSON.stringify({ status: 'started', owner: 'job-token-earlier', startedAt: earlier, until: Date.now() - 3_000_000 }), 'EX', 86_400);
  const once = svc.rt.intents.scoped(P, S, T, 'g0:test', lease);
  let ran = 0;
  let looked = 0;
  const lookup = async (): Promise<number | null> => {
    looked++;
    return null; // nothing listed (yet)
  };
  replica!.kill('SIGSTOP');
  try {
    await expect(once('step', async () => ++ran, lookup)).rejects.toMatchObject({ reason: 'replica_unconfirmed' });
  } finally {
    replica!.kill('SIGCONT');
  }
  expect([looked, ran]).toEqual([1, 0]);
  expect(JSON.parse((await svc.rt.redis.get(key))!)).toMatchObject({ status: 'started', since: earlier });
  // The next attempt looks again before it sends, then runs exactly once.
  await expect(once('step', async () => ++ran, lookup)).resolves.toBe(1);
  expect([looked, ran]).toEqual([2, 1]);
  await svc.rt.intents.release(lease);
});

test('a start whose script the master no longer has (NOSCRIPT: flushed, or a promoted replica) is confirmed by a WAIT behind its EVAL: with the replica frozen nothing is sent', async () => {
  const [P, S, T] = ['rw', 'rw3', 'rw-yt'];
  const got = await svc.rt.intents.acquire(P, S, T, 'job-token-noscript', 60_000);
  if (!('lease' in got)) throw new Error('lease not acquired');
  const { lease } = got;
  const key = svc.rt.keys.intent(P, S, T, 'g0:test:step');
  const once = svc.rt.intents.scoped(P, S, T, 'g0:test', lease);
  let ran = 0;
  await svc.rt.redis.script('FLUSH');
  replica!.kill('SIGSTOP');
  try {
    await expect(once('step', async () => ++ran)).rejects.toMatchObject({ reason: 'replica_unconfirmed' });
  } finally {
    replica!.kill('SIGCONT');
  }
  expect(ran).toBe(0);
  expect(await svc.rt.redis.exists(key)).toBe(0);
  // Flushed again, the replica answering: the step runs once and is recorded done.
  await svc.rt.redis.script('FLUSH');
  await expect(once('step', async () => ++ran)).resolves.toBe(1);
  await expect(once('step', async () => ++ran)).resolves.toBe(1);
  expect(ran).toBe(1);
  await svc.rt.intents.release(lease);
});
