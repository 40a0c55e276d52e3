/**
 * A start whose plugins wait longer than Fastify's default 10 s plugin timeout still starts (a
 * fresh-clone CI at load 10 on two cores failed with "plugin did not start in time: 'docs'"). The wait
 * is made real and cheap: every libuv threadpool thread is held in an open() of a FIFO nobody writes,
 * so swagger-ui's read of its logo (inside the 'docs' plugin) waits 10.5 s, as it would behind a busy
 * threadpool or on a starved machine. Then the writers come and the app is built and answers /docs/json.
 * Real redis-server.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/api/app.js';
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

/** Holds every threadpool thread until release() (each blocked in open() of its own FIFO); release() once, however often called. */
async function holdThreadpool(): Promise<{ release: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'syndicast-fifo-'));
  const size = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
  const fifos = Array.from({ length: size }, (_, i) => join(dir, `f${i}`));
  execFileSync('mkfifo', fifos);
  const readers = fifos.map((f) => open(f, 'r'));
  await new Promise((r) => setTimeout(r, 100)); // the opens are on the threads
  let released: Promise<void> | undefined;
  return {
    release: () =>
      (released ??= (async () => {
        for (const f of fifos) closeSync(openSync(f, 'w')); // each reader is waiting: returns at once
        for (const h of await Promise.all(readers)) await h.close();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

test('a plugin that waits over 10 s (threadpool held) does not fail the start', async () => {
  const held = await holdThreadpool();
  const release = setTimeout(() => void held.release(), 10_500);
  const t0 = Date.now();
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  try {
    app = await buildApp(svc.rt, { logger: false, dashboard: false });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(10_000); // the start did wait on the held threadpool
    const r = await fetch(`${url}/docs/json`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ openapi: '3.1.0' });
  } finally {
    clearTimeout(release);
    await held.release();
    await app?.close();
  }
}, 60_000);
