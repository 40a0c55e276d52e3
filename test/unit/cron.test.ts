/**
 * The one reading of a partner's reconcileCron (src/lib/cron.ts): the partner routes' validation, the
 * scheduler's check of a pending tick and the catch-up run's latest tick. The catch-up run's id is the
 * id BullMQ gives the same tick, so its ticks must be BullMQ's: compared here with BullMQ's own
 * (its bundled cron-parser, another major version than ours).
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultRepeatStrategy } from 'bullmq';
import { CRON_TZ, cronRefusal, cronTimes, latestTick, nextTick, readByBullmq } from '../../src/lib/cron.js';

const at = (iso: string): number => Date.parse(iso);

test('next is strictly after, latest is at or before, both in UTC', () => {
  expect(nextTick('0 3 * * *', at('2026-03-01T03:00:00.000Z'))).toBe(at('2026-03-02T03:00:00.000Z'));
  expect(nextTick('0 3 * * *', at('2026-03-01T02:59:59.999Z'))).toBe(at('2026-03-01T03:00:00.000Z'));
  expect(latestTick('0 3 * * *', at('2026-03-01T03:00:00.000Z'))).toBe(at('2026-03-01T03:00:00.000Z'));
  expect(latestTick('0 3 * * *', at('2026-03-01T02:59:59.999Z'))).toBe(at('2026-02-28T03:00:00.000Z'));
  expect(latestTick('0 3 L * *', at('2028-03-10T00:00:00.000Z'))).toBe(at('2028-02-29T03:00:00.000Z'));
});

test('the minutes and hours an expression fires at; null for one it cannot read', () => {
  expect(cronTimes('*/15 2,14 * * *')).toEqual({ minutes: [0, 15, 30, 45], hours: [2, 14] });
  for (const bad of ['not a cron', '61 3 * * *', '0 25 * * *', '0 3 * * * * *', 'H 3 * * *', '0 H * * *', '0 0 31 2,4 *']) {
    expect(cronTimes(bad)).toBeNull();
    expect(nextTick(bad, Date.now())).toBeNull();
    expect(latestTick(bad, Date.now())).toBeNull();
  }
});

test("an expression our cron-parser reads and BullMQ's cannot is refused (BullMQ makes the ticks)", () => {
  // `?` in the minute field: 5.x reads it as `*`, 4.9 throws. Only cronRefusal and the scheduler ask
  // BullMQ's parser (readByBullmq); the tick helpers read ours alone.
  expect(readByBullmq('? 3 * * *')).toBe(false);
  expect(cronRefusal('? 3 * * *')).toBe('not a valid cron expression');
  expect(readByBullmq('0 3 * * THU')).toBe(true);
  expect(cronRefusal('0 3 * * THU')).toBeNull();
  expect(nextTick('0 3 * * THU', at('2026-03-01T00:00:00.000Z'))).toBe(at('2026-03-05T03:00:00.000Z'));
});

test('an expression with day-of-month and day-of-week both restricted is refused: the two parsers pick different days', () => {
  // Found by comparing our next ticks with BullMQ's over random expressions: 5.x fires when either field
  // matches, 4.9 applies a `#` to every day and reads a day-of-week of all values as `*`.
  for (const cron of ['0 3 1,15 * */1', '0 3 1,15 * 1#2', '0 3 1,15 12 5#5', '30 0 29 12 */1', '0 3 1 * 0-7', '30 4 1,15 * 5']) {
    expect({ cron, why: cronRefusal(cron) }).toEqual({ cron, why: expect.stringMatching(/both restricted/) });
  }
  expect(cronRefusal('0 0 31 2,4 *')).toBe('not a valid cron expression'); // never fires
  for (const cron of ['0 3 * * *', '0 3 1,15 * *', '0 3 * * 1#2', '0 3 * * */1', '0 3 1 * ?', '0 3 ? * 1', '0 3 L * *']) {
    expect({ cron, why: cronRefusal(cron) }).toEqual({ cron, why: null });
  }
});

test("the ticks are BullMQ's for the same expression", () => {
  const crons = ['0 3 * * *', '*/10 * * * *', '15 1-5 * * 1-5', '0 3 1,15 * *', '30 4 * * MON,FRI', '0 3 L * *', '0 0 29 2 *', '5 */6 * * SUN', '0 3 * * */1', '0 3 * * 1#2', '0 3 */1 * *'];
  const instants = ['2026-01-31T23:59:59.999Z', '2026-03-01T03:00:00.000Z', '2026-06-15T12:34:56.789Z', '2027-12-31T23:55:00.000Z', '2028-02-28T03:00:00.001Z'];
  for (const cron of crons) {
    for (const iso of instants) {
      const ours = nextTick(cron, at(iso));
      expect({ cron, iso, tick: ours }).toEqual({ cron, iso, tick: defaultRepeatStrategy(at(iso), { pattern: cron, tz: CRON_TZ }) });
      // BullMQ's next tick after our latest one is the tick after it, not itself.
      const latest = latestTick(cron, at(iso))!;
      expect(defaultRepeatStrategy(latest, { pattern: cron, tz: CRON_TZ })).toBeGreaterThan(latest);
      expect(nextTick(cron, latest - 1)).toBe(latest);
    }
  }
});

test('the ticks are UTC also on a host whose time zone is not (TZ)', () => {
  // Without the time zone given, cron-parser reads an expression in the host's: on a host set to
  // India's time a "0 3 * * *" partner's reconciliation would run at 21:30 UTC. Another process (TZ is
  // read at start-up), about 1 s.
  // The module by its absolute file URL (a relative import( '.' + '/src/…' ) in this text read as this
  // file's own import to .ci/run's check of committed files, which then failed the run).
  const cron = JSON.stringify(pathToFileURL(resolve('src/lib/cron.ts')).href);
  const code = `const c = await import(${cron});` + " const t = Date.parse('2026-03-01T12:00:00Z'); console.log(JSON.stringify([new Date(0).getTimezoneOffset(), c.nextTick('0 3 * * *', t), c.latestTick('0 3 * * *', t)]));";
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env: { ...process.env, TZ: 'Asia/Kolkata' }, encoding: 'utf8' });
  expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
  expect(JSON.parse(r.stdout)).toEqual([-330, at('2026-03-02T03:00:00.000Z'), at('2026-03-01T03:00:00.000Z')]);
});
