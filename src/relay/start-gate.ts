/**
 * Restart-storm guard of the relay (docs/benchmarks.md "Video relay", restart storm): a process-wide
 * limit on how many ffmpeg children may be *starting* at the same time.
 *
 * Starting ffmpeg is the expensive part of a relay's life on a small machine (Debian's ffmpeg links
 * ~200 shared libraries: ~0.2–0.3 s of CPU in the dynamic loader per start, against well under 1 % of
 * a core per second for a running `-c copy`). Under CPU saturation every restart made more starts
 * slower, the slow ones were judged stalled and restarted, and the storm fed itself. With the gate a
 * start waits for a slot (first starts ahead of restarts after a failure, each kind in arrival
 * order: every destination gets its turn), so a burst of restarts costs at most `concurrency`
 * start-ups at a time and the CPU left keeps the running streams going. A start whose show is
 * publishing (`urgent`, asked when a slot frees) goes ahead of all that: readers armed ahead of a
 * publish that may never come (a live show nobody sends video to) wait behind a show whose viewers
 * wait now (150 such shows' 300 starts held another partner's publishing show for 75 s).
 *
 * A slot is held from the spawn until the child has *started up*: it reported progress, it exited,
 * or it has been seen sleeping (state `S`, waiting for I/O: loaded and blocked on its input or on the
 * network) on two polls in a row. A child that is runnable but not getting the CPU (state `R`) keeps
 * its slot, so the harder the machine is saturated, the slower starts are let through. `maxHoldMs`
 * bounds the hold (a process stuck in an odd state never wedges the gate); where /proc is not
 * available the slot is held for `fallbackHoldMs`.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import type { Logger } from 'pino';

export interface StartSlot {
  /** The child is spawned: watch it and release the slot once it has started up. */
  started(pid: number | undefined): void;
  /** Release now (progress seen, the child exited, or the start was abandoned). Idempotent. */
  release(): void;
}

export interface StartGateOptions {
  /** Starts in flight at once (RELAY_START_CONCURRENCY). */
  concurrency: number;
  log?: Logger;
  /** How often a starting child's state is read from /proc. */
  pollMs?: number;
  /** Longest a slot is held. */
  maxHoldMs?: number;
  /** Hold without /proc (not Linux). */
  fallbackHoldMs?: number;
  /** Reads a process's state letter (`R`, `S`, `D`, …); undefined: gone or unknown. Tests may replace it. */
  procState?: (pid: number) => string | undefined;
}

/** The state letter from /proc/{pid}/stat (the field after the parenthesised command name). */
export function procStateOf(pid: number): string | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) || undefined;
  } catch {
    return undefined;
  }
}

/** How long this process waited on a run queue for a CPU, ns (/proc/{pid}/schedstat field 2); undefined when unknown. */
export function runQueueWaitNs(pid: number): number | undefined {
  const reader = runQueueWaitReader(pid);
  try {
    return reader.read();
  } finally {
    reader.close();
  }
}

/** Open failures that say nothing about the process (no descriptor or memory free just then): tried again. */
const OPEN_AGAIN = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', 'EINTR']);

/**
 * runQueueWaitNs for one process, read again and again (a watchdog's every tick): /proc/{pid}/schedstat
 * opened once and re-read from offset 0 (the kernel writes it anew on each read from 0), one pread per
 * read instead of open, fstat, read and close (measured ≈ 1.8 µs against 8.4 per read). The file stays
 * bound to that process, never to a later one given its pid; it reads undefined once the process is
 * gone. An open that failed for want of a descriptor or memory (EMFILE, ENFILE, ENOMEM, EAGAIN, EINTR)
 * is tried again by the next read, as the per-read open before it was: one busy moment does not leave
 * a run without its run-queue wait for its life. Any other failure (ENOENT: the process is gone) is
 * final. `close()` when done with it (undefined after). `open` is openSync's read-only open (tests
 * give one that fails).
 */
export function runQueueWaitReader(
  pid: number,
  open: (path: string) => number = (path) => openSync(path, 'r'),
): { read(): number | undefined; close(): void } {
  const path = `/proc/${pid}/schedstat`;
  let fd: number | undefined;
  /** The last open failed for a reason that passes (OPEN_AGAIN): the next read opens again. */
  let openAgain = false;
  const tryOpen = (): void => {
    try {
      fd = open(path);
      openAgain = false;
    } catch (err) {
      fd = undefined;
      openAgain = OPEN_AGAIN.has((err as NodeJS.ErrnoException).code ?? '');
    }
  };
  tryOpen();
  const buf = Buffer.allocUnsafe(128);
  return {
    read() {
      if (fd === undefined && openAgain) tryOpen();
      if (fd === undefined) return undefined;
      try {
        const f = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0)).trim().split(/\s+/);
        const v = Number(f[1]);
        return Number.isFinite(v) ? v : undefined;
      } catch {
        return undefined;
      }
    },
    close() {
      openAgain = false;
      if (fd === undefined) return;
      try {
        closeSync(fd);
      } catch {
        // already closed: nothing to release
      }
      fd = undefined;
    },
  };
}

const HAS_PROC = process.platform === 'linux' && procStateOf(process.pid) !== undefined;

interface Waiter {
  grant: (slot: StartSlot) => void;
  urgent?: () => boolean;
}

/** Removes and returns the first waiter of `queue` whose start is urgent now. */
function takeUrgent(queue: Waiter[]): Waiter | undefined {
  const i = queue.findIndex((w) => w.urgent?.() === true);
  return i < 0 ? undefined : queue.splice(i, 1)[0];
}

export class StartGate {
  private active = 0;
  /** Waiting first starts (a new destination, a puller) and restarts after a failure, each in arrival order. */
  private readonly firsts: Waiter[] = [];
  private readonly retries: Waiter[] = [];
  private peakActive = 0;
  private grantedTotal = 0;
  private lastQueueLog = 0;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly maxHoldMs: number;
  private readonly fallbackHoldMs: number;
  private readonly procState: (pid: number) => string | undefined;

  constructor(private readonly opts: StartGateOptions) {
    this.concurrency = Math.max(1, Math.floor(opts.concurrency));
    this.pollMs = opts.pollMs ?? 50;
    this.maxHoldMs = opts.maxHoldMs ?? 10_000;
    this.fallbackHoldMs = opts.fallbackHoldMs ?? 500;
    this.procState = opts.procState ?? procStateOf;
  }

  /** Starts in flight now. */
  get inFlight(): number {
    return this.active;
  }

  /** Starts waiting for a slot now. */
  get queued(): number {
    return this.firsts.length + this.retries.length;
  }

  /** Most starts ever in flight at once (never above `concurrency`). */
  get peak(): number {
    return this.peakActive;
  }

  /** Slots handed out so far. */
  get granted(): number {
    return this.grantedTotal;
  }

  /**
   * Resolves with a slot once fewer than `concurrency` starts are in flight. First starts (a new
   * destination, a puller) go ahead of restarts after a failure; each kind first come, first served.
   * Destinations failing against a dead ingest retry for as long as it is down: without the order a
   * new show's readers would queue behind them and could miss the first seconds of its publish.
   * `urgent` (asked each time a slot frees: it may turn true while the start waits): its show's stream
   * is publishing; such starts go first (first starts, then restarts), ahead of any start that waits
   * for a publish not begun.
   */
  acquire(kind: 'first' | 'retry' = 'first', urgent?: () => boolean): Promise<StartSlot> {
    return new Promise<StartSlot>((resolve) => {
      (kind === 'retry' ? this.retries : this.firsts).push({ grant: resolve, urgent });
      this.pump();
      const now = Date.now();
      if (this.queued > 0 && now - this.lastQueueLog > 5_000) {
        this.lastQueueLog = now;
        this.opts.log?.info({ inFlight: this.active, queued: this.queued, retriesQueued: this.retries.length, concurrency: this.concurrency }, 'relay ffmpeg starts queued behind the start limit');
      }
    });
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queued > 0) {
      const grant = (takeUrgent(this.firsts) ?? takeUrgent(this.retries) ?? this.firsts.shift() ?? this.retries.shift())!.grant;
      this.active += 1;
      this.grantedTotal += 1;
      this.peakActive = Math.max(this.peakActive, this.active);
      grant(this.slot());
    }
  }

  private slot(): StartSlot {
    let done = false;
    let poll: NodeJS.Timeout | undefined;
    let cap: NodeJS.Timeout | undefined;
    const release = (): void => {
      if (done) return;
      done = true;
      if (poll) clearInterval(poll);
      if (cap) clearTimeout(cap);
      this.active -= 1;
      this.pump();
    };
    return {
      release,
      started: (pid) => {
        if (done) return;
        cap = setTimeout(release, HAS_PROC || this.opts.procState ? this.maxHoldMs : this.fallbackHoldMs);
        cap.unref();
        if (pid === undefined || (!HAS_PROC && !this.opts.procState)) return;
        let sleeping = 0;
        poll = setInterval(() => {
          const st = this.procState(pid);
          if (st === undefined || st === 'Z' || st === 'X') return release(); // gone
          sleeping = st === 'S' ? sleeping + 1 : 0;
          if (sleeping >= 2) release();
        }, this.pollMs);
        poll.unref();
      },
    };
  }
}
