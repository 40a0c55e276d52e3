/**
 * Process-wide Prometheus counters and histograms for what happens inside a process (platform calls,
 * sync runs, deliveries, ledger bookings, reconciliation results). The API's `/metrics` serves these
 * together with the gauges it reads from Redis at scrape time (src/api/plugins/metrics.plugin.ts).
 *
 * Labels are bounded by construction: platform names, adapter operation names, outcome kinds, queue
 * names, ISO currency codes, discrepancy kinds. Never a partner, show, target, order or key id, and
 * never a secret (test/integration/metrics.test.ts checks the exposition for them).
 */
import { createServer, type Server } from 'node:http';
import { closeServerNow, DEFAULT_HTTP_TIMEOUTS, type HttpTimeouts, limitHttpServer, METRICS_CONNECTION_SHARE } from './connection-limits.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const processRegistry = new Registry();

/** Seconds; platform calls take from a few ms (simulators) to tens of seconds (a slow platform). */
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const platformCalls = new Counter({
  name: 'syndicast_platform_calls_total',
  help: 'Platform API operations by platform, operation (adapter method) and outcome (ok, or the error kind)',
  labelNames: ['platform', 'operation', 'outcome'],
  registers: [processRegistry],
});

export const platformCallDuration = new Histogram({
  name: 'syndicast_platform_call_duration_seconds',
  help: 'Latency of platform API operations (one adapter method, including its token refresh and retries inside it)',
  labelNames: ['platform', 'operation'],
  buckets: CALL_BUCKETS,
  registers: [processRegistry],
});

export const rateLimitWaits = new Counter({
  name: 'syndicast_rate_limit_waits_total',
  help: 'Sync runs delayed by a platform rate limit or quota (the job waits as a delayed job)',
  labelNames: ['platform'],
  registers: [processRegistry],
});

export const rateLimitWaitSeconds = new Counter({
  name: 'syndicast_rate_limit_wait_seconds_total',
  help: 'Seconds of delay scheduled because of platform rate limits or quotas',
  labelNames: ['platform'],
  registers: [processRegistry],
});

export const intentRecordsUnreadable = new Counter({
  name: 'syndicast_intent_records_unreadable_total',
  help: 'Intent records of platform steps found unreadable (IntentCorruptError: the step is not run again; an operator checks the platform), by platform and where: step (the mirror fails) or cleanup (a withdraw clean-up: the cancelled mirror stays as it is)',
  labelNames: ['platform', 'during'],
  registers: [processRegistry],
});

/**
 * Stored records found unreadable (StoredRecordCorruptError: JSON that does not parse, a value of the
 * wrong shape, a key of another type), by key family. Counted once per read that found one: a route
 * answers 500 `stored-record-unreadable`, a list leaves the record out, a worker fails that one item.
 */
export const storedRecordsUnreadable = new Counter({
  name: 'syndicast_stored_records_unreadable_total',
  help: 'Stored records found unreadable (not JSON, the wrong shape, or a Redis key of another type), by key family: a single read answers 500 stored-record-unreadable, a list leaves the record out, a sync of that show fails',
  labelNames: ['family'],
  registers: [processRegistry],
});

export const syncJobDuration = new Histogram({
  name: 'syndicast_sync_job_duration_seconds',
  help: 'Duration of sync job runs by platform and result (done, delayed, error)',
  labelNames: ['platform', 'result'],
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [processRegistry],
});

export const deliveryAttempts = new Counter({
  name: 'syndicast_outbound_delivery_attempts_total',
  help: 'Outbound webhook delivery attempts by outcome (delivered, retry, failed, skipped; deferred: not attempted, its partner at its in-flight limit or slow while slots are short, another attempt of it in flight, or its retry not due yet)',
  labelNames: ['outcome'],
  registers: [processRegistry],
});

export const reconciliationDiscrepancies = new Counter({
  name: 'syndicast_reconciliation_discrepancies_total',
  help: 'Discrepancies found by completed reconciliation runs, by kind and whether they were healed',
  labelNames: ['kind', 'healed'],
  registers: [processRegistry],
});

export const reconciliationRuns = new Counter({
  name: 'syndicast_reconciliation_runs_total',
  help: 'Reconciliation runs finished, by status',
  labelNames: ['status'],
  registers: [processRegistry],
});

/**
 * Platform orders re-sent with another total or currency than the ledger's (the first stored one wins;
 * no correction entry: docs/attribution.md "An order re-sent with another total"), by source.
 */
export const platformOrderConflicts = new Counter({
  name: 'syndicast_platform_order_conflicts_total',
  help: "Platform orders reported again with another total or currency than the ledger's (the ledger keeps its own; reconciliation reports the amount_mismatch)",
  labelNames: ['platform_source'],
  registers: [processRegistry],
});

/**
 * Platform webhooks that verified (the platform's signature or header) but whose body could not be read,
 * acknowledged all the same (Bambuser: no topic of it carries orders, and it retries a delivery until it
 * gets a 200, forever), by platform. Nothing of them is stored.
 */
export const platformWebhooksUnreadable = new Counter({
  name: 'syndicast_platform_webhooks_unreadable_total',
  help: 'Verified platform webhooks whose body could not be read, acknowledged (2xx) so that the platform stops retrying them; nothing stored',
  labelNames: ['platform'],
  registers: [processRegistry],
});

export const commissionBooked = new Counter({
  name: 'syndicast_ledger_commission_booked_minor_total',
  help: 'Commission accrued in the ledger, in minor units of the currency (reversals are counted apart)',
  labelNames: ['currency'],
  registers: [processRegistry],
});

export const commissionReversed = new Counter({
  name: 'syndicast_ledger_commission_reversed_minor_total',
  help: 'Commission reversed in the ledger by refunds, in minor units of the currency',
  labelNames: ['currency'],
  registers: [processRegistry],
});

export const logLinesDropped = new Counter({
  name: 'syndicast_log_lines_dropped_total',
  help: 'Log lines dropped because stdout did not take them (its reader not reading) while 16 MiB of lines already waited for it',
  registers: [processRegistry],
});

/** A label value that is one of `allowed`, else `other` (keeps cardinality bounded whatever arrives). */
export function bounded<T extends string>(value: string | undefined, allowed: readonly T[]): T | 'other' {
  return value !== undefined && (allowed as readonly string[]).includes(value) ? (value as T) : 'other';
}

/**
 * A registry with prom-client's process metrics, minus its `nodejs_active_*_total` gauges: `promtool
 * check metrics` refuses `_total` on anything but a counter, and their `nodejs_active_*` siblings
 * carry the same numbers.
 */
export function defaultsRegistry(): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  for (const m of r.getMetricsAsArray()) {
    const name = (m as unknown as { name: string }).name;
    if (m instanceof Gauge && name.endsWith('_total')) r.removeSingleMetric(name);
  }
  return r;
}

/**
 * /metrics of a process without the API (worker, scheduler): its own counters and process metrics.
 * `timeouts`: HTTP_IDLE_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS.
 */
export async function serveProcessMetrics(host: string, port: number, timeouts: Readonly<HttpTimeouts> = DEFAULT_HTTP_TIMEOUTS): Promise<{ url: string; close(): Promise<void> }> {
  const registry = Registry.merge([defaultsRegistry(), processRegistry]);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  // A flood of silent connections takes at most its share of the process's descriptors (src/lib/connection-limits.ts).
  limitHttpServer(server, METRICS_CONNECTION_SHARE, undefined, timeouts);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as { port: number };
  // A scrape cut by the shutdown is only a missed scrape; a stuck client holds nothing.
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/metrics`, close: () => closeServerNow(server) };
}
