import { writeSync } from 'node:fs';
import { destination as pinoDestination, pino, type DestinationStream, type Logger } from 'pino';
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
  if (destination) return pino(opts, destination);
  // A process.stdout whose write was replaced (a test capturing it) is written to as such, as pino does.
  const stdoutReplaced = process.stdout.write !== (process.stdout.constructor.prototype as NodeJS.WriteStream).write;
  return stdoutReplaced ? pino(opts) : pino(opts, stdoutDestination());
}

/**
 * How long the flush of the log lines still buffered when the process exits may retry writing them to
 * a stdout that does not take them (a reader that is alive but does not read: a full pipe).
 */
export const EXIT_FLUSH_MS = 1_000;

/** What flushSync needs of sonic-boom 4's state (the stream pino.destination returns). */
interface SonicBoomState {
  fd: number;
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
 */
function stdoutDestination(): DestinationStream {
  // (In a worker thread process.stdout.fd is undefined: fd 1, as pino assumes.)
  const stream = pinoDestination({ dest: process.stdout.fd ?? 1, sync: false });
  const state = stream as unknown as SonicBoomState;
  state.flushSync = () => flushBounded(state, EXIT_FLUSH_MS);
  return stream;
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
