/**
 * The watchdog's run-queue reads (src/relay/start-gate.ts runQueueWaitReader): one open
 * /proc/{pid}/schedstat per ffmpeg run, re-read from offset 0 each tick. Each read must be the kernel's
 * figure at that moment (not the one of the first read: a stale figure forgives no starvation), must
 * say nothing once the process is gone, and must be what a fresh open says (runQueueWaitNs). An open
 * refused for want of a descriptor is tried again by a later read (the old per-read open did so).
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { runQueueWaitNs, runQueueWaitReader } from '../../src/relay/start-gate.js';

const onLinux = process.platform === 'linux' ? test : test.skip;

/**
 * Three busy loops on this 2-core machine: each waits on a run queue, so its figure grows. `pid`: the
 * first's; `signal` signals them all; `end` kills them and resolves once all have exited.
 */
function busyLoops(): { pid: number; signal: (s: NodeJS.Signals) => void; end: () => Promise<void> } {
  const busy = [0, 1, 2].map(() => spawn('sh', ['-c', 'while :; do :; done']));
  const signal = (s: NodeJS.Signals): void => {
    for (const c of busy) c.kill(s);
  };
  return {
    pid: busy[0]!.pid!,
    signal,
    end: async () => {
      signal('SIGKILL');
      await Promise.all(busy.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r)))));
    },
  };
}

onLinux('one open schedstat is read afresh each time, agrees with a fresh open, and reads nothing once the process is gone', async () => {
  const busy = busyLoops();
  const pid = busy.pid;
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
    await busy.end();
  }
  await delay(50);
  expect(reader.read()).toBeUndefined();
  reader.close();
  reader.close(); // twice: nothing left to release, no throw
  expect(reader.read()).toBeUndefined();
  expect(runQueueWaitReader(pid).read()).toBeUndefined();
}, 20_000);

/** An open that fails with `code` the first `times` times, then opens as openSync does. */
function failingOpen(code: string, times: number): { open: (path: string) => number; calls: () => number } {
  let calls = 0;
  return {
    open: (path) => {
      calls++;
      if (calls <= times) throw Object.assign(new Error(`${code}: open '${path}'`), { code });
      return openSync(path, 'r');
    },
    calls: () => calls,
  };
}

onLinux('an open refused for want of a descriptor (EMFILE) is tried again by a later read, not given up for the run', () => {
  const o = failingOpen('EMFILE', 2);
  const reader = runQueueWaitReader(process.pid, o.open);
  try {
    expect(reader.read()).toBeUndefined(); // the open at the start and this read's both refused
    expect(reader.read()).toEqual(expect.any(Number));
    expect(reader.read()).toEqual(expect.any(Number));
    expect(o.calls()).toBe(3); // opened once it could be, then re-read: no open per read
  } finally {
    reader.close();
  }
  expect(reader.read()).toBeUndefined();
  expect(o.calls()).toBe(3);
});

onLinux('an open that failed because the process is gone (ENOENT) is not tried again; nor one after close', () => {
  const gone = failingOpen('ENOENT', 1);
  const reader = runQueueWaitReader(process.pid, gone.open);
  expect(reader.read()).toBeUndefined();
  expect(reader.read()).toBeUndefined();
  expect(gone.calls()).toBe(1); // never re-bound to whatever process has the pid later
  const closed = failingOpen('EMFILE', 1);
  const closedReader = runQueueWaitReader(process.pid, closed.open);
  closedReader.close();
  expect(closedReader.read()).toBeUndefined();
  expect(closed.calls()).toBe(1);
});

onLinux("the figure read is the run-queue wait (schedstat's second field), not the time run or the timeslices", async () => {
  // A busy loop that ran a while, then stopped (SIGSTOP): its schedstat no longer changes, so the
  // reader's figure must be exactly the second field of a fresh read.
  const busy = busyLoops();
  const pid = busy.pid;
  const reader = runQueueWaitReader(pid);
  try {
    await delay(300);
    busy.signal('SIGSTOP');
    await delay(50);
    const fields = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    expect(new Set(fields).size).toBe(3); // the three differ, so the field read is told apart
    expect(reader.read()).toBe(fields[1]);
    expect(runQueueWaitNs(pid)).toBe(fields[1]);
  } finally {
    reader.close();
    await busy.end();
  }
}, 20_000);
