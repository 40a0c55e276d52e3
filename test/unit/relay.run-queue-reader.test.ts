/**
 * The watchdog's run-queue reads (src/relay/start-gate.ts runQueueWaitReader): one open
 * /proc/{pid}/schedstat per ffmpeg run, re-read from offset 0 each tick. Each read must be the kernel's
 * figure at that moment (not the one of the first read: a stale figure forgives no starvation), must
 * say nothing once the process is gone, and must be what a fresh open says (runQueueWaitNs).
 */
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { runQueueWaitNs, runQueueWaitReader } from '../../src/relay/start-gate.js';

const onLinux = process.platform === 'linux' ? test : test.skip;

onLinux('one open schedstat is read afresh each time, agrees with a fresh open, and reads nothing once the process is gone', async () => {
  // Three busy loops on this 2-core machine: each waits on a run queue, so the figure grows.
  const busy = [0, 1, 2].map(() => spawn('sh', ['-c', 'while :; do :; done']));
  const pid = busy[0]!.pid!;
  const reader = runQueueWaitReader(pid);
  try {
    await delay(300);
    const first = reader.read();
    expect(first).toEqual(expect.any(Number));
    let later = first!;
    for (let i = 0; i < 40 && later === first; i++) {
      await delay(100);
      later = reader.read()!;
    }
    expect(later).toBeGreaterThan(first!);
    // What a fresh open reads at about the same moment (never less than the open file's figure before it).
    const before = reader.read()!;
    const fresh = runQueueWaitNs(pid)!;
    expect(fresh).toBeGreaterThanOrEqual(before);
  } finally {
    for (const c of busy) c.kill('SIGKILL');
    await Promise.all(busy.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r)))));
  }
  await delay(50);
  expect(reader.read()).toBeUndefined();
  reader.close();
  reader.close(); // twice: nothing left to release, no throw
  expect(reader.read()).toBeUndefined();
  expect(runQueueWaitReader(pid).read()).toBeUndefined();
}, 20_000);
