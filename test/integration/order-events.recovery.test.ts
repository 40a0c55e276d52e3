/**
 * Stored partner order events converge like show events (issue 8 item 9): an order event that was
 * stored but whose attribution job never ran — never added (the partner got a 503 after the write and
 * stopped retrying), lost, or failed all its attempts — is handed to attribution by the sweep the
 * scheduler runs, and reaches the ledger exactly once however often the sweep, the job and the
 * partner's re-deliveries meet it. No attribution worker runs here: only the sweep can book these.
 * The last case takes the Redis Cluster path (forced on a single Redis: the same commands, each on one
 * slot), whose store script (INGEST_PLAIN_LUA) writes the event's pending mark itself.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import { OrderEventSweep } from '../../src/attribution/order-event.sweep.js';
import { createLogger } from '../../src/lib/logger.js';
import { ATTRIBUTION_QUEUE } from '../../src/queues/attribution.queue.js';
import { sendEvent, waitFor, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

servicePerFile('oe', (started) => ({ svc, secret } = started), { scheduler: true, env: { PENDING_ORDER_GRACE_MS: '0', SWEEP_INTERVAL_MS: '500' } });

const created = (id: string) => ({
  type: 'order.created',
  occurredAt: '2026-11-24T18:30:00Z',
  data: { order: { id, createdAt: '2026-11-24T18:30:00Z', lines: [{ productId: 'p1', quantity: 2, amount: { amount: 1500, currency: 'USD' } }], total: { amount: 3000, currency: 'USD' } } },
});
const refunded = (orderId: string, id: string) => ({
  type: 'order.refunded',
  occurredAt: '2026-11-24T18:40:00Z',
  data: { refund: { id, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount: 1000, currency: 'USD' } } },
});

interface OrderView {
  orderId: string;
  refundedAmount: number;
  total: { amount: number };
  refunds: unknown[];
  entries: unknown[];
}

async function orderView(orderId: string): Promise<OrderView | undefined> {
  const r = await svc.api(`/v1/partners/oe/attribution/orders/${orderId}`);
  if (r.status === 404) return undefined;
  expect(r.status).toBe(200);
  return (await r.json()) as OrderView;
}

async function pendingMarks(orderId: string): Promise<number> {
  return svc.rt.redis.hlen(svc.rt.keys.orderPending('oe', orderId));
}

test('an order event whose job was never run reaches the ledger through the scheduled sweep, once', async () => {
  const queue = svc.rt.attributionProducer.queue;
  // Stored, then its jobs vanish (as if the enqueue after the write never happened).
  expect((await sendEvent(svc, 'oe', secret, created('lost1'), { webhookId: 'msg_lost1' })).status).toBe(202);
  expect((await sendEvent(svc, 'oe', secret, refunded('lost1', 'rf1'), { webhookId: 'msg_lost1_rf' })).status).toBe(202);
  await queue.obliterate({ force: true });

  const view = await waitFor(async () => {
    const v = await orderView('lost1');
    return v && v.refundedAmount === 1000 ? v : undefined;
  }, 30_000);
  expect(view).toMatchObject({ orderId: 'lost1', total: { amount: 3000 } });
  expect(view.refunds).toHaveLength(1);
  await waitFor(async () => (await pendingMarks('lost1')) === 0 && (await svc.rt.redis.zcard(svc.rt.keys.pendingOrders())) === 0);

  // More sweeps and a re-delivery of both events change nothing.
  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 10 });
  await sweep.sweep();
  expect((await sendEvent(svc, 'oe', secret, created('lost1'), { webhookId: 'msg_lost1' })).status).toBe(200);
  expect((await sendEvent(svc, 'oe', secret, refunded('lost1', 'rf1'), { webhookId: 'msg_lost1_rf' })).status).toBe(200);
  await sweep.sweep();
  expect(await orderView('lost1')).toEqual(view);
});

test('an order event whose job failed all its attempts reaches the ledger through the sweep, once', async () => {
  const queue = svc.rt.attributionProducer.queue;
  // A worker that fails every job for good: the job ends in the failed set, and a re-delivery of the
  // webhook (same job id) cannot add it again.
  const failing = new Worker(ATTRIBUTION_QUEUE, async () => Promise.reject(new UnrecoverableError('attribution down')), {
    connection: svc.rt.bullConnection('worker'),
    prefix: svc.rt.keys.queuePrefix(ATTRIBUTION_QUEUE),
  });
  try {
    expect((await sendEvent(svc, 'oe', secret, created('failed1'), { webhookId: 'msg_failed1' })).status).toBe(202);
    await waitFor(async () => (await queue.getFailedCount()) >= 1);
  } finally {
    await failing.close();
  }
  const view = await waitFor(() => orderView('failed1'), 30_000);
  expect(view).toMatchObject({ orderId: 'failed1', total: { amount: 3000 }, refundedAmount: 0 });
  await waitFor(async () => (await pendingMarks('failed1')) === 0);

  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 10 });
  await sweep.sweep();
  expect((await sendEvent(svc, 'oe', secret, created('failed1'), { webhookId: 'msg_failed1' })).status).toBe(200);
  await sweep.sweep();
  expect(await orderView('failed1')).toEqual(view);
});

test('within the grace period the sweep leaves an event to its job', async () => {
  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 3_600_000, pageSize: 10 });
  await svc.scheduler?.close();
  expect((await sendEvent(svc, 'oe', secret, created('fresh1'), { webhookId: 'msg_fresh1' })).status).toBe(202);
  expect(await sweep.sweep()).toMatchObject({ handled: 0 });
  expect(await orderView('fresh1')).toBeUndefined();
  expect(await pendingMarks('fresh1')).toBe(1);
});

test('an event handled by its job loses its pending mark, and the order leaves the pending set', async () => {
  await svc.startWorkers();
  expect((await sendEvent(svc, 'oe', secret, created('normal1'), { webhookId: 'msg_normal1' })).status).toBe(202);
  await waitFor(() => orderView('normal1'));
  await waitFor(async () => (await pendingMarks('normal1')) === 0);
  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 10 });
  const r = await sweep.sweep();
  expect(r.handled).toBe(0);
  expect(await svc.rt.redis.zscore(svc.rt.keys.pendingOrders(), JSON.stringify(['oe', 'normal1']))).toBeNull();
});

test('on the Cluster path (INGEST_PLAIN_LUA) an event stored by an API that died before the job add is marked pending, and the sweep books it', async () => {
  // Only the sweep may book it: the job add fails (as if the process died after the store), and the
  // case does not rely on the file's order — the worker role the case above started still runs (a
  // job added here would book the order within milliseconds and need no mark), the scheduler stops.
  await svc.scheduler?.close();
  const orders = svc.rt.orderEvents;
  const producer = svc.rt.attributionProducer;
  const calls = { ingest: 0, ingestOne: 0 };
  const ingest = orders.ingest.bind(orders);
  const ingestOne = orders.ingestOne.bind(orders);
  Object.defineProperty(orders, 'singleNode', { get: () => false, configurable: true });
  orders.ingest = (...a) => ((calls.ingest += 1), ingest(...a));
  orders.ingestOne = (...a) => ((calls.ingestOne += 1), ingestOne(...a));
  producer.enqueue = () => Promise.reject(new Error('the API process died before the attribution job was added'));
  try {
    expect((await sendEvent(svc, 'oe', secret, created('cluster1'), { webhookId: 'msg_cluster1' })).status).toBeGreaterThanOrEqual(500);
  } finally {
    delete (orders as unknown as Record<string, unknown>)['singleNode'];
    delete (orders as unknown as Record<string, unknown>)['ingest'];
    delete (orders as unknown as Record<string, unknown>)['ingestOne'];
    delete (producer as unknown as Record<string, unknown>)['enqueue'];
  }
  expect(calls).toEqual({ ingest: 1, ingestOne: 0 });
  expect(await pendingMarks('cluster1')).toBe(1);

  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 10 });
  expect((await sweep.sweep()).handled).toBe(1);
  expect(await orderView('cluster1')).toMatchObject({ orderId: 'cluster1', total: { amount: 3000 } });
  expect(await pendingMarks('cluster1')).toBe(0);
  expect(await svc.rt.redis.zscore(svc.rt.keys.pendingOrders(), JSON.stringify(['oe', 'cluster1']))).toBeNull();
});
