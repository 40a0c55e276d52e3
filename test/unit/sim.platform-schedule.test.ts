/**
 * The simulators' timers (src/simulators/sim.platform.ts SimPlatform.schedule): a wait longer than a
 * Node timer keeps (2^31 − 1 ms) is waited out, not run after 1 ms as Node runs such a setTimeout.
 * Facebook's `maxLiveSec` of 30 days (PUT /_sim/facebook/limits) stopped a broadcast at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_TIMER, SimPlatform } from '../../src/simulators/sim.platform.js';

test('a wait past the longest timer is not run at once (Node would run it after 1 ms)', async () => {
  const sim = new SimPlatform('facebook');
  let ran = 0;
  sim.schedule(MAX_TIMER + 1_000, () => ran++);
  sim.schedule(30 * 86_400_000, () => ran++); // maxLiveSec of 30 days, in ms
  await sleep(60);
  expect(ran).toBe(0);
  sim.reset(); // cancels both
});

test('a long wait is waited out a longest timer at a time, and runs once when its whole wait is over', async () => {
  const sim = new SimPlatform('youtube', { maxTimerMs: 20 });
  const ranAt: number[] = [];
  const t0 = Date.now();
  sim.schedule(70, () => ranAt.push(Date.now() - t0)); // 20 + 20 + 20 + 10
  await sleep(40);
  expect(ranAt).toEqual([]);
  await sleep(150);
  expect(ranAt).toHaveLength(1);
  expect(ranAt[0]).toBeGreaterThanOrEqual(69);
});

test('a reset cancels a long wait between its timers', async () => {
  const sim = new SimPlatform('youtube', { maxTimerMs: 20 });
  let ran = 0;
  sim.schedule(60, () => ran++);
  await sleep(30); // the first timer has fired and armed the next
  sim.reset();
  await sleep(80);
  expect(ran).toBe(0);
});
