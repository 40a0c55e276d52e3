import { writeSync } from 'node:fs';
import { destination as pinoDestination, pino, type DestinationStream, type Logger } from 'pino';
import { logLinesDropped } from './metrics.js';
import { currentRequestId } from './request-context.js';

/** Paths whose values never reach a log line (credentials, tokens, signatures, buyer data). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["webhook-signature"]',
  'headers.authorization',
  '*.credentials',
  '*.accessToken',
  '*.refreshToken',
  '*.secret',
  '*.webhookSecret',
  '*.key',
  'credentials',
  'secret',
];

export function createLogger(level: string, name = 'syndicast', destination?: DestinationStream): Logger {
  const opts = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // The request id of the HTTP request or job this line is written for (src/lib/request-context.ts).
    mixin: () => {
      const requestId = currentRequestId();
      return requestId ? { requestId } : {};
    },
  };
  return pino(opts, destination ?? stdoutStream());
}

/**
 * Where the process's loggers write stdout: createLogger's and the API's (Fastify's logger, src/api/app.ts).
 * One stream for the process (stdoutDestination), so that its lines keep their order and share one cap; a
 * process.stdout whose write was replaced (a test capturing it) is written to as such, as pino does.
 */
export function stdoutStream(): DestinationStream {
  const stdoutReplaced = process.stdout.write !== (process.stdout.constructor.prototype as NodeJS.WriteStream).write;
  if (stdoutReplaced) return process.stdout;
  shared ??= stdoutDestination();
  return shared;
}

let shared: DestinationStream | undefined;

/**
 * The most bytes of log lines held in memory for a stdout that does not take them as fast as they are
 * logged (a reader alive that does not read: `npm start | slow-consumer`, a stuck log shipper, a
 * terminal paused with Ctrl-S). The lines logged over it are dropped and counted (reportDrops).
 */
export const STDOUT_BUFFER_MAX_BYTES = 16 * 1024 * 1024;

/**
 * How long the flush of the log lines still buffered when the process exits may retry writing them to
 * a stdout that does not take them (a reader that is alive but does not read: a full pipe).
 */
export const EXIT_FLUSH_MS = 1_000;

/** What flushSync needs of sonic-boom 4's state (the stream pino.destination returns). */
interface SonicBoomState {
  fd: number;
  maxLength: number;
  _writing: boolean;
  _writingBuf: string | Buffer;
  _bufs: (string | Buffer)[];
  _len: number;
  flushSync(): void;
}

/**
 * stdout as pino's default destination (an asynchronous sonic-boom on fd 1, flushed synchronously when
 * the process exits), with that exit flush bounded. sonic-boom 4's flushSync retries every write error
 * for ever, 100 ms apart: EPIPE (the reader of stdout gone: a killed log pipe, `npm start | tee` with tee
 * gone, the orphan of a killed parent) and EAGAIN (a reader that does not read). Lines logged just
 * before process.exit are still buffered, so a process whose log reader had gone hung in its 'exit'
 * event for ever after a clean shutdown, blocked synchronously (SHUTDOWN_TIMEOUT_MS's timer could not
 * fire; only SIGKILL ended it). Here the buffered lines are written as before, but a write error other
 * than EAGAIN drops them and EAGAIN is retried until the reader has taken nothing for EXIT_FLUSH_MS.
 * (`process.stdout.fd`, as pino's default, makes a pipe or socket on fd 1 non-blocking: a full pipe
 * answers EAGAIN rather than blocking the write in the kernel.)
 *
 * While the process runs, sonic-boom keeps what stdout does not take in memory and retries EAGAIN every
 * 100 ms for as long as the reader does not read: without a bound a busy process (every request logged
 * at info, every hostile one at warn) grew by all it logged until it was OOM-killed. Its buffer is capped
 * at STDOUT_BUFFER_MAX_BYTES (sonic-boom's maxLength: a line that would take it over is dropped whole and
 * emitted as 'drop'), and the loss is reported (reportDrops).
 */
function stdoutDestination(): DestinationStream {
  // (In a worker thread process.stdout.fd is undefined: fd 1, as pino assumes.)
  const stream = pinoDestination({ dest: process.stdout.fd ?? 1, sync: false, maxLength: STDOUT_BUFFER_MAX_BYTES });
  const state = stream as unknown as SonicBoomState;
  state.flushSync = () => flushBounded(state, EXIT_FLUSH_MS);
  reportDrops(stream, state);
  return stream;
}

/**
 * Counts the lines the cap dropped (syndicast_log_lines_dropped_total, as they are dropped) and, once
 * stdout takes lines again and the buffer is down to half the cap (room for the report), logs at warn
 * `N log lines dropped while stdout was not read` with `droppedLines` and `droppedBytes`. Nothing here
 * waits: the report is written by the same asynchronous stream, after the write that freed the room.
 */
function reportDrops(stream: DestinationStream, state: SonicBoomState): void {
  const emitter = stream as unknown as NodeJS.EventEmitter;
  const report = pino({ name: 'syndicast', level: 'warn' }, stream);
  let lines = 0;
  let bytes = 0;
  let scheduled = false;
  emitter.on('drop', (line: string | Buffer) => {
    lines++;
    bytes += Buffer.byteLength(line);
    logLinesDropped.inc();
  });
  emitter.on('write', () => {
    if (lines === 0 || scheduled || state._len > state.maxLength / 2) return;
    scheduled = true;
    // Not from inside sonic-boom's write callback: the next turn of the loop.
    setImmediate(() => {
      scheduled = false;
      const droppedLines = lines;
      const droppedBytes = bytes;
      lines = 0;
      bytes = 0;
      report.warn({ droppedLines, droppedBytes }, `${droppedLines} log lines dropped while stdout was not read`);
    });
  });
}

function flushBounded(state: SonicBoomState, boundMs: number): void {
  // An asynchronous write in flight (_writing) keeps its _writingBuf: it may still complete.
  // (A partly written buffer is a Buffer: joined as bytes, so a character split at the cut stays whole.)
  const pending = [state._writing ? '' : state._writingBuf, ...state._bufs].map((b) => (typeof b === 'string' ? Buffer.from(b) : b));
  if (!state._writing) state._writingBuf = '';
  state._bufs = [];
  state._len = state._writing ? Buffer.byteLength(state._writingBuf) : 0;
  let buf = Buffer.concat(pending);
  // The bound is on a stall, not on the whole flush: a slow reader that keeps taking bytes gets them all.
  let giveUpAt = Date.now() + boundMs;
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(state.fd, buf));
      giveUpAt = Date.now() + boundMs;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'EAGAIN' && code !== 'EBUSY') || Date.now() >= giveUpAt) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
