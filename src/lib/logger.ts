import { pino, type DestinationStream, type Logger } from 'pino';
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
  return destination ? pino(opts, destination) : pino(opts);
}
