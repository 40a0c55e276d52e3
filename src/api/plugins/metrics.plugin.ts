/** Prometheus metrics (prom-client): process defaults, HTTP latency, ingest/click counters, queue depth. */
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  events: Counter<'result'>;
  clicks: Counter<'kind'>;
}

export function createMetrics(queues: () => Queue[]): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const events = new Counter({ name: 'syndicast_events_total', help: 'Inbound partner events by result', labelNames: ['result'], registers: [registry] });
  const clicks = new Counter({ name: 'syndicast_link_clicks_total', help: 'Tracked link hits', labelNames: ['kind'], registers: [registry] });
  new Gauge({
    name: 'syndicast_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const q of queues()) {
        const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed').catch(() => null);
        if (!counts) continue;
        for (const [state, n] of Object.entries(counts)) this.set({ queue: q.name, state }, n);
      }
    },
  });
  return { registry, events, clicks };
}

async function metricsPlugin(app: FastifyInstance, opts: { metrics: Metrics }): Promise<void> {
  const http = new Histogram({
    name: 'syndicast_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [opts.metrics.registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    http.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
}

export default fp(metricsPlugin, { name: 'metrics' });
