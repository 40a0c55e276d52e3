/**
 * One ffmpeg child that copies a stream from `input` to `output` (`-c copy`, FLV over RTMP) and
 * reports its progress (`-progress pipe:1`). On Linux the child is started through util-linux
 * `setpriv --pdeathsig SIGKILL`, so the kernel kills it when the relay process dies, even by SIGKILL:
 * a crashed relay leaves no orphan still pushing to a platform while another process takes over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { withPdeathsig } from '../lib/pdeathsig.js';
import { maskSecrets } from './mask.js';

export interface FfmpegProgress {
  totalBytes: number;
  bitrateKbps: number;
  outTimeUs: number;
}

export interface FfmpegRun {
  readonly pid: number | undefined;
  /** Resolves with the exit code (null when killed by a signal) and the last lines ffmpeg wrote, masked. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; tail: string }>;
  kill(signal?: NodeJS.Signals): void;
}

/** The ffmpeg arguments of one copy relay (exported for tests and the masked debug log). */
export function copyArgs(
  input: string,
  output: string,
  opts: { rwTimeoutUs?: number; outputTimeoutUs?: number; realtime?: boolean; inputTimeout?: boolean; inputArgs?: string[] } = {},
): string[] {
  const rw = String(opts.rwTimeoutUs ?? 5_000_000);
  // The output's own timeout: how long one write may wait for the destination to take bytes. A
  // destination that reads slowly makes ffmpeg wait for a third of its socket's send buffer to free
  // up before each write (measured: 5.4 s between writes at 20 KB/s), so the input's 5 s would kill
  // a push that is still moving; the relay's watchdog tells a slow receiver from a dead one instead.
  const outRw = String(opts.outputTimeoutUs ?? opts.rwTimeoutUs ?? 5_000_000);
  const isNetInput = /^(rtmps?|srt):/i.test(input);
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    ...(isNetInput && opts.inputTimeout !== false ? ['-rw_timeout', rw] : []),
    ...(opts.realtime ? ['-re'] : []),
    '-fflags',
    '+nobuffer',
    // No frame-rate estimation from the packets: ffmpeg otherwise reads ~1.3 s of an RTMP input
    // before it opens the output (measured: publish → first byte 1.5 s with it, 0.3 s without). A
    // copy needs no frame rate, and an FLV stream states its own (onMetaData). HLS keeps the default.
    ...(/^rtmps?:/i.test(input) ? ['-fpsprobesize', '0'] : []),
    ...(opts.inputArgs ?? []),
    '-i',
    input,
    '-map',
    '0:v?',
    '-map',
    '0:a?',
    '-c',
    'copy',
    // Write each packet as it comes (no interleaving buffer): a platform sees no start-up lull.
    '-max_interleave_delta',
    '0',
    '-flush_packets',
    '1',
    '-rw_timeout',
    outRw,
    '-f',
    'flv',
    '-flvflags',
    'no_duration_filesize',
    '-progress',
    'pipe:1',
    '-nostats',
    output,
  ];
}

export function startFfmpeg(
  ffmpeg: string,
  args: string[],
  secrets: string[],
  onProgress: (p: FfmpegProgress) => void,
): FfmpegRun {
  const { command: cmd, args: argv } = withPdeathsig('SIGKILL', ffmpeg, args);
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // spawn() throws at once for arguments it cannot pass (a NUL byte in a stream key, say): a run
    // that exited at once, like a spawn error, never an exception out of the caller's async start.
    // Node's message quotes the argument: masked like every line of ffmpeg's.
    const tail = maskSecrets(`cannot start ffmpeg: ${(err as Error).message}`, secrets);
    return { pid: undefined, exited: Promise.resolve({ code: -1, signal: null, tail }), kill() {} };
  }
  const tail: string[] = [];
  let errBuf = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    errBuf += chunk;
    const lines = errBuf.split('\n');
    errBuf = lines.pop() ?? '';
    for (const l of lines) {
      if (!l.trim()) continue;
      tail.push(maskSecrets(l.trim(), secrets));
      if (tail.length > 5) tail.shift();
    }
  });
  let outBuf = '';
  let cur: Partial<FfmpegProgress> = {};
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    outBuf += chunk;
    const lines = outBuf.split('\n');
    outBuf = lines.pop() ?? '';
    for (const line of lines) {
      const eq = line.indexOf('=');
      if (eq < 0) continue;
      const k = line.slice(0, eq).trim();
      const v = line.slice(eq + 1).trim();
      if (k === 'total_size') cur.totalBytes = Number(v) || 0;
      else if (k === 'bitrate') cur.bitrateKbps = Number.parseFloat(v) || 0;
      else if (k === 'out_time_us') cur.outTimeUs = Number(v) || 0;
      else if (k === 'progress') {
        onProgress({ totalBytes: cur.totalBytes ?? 0, bitrateKbps: cur.bitrateKbps ?? 0, outTimeUs: cur.outTimeUs ?? 0 });
        cur = {};
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; tail: string }>((resolve) => {
    child.once('error', (err) => {
      tail.push(maskSecrets(err.message, secrets));
      resolve({ code: -1, signal: null, tail: tail.join(' | ') });
    });
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (errBuf.trim()) tail.push(maskSecrets(errBuf.trim(), secrets));
      errBuf = '';
      resolve({ code, signal, tail: tail.slice(-3).join(' | ') });
    };
    child.once('close', done);
    // 'close' waits for the pipes too; the process is gone at 'exit'. Never wait on pipes for ever
    // (a stop that never resolves would hold the relay's whole pass, and every other show's stop).
    child.once('exit', (code, signal) => setTimeout(() => done(code, signal), 1000).unref());
  });
  return {
    pid: child.pid,
    exited,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
