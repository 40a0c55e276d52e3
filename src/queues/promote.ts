/**
 * Promoting a delayed job (moving it to waiting now) races with the job's own delay ending, with
 * another process promoting it, and with its removal: between a check that it is delayed and the
 * promote, it can leave the delayed state. BullMQ's promote script checks the state atomically and
 * answers JobNotInState (-3: "Job <id> is not in the delayed state. promote") when it is not delayed;
 * JobNotExist (-1: "Missing key for job <id>. promote") is matched too in case a BullMQ release checks
 * the job's key first. Both mean "not promoted, nothing to do": false. Anything else (Redis
 * unreachable) is thrown.
 */
import type { Job } from 'bullmq';

export async function promoteIfDelayed(job: Job): Promise<boolean> {
  try {
    await job.promote();
    return true;
  } catch (err) {
    if (err instanceof Error && notDelayed(err.message, String(job.id))) return false;
    throw err;
  }
}

/** BullMQ's messages (Scripts.finishedErrors) for a promote of a job not (or no longer) delayed. */
export function notDelayed(message: string, jobId: string): boolean {
  return message === `Job ${jobId} is not in the delayed state. promote` || message === `Missing key for job ${jobId}. promote`;
}
