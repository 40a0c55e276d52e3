/**
 * ParkedJobs (src/queues/parking.ts): the jobs held back for a slot of their group (a partner's
 * delivery share, a slow target's sync runs) and woken one per freed slot, groups in turn. The
 * integration tests (target-cap, delivery share) see one job woken; what was not checked: the rest
 * of a group stays parked, the groups take turns, a group that may not start now is passed over, a
 * job that had already run hands the slot to the next, and clear() waits for a wake-up in flight.
 * Each of those was a one-line break that passed the suite. No Redis: `wake` is the job's promote,
 * given here as a function that records the order.
 */
import { pino } from 'pino';
import { ParkedJobs } from '../../src/queues/parking.js';

const log = pino({ level: 'silent' });
const later = (): number => Date.now() + 3_600_000;
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function parked(): { jobs: ParkedJobs; woken: string[]; park: (group: string, id: string, woke?: boolean) => void } {
  const jobs = new ParkedJobs(log, 'a test job');
  const woken: string[] = [];
  const park = (group: string, id: string, woke = true): void =>
    jobs.park(group, id, later(), async () => {
      woken.push(id);
      return woke;
    });
  return { jobs, woken, park };
}

test('one job per freed slot, groups in turn, the rest of a group kept for the next slots', async () => {
  const { jobs, woken, park } = parked();
  park('A', 'a1');
  park('A', 'a2');
  park('B', 'b1');
  jobs.wakeNext(() => true);
  expect(woken).toEqual(['a1']);
  jobs.wakeNext(() => true);
  jobs.wakeNext(() => true);
  jobs.wakeNext(() => true);
  await settle();
  expect(woken).toEqual(['a1', 'b1', 'a2']);
});

test('a group that may not start a job now is passed over', async () => {
  const { jobs, woken, park } = parked();
  park('A', 'a1');
  park('B', 'b1');
  jobs.wakeNext((g) => g === 'B');
  await settle();
  expect(woken).toEqual(['b1']);
});

test('a woken job that had run already (not delayed any more) hands the slot to the next one', async () => {
  const { jobs, woken, park } = parked();
  park('A', 'a1', false);
  park('A', 'a2');
  park('A', 'a3');
  jobs.wakeNext(() => true);
  await settle();
  expect(woken).toEqual(['a1', 'a2']);
});

test('clear() waits for a wake-up in flight', async () => {
  const jobs = new ParkedJobs(log, 'a test job');
  let finish!: (woke: boolean) => void;
  let done = false;
  jobs.park('A', 'a1', later(), () =>
    new Promise<boolean>((r) => (finish = r)).then((woke) => {
      done = true;
      return woke;
    }),
  );
  jobs.wakeNext(() => true);
  const cleared = jobs.clear().then(() => done);
  finish(true);
  expect(await cleared).toBe(true);
});
