import { TurnBatcher } from '../../src/lib/turn-batcher.js';

/** A batcher whose calls are answered by hand, recording each call's batch. */
function harness(maxPerCall: number, maxInFlight: number) {
  const calls: { batch: number[]; answer: () => void; refuse: (e: Error) => void }[] = [];
  const got: string[] = [];
  const b = new TurnBatcher<number, number[]>({
    maxPerCall,
    maxInFlight,
    send: (batch) => new Promise<number[]>((resolve, reject) => calls.push({ batch, answer: () => resolve(batch.map((x) => x * 10)), refuse: reject })),
    deliver: (batch, reply) => batch.forEach((x, i) => got.push(`${x}=${reply[i]}`)),
    fail: (batch, err) => batch.forEach((x) => got.push(`${x}!${err instanceof Error ? err.message : String(err)}`)),
  });
  return { b, calls, got };
}
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the requests of one turn leave together at its end, in calls of at most maxPerCall', async () => {
  const h = harness(2, 1);
  for (const x of [1, 2, 3]) h.b.add(x);
  expect(h.calls).toEqual([]);
  await turn();
  expect(h.calls.map((c) => c.batch)).toEqual([[1, 2], [3]]);
  h.calls.forEach((c) => c.answer());
  await turn();
  expect(h.got).toEqual(['1=10', '2=20', '3=30']);
});

test('while maxInFlight calls wait, new requests gather and leave when a reply is in', async () => {
  const h = harness(10, 1);
  h.b.add(1);
  await turn();
  h.b.add(2);
  h.b.add(3);
  await turn();
  expect(h.calls.map((c) => c.batch)).toEqual([[1]]);
  h.calls[0]!.answer();
  await turn();
  expect(h.calls.map((c) => c.batch)).toEqual([[1], [2, 3]]);
  h.calls[1]!.refuse(new Error('down'));
  await turn();
  expect(h.got).toEqual(['1=10', '2!down', '3!down']);
});

test('with two calls allowed in flight, a second turn does not wait for the first reply', async () => {
  const h = harness(10, 2);
  h.b.add(1);
  await turn();
  h.b.add(2);
  await turn();
  h.b.add(3);
  await turn();
  expect(h.calls.map((c) => c.batch)).toEqual([[1], [2]]);
  h.calls[0]!.answer();
  await turn();
  expect(h.calls.map((c) => c.batch)).toEqual([[1], [2], [3]]);
});
