/** A pino logger at info whose lines are collected, parsed, in `lines` (tests look for a line by its `msg`). */
import pino from 'pino';

export function logSink(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}
