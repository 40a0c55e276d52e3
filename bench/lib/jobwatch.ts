/**
 * When did each job get added and picked up? BullMQ's own `active` events (QueueEvents) plus the
 * job's timestamps (`timestamp` = added, `processedOn` = taken by a worker; both the producer's and
 * the worker's Date.now(), one machine, one clock). Used to split a pin's latency into queue wait
 * and the worker's own time.
 */
import { Queue, QueueEvents } from 'bullmq';

export interface JobTimes {
  showId: string;
  addedAt: number;
  startedAt: number;
}

export interface JobWatch {
  times: JobTimes[];
  close(): Promise<void>;
}

export async function watchJobs(redisUrl: string, queues: { name: string; prefix: string }[], showOf: (data: unknown) => string | undefined): Promise<JobWatch> {
  const u = new URL(redisUrl);
  const connection = { host: u.hostname, port: Number(u.port) };
  const times: JobTimes[] = [];
  const closers: Array<() => Promise<void>> = [];
  for (const { name, prefix } of queues) {
    const q = new Queue(name, { connection, prefix });
    const ev = new QueueEvents(name, { connection, prefix });
    q.on('error', () => undefined);
    ev.on('error', () => undefined);
    ev.on('active', ({ jobId }) => {
      void q.getJob(jobId).then(
        (job) => {
          const showId = job ? showOf(job.data) : undefined;
          if (job && showId && job.processedOn) times.push({ showId, addedAt: job.timestamp, startedAt: job.processedOn });
        },
        () => undefined,
      );
    });
    await ev.waitUntilReady();
    closers.push(async () => {
      await ev.close();
      await q.close();
    });
  }
  return {
    times,
    close: async () => {
      await Promise.all(closers.map((c) => c()));
    },
  };
}
