/**
 * The kernel's parent-death signal for a child process (Linux, util-linux `setpriv --pdeathsig`): the
 * child is started as `setpriv --pdeathsig <signal> -- <command> …`, which sets the signal and execs the
 * command in its own place (same pid), so the child gets the signal when this process dies however it
 * dies (SIGKILL, OOM, an exit without the graceful shutdown).
 */
import { spawnSync } from 'node:child_process';

let available: boolean | undefined;
/** Whether `setpriv --pdeathsig` is available here (probed once). */
export function hasPdeathsig(): boolean {
  if (available === undefined) {
    if (process.platform !== 'linux') available = false;
    else {
      const r = spawnSync('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 });
      available = r.error === undefined && r.status === 0;
    }
  }
  return available;
}

/** `command args` to spawn so that the child gets `signal` when this process dies (as is where setpriv is missing). */
export function withPdeathsig(signal: 'SIGKILL' | 'SIGTERM', command: string, args: string[]): { command: string; args: string[] } {
  return hasPdeathsig() ? { command: 'setpriv', args: ['--pdeathsig', signal, '--', command, ...args] } : { command, args };
}
