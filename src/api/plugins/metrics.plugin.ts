/**
 * Prometheus metrics at /metrics: the process's own counters (src/lib/metrics.ts), process defaults,
 * HTTP latency, and gauges read from Redis at scrape time — mirrors by platform and state and pins by
 * state (over the active shows), queue depth per queue and state, outbound endpoints by state, and
 * whether Redis answers. The exposition passes `promtool check metrics`
 * (test/integration/metrics.test.ts): prom-client's `nodejs_active_*_total` gauges, which break the
 * `_total`-is-a-counter rule, are dropped (their `nodejs_active_*` siblings carry the same numbers).
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler, onRouteHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MIRROR_STATES, PIN_STATES } from '../../domain/mirror.js';
import { bounded, defaultsRegistry, processRegistry } from '../../lib/metrics.js';
import type { OutboundService } from '../../outbound/outbound.service.js';
import { closeQueue, within } from '../../queues/close-queue.js';
import type { Keys } from '../../store/keys.js';
import type { PartnerRepository, TargetRecord } from '../../store/partner.repository.js';
import type { RedisClient } from '../../store/redis.js';
import type { ShowRepository } from '../../store/show.repository.js';
import { PLATFORMS } from '../../targets/target.adapter.js';
import { z } from 'zod';
import { ok } from '../openapi.js';

export interface Metrics {
  registry: Registry;
  events: Counter<'result'>;
  clicks: Counter<'kind'>;
  /** One tracked link hit (syndicast_link_clicks_total, added when the counter is read). */
  countClick: (bot: boolean) => void;
  /** One answer in syndicast_http_request_duration_seconds (route = the route's template, or `unmatched`). */
  observeHttp: (method: string, route: string, status: number, seconds: number) => void;
  /**
   * = observeHttp(method, route, status, seconds) for one series, without prom-client's work per call
   * (seriesObserver): for a route's usual answer on its hot path (the redirect's 302).
   */
  httpSeries: (method: string, route: string, status: number) => (seconds: number) => void;
  close(): Promise<void>;
}

export interface MetricsSources {
  /** Queues this process already holds (sync shards, attribution, delivery). */
  queues: () => Queue[];
  /** Queues of other roles (reconcile, scheduler): opened here, read-only, for their counts. */
  extraQueues?: { names: string[]; keys: Keys; connection: () => ConnectionOptions };
  redis?: RedisClient;
  shows?: ShowRepository;
  partners?: PartnerRepository;
  outbound?: OutboundService;
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** Shows read per scrape for the mirror gauges (the active set; ended shows leave it). */
const MAX_SHOWS_PER_SCRAPE = 5000;
/** How long a scrape waits for one Redis read before reporting that gauge as unknown (no series). */
const SCRAPE_READ_MS = 2000;

export function createMetrics(src: MetricsSources | (() => Queue[])): Metrics {
  const s: MetricsSources = typeof src === 'function' ? { queues: src } : src;
  const own = defaultsRegistry();
  const events = new Counter({ name: 'syndicast_events_total', help: 'Inbound partner events by result', labelNames: ['result'], registers: [own] });
  // Counted per redirect in plain numbers (a labelled inc() hashes its labels: a visible part of a
  // redirect's CPU) and handed to the counter when it is read (a scrape).
  const clickCounts = { human: 0, bot: 0 };
  const clicks = new Counter({
    name: 'syndicast_link_clicks_total',
    help: 'Tracked link hits',
    labelNames: ['kind'],
    registers: [own],
    collect() {
      for (const kind of ['human', 'bot'] as const) {
        if (clickCounts[kind] > 0) this.inc({ kind }, clickCounts[kind]);
        clickCounts[kind] = 0;
      }
    },
  });

  // Each with a connection of its own (extraQueues.connection() makes a new one per call), ended by close().
  const extraConnections: RedisClient[] = [];
  const extra: Queue[] = s.extraQueues
    ? s.extraQueues.names.map((name) => {
        const connection = s.extraQueues!.connection();
        extraConnections.push(connection as RedisClient);
        // Its errors surface through the gauge's reads; one emitted while BullMQ does not forward them
        // (before its start, after its close, or while the close waits for it) must not be unhandled.
        (connection as RedisClient).on('error', () => undefined);
        return new Queue(name, { connection, prefix: s.extraQueues!.keys.queuePrefix(name) });
      })
    : [];
  // A connection error is surfaced through the gauge's reads (which fail); without a listener,
  // EventEmitter would throw it as an unhandled 'error'.
  for (const q of extra) q.on('error', () => undefined);
  new Gauge({
    name: 'syndicast_queue_jobs',
    help: 'Jobs per queue and state (waiting, active, delayed, failed)',
    labelNames: ['queue', 'state'],
    registers: [own],
    async collect() {
      this.reset();
      // BullMQ's connections have no command timeout: a Redis that accepts but does not answer (frozen,
      // overloaded) held the whole scrape — and redis_up 0 with it — until Redis answered again.
      const queues = [...s.queues(), ...extra];
      const all = await Promise.all(queues.map((q) => within(q.getJobCounts(...QUEUE_STATES), SCRAPE_READ_MS)));
      queues.forEach((q, i) => {
        const counts = all[i];
        if (!counts) return;
        for (const state of QUEUE_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
      });
    },
  });

  if (s.redis) {
    const redis = s.redis;
    new Gauge({
      name: 'syndicast_redis_up',
      help: 'Whether Redis answered PING at scrape time (1) or not (0)',
      registers: [own],
      async collect() {
        const ok = await Promise.race([redis.ping().then(() => 1), new Promise<number>((r) => setTimeout(() => r(0), 1000).unref())]).catch(() => 0);
        this.set(ok);
      },
    });
  }

  if (s.shows && s.partners) {
    const { shows, partners } = s;
    // One read of the active shows' mirrors feeds both gauges (collect runs per gauge: share the read).
    let pending: Promise<{ mirrors: Map<string, number>; pins: Map<string, number> }> | null = null;
    const read = (): Promise<{ mirrors: Map<string, number>; pins: Map<string, number> }> => {
      pending ??= (async () => {
        const mirrors = new Map<string, number>();
        const pins = new Map<string, number>();
        const active = await shows.activeShows(MAX_SHOWS_PER_SCRAPE);
        const bundles = new Map<string, TargetRecord[]>();
        for (const [partnerId, showId] of active) {
          let targets = bundles.get(partnerId);
          if (!targets) {
            targets = ((await partners.bundleCached(partnerId))?.targets ?? []).filter((t) => t.enabled);
            bundles.set(partnerId, targets);
          }
          for (const m of await shows.getMirrors(partnerId, showId, targets)) {
            if (!m) continue;
            const k = `${bounded(m.platform, PLATFORMS)}\u0000${bounded(m.state, MIRROR_STATES)}`;
            mirrors.set(k, (mirrors.get(k) ?? 0) + 1);
            for (const p of Object.values(m.pins)) {
              const ps = bounded(p.state, PIN_STATES);
              pins.set(ps, (pins.get(ps) ?? 0) + 1);
            }
          }
        }
        return { mirrors, pins };
      })().finally(() => setTimeout(() => (pending = null), 0).unref());
      return pending;
    };
    new Gauge({
      name: 'syndicast_mirrors',
      help: "Mirrors of active shows (not yet ended, or not yet finished) by platform and state",
      labelNames: ['platform', 'state'],
      registers: [own],
      async collect() {
        this.reset();
        // Unreadable (Redis down): no series — unknown, like the queue depths — rather than zeros that
        // read as "no failed mirror" and resolve the alerts on them for as long as the outage lasts.
        const r = await within(read(), SCRAPE_READ_MS);
        if (!r) return;
        // Every platform × state is present (0 when none), so alerts and dashboards see a series.
        for (const platform of PLATFORMS) for (const state of MIRROR_STATES) this.set({ platform, state }, 0);
        for (const [k, n] of r.mirrors) {
          const [platform, state] = k.split('\u0000') as [string, string];
          this.set({ platform, state }, n);
        }
      },
    });
    new Gauge({
      name: 'syndicast_pins',
      help: 'Product pins on the mirrors of active shows by state',
      labelNames: ['state'],
      registers: [own],
      async collect() {
        this.reset();
        const r = await within(read(), SCRAPE_READ_MS);
        if (!r) return; // unknown (Redis down): no series, as syndicast_mirrors
        for (const state of PIN_STATES) this.set({ state }, 0);
        for (const [state, n] of r.pins) this.set({ state }, n);
      },
    });
  }

  if (s.outbound && s.partners) {
    const { outbound, partners } = s;
    new Gauge({
      name: 'syndicast_outbound_endpoints',
      help: 'Outbound webhook endpoints by state (enabled, disabled)',
      labelNames: ['state'],
      registers: [own],
      async collect() {
        this.reset();
        const counts = await within((async () => {
          const c = { enabled: 0, disabled: 0 };
          for (const p of await partners.list()) {
            for (const e of await outbound.endpoints.list(p.id)) c[e.enabled ? 'enabled' : 'disabled'] += 1;
          }
          return c;
        })(), SCRAPE_READ_MS);
        if (!counts) return; // unknown (Redis down or not answering): no series rather than a count of 0 disabled endpoints
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }

  const http = new Histogram({
    name: 'syndicast_http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [own],
  });

  const registry = Registry.merge([own, processRegistry]);
  return {
    registry,
    events,
    clicks,
    countClick: (bot) => {
      clickCounts[bot ? 'bot' : 'human'] += 1;
    },
    // The route template (never the raw URL: ids would make every request a new series).
    observeHttp: (method, route, status, seconds) => http.observe({ method, route, status: String(status) }, seconds),
    httpSeries: (method, route, status) => seriesObserver(http, { method, route, status: String(status) }),
    close: async () => {
      // The queues' own connections end first: a queue's start waits for its connection to be ready,
      // and one that Redis refused or could not be reached on (maxclients, an outage since the start)
      // never was, so the wait below, and the API's close with it, never ended (the runtime ends its
      // connections only after the API closed). Ended, the start fails and the wait is over.
      for (const c of extraConnections) if (c.status !== 'end') c.disconnect();
      // closeQueue: once its start-up ended (bounded), else with its late failure still listened to:
      // BullMQ's close() removes the connection's error forwarding, so a start-up still in flight (a
      // process closed right after it started) failed afterwards with an unhandled 'error' ("Stream
      // isn't writeable"). Its close is bounded too: an ioredis Cluster ended while still connecting
      // may never emit 'end', and the close never ended (npm run test:cluster: intent-limiter.cluster's
      // afterAll timed out, 2026-12-03).
      await Promise.all(extra.map((q) => closeQueue(q)));
    },
  };
}

async function metricsPlugin(app: FastifyInstance, opts: { metrics: Metrics }): Promise<void> {
  app.addHook('onClose', async () => {
    await opts.metrics.close();
  });
  // No API key (a Prometheus scrape); no ids or secrets in it. Not under /v1: not part of the versioned API.
  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics (text exposition format)', security: [], docResponses: { 200: ok('the metrics', z.string(), { contentType: 'text/plain' }) } } }, async (_req, reply) => {
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
}

/**
 * An onRoute hook (added before any route, app.ts) that gives each route an onResponse hook observing
 * its answers with its template, known when the route is added (a global hook read it from
 * req.routeOptions, an object built per access). A route with `config: { httpMetrics: false }` (the
 * tracked-link redirect) observes its own answers (observeHttp): a route without onResponse hooks
 * costs Fastify no 'finish' listener, hook runner and closures per request. The not-found handler gets
 * no onRoute: its context has its own hook (observeNotFound, route `unmatched`).
 * A callback hook, not an async one: no promise per request.
 */
export function observeRoutes(metrics: Pick<Metrics, 'observeHttp'>): onRouteHookHandler {
  return (route) => {
    if (route.config?.httpMetrics === false) return;
    const hook = observeAs(metrics, route.url);
    const own = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse];
    route.onResponse = [hook, ...own];
  };
}

/**
 * The not-found handler's onResponse hook (errors plugin): observes as route `unmatched` every answer
 * sent from the not-found context: a request no route took (also when a hook answered it before the
 * handler) and a route's answer through reply.callNotFound() (@fastify/static's missing file), which
 * runs this context's hooks instead of the route's (review 2026-12-01 R1).
 */
export function observeNotFound(metrics: Pick<Metrics, 'observeHttp'>): onResponseHookHandler {
  return observeAs(metrics, 'unmatched');
}

/** An onResponse hook observing each answer under one route label. */
function observeAs(metrics: Pick<Metrics, 'observeHttp'>, route: string): onResponseHookHandler {
  return (req, reply, done) => {
    metrics.observeHttp(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  };
}

/** A histogram series' values as prom-client 15 keeps them (Histogram.hashMap[hash]). */
interface SeriesValues {
  labels: Record<string, string | number>;
  sum: number;
  count: number;
  bucketValues: Record<string, number>;
}

/**
 * Observations of one series of `h` (its `labels`), each as Histogram.observe makes it (sum, count,
 * and the bucket of the first upper bound at or above the value), without what observe does per call
 * besides: a closure, the label object's check against the label names, its hash string and the
 * lookup by it, the bucket's lookup by a number key (≈ 0.6 µs, on every redirect). The series' values
 * are updated in place: its first observation goes through observe(), which makes the series
 * (exported from then on, as before), and its entry is kept. Where the entry is not there or not
 * what it was (the series removed, the histogram reset, a prom-client whose layout differs), the
 * value goes through observe() and the entry is looked up again. That fallback is silent: that the
 * in-place path is taken with the installed prom-client is checked by
 * test/unit/metrics.series-observer.test.ts (observe() called once per series).
 */
export function seriesObserver(h: Histogram<string>, labels: Record<string, string>): (value: number) => void {
  const inner = h as unknown as { hashMap?: Record<string, SeriesValues>; upperBounds?: readonly number[] };
  const names = Object.keys(labels);
  const bounds = inner.upperBounds ?? [];
  const keys = bounds.map(String);
  let map: Record<string, SeriesValues> | undefined;
  let key = '';
  let entry: SeriesValues | undefined;
  return (value) => {
    if (entry !== undefined && map !== undefined && inner.hashMap === map && map[key] === entry && Number.isFinite(value)) {
      entry.sum += value;
      entry.count += 1;
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          const b = keys[i]!;
          entry.bucketValues[b] = entry.bucketValues[b]! + 1;
          break;
        }
      }
      return;
    }
    h.observe(labels, value);
    map = inner.hashMap;
    entry = undefined;
    if (map === undefined) return;
    for (const [k, v] of Object.entries(map)) {
      if (typeof v?.sum !== 'number' || typeof v.count !== 'number' || typeof v.bucketValues !== 'object' || v.labels === null || typeof v.labels !== 'object') continue;
      if (Object.keys(v.labels).length !== names.length || !names.every((n) => String(v.labels[n]) === labels[n])) continue;
      if (!keys.every((b) => typeof v.bucketValues[b] === 'number')) break;
      key = k;
      entry = v;
      break;
    }
  };
}

/** Observes the answer of `req` once it is sent (a request no route took, or an answer whose status is not final yet). */
export function observeWhenSent(metrics: Pick<Metrics, 'observeHttp'>, route: string, req: FastifyRequest, reply: FastifyReply): void {
  reply.raw.once('finish', () => metrics.observeHttp(req.method, route, reply.statusCode, reply.elapsedTime / 1000));
}

export default fp(metricsPlugin, { name: 'metrics' });
