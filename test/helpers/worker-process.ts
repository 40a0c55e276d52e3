/** A worker role in its own OS process (tsx workers/mirror.ts), so a test can SIGKILL it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export interface WorkerProcess {
  proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
  output(): string;
}

/**
 * A test run under libfaketime (docs/testing.md, "Dates") passes its shifted clock on, so that the
 * processes it spawns agree with it on the time (else signatures are stale, heartbeats old).
 */
export const FAKE_CLOCK_ENV: Record<string, string> = Object.fromEntries(process.env['FAKETIME'] ? ['LD_PRELOAD', 'FAKETIME', 'FAKETIME_DONT_FAKE_MONOTONIC'].flatMap((k) => (process.env[k] ? [[k, process.env[k]] as const] : [])) : []);

export function spawnWorker(env: Record<string, string>, entry = 'workers/mirror.ts'): WorkerProcess {
  const root = resolve(import.meta.dirname ?? '.', '../..');
  const proc = spawn(process.execPath, ['--import', 'tsx', resolve(root, entry)], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...FAKE_CLOCK_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return {
    proc,
    output: () => out,
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((res) => {
        proc.once('exit', () => res());
        proc.kill(signal);
      });
    },
  };
}

/**
 * Runs at most `n` of the calls it wraps at once, the rest in turn: test files whose cases each start a
 * child under tsx (about 2.5 s of CPU before it does anything) run those cases side by side
 * (`test.concurrent`, CI time) without starving the children of a bound they are checked against
 * ("exits at once": killed after 12–15 s).
 */
export function atMost(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    else running += 1;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    }
  };
}
