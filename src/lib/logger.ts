import { pino, type Logger } from 'pino';

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

export function createLogger(level: string, name = 'syndicast'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
