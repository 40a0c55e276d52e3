/**
 * Upper bounds of the numeric settings, found by attacking a running service: with none, a hostile or
 * mistaken value started the service and broke it later. PLATFORM_TIMEOUT_MS=3e9 is over Node's timer
 * limit (2^31 − 1 ms: a longer timer fires at once) and timed every platform call out;
 * INBOX_TTL_DAYS=1e12 and SECRET_ROTATION_GRACE_HOURS=1e12 made every event and every rotation a 500.
 * SWEEP_PAGE_SIZE=1e20 made every sweep and every target's kick a Redis error (ZSCAN COUNT out of range),
 * and a page of 200,000 shows one 0.3 s ZSCAN; SYNC_MAX_RETRIES=1e9 never failed a mirror; the caps
 * (OPS_STREAMS_PER_KEY, DNS_LOOKUP_CONCURRENCY, RELAY_START_CONCURRENCY, SYNC_TARGET_CONCURRENCY) at
 * 1e9 capped nothing.
 * Each bound: the value at it is taken, one more stops the start naming the variable and the bound.
 */
import { ConfigError, loadConfig, MAX_OUTBOUND_TIMEOUT_MS, MAX_REDIS_CLUSTER_NODES, MAX_SECRETS_KEY_PREVIOUS, MAX_TRUST_PROXY_ENTRIES, MAX_PLATFORM_TIMEOUT_MS, MAX_RETRY_DELAYS, MAX_TIMER_MS, type Config } from '../../src/config/config.js';
import { attemptClaimMs } from '../../src/outbound/delivery.service.js';
import { deliveryLockMs } from '../../src/outbound/delivery.worker.js';
import { intentTiming } from '../../src/store/intent.repository.js';
import { grantLockMs } from '../../src/targets/target.verify.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

/** [variable, config key, smallest value taken, largest value taken, env needed beside it]. */
const BOUNDS: [string, keyof Config, number, number, Record<string, string>?][] = [
  ['PLATFORM_TIMEOUT_MS', 'platformTimeoutMs', 100, 357_911_441],
  ['OUTBOUND_TIMEOUT_MS', 'outboundTimeoutMs', 50, 715_827_882],
  ['PLATFORM_SETTLE_MS', 'platformSettleMs', 0, MAX_TIMER_MS],
  ['SWEEP_INTERVAL_MS', 'sweepIntervalMs', 100, MAX_TIMER_MS],
  ['DISPATCH_RECLAIM_MS', 'dispatchReclaimMs', 100, MAX_TIMER_MS],
  ['PENDING_ORDER_GRACE_MS', 'pendingOrderGraceMs', 0, MAX_TIMER_MS],
  // The drain is at most half of the shutdown timeout (1 s by default): none beside the shortest timeout.
  ['SHUTDOWN_TIMEOUT_MS', 'shutdownTimeoutMs', 1000, MAX_TIMER_MS, { SHUTDOWN_DRAIN_MS: '0' }],
  ['SHUTDOWN_DRAIN_MS', 'shutdownDrainMs', 0, MAX_TIMER_MS, { SHUTDOWN_TIMEOUT_MS: String(MAX_TIMER_MS) }],
  ['WORKER_LOCK_MS', 'workerLockMs', 1000, MAX_TIMER_MS],
  // A delivery's send whose save Redis refused is kept 10 min for the job's next run.
  ['REDIS_REFUSED_RETRY_MS', 'redisRefusedRetryMs', 100, 300_000],
  ['RELAY_LEASE_MS', 'relayLeaseMs', 1000, MAX_TIMER_MS],
  ['RELAY_POLL_MS', 'relayPollMs', 100, MAX_TIMER_MS],
  ['RELAY_SOURCE_TTL_MS', 'relaySourceTtlMs', 2000, MAX_TIMER_MS],
  ['RELAY_STALL_MS', 'relayStallMs', 1000, MAX_TIMER_MS],
  ['RELAY_START_TIMEOUT_MS', 'relayStartTimeoutMs', 1000, MAX_TIMER_MS],
  ['RELAY_HLS_FETCH_TIMEOUT_MS', 'relayHlsFetchTimeoutMs', 1000, MAX_TIMER_MS],
  ['HTTP_IDLE_TIMEOUT_MS', 'httpIdleTimeoutMs', 1000, MAX_TIMER_MS],
  ['HTTP_REQUEST_TIMEOUT_MS', 'httpRequestTimeoutMs', 1000, MAX_TIMER_MS],
  ['WEBHOOK_TOLERANCE_SEC', 'webhookToleranceSec', 1, 2_147_483],
  ['EVENT_FUTURE_SLACK_SEC', 'eventFutureSlackSec', 0, 36_500 * 86_400],
  ['CLAIM_PROVISIONAL_SEC', 'claimProvisionalSec', 2, 2_147_483],
  ['INBOX_TTL_DAYS', 'inboxTtlDays', 1, 36_500],
  ['COMMISSION_HOLD_DAYS', 'commissionHoldDays', 0, 36_500],
  ['SECRET_ROTATION_GRACE_HOURS', 'secretRotationGraceHours', 0, 876_000],
  ['SYNC_SHARDS', 'syncShards', 1, 64],
  ['WORKER_CONCURRENCY', 'workerConcurrency', 1, 1000],
  ['OUTBOUND_CONCURRENCY', 'outboundConcurrency', 1, 1000],
  ['OUTBOUND_ENDPOINTS_PER_PARTNER', 'outboundEndpointsPerPartner', 1, 1000],
  // A page is one ZSCAN: 200,000 shows in one blocked Redis 0.3 s; COUNT 1e20 is a Redis error.
  ['SWEEP_PAGE_SIZE', 'sweepPageSize', 1, 10_000],
  // 1000 retries at the backoff's 5-min cap take 1.7 to 3.5 days; 1e9 never gave up.
  ['SYNC_MAX_RETRIES', 'syncMaxRetries', 1, 1000],
  // The back-off is capped at 5 min: a first wait past it is the cap.
  ['SYNC_BACKOFF_BASE_MS', 'syncBackoffBaseMs', 1, 300_000],
  // Each stream a connection (a file descriptor) and a timer in the API process.
  ['OPS_STREAMS_PER_KEY', 'opsStreamsPerKey', 1, 100],
  // libuv's threadpool has at most 1024 threads; each lookup holds one.
  ['DNS_LOOKUP_CONCURRENCY', 'dnsLookupConcurrency', 1, 1023, { UV_THREADPOOL_SIZE: '1024' }],
  ['RELAY_START_CONCURRENCY', 'relayStartConcurrency', 1, 64],
  // Each an idle ffmpeg of ~15 MiB waiting for its show's publish.
  ['RELAY_ARMED_READERS', 'relayArmedReaders', 0, 10_000],
  ['SYNC_TARGET_CONCURRENCY', 'syncTargetConcurrency', 0, 1000],
];

test.each(BOUNDS)('%s: %s from %d up to %d is taken, one more stops the start naming the variable', (name, key, _min, max, beside = {}) => {
  // SHUTDOWN_DRAIN_MS is also at most half of SHUTDOWN_TIMEOUT_MS (so never at its own bound).
  const atMax = name === 'SHUTDOWN_DRAIN_MS' ? Math.floor(max / 2) : max;
  expect(load({ ...beside, [name]: String(atMax) })[key]).toBe(atMax);
  const over = () => load({ ...beside, [name]: String(max + 1) });
  expect(over).toThrow(ConfigError);
  // One line of the configuration message, naming the variable and the bound.
  expect(over).toThrow(new RegExp(`^  ${name}: at most ${max} \\(.+\\)$`, 'm'));
});

/**
 * Lower bounds: below them a setting started the service and broke it later. INBOX_TTL_DAYS=0 makes every
 * event's inbox write `SET … EX 0` (a Redis error: every event a 5xx); WORKER_LOCK_MS=0 a BullMQ lock that
 * lapses at once (every job stalled and run again); CLAIM_PROVISIONAL_SEC=1 leaves a webhook-id claim half
 * a second to get its write out; a zero timeout, interval or count stops the work it times or counts.
 * Each minimum: the value at it is taken, one less stops the start naming the variable and the minimum.
 */
test.each(BOUNDS)('%s: %s from %d up to %d: the smallest is taken, one less stops the start naming the variable', (name, key, min, _max, beside = {}) => {
  expect(load({ ...beside, [name]: String(min) })[key]).toBe(min);
  const under = () => load({ ...beside, [name]: String(min - 1) });
  expect(under).toThrow(ConfigError);
  expect(under).toThrow(new RegExp(`^  ${name}: Too small: expected number to be >=${min}$`, 'm'));
});

test('the values of the attack are refused at start', () => {
  for (const [name, value] of [
    ['PLATFORM_TIMEOUT_MS', '3e9'],
    ['INBOX_TTL_DAYS', '1e12'],
    ['SECRET_ROTATION_GRACE_HOURS', '1e12'],
    ['CLAIM_PROVISIONAL_SEC', '1e12'],
    ['SYNC_SHARDS', '1e6'],
    ['SWEEP_PAGE_SIZE', '1e20'],
    ['SYNC_MAX_RETRIES', '1e9'],
    ['OPS_STREAMS_PER_KEY', '1e9'],
    ['DNS_LOOKUP_CONCURRENCY', '1e9'],
    ['RELAY_START_CONCURRENCY', '1e9'],
    ['SYNC_TARGET_CONCURRENCY', '1e9'],
  ] as const) {
    expect(() => load({ [name]: value })).toThrow(new RegExp(`^  ${name}: at most`, 'm'));
    // One line naming the variable (docs/operations.md): a value past 2^53 also got zod's own
    // "Too big: expected int to be <=9007199254740991" above the bound's line (SWEEP_PAGE_SIZE=1e20).
    let message = '';
    try {
      load({ [name]: value });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n').filter((l) => l.startsWith(`  ${name}:`))).toEqual([expect.stringMatching(new RegExp(`^  ${name}: at most`))]);
  }
});

test('every OUTBOUND_RETRY_SCHEDULE_MS delay is at most the timer limit (a schedule may wait longer than a day: outbound.retention uses 30 h)', () => {
  expect(load({ OUTBOUND_RETRY_SCHEDULE_MS: `5000,${30 * 3_600_000},${MAX_TIMER_MS}` }).outboundRetryScheduleMs).toEqual([5000, 30 * 3_600_000, MAX_TIMER_MS]);
  expect(() => load({ OUTBOUND_RETRY_SCHEDULE_MS: `5000,${MAX_TIMER_MS + 1}` })).toThrow(ConfigError);
  expect(() => load({ OUTBOUND_RETRY_SCHEDULE_MS: '5000,99999999999999999999,5000' })).toThrow(new RegExp(`^ {2}OUTBOUND_RETRY_SCHEDULE_MS: each delay at most ${MAX_TIMER_MS}`, 'm'));
});

test('the multiples of a timeout the code uses as a timer or a lease stay within the timer limit at its bound', () => {
  expect(MAX_PLATFORM_TIMEOUT_MS).toBe(357_911_441);
  expect(MAX_OUTBOUND_TIMEOUT_MS).toBe(715_827_882);
  // A credential check's grant lock (renewed every third of it) and an intent's attempt.
  expect(grantLockMs(MAX_PLATFORM_TIMEOUT_MS)).toBeLessThanOrEqual(MAX_TIMER_MS);
  expect(grantLockMs(MAX_PLATFORM_TIMEOUT_MS + 1)).toBeGreaterThan(MAX_TIMER_MS);
  expect(intentTiming(MAX_PLATFORM_TIMEOUT_MS, 0).attemptMs).toBeLessThanOrEqual(MAX_TIMER_MS);
  // A delivery job's BullMQ lock (renewed every half of it) and an attempt's claim.
  expect(deliveryLockMs(MAX_TIMER_MS, MAX_OUTBOUND_TIMEOUT_MS)).toBeLessThanOrEqual(MAX_TIMER_MS);
  expect(deliveryLockMs(30_000, MAX_OUTBOUND_TIMEOUT_MS + 1)).toBeGreaterThan(MAX_TIMER_MS);
  expect(attemptClaimMs(MAX_OUTBOUND_TIMEOUT_MS)).toBeLessThanOrEqual(MAX_TIMER_MS);
});

test('OUTBOUND_RETRY_SCHEDULE_MS has at most MAX_RETRY_DELAYS delays (each one more attempt, a line of the endpoint attempt log of 5000)', () => {
  expect(MAX_RETRY_DELAYS).toBe(100);
  const delays = (n: number) => Array.from({ length: n }, () => '0').join(',');
  expect(load({ OUTBOUND_RETRY_SCHEDULE_MS: delays(100) }).outboundRetryScheduleMs).toHaveLength(100);
  expect(() => load({ OUTBOUND_RETRY_SCHEDULE_MS: delays(101) })).toThrow(ConfigError);
  expect(() => load({ OUTBOUND_RETRY_SCHEDULE_MS: delays(101) })).toThrow(/^ {2}OUTBOUND_RETRY_SCHEDULE_MS: at most 100 delays \(.+\)$/m);
  // The default schedule (7 delays) and the ones tests use fit.
  expect(load({ OUTBOUND_RETRY_SCHEDULE_MS: '50,50,50,50,50,50,50' }).outboundRetryScheduleMs).toHaveLength(7);
});

test('SYNC_TARGET_CONCURRENCY stays optional (unset: half of WORKER_CONCURRENCY, in the worker) and 0 turns the cap off', () => {
  expect(load({}).syncTargetConcurrency).toBeUndefined();
  expect(load({ SYNC_TARGET_CONCURRENCY: '0' }).syncTargetConcurrency).toBe(0);
});

/**
 * List-valued settings: a huge list started the service. TRUST_PROXY is checked per request (each hop of
 * X-Forwarded-For against every entry), SECRETS_KEY_PREVIOUS per value no key opens (every key tried),
 * REDIS_CLUSTER_NODES at every start (a connection to each seed at once). The bound is taken, one more
 * entry stops the start with one line naming the variable.
 */
describe('list-valued settings have a bound on their entries', () => {
  const key = (i: number): string => Buffer.alloc(32, i + 1).toString('base64');
  const lists: [string, keyof Config, number, (i: number) => string, (v: unknown) => number][] = [
    ['TRUST_PROXY', 'trustProxy', MAX_TRUST_PROXY_ENTRIES, (i) => `10.${i >> 8}.${i & 255}.1`, (v) => (v as string[]).length],
    ['SECRETS_KEY_PREVIOUS', 'secretsKeyPrevious', MAX_SECRETS_KEY_PREVIOUS, key, (v) => String(v).split(',').length],
    ['REDIS_CLUSTER_NODES', 'redisClusterNodes', MAX_REDIS_CLUSTER_NODES, (i) => `10.0.0.${i}:6379`, (v) => String(v).split(',').length],
  ];
  test.each(lists)('%s: %s of %d entries is taken, one more stops the start naming the variable', (name, cfgKey, max, entry, count) => {
    const list = (n: number): string => Array.from({ length: n }, (_, i) => entry(i)).join(',');
    expect(count(load({ [name]: list(max) })[cfgKey])).toBe(max);
    const over = () => load({ [name]: list(max + 1) });
    expect(over).toThrow(ConfigError);
    expect(over).toThrow(new RegExp(`^  ${name}: at most ${max} entries \\(${max + 1} given\\): .+$`, 'm'));
  });
  test('the bounds are as documented: 256 proxies, 8 earlier keys, 64 cluster seeds', () => {
    expect([MAX_TRUST_PROXY_ENTRIES, MAX_SECRETS_KEY_PREVIOUS, MAX_REDIS_CLUSTER_NODES]).toEqual([256, 8, 64]);
  });
});

/**
 * DNS_LOOKUP_CONCURRENCY must stay below the process's UV_THREADPOOL_SIZE (4 when unset): at or above
 * it, name servers that drop queries hold every thread of libuv's threadpool and fs, crypto and every
 * other lookup wait behind them. The README said so; nothing checked it.
 */
test('DNS_LOOKUP_CONCURRENCY at or above UV_THREADPOOL_SIZE stops the start; the defaults (2 of 4) never do', () => {
  expect(load({}).dnsLookupConcurrency).toBe(2);
  expect(load({ DNS_LOOKUP_CONCURRENCY: '3' }).dnsLookupConcurrency).toBe(3);
  expect(load({ UV_THREADPOOL_SIZE: '3' }).dnsLookupConcurrency).toBe(2);
  expect(load({ UV_THREADPOOL_SIZE: '16', DNS_LOOKUP_CONCURRENCY: '15' }).dnsLookupConcurrency).toBe(15);
  for (const env of <Record<string, string>[]>[{ DNS_LOOKUP_CONCURRENCY: '4' }, { UV_THREADPOOL_SIZE: '2' }, { UV_THREADPOOL_SIZE: '16', DNS_LOOKUP_CONCURRENCY: '16' }, { UV_THREADPOOL_SIZE: '0' }, { UV_THREADPOOL_SIZE: 'x' }]) {
    expect(() => load(env)).toThrow(ConfigError);
    expect(() => load(env)).toThrow(/^ {2}DNS_LOOKUP_CONCURRENCY: \d+ is not below UV_THREADPOOL_SIZE \(\d+(, unset)?\); .+$/m);
  }
});

