/**
 * Fresh-clone CI of 4abdd37 / c95a1e4: the sweep's repeat job failed with "Job <id> is not in the
 * delayed state. promote". SyncProducer.promote looked the job up, asked whether it was delayed, and
 * promoted it; when the delay ended (or another process promoted it) in between, BullMQ's promote
 * script refused and the error failed the sweep (and would have failed an operator's resync with a
 * 5xx). The interleaving is made here for real: another process's Queue promotes the job between our
 * lookup and our promote.
 */
import { Job, Queue } from 'bullmq';
import { SyncProducer, syncQueueName, type SyncJob } from '../../src/queues/queues.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));

test('a delayed sync promoted by someone else between the lookup and the promote: false, no error, the job waits once', async () => {
  const keys = new Keys('pr');
  const producer = new SyncProducer(redis, keys, 1);
  const other = new Queue(syncQueueName('youtube', 0), { connection: redis, prefix: keys.queuePrefix(syncQueueName('youtube', 0)) });
  const job: SyncJob = { partnerId: 'p1', showId: 's1', targetId: 't1' };
  const original = Job.prototype.promote;
  let raced = 0;
  try {
    await producer.enqueue('youtube', job, 60_000);
    const queue = producer.queue('youtube', 0);
    expect(await queue.getDelayedCount()).toBe(1);
    // Our promote, once: the other process gets there first.
    Job.prototype.promote = async function (this: Job) {
      if (raced++ === 0) {
        const theirs = await other.getJob(String(this.id));
        await original.call(theirs);
      }
      return original.call(this);
    };
    await expect(producer.promote('youtube', job)).resolves.toBe(false);
    expect(raced).toBeGreaterThanOrEqual(1);
    Job.prototype.promote = original;
    expect(await queue.getDelayedCount()).toBe(0);
    expect(await queue.getWaitingCount()).toBe(1);
    // A job already waiting is not promoted again (and nothing throws).
    await expect(producer.promote('youtube', job)).resolves.toBe(false);
    // Gone (removed by an operator): false too.
    const [waiting] = await queue.getWaiting();
    await waiting!.remove();
    await expect(producer.promote('youtube', job)).resolves.toBe(false);
  } finally {
    Job.prototype.promote = original;
    await other.close();
    await producer.close();
  }
});
