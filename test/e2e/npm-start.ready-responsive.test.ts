/**
 * `npm start` is responsive once /health/ready says 200. The relay role found its ffmpeg (`ffmpeg
 * -version`, spawnSync) only after the API listened, and the probe blocked the event loop: a request
 * that came right after ready waited it out, and one whose Redis command was already sent was a 503
 * ("Command timed out": the command timer ran before the reply was read), with Redis healthy. A cold
 * binary on a loaded machine took seconds (fresh-clone CI: npm-start.redis-frozen's first POST was a
 * 503). Here ffmpeg is slow to start on purpose: the real one behind a wrapper that first sleeps.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { testFfmpeg } from '../helpers/ffmpeg.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

/** How long the wrapper makes `ffmpeg` take before the real one runs (well over the 3 s bound below). */
const SLOW_START_MS = 5_000;

let redis: TestRedis;
let child: WorkerProcess | undefined;
const binDir = mkdtempSync(join(tmpdir(), 'syndicast-slow-ffmpeg-'));
/** Written by the wrapper once its wait is over, each time it runs: the slow start is behind us. */
const doneMarker = join(binDir, 'slow-start-done');

beforeAll(async () => {
  redis = await startRedis();
  const found = testFfmpeg();
  const real = isAbsolute(found) ? found : execFileSync('sh', ['-c', `command -v ${found}`], { encoding: 'utf8' }).trim();
  writeFileSync(join(binDir, 'ffmpeg'), `#!/bin/sh\nsleep ${SLOW_START_MS / 1000}\ntouch '${doneMarker}'\nexec '${real}' "$@"\n`);
  chmodSync(join(binDir, 'ffmpeg'), 0o755);
}, 30_000);
afterAll(async () => {
  await child?.kill('SIGKILL');
  await redis?.destroy();
  rmSync(binDir, { recursive: true, force: true });
});

test('npm start with an ffmpeg slow to start: every partner created after /health/ready, until 1 s past the slow start, is a 201 within 3 s', async () => {
  const started = await startAllProcess(redis.env, { PATH: `${binDir}:${process.env['PATH'] ?? ''}` });
  child = started.child;
  const answers: { status: number; ms: number }[] = [];
  // Partners are created for at least 1 s after ready, and until 1 s after the slow ffmpeg's wait is
  // over (the probe had begun after ready: up to SLOW_START_MS later; 10 s bounds it).
  const readyAt = Date.now();
  let slowStartOverAt: number | undefined;
  const creating = (): boolean => {
    const now = Date.now();
    if (slowStartOverAt === undefined && existsSync(doneMarker)) slowStartOverAt = now;
    return now < readyAt + 10_000 && (now < readyAt + 1_000 || slowStartOverAt === undefined || now < slowStartOverAt + 1_000);
  };
  for (let i = 0; creating(); i++) {
    const t = Date.now();
    const r = await fetch(`${started.url}/v1/partners`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: `p${i}`, name: `partner ${i}` }),
    });
    await r.arrayBuffer();
    answers.push({ status: r.status, ms: Date.now() - t });
  }
  // (3 s: the API's Redis commands time out after 2 s, so a slower answer is a stalled event loop.)
  expect(answers.filter((a) => a.status !== 201 || a.ms > 3_000)).toEqual([]);
  expect(slowStartOverAt).toBeDefined(); // the slow ffmpeg ran (before ready, or while partners were created)
}, 90_000);
