/**
 * A pino logger at `level` (info by default) whose lines are collected, parsed, in `lines` (tests look
 * for a line by its `msg`); `L` is the shape the test reads.
 */
import pino from 'pino';

export function logSink<L = Record<string, unknown>>(level: pino.Level = 'info'): { log: pino.Logger; lines: L[] } {
  const lines: L[] = [];
  const log = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as L) });
  return { log, lines };
}
