/**
 * Whether a destination is still taking bytes while ffmpeg reports no progress. A destination that
 * reads slowly keeps ffmpeg's output socket full: ffmpeg then waits for the socket to become
 * writable (which Linux signals only once a third of the send buffer is free) and its `total_size`
 * stands still for seconds, although the receiver reads all along. What does move is the socket's
 * send queue (`tx_queue` in /proc/net/tcp: bytes written but not yet acknowledged by the receiver):
 * it shrinks whenever the receiver reads. A dead or frozen receiver leaves it where it is.
 *
 * Read only while a run is silent (never on the healthy path), and /proc/net/tcp is read at most
 * once per SHARED_READ_MS for every supervisor of the process together.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { procStateOf } from './start-gate.js';

const SHARED_READ_MS = 200;
/** One TCP socket's queues: bytes sent but not acknowledged (`tx`), received but not yet read (`rx`), and its remote port. */
export interface SocketQueues {
  tx: number;
  rx: number;
  remotePort: number;
}
let cache: { at: number; sockets: Map<number, SocketQueues> } | undefined;

/**
 * The rows of /proc/net/tcp and /proc/net/tcp6 (every TCP socket of this network namespace), each
 * split into its columns: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
 * timeout inode …`. A file that cannot be read gives no rows.
 */
export function procTcpRows(): string[][] {
  const rows: string[][] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) rows.push(line.trim().split(/\s+/));
  }
  return rows;
}

/** The queues of every TCP socket of this network namespace, by socket inode. */
function allSockets(now: number): Map<number, SocketQueues> {
  if (cache && now - cache.at < SHARED_READ_MS) return cache.sockets;
  const sockets = new Map<number, SocketQueues>();
  for (const cols of procTcpRows()) {
    const queues = cols[4];
    const inode = Number(cols[9]);
    if (!queues || !Number.isFinite(inode) || inode === 0) continue;
    const [tx = '0', rx = '0'] = queues.split(':');
    const remotePort = Number.parseInt(cols[2]?.split(':')[1] ?? '0', 16) || 0;
    sockets.set(inode, { tx: Number.parseInt(tx, 16) || 0, rx: Number.parseInt(rx, 16) || 0, remotePort });
  }
  cache = { at: now, sockets };
  return sockets;
}

/** The socket inodes a process holds open; undefined when it is gone or not ours to read. */
function socketInodes(pid: number): number[] | undefined {
  try {
    const out: number[] = [];
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) out.push(Number(m[1]));
    }
    return out;
  } catch {
    return undefined;
  }
}

/** A process's TCP sockets (inode → queues); undefined where unknown. */
export function socketsOf(pid: number, now = Date.now()): Map<number, SocketQueues> | undefined {
  const inodes = socketInodes(pid);
  if (!inodes) return undefined;
  const all = allSockets(now);
  const out = new Map<number, SocketQueues>();
  for (const i of inodes) {
    const q = all.get(i);
    if (q !== undefined) out.set(i, q);
  }
  return out;
}

/** The send queues of a process's TCP sockets (inode → unacknowledged bytes); undefined where unknown. */
export function sendQueuesOf(pid: number, now = Date.now()): Map<number, number> | undefined {
  const sockets = socketsOf(pid, now);
  return sockets && new Map([...sockets].map(([inode, q]) => [inode, q.tx]));
}

/**
 * Whether a silent process is waiting on its input: it sleeps (`S` in /proc/{pid}/stat), its socket to
 * `inputPort` holds nothing it has not read, and none of its sockets holds bytes its receiver has not
 * taken. Such a process has nothing to do until its input sends: a silence that is its input's, not its
 * destination's nor its own (a stopped process does not sleep, one with unread input or held up by its
 * receiver has bytes queued). Undefined where /proc cannot tell, and for a runnable (`R`) process whose
 * sockets are idle: ffmpeg waiting on its input still wakes every 100 ms or so (its read polls with a
 * timeout to check for interrupts), and on a starved machine it then waits on the run queue, so one
 * sample can find it runnable in the middle of a wait on its input. So is a process in an
 * uninterruptible wait (`D`, a disk write: a file output on a busy disk) whose sockets are idle. The
 * caller keeps its last definite answer for such a sample.
 */
export function waitsOnInput(pid: number, inputPort: number, minBytes = 1024, now = Date.now()): boolean | undefined {
  const state = procStateOf(pid);
  if (state === undefined) return undefined;
  if (state !== 'S' && state !== 'R' && state !== 'D') return false;
  const sockets = socketsOf(pid, now);
  if (!sockets) return undefined;
  const queues = [...sockets.values()];
  // Every socket to that port (a destination may listen on the same port number as the edge, 1935).
  const inputs = queues.filter((q) => q.remotePort === inputPort);
  const idle = inputs.length > 0 && inputs.every((q) => q.rx < minBytes) && queues.every((q) => q.tx < minBytes);
  if (!idle) return false;
  return state === 'S' ? true : undefined;
}

/**
 * Bytes a receiver took between two samples: the largest shrink of one socket's send queue (a
 * socket the process no longer holds counts nothing). Shrinks below `minBytes` are ignored (the
 * relay's input socket only ever carries a few bytes of RTMP acknowledgements out).
 */
export function drainedBytes(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>, minBytes = 1024): number {
  let best = 0;
  for (const [inode, q] of after) {
    const was = before.get(inode);
    if (was !== undefined && was - q >= minBytes) best = Math.max(best, was - q);
  }
  return best;
}

/** Bytes a process's TCP sockets hold that the receiver has not acknowledged (the largest queue). */
export function heldBytes(q: ReadonlyMap<number, number> | undefined): number {
  return q ? Math.max(0, ...q.values()) : 0;
}
