/**
 * A pin step waits for its tracked link's write (IntentRepository.scoped `before`, sent in the same
 * event-loop turn as the step's start by SyncService.syncPins): the step neither recovers nor runs
 * before that write is done, and a failed write fails the step with nothing sent. Real redis-server.
 */
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the run itself
});
afterAll(async () => {
  await svc?.close();
});

test('the step runs only after the link write it waits for is done, and it is in Redis by then', async () => {
  const { intents, links } = svc.rt;
  const [P, S, T] = ['bp', 'bs1', 'bt'];
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  const sent = links.ensureSent({ partnerId: P, showId: S, targetId: T, platform: 'youtube', productId: 'p1', url: 'https://shop.example.com/p1' });
  const code = sent.url.slice(sent.url.lastIndexOf('/') + 1);
  const order: string[] = [];
  const written = sent.written.then(() => {
    order.push('link written');
  });
  const result = await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { before: () => written })('message', async () => {
    order.push('post');
    expect(await svc.rt.redis.get(svc.rt.keys.link(code))).not.toBeNull();
    return { id: 'm1' };
  });
  expect(result).toEqual({ id: 'm1' });
  expect(order).toEqual(['link written', 'post']);
});

test('a failed write fails the step before it runs or recovers: nothing is sent, the step stays retryable', async () => {
  const { intents } = svc.rt;
  const [P, S, T] = ['bp', 'bs2', 'bt'];
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  const calls: string[] = [];
  const once = intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { before: () => Promise.reject(new Error('link write refused')) });
  await expect(
    once(
      'message',
      async () => {
        calls.push('post');
        return { id: 'm1' };
      },
      async () => {
        calls.push('recover');
        return null;
      },
    ),
  ).rejects.toThrow('link write refused');
  expect(calls).toEqual([]);
  // A later attempt (the write works now) runs the step; it looks for an earlier attempt's object first.
  const again = await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease)(
    'message',
    async () => {
      calls.push('post');
      return { id: 'm2' };
    },
    async () => {
      calls.push('recover');
      return null;
    },
  );
  expect(again).toEqual({ id: 'm2' });
  expect(calls).toEqual(['recover', 'post']);
});
