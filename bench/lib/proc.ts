/**
 * Processes under test run apart from the load generator (which lives in the bench process): on a
 * 2-core machine an in-process server would share its event loop with autocannon and measure both.
 * Children are TypeScript entrypoints run with `node --import tsx`; bench/sut/* report readiness over
 * IPC, production entrypoints (workers/mirror.ts) are polled for readiness by the caller.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ENVIRONMENT_VARIABLES } from '../../src/config/config.js';
import { until } from './stats.js';

export interface Child<T = Record<string, unknown>> {
  name: string;
  proc: ChildProcess;
  /** What the child sent with its `ready` message (empty for production entrypoints). */
  info: T;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildOptions {
  name: string;
  env: Record<string, string>;
  /** Readiness: an IPC `{type:'ready'}` message (bench/sut/*) or a predicate polled by the parent. */
  ready: 'ipc' | (() => Promise<boolean>);
  readyTimeoutMs?: number;
  /** Write a V8 CPU profile to this directory on exit (BENCH_PROFILE=1). */
  profileDir?: string | undefined;
  /** Extra node options before the script (e.g. `--trace-gc`, which NODE_OPTIONS does not allow). */
  nodeArgs?: readonly string[];
}

/** The parent's environment minus anything the service would read as its configuration. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !ENVIRONMENT_VARIABLES.includes(k) && !k.startsWith('BARE_')) env[k] = v;
  return env;
}

const running = new Set<ChildProcess>();

/**
 * A process the bench started some other way (redis-server, ffmpeg, a CPU hog): killed with the
 * children on exit or on SIGINT/SIGTERM (bench/run.ts), so an interrupted run leaves none behind.
 */
export function track<P extends ChildProcess>(proc: P): P {
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  return proc;
}

const pidSources = new Set<() => (number | undefined)[]>();
/**
 * Processes a helper started and exposes by pid only (test/helpers/redis-cluster.ts: `pid()` is
 * undefined once a node stopped): killed on exit or on SIGINT/SIGTERM like the children.
 */
export function trackPids(pids: () => (number | undefined)[]): void {
  pidSources.add(pids);
}

/** Last resort (bench crashed or was interrupted): nothing we started may outlive us. */
export function killChildren(): void {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const source of pidSources) {
    for (const pid of source()) {
      try {
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}
process.once('exit', killChildren);

export async function startChild<T = Record<string, unknown>>(script: string, opts: ChildOptions): Promise<Child<T>> {
  const args: string[] = [];
  if (opts.profileDir) {
    // one directory per process: the tsx loader thread writes a profile of its own next to the main thread's
    const dir = join(opts.profileDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${opts.name}`);
    mkdirSync(dir, { recursive: true });
    args.push('--cpu-prof', '--cpu-prof-dir', dir);
  }
  args.push(...(opts.nodeArgs ?? []), '--import', 'tsx', resolve(script));
  const proc = spawn(process.execPath, args, { env: { ...baseEnv(), ...opts.env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  running.add(proc);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  void exited.then(() => running.delete(proc));
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  try {
    let info = {} as T;
    if (opts.ready === 'ipc') {
      info = await new Promise<T>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`${opts.name}: not ready after ${timeoutMs} ms`)), timeoutMs);
        proc.on('message', (m: unknown) => {
          if (m && typeof m === 'object' && (m as { type?: string }).type === 'ready') {
            clearTimeout(t);
            res(m as T);
          }
        });
        proc.once('exit', (code) => {
          clearTimeout(t);
          rej(new Error(`${opts.name} exited with ${code} before it was ready`));
        });
      });
    } else {
      const check = opts.ready;
      await until(`${opts.name} to be ready`, async () => {
        if (proc.exitCode !== null) throw new Error(`${opts.name} exited with ${proc.exitCode} before it was ready`);
        return check();
      }, timeoutMs, 50);
    }
    return { name: opts.name, proc, info, stop };
  } catch (err) {
    await stop(1000);
    throw err;
  }
}
