/**
 * The edge's takeover of a publish whose connection sent nothing for publishTakeoverMs (EDGE_SILENCE,
 * run in the edge's thread). Its silence was the clock now less when a 500 ms count last saw data: once
 * the edge's thread had stalled 5 s, the timer phase ran before the socket reads (the count saw no new
 * bytes) and a second publish on the key cut the primary encoder that had been sending all along
 * (review of 0e4f0b1, 2026-12-05). A count made late is no evidence of silence, silence is measured up
 * to the last count, and a fresh byte count at the decision outweighs it.
 */
import { EDGE_SILENCE } from '../../src/relay/ingest.edge.js';

type Seen = { bytes: number; at: number } | undefined;
const { noteCount, silentMs } = new Function(`${EDGE_SILENCE}; return { noteCount, silentMs };`)() as {
  noteCount: (seen: Seen, bytes: number, at: number, late: boolean) => NonNullable<Seen>;
  silentMs: (seen: Seen, bytesNow: number, lastCount: number) => number;
};
const TAKEOVER_MS = 5_000;

test('a stall of the edge thread is no silence: the count after it (socket not read yet) restarts it', () => {
  let seen = noteCount(undefined, 10_000, 0, false);
  seen = noteCount(seen, 20_000, 500, false); // sending
  // The thread stalls 6 s; the first count after it runs before the socket's reads: no new bytes.
  seen = noteCount(seen, 20_000, 6_500, true);
  // A second publish on the key, same loop turn, the socket still not read.
  expect(silentMs(seen, 20_000, 6_500)).toBeLessThan(TAKEOVER_MS);
});

test('bytes read since the last count (a fresh count at the decision) are data seen', () => {
  const seen = noteCount(undefined, 20_000, 0, false);
  expect(silentMs(seen, 20_000 + 4096, 6_000)).toBe(0);
});

test('an encoder that went silent (counts on time, no bytes) is silent from its last data to the last count', () => {
  let seen = noteCount(undefined, 20_000, 0, false);
  for (let at = 500; at <= 5_500; at += 500) seen = noteCount(seen, 20_100, at, false); // a ping answer, < 1 KiB
  expect(silentMs(seen, 20_100, 5_500)).toBeGreaterThanOrEqual(TAKEOVER_MS);
});
