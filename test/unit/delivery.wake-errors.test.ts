/**
 * promoteIfDelayed() (src/queues/promote.ts) counts a job as not promoted when BullMQ's promote says it
 * is no longer delayed. The delivery worker's wake-up of a parked job relies on it (so that the free
 * slot goes to the next parked job), as do the operator resync and the sweep: JobNotInState (what
 * BullMQ 5's promote script answers for a job that ran, runs, or was removed) or that it is missing
 * (JobNotExist). The messages are built by BullMQ's own Scripts.finishedErrors, so a change of their
 * wording in a BullMQ upgrade shows here. No Redis: finishedErrors only formats.
 */
import { ErrorCode, Scripts, type ScriptQueueContext } from 'bullmq';
import { notDelayed as notWaiting } from '../../src/queues/promote.js';

const scripts = new Scripts({ keys: {} } as unknown as ScriptQueueContext);
const message = (code: ErrorCode, jobId = 'm1.e1'): string => scripts.finishedErrors({ code, jobId, command: 'promote', state: 'delayed' }).message;

test("BullMQ's promote errors for a job not delayed or missing are 'not waiting'", () => {
  expect(notWaiting(message(ErrorCode.JobNotInState), 'm1.e1')).toBe(true);
  expect(notWaiting(message(ErrorCode.JobNotExist), 'm1.e1')).toBe(true);
});

test('any other error (another code, another job, Redis unreachable) is not', () => {
  expect(notWaiting(message(ErrorCode.JobLockNotExist), 'm1.e1')).toBe(false);
  expect(notWaiting(message(ErrorCode.JobNotExist, 'other'), 'm1.e1')).toBe(false);
  expect(notWaiting('Connection is closed.', 'm1.e1')).toBe(false);
});
