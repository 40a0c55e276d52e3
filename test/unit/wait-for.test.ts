/**
 * The test harness's waitFor (test/helpers/service.ts): "not yet" errors are retried, but a failed
 * assertion inside the poll fails at once — otherwise a transient 500 asserted away inside a poll would
 * be retried until a later call happened to pass.
 */
import { waitFor } from '../helpers/service.js';

test('a failed expect inside the poll fails at once, on the first call', async () => {
  let calls = 0;
  const polled = waitFor(async () => {
    calls += 1;
    expect(calls).toBe(100);
    return true;
  }, 5000);
  await expect(polled).rejects.toHaveProperty('matcherResult');
  expect(calls).toBe(1);
});

test('other errors mean "not yet" and are retried', async () => {
  let calls = 0;
  const v = await waitFor(async () => {
    calls += 1;
    if (calls < 3) throw new Error('ECONNREFUSED');
    return calls;
  }, 5000, 1);
  expect(v).toBe(3);
});

test('a timeout names the last error', async () => {
  await expect(waitFor(async () => Promise.reject(new Error('still starting')), 50, 5)).rejects.toThrow(/timed out: Error: still starting/);
});
