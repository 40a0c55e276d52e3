/**
 * The delivery path as two worker processes run it, for tests of delivery jobs between workers: the
 * API alone (no delivery worker of its own: the test's workers are the only ones), a worker-role
 * runtime whose clients wait for a slow Redis as the worker process's do, and local HTTP receivers
 * whose answers the test paces. Real Redis, real BullMQ, real HTTP on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { Worker } from 'bullmq';
import { createRuntime, type Runtime } from '../../src/main/runtime.js';
import { createPartner, startService, type TestService } from './service.js';

export interface Receiver {
  url: string;
  /** The `webhook-id` of each request, in order. */
  ids: string[];
  /** The most requests it held open at once. */
  maxOpen(): number;
}

export interface DeliveryRig {
  svc: TestService;
  /** The worker role's runtime (no worker of its own started). */
  workerRt: Runtime;
  /** Workers the test started: closed by close(). */
  workers: Worker[];
  /** A receiver that answers its `n`th request (from 0) with the status `answer(n)` resolves to. */
  receiver(answer: (n: number) => Promise<number>): Promise<Receiver>;
  /** A partner `partnerId` with an endpoint at `url` for order_attributed; its id. */
  endpoint(partnerId: string, url: string): Promise<string>;
  close(): Promise<void>;
}

export async function startDeliveryRig(env: Record<string, string>): Promise<DeliveryRig> {
  const svc = await startService({ env });
  const workerRt = await createRuntime(svc.config, 'worker', { log: svc.rt.log, redisInfo: svc.rt.redisInfo });
  const servers: Server[] = [];
  const workers: Worker[] = [];
  return {
    svc,
    workerRt,
    workers,
    async receiver(answer) {
      let open = 0;
      let maxOpen = 0;
      const ids: string[] = [];
      const server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          const n = ids.push(String(req.headers['webhook-id'])) - 1;
          open += 1;
          maxOpen = Math.max(maxOpen, open);
          void answer(n).then((status) => {
            open -= 1;
            res.writeHead(status).end('ok');
          });
        });
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const addr = server.address();
      return { url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks`, ids, maxOpen: () => maxOpen };
    },
    async endpoint(partnerId, url) {
      await createPartner(svc, partnerId);
      const r = await svc.api(`/v1/partners/${partnerId}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
      if (r.status !== 201) throw new Error(`create endpoint: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { id: string }).id;
    },
    async close() {
      await Promise.all(workers.splice(0).map((w) => w.close(true)));
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      await workerRt.close();
      await svc.close();
    },
  };
}
