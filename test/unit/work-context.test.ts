/**
 * The request id and the attempt deadline share one AsyncLocalStorage (src/lib/request-context.ts):
 * entering one must keep the other, as when they were two storages. A job's log lines inside an
 * intent step's attempt carry its request id; a token refresh run outside the attempt keeps the
 * request id but has no deadline and no prepaid token; a context entered inside an attempt keeps it.
 */
import { currentRequestId, withRequestId } from '../../src/lib/request-context.js';
import { attemptDeadline, outsideAttempt, takePrepaid, withAttemptDeadline } from '../../src/targets/attempt-deadline.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('an attempt keeps the request id, across awaits', async () => {
  const seen = await withRequestId('req_a', () =>
    withAttemptDeadline(1_000, async () => {
      await tick();
      return { id: currentRequestId(), deadline: attemptDeadline() };
    }),
  );
  expect(seen).toEqual({ id: 'req_a', deadline: 1_000 });
  expect(currentRequestId()).toBeUndefined();
  expect(attemptDeadline()).toBeUndefined();
});

test('outside an attempt: the request id stays, the deadline and the prepaid token do not', async () => {
  await withRequestId('req_b', () =>
    withAttemptDeadline(
      2_000,
      async () => {
        const inner = await outsideAttempt(async () => {
          await tick();
          return { id: currentRequestId(), deadline: attemptDeadline(), prepaid: takePrepaid('lim') };
        });
        expect(inner).toEqual({ id: 'req_b', deadline: undefined, prepaid: false });
        // back in the attempt: its deadline, and its prepaid token still unused (once)
        await tick();
        expect(attemptDeadline()).toBe(2_000);
        expect(takePrepaid('lim')).toBe(true);
        expect(takePrepaid('lim')).toBe(false);
      },
      'lim',
    ),
  );
});

test('a request id entered inside an attempt keeps the attempt; concurrent attempts keep their own', async () => {
  const run = (id: string, deadline: number): Promise<[string | undefined, number | undefined]> =>
    withAttemptDeadline(deadline, () =>
      withRequestId(id, async (): Promise<[string | undefined, number | undefined]> => {
        await tick();
        return [currentRequestId(), attemptDeadline()];
      }),
    );
  expect(await Promise.all([run('req_c', 3_000), run('req_d', 4_000)])).toEqual([
    ['req_c', 3_000],
    ['req_d', 4_000],
  ]);
});
