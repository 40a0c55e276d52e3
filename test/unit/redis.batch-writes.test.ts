import { Duplex } from 'node:stream';
import { batchWritesPerTick } from '../../src/store/redis.js';

/** A socket stand-in that records what each underlying write carried (one entry per write / writev call). */
function recordingSocket() {
  const writes: string[][] = [];
  const s = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writes.push([chunk.toString()]);
      cb();
    },
    writev(chunks: { chunk: Buffer }[], cb) {
      writes.push(chunks.map((c) => c.chunk.toString()));
      cb();
    },
  });
  batchWritesPerTick(s);
  return { s, writes };
}
const pass = (): Promise<void> => new Promise((r) => setTimeout(() => setImmediate(r), 5));

test('commands written by separate callbacks of one event-loop pass leave in one socket write, in order', async () => {
  const { s, writes } = recordingSocket();
  // Two callbacks of the same phase (like the replies of two jobs' commands read in one pass): each
  // runs its own ticks and microtasks before the next one starts.
  setTimeout(() => {
    s.write('a1');
    void Promise.resolve().then(() => s.write('a2'));
  }, 1);
  setTimeout(() => s.write('b1'), 1);
  await pass();
  expect(writes).toEqual([['a1', 'a2', 'b1']]);
});

test('nothing is held past the pass: a later pass writes again', async () => {
  const { s, writes } = recordingSocket();
  s.write('x');
  await pass();
  s.write('y');
  await pass();
  expect(writes).toEqual([['x'], ['y']]);
});
