/**
 * A shutdown that hangs can still be cut short (src/main/stop-signals.ts): the same signal again within
 * REPEATED_SIGNAL_MS is the copy npm forwards of a group signal and is ignored, but one later than that,
 * or another signal, is an operator's second Ctrl-C or a process manager insisting: exit 1 at once, with
 * a line saying so. Without the time bound every later SIGTERM of the same kind was swallowed and only
 * SIGKILL stopped a stuck process. A real child process; its shutdown never ends.
 */
import { REPEATED_SIGNAL_MS } from '../../src/main/stop-signals.js';
import { waitFor } from '../helpers/service.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

const children: WorkerProcess[] = [];
afterAll(async () => {
  for (const c of children) await c.kill();
});

/** The child's exit code, or 'still running' 10 s after the signal (an exit is at once: this bounds a failure's wait). */
function exitWithin(exit: Promise<number | null>): Promise<number | null | 'still running'> {
  return Promise.race([exit, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 10_000))]);
}

async function stopping(): Promise<{ child: WorkerProcess; exit: Promise<number | null>; at: number }> {
  const child = spawnWorker({}, 'test/helpers/stop-signals-child.ts');
  children.push(child);
  const exit = new Promise<number | null>((r) => child.proc.once('exit', (code) => r(code)));
  await waitFor(async () => child.output().includes('ready'), 30_000, 20);
  child.proc.kill('SIGTERM');
  const m = await waitFor(async () => /stopping on SIGTERM at (\d+)/.exec(child.output()), 10_000, 10);
  return { child, exit, at: Number(m[1]) };
}

test('the same signal again later than REPEATED_SIGNAL_MS after the first exits 1 at once', async () => {
  const { child, exit, at } = await stopping();
  // Past the window on the child's own clock (the same machine's).
  while (Date.now() <= at + REPEATED_SIGNAL_MS) await new Promise((r) => setTimeout(r, at + REPEATED_SIGNAL_MS + 20 - Date.now()));
  child.proc.kill('SIGTERM');
  expect(await exitWithin(exit)).toBe(1);
  expect(child.output()).toContain('second SIGTERM, exiting');
  expect(child.output()).not.toContain('repeated');
}, 60_000);

test('another signal during the shutdown exits 1 at once, however soon it comes', async () => {
  const { child, exit } = await stopping();
  child.proc.kill('SIGINT');
  expect(await exitWithin(exit)).toBe(1);
  expect(child.output()).toContain('second SIGINT, exiting');
}, 60_000);
