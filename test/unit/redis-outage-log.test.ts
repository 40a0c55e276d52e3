/** src/lib/redis-outage-log.ts: one line per outage, reminders with the count left out, one on recovery. */
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Cluster, ReplyError, type ClusterOptions } from 'ioredis';
import { logSink } from '../helpers/log-sink.js';
import { testPort } from '../helpers/ports.js';
import { connectionErrorSummary, isRedisUnreachable, isRedisUnreachableOrRefusing, RedisOutageLog, reportWorkerOutages } from '../../src/lib/redis-outage-log.js';
import { isRedisUnavailable } from '../../src/store/redis.js';

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });

test('an outage: one line, a reminder per interval with the suppressed count, one line when back; other errors as they come', () => {
  const { log, lines } = logSink<{ level: number; msg: string; suppressed?: number; downForMs?: number }>();
  let now = 1_000_000;
  const o = new RedisOutageLog(log, 'sync workers', { intervalMs: 10_000, now: () => now });
  o.recovered(); // nothing to report
  for (let i = 0; i < 35 * 25; i++) {
    o.error(refused(), { queue: 'q' }, 'sync worker error');
    now += 1000 / 35; // 35 a second for 25 s
  }
  expect(lines.map((l) => l.msg)).toEqual(['sync workers: Redis unavailable (repeats are logged at most every 10 s)', 'sync workers: Redis still unavailable', 'sync workers: Redis still unavailable']);
  expect(lines[1]!.suppressed).toBeGreaterThan(300);
  // Each reminder counts the repeats since the line before it (~10 s of 35 a second), not since the outage began.
  expect(lines[2]!.suppressed).toBeGreaterThan(300);
  expect(lines[2]!.suppressed).toBeLessThan(360);
  expect(o.down).toBe(true);
  o.error(new Error('ERR unknown command'), { queue: 'q' }, 'sync worker error');
  expect(lines.at(-1)!.msg).toBe('sync worker error');
  o.recovered();
  expect(lines.at(-1)).toMatchObject({ level: 30, msg: 'sync workers: Redis reachable again' });
  expect(lines.at(-1)!.downForMs).toBeGreaterThan(24_000);
  o.recovered();
  expect(lines).toHaveLength(5);
  o.error(refused(), {}, 'x'); // a new outage is reported again
  expect(lines.at(-1)!.msg).toMatch(/Redis unavailable/);
});

/**
 * Found attacking the relay under `npm start` (Redis stopped for 5 s): the outage's first line of the
 * sync, attribution, delivery, reconcile and scheduler workers carried ioredis's stack (BullMQ hands the
 * error itself), the relay's and the API's did not (they pass connectionErrorSummary). An outage is an
 * expected condition: its line says what failed, without a stack, whoever reports it.
 */
test("an outage's first line carries the error's message and code, not its stack", () => {
  const { log, lines } = logSink<{ msg: string; err?: { message?: string; code?: string; stack?: string } }>();
  new RedisOutageLog(log, 'sync workers').error(refused(), { queue: 'q' }, 'sync worker error');
  expect(lines.map((l) => ({ msg: l.msg, message: l.err?.message, code: l.err?.code, stack: l.err?.stack ?? '' }))).toEqual([
    { msg: 'sync workers: Redis unavailable (repeats are logged at most every 15 s)', message: 'connect ECONNREFUSED 127.0.0.1:6379', code: 'ECONNREFUSED', stack: '' },
  ]);
});

test('what counts as Redis unavailable', () => {
  expect(isRedisUnreachable(refused())).toBe(true);
  expect(isRedisUnreachable(new Error('Connection is closed.'))).toBe(true);
  expect(isRedisUnreachable(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
  expect(isRedisUnreachable(new AggregateError([refused(), refused()]))).toBe(true);
  // An AggregateError with no parts says nothing of Redis: its own line, not folded into an outage.
  expect(isRedisUnreachable(new AggregateError([]))).toBe(false);
  // A frozen Redis (SIGSTOP): every command fails after its commandTimeout, one error line each before.
  expect(isRedisUnreachable(new Error('Command timed out'))).toBe(true);
  expect(isRedisUnreachable(new Error('ERR Error running script'))).toBe(false);
  expect(isRedisUnreachable('ECONNREFUSED')).toBe(false);
});

/**
 * A refusal a script met (each of BullMQ's writes is one): Redis 6.2, the documented minimum, wraps it
 * ("ERR Error running script …: -OOM …"), which the outage log's start-anchored match missed (each
 * refused fetch was a 'worker error' line again), while the API's classifier (a 503) caught it. Redis 7
 * keeps it at the start, and refuses a script declared without allow-oom with its own OOM reply. The
 * reply texts are Redis's own (ioredis's ReplyError message: the reply less its '-').
 */
test("a refusal wrapped by Redis 6.2's script error, and Redis 7's script refusals, are refusals to the outage log as to the API", () => {
  const refusals = [
    "ERR Error running script (call to f_8f1a6c6b2f4e1d0a9b7c3e5d2a1f0e9d8c7b6a59): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'. ",
    "ERR Error running script (call to f_8f1a6c6b2f4e1d0a9b7c3e5d2a1f0e9d8c7b6a59): @user_script:12: @user_script: 12: -READONLY You can't write against a read only replica. ",
    "OOM command not allowed when used memory > 'maxmemory'. script: 8f1a6c6b2f4e1d0a9b7c3e5d2a1f0e9d8c7b6a59, on @user_script:1.",
    "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
    "OOM command not allowed when used memory > 'maxmemory'.",
  ];
  for (const message of refusals) {
    const err = new ReplyError(message);
    expect([message, isRedisUnreachableOrRefusing(err), isRedisUnavailable(err)]).toEqual([message, true, true]);
  }
  const { log, lines } = logSink<{ msg: string }>();
  const o = new RedisOutageLog(log, 'delivery worker');
  for (const message of refusals) o.error(new ReplyError(message), {}, 'delivery worker error');
  expect(lines.map((l) => l.msg)).toEqual(['delivery worker: Redis unavailable (repeats are logged at most every 15 s)']);
  // A script's own error that only mentions a refusal's word is not one.
  for (const message of ["ERR Error running script (call to f_8f1a): @user_script:3: user_script:3: Script attempted to access nonexistent global variable 'OOM'", 'ERR READONLY mentioned by a bug', 'BUSYGROUP Consumer Group name already exists']) {
    expect([message, isRedisUnreachableOrRefusing(new ReplyError(message))]).toEqual([message, false]);
  }
});

test('jobs failed because Redis is down: counted into the outage, or one line per burst; a job failed otherwise: its own line', async () => {
  const { log, lines } = logSink<{ level: number; msg: string; jobsFailed?: number; jobId?: string; suppressed?: number }>();
  let now = 1_000_000;
  const o = new RedisOutageLog(log, 'sync workers', { intervalMs: 10_000, settleMs: 5, now: () => now });
  // During a reported outage: in its count, no line of their own.
  o.error(refused(), {}, 'sync worker error');
  for (let i = 0; i < 20; i++) o.jobFailed(new Error("Stream isn't writeable and enableOfflineQueue options is false"), { jobId: String(i) }, 'sync job failed');
  expect(lines.map((l) => l.msg)).toEqual(['sync workers: Redis unavailable (repeats are logged at most every 10 s)']);
  now += 3000;
  o.recovered();
  expect(lines.at(-1)).toMatchObject({ msg: 'sync workers: Redis reachable again', jobsFailed: 20, suppressed: 20, jobIds: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
  // Recorded after the recovery (BullMQ writes a failure to Redis): one line for the burst, after settleMs.
  for (let i = 0; i < 20; i++) o.jobFailed(new Error('Connection is closed.'), { jobId: `late${i}` }, 'sync job failed');
  o.jobFailed(new Error('the platform refused'), { jobId: 'other' }, 'sync job failed');
  expect(lines.slice(2).map((l) => [l.msg, l.jobId])).toEqual([['sync job failed', 'other']]);
  await new Promise((r) => setTimeout(r, 30));
  expect(lines.slice(3)).toMatchObject([{ level: 50, msg: 'sync workers: 20 job(s) failed because Redis was unavailable or did not answer', jobsFailed: 20, jobIds: ['late0', 'late1', 'late2', 'late3', 'late4', 'late5', 'late6', 'late7', 'late8', 'late9'] }]);
  // The next burst within intervalMs waits for its line; flush() (a worker closed) writes it now.
  o.jobFailed(new Error('Command timed out'), {}, 'sync job failed');
  await new Promise((r) => setTimeout(r, 30));
  expect(lines).toHaveLength(4);
  o.flush();
  expect(lines.at(-1)).toMatchObject({ jobsFailed: 1 });
  o.flush();
  expect(lines).toHaveLength(5);
  // The next outage's recovery line counts its own failed jobs (none here), not the last outage's 20 again.
  o.error(refused(), {}, 'sync worker error');
  o.recovered();
  expect(lines.at(-1)).toMatchObject({ msg: 'sync workers: Redis reachable again', errors: 1 });
  expect(lines.at(-1)!.jobsFailed).toBeUndefined();
});

test("a worker that closes writes the line of the failed jobs it is still counting, before the process ends; its (re)connection ends the outage", () => {
  const { log, lines } = logSink<{ msg: string; jobsFailed?: number }>();
  const o = new RedisOutageLog(log, 'sync workers', { settleMs: 60_000 });
  const w = new EventEmitter();
  reportWorkerOutages(w as never, o, {}, 'sync worker error');
  o.jobFailed(new Error('Connection is closed.'), { jobId: 'j1' }, 'sync job failed');
  expect(lines).toEqual([]); // its line waits settleMs for the rest of the burst
  w.emit('closed');
  expect(lines).toMatchObject([{ msg: 'sync workers: 1 job(s) failed because Redis was unavailable or did not answer', jobsFailed: 1 }]);
  w.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:1'));
  w.emit('ready');
  expect(lines.map((l) => l.msg).slice(1)).toEqual(['sync workers: Redis unavailable (repeats are logged at most every 15 s)', 'sync workers: Redis reachable again']);
});

test("a job failed by a platform's or partner's call keeps its own line, though its error has a socket code or words of an unreachable Redis", () => {
  const { log, lines } = logSink<{ level: number; msg: string; jobId?: string }>();
  const o = new RedisOutageLog(log, 'sync workers', { settleMs: 5 });
  // An axios error of a partner endpoint that refused the connection; a platform error (src/targets' kind)
  // whose message quotes the socket error: both read as "Redis unavailable" by their code or message alone.
  const axiosRefused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:443'), { code: 'ECONNREFUSED', isAxiosError: true, config: {} });
  const platformDown = Object.assign(new Error('whatnot unreachable (ECONNREFUSED)'), { kind: 'retryable' });
  expect(isRedisUnreachable(axiosRefused) && isRedisUnreachable(platformDown)).toBe(true);
  o.jobFailed(axiosRefused, { jobId: 'd1' }, 'delivery job failed');
  o.jobFailed(platformDown, { jobId: 's1' }, 'sync job failed');
  expect(lines.map((l) => [l.msg, l.jobId])).toEqual([
    ['delivery job failed', 'd1'],
    ['sync job failed', 's1'],
  ]);
  o.flush();
  expect(lines).toHaveLength(2);
});

type ClusterLine = { level: number; msg: string; err?: { lastNodeError?: { message?: string } } };

/** A Cluster client's first 6 errors with its one seed at `port`, logged through a RedisOutageLog; then its lines. */
async function clusterErrors(port: number, options: ClusterOptions = {}): Promise<{ errors: Error[]; lines: ClusterLine[] }> {
  const { log, lines } = logSink<ClusterLine>();
  const o = new RedisOutageLog(log, 'redis client');
  const cluster = new Cluster([{ host: '127.0.0.1', port }], { clusterRetryStrategy: () => 20, ...options });
  const errors: Error[] = [];
  const ended = new Promise((res) => cluster.once('end', res));
  try {
    await new Promise<void>((res) => {
      cluster.on('error', (err: Error) => {
        errors.push(err);
        o.error(connectionErrorSummary(err), {}, 'redis connection error');
        // Disconnected here, while its node is still in its pool: once the client is reconnecting (its
        // pool empty), disconnect() ends nothing and 'end' never comes (a silent seed got there first).
        if (errors.length === 6) {
          cluster.disconnect();
          res();
        }
      });
    });
  } finally {
    if (errors.length < 6) cluster.disconnect();
    await ended;
    // Each slots check's connection leaves a 2 s timer behind (ioredis AbstractConnector.disconnect, not
    // unref'd; no event marks its end): the jest worker was force-exited while they ran.
    await new Promise((res) => setTimeout(res, 2100));
  }
  return { errors, lines };
}

test("a Redis Cluster whose every seed is down: its client's \"Failed to refresh slots cache.\" on each reconnect is one outage, not a line each", async () => {
  // Found by starting `npm start` with REDIS_CLUSTER_NODES at a node that was down: ~4 error lines a
  // second ("redis connection error", ClusterAllFailedError) until the start gave up after 15 s.
  const { errors, lines } = await clusterErrors(await testPort());
  expect(errors[0]!.name).toBe('ClusterAllFailedError');
  expect(lines.map((l) => l.msg)).toEqual(['redis client: Redis unavailable (repeats are logged at most every 15 s)']);
  expect(lines[0]!.err?.lastNodeError?.message).toMatch(/Connection is closed/);
});

test("a Redis Cluster whose seed accepts connections but never answers (SIGSTOP'd): its slots refreshes' timeouts are one outage, not a line each", async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
  let found: { errors: Error[]; lines: ClusterLine[] };
  try {
    found = await clusterErrors((silent.address() as AddressInfo).port, { slotsRefreshTimeout: 50 });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((res) => silent.close(res));
  }
  expect(found.errors[0]!.name).toBe('ClusterAllFailedError');
  expect(found.lines.map((l) => l.msg)).toEqual(['redis client: Redis unavailable (repeats are logged at most every 15 s)']);
  expect(found.lines[0]!.err?.lastNodeError?.message).toMatch(/^(timeout|Node is disconnected)$/);
});

test('a ClusterAllFailedError is Redis unavailable by its last node error: a refusal (WRONGPASS) is not', () => {
  const allFailed = (last: unknown): Error => Object.assign(new Error('Failed to refresh slots cache.'), { name: 'ClusterAllFailedError', lastNodeError: last });
  expect(isRedisUnreachable(allFailed(new Error('Connection is closed.')))).toBe(true);
  expect(isRedisUnreachable(allFailed(null))).toBe(true);
  expect(isRedisUnreachable(allFailed(new ReplyError('WRONGPASS invalid username-password pair or user is disabled.')))).toBe(false);
  expect(isRedisUnreachable(connectionErrorSummary(allFailed(new ReplyError('WRONGPASS invalid username-password pair'))))).toBe(false);
  // A node that never answered (its slots refresh timed out, or it was gone): only as the last node error.
  expect(isRedisUnreachable(allFailed(new Error('timeout')))).toBe(true);
  expect(isRedisUnreachable(connectionErrorSummary(allFailed(new Error('Node is disconnected'))))).toBe(true);
  expect(isRedisUnreachable(new Error('timeout'))).toBe(false); // a platform's, say
  expect(isRedisUnreachable(allFailed(new Error('timeout of 3000ms exceeded')))).toBe(false);
});
