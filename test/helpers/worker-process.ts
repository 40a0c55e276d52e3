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
