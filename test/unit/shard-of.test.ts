import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { shardOf } from '../../src/queues/queues.js';

/** The shard as the dispatcher computed it before the one-shot hash: a job already queued stays where its show's syncs go. */
function reference(partnerId: string, showId: string, shards: number): number {
  return createHash('sha1').update(`${partnerId}\u0000${showId}`).digest().readUInt32BE(0) % shards;
}

test('shardOf: the first 32 bits of SHA-1(partner NUL show) mod shards, for any ids (full Unicode) and shard count', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.integer({ min: 1, max: 1024 }), (p, s, n) => shardOf(p, s, n) === reference(p, s, n)),
    { numRuns: 2000 },
  );
});

test('shardOf: known placements (ids with ":", non-ASCII, a top bit set) do not move', () => {
  // 4274970019 (≥ 2^31: a signed read would go negative), 1901279134, 2785346109, 1366648410
  expect(shardOf('bench', 'ab1-s0', 8)).toBe(3);
  expect(shardOf('p', 'show', 8)).toBe(6);
  expect(shardOf('partner-x', 'x:y', 3)).toBe(0);
  expect(shardOf('é', 'ü🎉', 8)).toBe(2);
  expect(shardOf('bench', 'ab1-s0', 2 ** 32)).toBe(4274970019);
});
