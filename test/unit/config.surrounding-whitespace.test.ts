/**
 * An env file edited on Windows ends every value with `\r` (CRLF lines), and a value pasted with a
 * space before or after it is as common. No setting can mean that whitespace (hosts, URLs, ports,
 * names, keys, levels, paths), so it is trimmed: before, `HOST=0.0.0.0\r` was a host name the listen
 * could not resolve, `DATA_DIR=/var/lib/syndicast\r` a directory of that name (with the CR),
 * `REDIS_URL=…\r` a URL ioredis read as a host name ending in CR, `FFMPEG_PATH=/usr/bin/ffmpeg\r` a
 * binary that does not exist, `LOG_LEVEL=debug\r` a start error that did not say why. A value of
 * whitespace only (`\r` alone too) still stops the start, and an empty one is still unset
 * (test/unit/config.messages.test.ts).
 */
import { ConfigError, ENVIRONMENT_VARIABLES, loadConfig, loadSimConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

/** A valid value of every variable the service reads (one that is not its default, where that matters). */
const VALUES: Record<string, string> = {
  PORT: '3001',
  HOST: '0.0.0.0',
  TRUST_PROXY: 'loopback,10.0.0.0/8',
  PUBLIC_BASE_URL: 'https://links.example.com',
  REDIS_URL: 'redis://127.0.0.1:6390/2',
  REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7000',
  REDIS_APPENDFSYNC: 'always',
  REDIS_WAIT_REPLICAS: '1',
  REDIS_WAIT_TIMEOUT_MS: '700',
  ADMIN_API_KEY: 'sk_admin_0123456789abcdef',
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  SECRETS_KEY_PREVIOUS: `${Buffer.alloc(32, 8).toString('base64')},${Buffer.alloc(32, 9).toString('base64')}`,
  LOG_LEVEL: 'debug',
  ALLOW_PRIVATE_DESTINATIONS: 'true',
  DNS_LOOKUP_CONCURRENCY: '3',
  DATA_DIR: '/var/lib/syndicast',
  KEY_PREFIX: 'sx',
  SYNC_SHARDS: '4',
  WORKER_CONCURRENCY: '10',
  SYNC_TARGET_CONCURRENCY: '3',
  PLATFORM_TIMEOUT_MS: '5000',
  PLATFORM_TIMEOUTS_MS: 'youtube=3000,tiktok=4000',
  PLATFORM_SETTLE_MS: '1000',
  WEBHOOK_TOLERANCE_SEC: '120',
  EVENT_FUTURE_SLACK_SEC: '60',
  SECRET_ROTATION_GRACE_HOURS: '12',
  SYNC_MAX_RETRIES: '5',
  SYNC_BACKOFF_BASE_MS: '200',
  PIN_REFUSED_RETRY_BASE_MS: '2000',
  SWEEP_INTERVAL_MS: '2000',
  DISPATCH_RECLAIM_MS: '5000',
  INGEST_SYNC_JOBS: 'dispatch',
  SWEEP_PAGE_SIZE: '100',
  PENDING_ORDER_GRACE_MS: '1000',
  INBOX_TTL_DAYS: '7',
  CLAIM_PROVISIONAL_SEC: '30',
  COMMISSION_HOLD_DAYS: '14',
  RECONCILE_CLOCK_SKEW_MS: '60000',
  SHUTDOWN_TIMEOUT_MS: '20000',
  SHUTDOWN_DRAIN_MS: '500',
  HTTP_IDLE_TIMEOUT_MS: '10000',
  HTTP_REQUEST_TIMEOUT_MS: '20000',
  OPS_STREAMS_PER_KEY: '3',
  OUTBOUND_TIMEOUT_MS: '3000',
  OUTBOUND_CONCURRENCY: '5',
  OUTBOUND_ENDPOINTS_PER_PARTNER: '7',
  OUTBOUND_RETRY_SCHEDULE_MS: '100,200,400',
  WORKER_LOCK_MS: '10000',
  REDIS_REFUSED_RETRY_MS: '1000',
  RELAY_RTMP_PORT: '19350',
  RELAY_RTMP_PENDING_PER_ADDRESS: '32',
  RELAY_PUBLIC_URL: 'rtmp://relay.example.com/live',
  RELAY_EDGE: 'none',
  RELAY_EDGE_INTERNAL_URL: 'rtmp://127.0.0.1:19350/live',
  RELAY_LEASE_MS: '4000',
  RELAY_POLL_MS: '500',
  RELAY_SOURCE_TTL_MS: '5000',
  RELAY_STALL_MS: '3000',
  RELAY_START_TIMEOUT_MS: '10000',
  RELAY_START_CONCURRENCY: '3',
  RELAY_ARMED_READERS: '5',
  RELAY_HLS_FETCH_TIMEOUT_MS: '5000',
  FACEBOOK_GRAPH_VERSION: 'v26.0',
  FFMPEG_PATH: '/usr/bin/ffmpeg',
  METRICS_PORT: '9464',
};

const around = (env: Record<string, string>, before: string, after: string) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, `${before}${v}${after}`]));

test('the table names every variable the service reads (a new one is checked too)', () => {
  expect(Object.keys(VALUES).sort()).toEqual([...ENVIRONMENT_VARIABLES].sort());
});

test.each([
  ['a trailing \\r (an env file with Windows line endings)', '', '\r'],
  ['surrounding spaces and tabs', ' \t', ' '],
  ['a trailing \\r\\n', '', '\r\n'],
])('every variable with %s is read as without it', (_what, before, after) => {
  const plain = { ...load(VALUES) };
  const got = load(around(VALUES, before, after));
  expect(got).toEqual(plain);
  expect([got.host, got.dataDir, got.redisUrl, got.ffmpegPath, got.logLevel, got.publicBaseUrl]).toEqual(['0.0.0.0', '/var/lib/syndicast', 'redis://127.0.0.1:6390/2', '/usr/bin/ffmpeg', 'debug', 'https://links.example.com']);
});

test('one variable with a trailing \\r among plain ones', () => {
  expect(load({ HOST: '0.0.0.0\r', DATA_DIR: '/tmp/sc-data\r' })).toMatchObject({ host: '0.0.0.0', dataDir: '/tmp/sc-data' });
  expect(load({ ADMIN_API_KEY: 'sk_admin_0123456789abcdef\r' }).adminApiKey).toBe('sk_admin_0123456789abcdef');
});

test('a value of \\r alone is blank: the start stops naming it; an empty one is still unset', () => {
  expect(() => load({ DATA_DIR: '\r' })).toThrow(ConfigError);
  expect(() => load({ DATA_DIR: '\r' })).toThrow('DATA_DIR: is blank (only whitespace)');
  expect(load({ DATA_DIR: '' }).dataDir).toBe('.data');
});

test('whitespace inside a value is not touched (it stays the mistake it is)', () => {
  expect(() => load({ ADMIN_API_KEY: 'sk_admin_0123 456789abcdef' })).toThrow('ADMIN_API_KEY must not contain whitespace');
});

test('npm run sim reads its variables the same way', () => {
  expect(loadSimConfig({ SIM_PORT: '4200\r', SIM_HOST: '0.0.0.0\r', SIM_LOG: 'true\r', SIM_RTMP_PORT: ' 1937 ' })).toEqual({ port: 4200, host: '0.0.0.0', log: true, rtmpPort: 1937 });
});
