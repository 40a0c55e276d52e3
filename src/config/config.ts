/**
 * Configuration, read once (compare immich's getEnv()): defaults < config/default.json <
 * config/local.json < environment. Validated with zod; one error message names every bad key.
 * Nothing else in src/ reads process.env for a setting (the redis-server src/store/embedded-redis.ts
 * spawns is handed the environment whole, as a child inherits it, plus LC_ALL=C).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { HTTP_IDLE_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS } from '../lib/connection-limits.js';
import { isSecretsKey, SECRETS_KEY_RULE } from '../lib/crypto.js';
import { PLATFORMS, type Platform } from '../targets/target.adapter.js';

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
/**
 * Text that is a number written in decimal (an exponent allowed: `1e6`): Number() also reads `0x10`,
 * `0b11`, `0o7` and `Infinity`, so PORT=0x10 listened on port 16 (attack on npm start).
 */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
/**
 * A number setting's value: a number, or text that is one (an environment variable). What else a config
 * file gives is no number: zod's coercion read `true` as 1, and `false`, `null`, `""` and `[]` as 0 (a
 * local.json `"commissionHoldDays": false` approved every commission at once, `"port": null` listened on
 * any free port). Refused with the value given (NaN: "must be a number").
 */
const numberLike = (v: unknown): unknown => (v === undefined || typeof v === 'number' || (typeof v === 'string' && DECIMAL.test(v)) ? v : Number.NaN);
const num = <T extends z.ZodType>(schema: T) => z.preprocess(numberLike, schema);
const int = (def: number, min = 0) => num(z.coerce.number().int().min(min)).default(def);

/**
 * Node's timer limit: setTimeout / setInterval take a longer delay as 1 ms, so the timer fires at once
 * (PLATFORM_TIMEOUT_MS=3e9 timed every platform call out). Every duration setting stays within it,
 * and so does every multiple of one the code uses as a timer or a lease (the MAX_*_TIMEOUT_MS below).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** 100 years, the bound of a setting in days or hours (INBOX_TTL_DAYS=1e12 made every event a 500: no date that far). */
const MAX_DAYS = 36_500;
/**
 * PLATFORM_TIMEOUT_MS's bound: a credential check's grant lock is 6 × it + 15 s, renewed every third of
 * it (src/targets/target.verify.ts grantLockMs); an intent's attempt is 2 × it.
 */
export const MAX_PLATFORM_TIMEOUT_MS = Math.floor((MAX_TIMER_MS - 15_000) / 6);
/**
 * A platform's effective timeout: its own PLATFORM_TIMEOUTS_MS entry (`platformTimeoutsMs`), else
 * PLATFORM_TIMEOUT_MS (`timeoutMs`). Its calls take it (sync runs, credential checks); half of it makes
 * a sync run slow (SYNC_TARGET_CONCURRENCY).
 */
export function effectiveTimeoutMs(platform: Platform, timeoutMs: number, platformTimeoutsMs: Partial<Record<Platform, number>> | undefined): number {
  return platformTimeoutsMs?.[platform] ?? timeoutMs;
}
/** OUTBOUND_TIMEOUT_MS's bound: a delivery job's BullMQ lock is at least 3 × it (src/outbound/delivery.worker.ts deliveryLockMs). */
export const MAX_OUTBOUND_TIMEOUT_MS = Math.floor(MAX_TIMER_MS / 3);
/** OUTBOUND_RETRY_SCHEDULE_MS: at most this many delays (a delivery's attempts are one more). */
export const MAX_RETRY_DELAYS = 100;
/** A whole number from `min` to `max`; over it, the message names the bound and `why` (every bound below says why). */
const upTo = (min: number, max: number, why: string) => num(z.coerce.number().int().min(min).max(max, `at most ${max} (${why})`));
/** upTo with a default: every bounded setting is one of these (the helpers below only name the bound). */
const bounded = (def: number, min: number, max: number, why: string) => upTo(min, max, why).default(def);
/** A duration in ms: at most `max` (MAX_TIMER_MS, or less where a multiple of it is a timer: `why`). */
const ms = (def: number, min: number, max = MAX_TIMER_MS, why = "Node's timer limit, ~24.8 days; a longer timer fires at once") => bounded(def, min, max, why);
/** A duration in seconds: at most MAX_TIMER_MS in ms (2147483 s, ~24.8 days). */
const sec = (def: number, min: number) => bounded(def, min, Math.floor(MAX_TIMER_MS / 1000), "~24.8 days: in ms, Node's timer limit");
/** A span in days or hours: at most 100 years (a date further away does not exist for the code: every use of it failed). */
const days = (def: number, min: number, perDay = 1) => bounded(def, min, MAX_DAYS * perDay, '100 years');
/** A count of things each process starts, runs or holds at once, or a count of tries: at most `max` (`why`). */
const count = bounded;

/**
 * The base URL links are made from by appending a path (`{PUBLIC_BASE_URL}/l/{code}`,
 * `{RELAY_PUBLIC_URL}/{streamKey}`): a query or fragment would swallow that path, and a user or
 * password would be handed out in every link.
 */
const isLinkBase = (url: string): boolean => !/[?#]/.test(url) && !/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(url);
/**
 * An RTMP URL the relay's ffmpeg and partners' encoders can open: a host, and a port of 1 to 65535 when
 * one is given. `rtmp://` and `rtmp://host:99999/live` were taken (the scheme alone was checked): the
 * publish address handed to every partner, or the edge every relay process reads from, reached nobody.
 */
const isRtmpUrl = (url: string): boolean => {
  try {
    const u = new URL(url);
    return u.hostname !== '' && u.port !== '0';
  } catch {
    return false;
  }
};
const RTMP_URL_RULE = 'must name a host, and a port of 1 to 65535 if it gives one (rtmp://host:1935/live)';
const LINK_BASE_RULE = 'must have no query (?), fragment (#) or user@ / user:password@: links are made by appending a path to it';
/**
 * What ioredis cannot take from a redis:// URL, said at start: a URL it cannot parse (a port past
 * 65535, a letter in it, an unclosed `[`) threw ERR_INVALID_URL with a stack trace, and a database
 * that is no number (`/abc`, `?db=x`) was sent as `SELECT NaN`, a Redis error with a stack trace (and `/-1`
 * was refused by the server with a message naming no database).
 */
function redisUrlProblem(url: string, ctx: z.RefinementCtx): void {
  // One mistake, one line: a URL without its scheme (REDIS_URL=127.0.0.1:6379) was also "not a URL ioredis can read".
  if (!/^rediss?:\/\//.test(url)) {
    ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL (for example redis://127.0.0.1:6379)' });
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL ioredis can read (redis://[user:password@]host[:port][/db], port 1 to 65535; an IPv6 host in brackets)' });
    return;
  }
  // `redis://` or `redis:///2` (REDIS_URL=redis://${REDIS_HOST} with the variable unset) names no host:
  // ioredis took its default, 127.0.0.1:6379, a Redis nobody meant.
  if (parsed.hostname === '') {
    ctx.addIssue({ code: 'custom', message: 'names no host (redis://host:6379): ioredis would connect to 127.0.0.1:6379 instead' });
    return;
  }
  const db = parsed.searchParams.get('db');
  if (!/^\/?(\d+)?$/.test(parsed.pathname) || (db !== null && !/^\d+$/.test(db))) {
    ctx.addIssue({ code: 'custom', message: 'the database at its end must be a whole number (redis://host:6379/2), or leave it out (database 0)' });
  }
}
/**
 * One seed of REDIS_CLUSTER_NODES: `host:port`, `host` (port 6379) or `[IPv6]:port`. What it is not is
 * said at start: a port that is no number or past 65535 (`10.0.0.5:63790x`, `:99999`), a second colon
 * (`10.0.0.5:7000:1`, an IPv6 address without brackets) or no host was read as a seed nobody could
 * reach (port NaN, or the part after the second colon dropped): the start waited its 15 s, then said
 * only that no node answered.
 */
function parseSeedAddress(address: string, shown: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]*)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(address);
  if (!m) return `${shown}: each seed must be host:port (an IPv6 address in brackets, [::1]:7000)`;
  // In brackets only an IPv6 address (`[:]`, `[.]`, `[1]` reach nobody); outside them what a host name
  // or an IPv4 address may hold (not `user@h` nor `h/x`, read by nobody as the seed meant).
  if (m[1] !== undefined && isIP(m[1]) !== 6) return `${shown}: what is in brackets must be an IPv6 address ([::1]:7000)`;
  if (m[2] !== undefined && !/^[A-Za-z0-9._-]+$/.test(m[2])) return `${shown}: the host must be a host name or an IP address (letters, digits, '.', '-', '_')`;
  const port = m[3] === undefined ? 6379 : Number(m[3]);
  if (port < 1 || port > 65535) return `${shown}: the port must be 1 to 65535`;
  return { host: (m[1] ?? m[2])!, port };
}

/** A seed of REDIS_CLUSTER_NODES as the Cluster client takes it; `password` (and `username`, not the default user) when the seed gives them. */
export interface ClusterSeed {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * An entry of REDIS_CLUSTER_NODES as it may be printed: what is before its last `@` (a user and
 * password) shown as `user:***` (`***` alone when it has no `:`: a password written without one), so
 * no message, log line or error names a password. Also for an entry that is not a valid seed: a
 * password with an unencoded `,` splits an entry in two, and the first half is no seed.
 */
export function printableClusterSeed(entry: string): string {
  const e = entry.trim();
  const scheme = SCHEME.exec(e)?.[0] ?? '';
  const at = e.lastIndexOf('@');
  if (at === -1) {
    // `redis://user:pa` (a password with an unencoded ',' split the entry): what follows the scheme is shown only when it is an address.
    return scheme && typeof parseSeedAddress(e.slice(scheme.length).replace(/\/$/, ''), '') === 'string' ? `${scheme}***` : e;
  }
  const userinfo = e.slice(scheme.length, at);
  const colon = userinfo.indexOf(':');
  return `${scheme}${colon === -1 || scheme === '' ? '***' : `${userinfo.slice(0, colon)}:***`}@${e.slice(at + 1)}`;
}

/** REDIS_CLUSTER_NODES as it may be printed (printableClusterSeed of each entry). */
export function printableClusterNodes(nodes: string): string {
  return nodes
    .split(',')
    .map((e) => (e.trim() === '' ? e : printableClusterSeed(e)))
    .join(',');
}

const SEED_FORMS = 'host:port, or redis://user:password@host:port (redis://:password@host:port for the default user) when the nodes require a password';

/**
 * One entry of REDIS_CLUSTER_NODES: a seed (parseSeedAddress), or `redis://[user:password@]host[:port]`
 * for nodes that require a password, as REDIS_URL takes it: the user and password percent-decoded (as
 * ioredis decodes REDIS_URL's; a `,` in a password is written %2C), the user left out
 * (`redis://:password@host`) for the default user. A problem is said naming the entry with its
 * password hidden (printableClusterSeed).
 */
export function parseClusterSeed(entry: string): ClusterSeed | string {
  const e = entry.trim();
  const shown = JSON.stringify(printableClusterSeed(e));
  const scheme = SCHEME.exec(e)?.[0];
  if (scheme === undefined) {
    if (e.includes('@')) return `${shown}: each seed must be ${SEED_FORMS}`;
    return parseSeedAddress(e, shown);
  }
  if (scheme.toLowerCase() !== 'redis://') return `${shown}: each seed must be ${SEED_FORMS} (TLS, rediss://, is not supported for a cluster)`;
  const rest = e.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  const address = rest.slice(at + 1).replace(/\/$/, '');
  if (/[/?#]/.test(address)) return `${shown}: a seed has no path, database or query (a Redis Cluster has database 0 only): redis://user:password@host:port`;
  const seed = parseSeedAddress(address, shown);
  if (typeof seed === 'string' && at === -1) return `${shown}: each seed must be ${SEED_FORMS} (a ',' in a password is written %2C)`;
  if (typeof seed === 'string' || at === -1) return seed;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon === -1 || colon === userinfo.length - 1) return `${shown}: give the password after a ':' (redis://user:password@host:port, or redis://:password@host:port for the default user)`;
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(userinfo.slice(0, colon));
    password = decodeURIComponent(userinfo.slice(colon + 1));
  } catch {
    return `${shown}: the user or password has a '%' that starts no percent-encoded character (write '%' itself as %25)`;
  }
  return username === '' ? { ...seed, password } : { ...seed, username, password };
}

/** The entries of REDIS_CLUSTER_NODES, empty ones (`a:7000,,b:7000`, a trailing comma) left out. */
function clusterSeedEntries(nodes: string): string[] {
  return nodes.split(',').filter((e) => e.trim() !== '');
}

/**
 * Why the seeds' credentials cannot be used: the Cluster client sends one user and password to every
 * node (each seed and each node it learns of), so seeds that give different ones (or some none) are a
 * mistake, said without naming any password.
 */
function credentialsProblem(seeds: ClusterSeed[]): string | null {
  const key = (s: ClusterSeed): string => JSON.stringify([s.username ?? null, s.password ?? null]);
  if (seeds.every((s) => key(s) === key(seeds[0]!))) return null;
  return 'every seed must give the same user and password (or every seed none): Syndicast sends one to every node of the cluster';
}

/** The seeds of REDIS_CLUSTER_NODES (clusterSeedEntries), each by parseClusterSeed's rule. */
export function clusterSeedList(nodes: string): ClusterSeed[] {
  const seeds = clusterSeedEntries(nodes).map((e) => {
    const seed = parseClusterSeed(e);
    if (typeof seed === 'string') throw new ConfigError(`REDIS_CLUSTER_NODES: ${seed}`);
    return seed;
  });
  const problem = credentialsProblem(seeds);
  if (problem) throw new ConfigError(`REDIS_CLUSTER_NODES: ${problem}`);
  return seeds;
}

/**
 * The seeds' host and port, and the user and password every node of the cluster gets (the seeds'
 * own, all the same: clusterSeedList), as the Cluster client takes them.
 */
export function clusterConnection(nodes: string): { seeds: { host: string; port: number }[]; username?: string; password?: string } {
  const list = clusterSeedList(nodes);
  const { username, password } = list[0] ?? {};
  return {
    seeds: list.map(({ host, port }) => ({ host, port })),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}

function clusterNodesProblem(nodes: string, ctx: z.RefinementCtx): void {
  const entries = clusterSeedEntries(nodes);
  if (entries.length === 0) ctx.addIssue({ code: 'custom', message: `names no seed: a comma-separated list of ${SEED_FORMS}` });
  const seeds: ClusterSeed[] = [];
  // With a password in the list, a bad entry of neither form may be the middle of a password that an
  // unencoded ',' split: named by its place, not its text.
  const withPassword = nodes.includes('@');
  entries.forEach((e, i) => {
    const seed = parseClusterSeed(e);
    if (typeof seed !== 'string') seeds.push(seed);
    else if (withPassword && !e.includes('@') && !SCHEME.test(e.trim())) ctx.addIssue({ code: 'custom', message: `seed ${i + 1} is no seed: each seed must be ${SEED_FORMS} (a ',' in a password is written %2C)` });
    else ctx.addIssue({ code: 'custom', message: seed });
  });
  const problem = seeds.length === entries.length && seeds.length > 0 ? credentialsProblem(seeds) : null;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
}

/** A TCP port to listen on: 0 = any free port. */
const tcpPort = num(z.coerce.number().int().min(0).max(65535, 'must be a TCP port, 0 to 65535'));

/**
 * The Graph API version the Facebook adapter calls. Graph versions live about two years and a call to
 * an expired one is silently served by the oldest live version (developers.facebook.com/docs/apps/versions),
 * so the version is a setting to keep current. v27.0 was released on 2026-11-04.
 */
export const DEFAULT_FACEBOOK_GRAPH_VERSION = 'v27.0';

/** proxy-addr's names for address ranges (Fastify's trustProxy): 127.0.0.0/8 + ::1, 169.254.0.0/16 + fe80::/10, 10/8 + 172.16/12 + 192.168/16 + fc00::/7. */
const TRUST_PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** One entry of TRUST_PROXY's list: a range name, an IP address, or an address/prefix (CIDR). */
function isTrustProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_RANGES.has(entry)) return true;
  const slash = entry.indexOf('/');
  if (slash === -1) return isIP(entry) !== 0;
  const family = isIP(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  // 1 to 32 (IPv4) or 128 (IPv6), as proxy-addr takes it (/0 is refused there: that is `true`).
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Entries of TRUST_PROXY's list. proxy-addr checks each hop of a request's X-Forwarded-For against every
 * entry in turn (a per-request cost); 256 holds a CDN's published ranges (Cloudflare's are 22).
 */
export const MAX_TRUST_PROXY_ENTRIES = 256;
/**
 * Keys of SECRETS_KEY_PREVIOUS. A sealed value that no key opens is tried against every one of them
 * (SecretBox.open), per request: a platform webhook for a target whose secret no key opens does it
 * before its 503. A rotation needs one earlier key, a rotation begun before the last was finished two.
 */
export const MAX_SECRETS_KEY_PREVIOUS = 8;
/**
 * Seed nodes of REDIS_CLUSTER_NODES. Each process opens a connection to every seed at once when it starts
 * (clusterSeedProblem, src/store/redis.ts); the Cluster client learns the other nodes from any one seed.
 */
export const MAX_REDIS_CLUSTER_NODES = 64;

/** A comma-separated list of at most `max` entries, `why` in the refusal. */
function listOfAtMost(max: number, why: string) {
  return (s: string, ctx: z.RefinementCtx): void => {
    const n = s.split(',').filter((e) => e.trim() !== '').length;
    if (n > max) ctx.addIssue({ code: 'custom', message: `at most ${max} entries (${n} given): ${why}` });
  };
}

/**
 * TRUST_PROXY: which direct peers may say who the client is (X-Forwarded-For, -Proto, -Host), as Fastify's
 * trustProxy: `false` (none), `true` (any peer), or a comma-separated list of addresses, CIDRs and the
 * range names above. A hop count is refused: Fastify 5 cannot check the peer with one and ignores the
 * headers (fail closed), so `1` would look like it works and never did.
 */
const trustProxy = z.union([z.boolean(), z.string()]).transform((v, ctx): boolean | string[] => {
  if (typeof v === 'boolean') return v;
  const s = v.trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^\d+$/.test(s)) {
    ctx.addIssue({ code: 'custom', message: `${v}: a hop count is not accepted (Fastify cannot check the peer with one and trusts nobody); list the proxies' addresses or CIDRs, e.g. 10.0.0.0/8, or \`loopback\`` });
    return z.NEVER;
  }
  const entries = s.split(',').map((e) => e.trim());
  if (entries.length > MAX_TRUST_PROXY_ENTRIES) {
    ctx.addIssue({ code: 'custom', message: `at most ${MAX_TRUST_PROXY_ENTRIES} entries (${entries.length} given): every request's X-Forwarded-For hops are each checked against every entry` });
    return z.NEVER;
  }
  const bad = entries.filter((e) => !isTrustProxyEntry(e));
  if (bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `${bad.map((e) => JSON.stringify(e)).join(', ')}: must be true, false, or a comma-separated list of IP addresses, CIDRs (10.0.0.0/8) and loopback, linklocal, uniquelocal` });
    return z.NEVER;
  }
  return entries;
});

const ConfigSchema = z.object({
  port: tcpPort.default(3000),
  host: z.string().min(1).default('127.0.0.1'),
  /**
   * Peers whose X-Forwarded-For / -Proto / -Host the API believes (the click's IP hash, the console
   * cookie's Secure flag, request logs). Default: a proxy on this host only (README "Configuration").
   */
  trustProxy: trustProxy.default(['loopback']),
  // Where buyers open tracked links (chat messages, comments, pins): a URL a browser opens.
  publicBaseUrl: z.string().url().regex(/^https?:\/\//i, 'must be an http:// or https:// URL').refine(isLinkBase, LINK_BASE_RULE).optional(),
  redisUrl: z.string().superRefine(redisUrlProblem).optional(),
  redisClusterNodes: z.string().superRefine(clusterNodesProblem).superRefine(listOfAtMost(MAX_REDIS_CLUSTER_NODES, 'each process connects to every seed at once when it starts; any one seed names the rest of the cluster')).optional(),
  /** appendfsync of the embedded redis-server: always (no acknowledged write lost) or everysec. */
  redisAppendfsync: z.enum(['always', 'everysec']).default('everysec'),
  /**
   * Replicas a write must reach before the API acknowledges it (Redis WAIT), and a sync step's
   * started intent before its platform call: `auto` = 1 on a Redis Cluster whose masters have
   * replicas, 0 on a single Redis. See src/store/replica-ack.ts.
   */
  redisWaitReplicas: z.union([z.literal('auto'), num(z.coerce.number().int().min(0).max(5))]).default('auto'),
  /**
   * How long one WAIT may take before the request fails with 503. At most 1,500 ms: the API's Redis
   * connection times a command out at 2 s (src/store/redis.ts), and a longer WAIT would end as a
   * command timeout instead (the redirect's click batch then took the slow path and waited again).
   */
  redisWaitTimeoutMs: int(500, 10).pipe(z.number().max(1500, 'REDIS_WAIT_TIMEOUT_MS is at most 1500 (the API Redis command timeout is 2000 ms)')),
  // Sent as one token after "Bearer": a key with a space, a tab or a line break in it could never be sent.
  adminApiKey: z.string().min(16, 'ADMIN_API_KEY needs at least 16 characters').regex(/^\S+$/, 'ADMIN_API_KEY must not contain whitespace (it is sent as one token after "Bearer")').optional(),
  /** Checked here (SecretBox's rule) so that a wrong key stops the start with this paragraph, not a stack. */
  secretsKey: z.string().refine(isSecretsKey, SECRETS_KEY_RULE).optional(),
  /** Comma-separated earlier SECRETS_KEY values, still accepted for decryption while data is re-sealed. */
  secretsKeyPrevious: z
    .string()
    .refine((s) => s.split(',').every((k) => k.trim() === '' || isSecretsKey(k)), `each value ${SECRETS_KEY_RULE}`)
    .superRefine(listOfAtMost(MAX_SECRETS_KEY_PREVIOUS, 'a value no key opens is tried against every key, on each request that reads it'))
    .optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  allowPrivateDestinations: bool.default(false),
  /**
   * System DNS lookups (getaddrinfo) the process may have in flight at once (src/lib/ssrf.ts
   * sharedLookup): each holds a thread of libuv's threadpool (UV_THREADPOOL_SIZE, 4 by default) until
   * the resolver answers or gives up, so dead name servers hold at most this many and fs, crypto keep
   * the rest. A lookup over it waits its turn within its 5 s, then counts as a timeout. libuv's
   * threadpool has at most 1024 threads: at 1024 dead name servers could hold every one of them.
   */
  dnsLookupConcurrency: count(2, 1, 1023, "each lookup holds a thread of libuv's threadpool, at most 1024 threads: keep it below UV_THREADPOOL_SIZE"),
  dataDir: z.string().default('.data'),
  keyPrefix: z.string().regex(/^[a-z0-9_-]{1,16}$/).default('sc'),
  /** Sync queues per platform; shows are spread across them by hash (Redis Cluster slots). */
  syncShards: count(2, 1, 64, 'each worker process runs one BullMQ worker, with its own blocking Redis connection, per shard and platform: 5 × SYNC_SHARDS'),
  workerConcurrency: count(20, 1, 1000, 'concurrent jobs per sync queue, per worker process'),
  /**
   * Sync runs a slow target (a run took half its platform's timeout, PLATFORM_TIMEOUTS_MS's or else
   * PLATFORM_TIMEOUT_MS, or longer) may have in flight across every worker process (src/mirror/target-cap.ts). Unset: half of WORKER_CONCURRENCY (at least 1);
   * 0: no cap. At most WORKER_CONCURRENCY's bound: a cap that high holds a slow target back nowhere.
   */
  syncTargetConcurrency: upTo(0, 1000, 'as many runs as one sync queue of a worker process may run at the most, WORKER_CONCURRENCY; 0 turns the cap off').optional(),
  platformTimeoutMs: ms(10_000, 100, MAX_PLATFORM_TIMEOUT_MS, `a credential check's grant lock, 6 × it + 15 s, must stay within Node's timer limit, ${MAX_TIMER_MS} ms`),
  /**
   * A shorter PLATFORM_TIMEOUT_MS for some platforms (`youtube=3000,tiktok=5000`): each at most
   * PLATFORM_TIMEOUT_MS (checked in loadConfig), which keeps bounding what is derived from it (an
   * intent's attempt, a credential check's grant lock). A target of such a platform is slow after half
   * of its own timeout (SYNC_TARGET_CONCURRENCY). Each platform at most once.
   */
  platformTimeoutsMs: z
    .string()
    .regex(new RegExp(`^(${PLATFORMS.join('|')})=\\d+(,(${PLATFORMS.join('|')})=\\d+)*$`), `must be a comma-separated list of platform=milliseconds (for example youtube=3000,tiktok=5000), each platform one of ${PLATFORMS.join(', ')}`)
    .transform((s) => s.split(',').map((e) => e.split('=') as [Platform, string]))
    .refine((entries) => new Set(entries.map(([p]) => p)).size === entries.length, 'each platform at most once')
    .refine((entries) => entries.every(([, v]) => Number(v) >= 100), 'each timeout at least 100 (PLATFORM_TIMEOUT_MS\'s least)')
    .transform((entries): Partial<Record<Platform, number>> => Object.fromEntries(entries.map(([p, v]) => [p, Number(v)])))
    .optional(),
  /**
   * How late a platform may still act on a request that reached it by an intent attempt's deadline:
   * a retry waits this long past the deadline before it looks up (or repeats) the attempt's call.
   * The platform's bound, not our client's timeout (docs/architecture.md §5).
   */
  platformSettleMs: ms(30_000, 0),
  webhookToleranceSec: sec(300, 1),
  /**
   * How far in the future an inbound event's occurredAt may be (src/sources/ingest.service.ts). Only
   * compared with event times, never a timer: bounded like a span in days (100 years, in seconds).
   */
  eventFutureSlackSec: days(86_400, 0, 86_400),
  secretRotationGraceHours: days(24, 0, 24),
  /**
   * Consecutive failed attempts of a mirror before it goes `failed`. Past the first few, each retry waits
   * 2.5 to 5 min (src/mirror/backoff.ts): 1000 take 1.7 to 3.5 days; 1e9 never gave up (a dead target's
   * mirror retried every 5 min for good, never failed, never reported, its show never left the active set).
   */
  syncMaxRetries: count(30, 1, 1000, 'a mirror that fails at every attempt gives up within days: 1000 retries at the backoff cap, 2.5 to 5 min each, take 1.7 to 3.5 days'),
  /**
   * The first wait of a mirror's retry back-off (src/mirror/backoff.ts): the nth failure in a row waits
   * half to all of this × 2^(n−1), capped at 5 min. Tests shorten it (test/e2e/mirror.faults.test.ts);
   * at most the cap, where every wait already is the cap.
   */
  syncBackoffBaseMs: ms(1000, 1, 300_000, 'the back-off is capped at 5 min: a larger first wait is that cap'),
  /**
   * The first wait before a live show's pin that the platform refused for a reason the seller can mend
   * there (PinRefusedError.mendable: a product none of the seller's Whatnot listings yet, TikTok's
   * 36009004 naming product_id, Facebook's code 100 on a catalog item out of stock) is asked again;
   * doubled at each refusal, capped at 5 min (src/domain/mirror.ts refusedRetryMs). The sweep starts the
   * attempt, so it comes up to SWEEP_INTERVAL_MS later. Tests shorten it (test/e2e/pin-refused.retry.test.ts).
   */
  pinRefusedRetryBaseMs: ms(30_000, 100, 300_000, 'the wait is capped at 5 min: a larger first wait is that cap'),
  sweepIntervalMs: ms(10_000, 100),
  /**
   * Sync dispatcher (src/mirror/sync.dispatcher.ts): a dispatch entry read by a dispatcher that then
   * stopped (crash) is taken over by another one after this long unacknowledged.
   */
  dispatchReclaimMs: ms(30_000, 100),
  /**
   * How an accepted show event on ONE Redis asks for its syncs: `inline` (the ingest's Lua step makes
   * the show's sync jobs in BullMQ's keys itself, src/queues/inline-sync.ts) or `dispatch` (a
   * sync-dispatch entry the dispatcher turns into jobs). On a Redis Cluster always `dispatch` (the
   * inline script names keys of other slots): `inline` there is ignored, with an info log at start,
   * so the default serves both topologies. The dispatcher runs in either mode (Cluster, entries of
   * older processes, a rolling change of this setting).
   */
  ingestSyncJobs: z.enum(['inline', 'dispatch']).default('inline'),
  /**
   * Active shows read per round trip by the sweep and by a target's kick (ZSCAN COUNT); every active show
   * is visited. A page is one Redis command, which serves nobody else meanwhile (200,000 shows in one
   * ZSCAN: 0.3 s, while API commands time out at 2 s), and the sweep runs a page's shows all at once.
   * A COUNT of 2^63 or more is a Redis error: every sweep and every target's kick failed.
   */
  sweepPageSize: count(500, 1, 10_000, "a page is one ZSCAN, and Redis serves no other command meanwhile; the sweep runs a page's shows at once"),
  /** A stored partner order event not handled by attribution after this long is handed over by the sweep. */
  pendingOrderGraceMs: ms(60_000, 0),
  inboxTtlDays: days(30, 1),
  /**
   * On a Redis Cluster an order event's webhook-id and refund-id claims are made before its write: a
   * webhook-id claim whose delivery failed before its event was stored blocks the id only this long (a
   * claim's set of deliveries under way), not for INBOX_TTL_DAYS. A delivery sends its write within half
   * of it after its claim, or answers 503. A refund-id claim is permanent; its set of deliveries under
   * way lives this long too (it is taken back only when its store definitely wrote nothing).
   */
  claimProvisionalSec: sec(60, 2),
  /** Attribution: an attributed order's commission is pending for this many days after the order, then approved. */
  commissionHoldDays: days(30, 0),
  /**
   * Reconciliation reads each platform report over the period widened by this on both sides: an order
   * the ledger and the platform date on two sides of a period's boundary (clock skew, a time zone) is
   * compared in the ledger's period, never reported missing (docs/attribution.md "Periods and clock skew").
   */
  reconcileClockSkewMs: ms(300_000, 0, 86_400_000, 'a day: a wider margin reads a neighbouring day of every report'),
  shutdownTimeoutMs: ms(25_000, 1000),
  /**
   * Shutdown, first step: the API answers /health/ready 503 and keeps serving this long, every answer
   * with `Connection: close`, before it closes (a load balancer stops sending; keep-alive clients move
   * to a new connection instead of having theirs closed under a request). 0: close at once. At most
   * half of shutdownTimeoutMs.
   */
  shutdownDrainMs: ms(1_000, 0),
  /**
   * Slow and idle clients (src/lib/connection-limits.ts): a connection to the API (or to METRICS_PORT,
   * or the relay's HLS proxy) that sends no request for httpIdleTimeoutMs is closed, and a request not
   * received whole within httpRequestTimeoutMs is cut with a 408 (Node checks every 30 s, or every
   * httpRequestTimeoutMs when that is shorter). At least 1 s: a client on a slow link must get its request in.
   */
  httpIdleTimeoutMs: ms(HTTP_IDLE_TIMEOUT_MS, 1000),
  httpRequestTimeoutMs: ms(HTTP_REQUEST_TIMEOUT_MS, 1000),
  /** Ops console streams (GET /v1/ops/stream) one API key may hold open at once on one API process; one more is a 429. */
  opsStreamsPerKey: count(10, 1, 100, 'each stream holds a connection, a file descriptor (1024 a process by default), and a timer in the API process'),
  /** Outbound webhooks: per-attempt timeout, concurrent deliveries per worker process. */
  outboundTimeoutMs: ms(10_000, 50, MAX_OUTBOUND_TIMEOUT_MS, `a delivery job's lock, 3 × it, must stay within Node's timer limit, ${MAX_TIMER_MS} ms`),
  outboundConcurrency: count(50, 1, 1000, 'concurrent deliveries per worker process'),
  /**
   * Webhook endpoints a partner may have (POST …/endpoints over it is a 409): every message to the
   * partner is one delivery, with its attempts and retries, per endpoint that takes its type.
   */
  outboundEndpointsPerPartner: count(20, 1, 1000, 'every message to the partner is one delivery per endpoint, each with up to a day of retries'),
  /**
   * Override of the retry delays (ms, comma-separated); the default is RETRY_SCHEDULE_MS (≈27 h). Tests
   * shrink it. At most MAX_RETRY_DELAYS of them: each is one more attempt of a failing delivery, each
   * attempt a line of the endpoint's attempt log (its newest 5000 kept, src/store/endpoint.repository.ts).
   */
  outboundRetryScheduleMs: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'must be a comma-separated list of milliseconds')
    .transform((s) => s.split(',').map(Number))
    .refine((delays) => delays.length <= MAX_RETRY_DELAYS, `at most ${MAX_RETRY_DELAYS} delays (each delay is one more attempt of a failing delivery, and every attempt a line of the endpoint's attempt log, which keeps the newest 5000 of all its messages')`)
    .refine((delays) => delays.every((d) => d <= MAX_TIMER_MS), `each delay at most ${MAX_TIMER_MS} (~24.8 days, Node's timer limit; a BullMQ delay, so a schedule may wait longer than a Retry-After's 24 h)`)
    .optional(),
  /** Video relay (README "Video relay"): the embedded RTMP ingest edge's port (0 = any free port, tests). */
  relayRtmpPort: tcpPort.default(1935),
  /** What partners are told to publish to; default `rtmp://{HOST}:{RELAY_RTMP_PORT}/live`. */
  relayPublicUrl: z.string().regex(/^rtmps?:\/\/[^/\s]+(\/\S*)?$/, { message: 'must be an rtmp:// or rtmps:// URL', abort: true }).refine(isRtmpUrl, RTMP_URL_RULE).refine(isLinkBase, LINK_BASE_RULE).optional(),
  /** `embedded`: the relay role runs node-media-server as its ingest edge; `none`: an external edge (nginx-rtmp) calls back. */
  relayEdge: z.enum(['embedded', 'none']).default('embedded'),
  /** Where relay processes read a stream the edge of this process received (default `rtmp://127.0.0.1:{port}/live`). */
  relayEdgeInternalUrl: z.string().regex(/^rtmp:\/\/[^/\s]+(\/\S*)?$/, { message: 'must be an rtmp:// URL', abort: true }).refine(isRtmpUrl, RTMP_URL_RULE).optional(),
  /** A show's relay lease: another relay process takes over this long after the owner died. */
  relayLeaseMs: ms(6_000, 1000),
  /** How often a relay process looks for shows to relay and reports progress. */
  relayPollMs: ms(1_000, 100),
  /**
   * How long a publish on the embedded edge stays a show's source after the edge last renewed it (a dead
   * edge's source lapses after it); the edge renews it, and re-checks its publishes, every fifth of it, at
   * most every 2 s. At least 2000 (a check every 400 ms).
   */
  relaySourceTtlMs: ms(10_000, 2000),
  /** A destination with no progress for this long (once data flowed) is restarted. */
  relayStallMs: ms(6_000, 1000),
  /** Start-up allowance: how long a relay ffmpeg may take to its first byte out before it is restarted. */
  relayStartTimeoutMs: ms(30_000, 1000),
  /**
   * The total deadline of one request of an HLS pull through the relay's proxy (a playlist, a segment:
   * redirects and the whole answer); past it the request fails and ffmpeg sees a failed fetch. At least
   * 1000 (a segment's download takes time on any network).
   */
  relayHlsFetchTimeoutMs: ms(20_000, 1000),
  /** ffmpeg starts in flight at once per relay process (the restart-storm guard, src/relay/start-gate.ts). */
  relayStartConcurrency: count(2, 1, 64, 'the restart-storm guard: about one ffmpeg start at a time per core, each ~0.25 s of CPU; 64 is a 64-core machine'),
  /** Readers a relay process starts ahead of their show's publish, waiting on its edge (src/relay/armed-readers.ts); 0: none. */
  relayArmedReaders: count(100, 0, 10_000, 'each is an idle ffmpeg of ~15 MiB'),
  /**
   * Connections from one address that the embedded edge holds while they have neither published nor
   * played (src/relay/ingest.edge.ts RTMP_PENDING_PER_ADDRESS); a newer one over it is closed at once. 0: no cap.
   */
  relayRtmpPendingPerAddress: count(64, 0, 100_000, 'connections of one address not yet publishing or playing'),
  /** BullMQ job lock: how soon a crashed worker's jobs are taken over (stalled-job check runs at half of it). */
  workerLockMs: ms(30_000, 1000),
  /**
   * How long a job whose run Redis refused or did not answer (OOM at maxmemory, READONLY, a dropped
   * connection) waits before its next run, not counted as an attempt (src/queues/hand-backs.ts,
   * REDIS_REFUSED_RETRY_MS: the same 5 s default). Tests shorten it (test/integration/jobs.redis-oom.test.ts).
   * At least 100: each run against a Redis that still refuses is a few refused commands. At most 5 min:
   * a delivery worker keeps a send whose save Redis refused for 10 min, for the job's next run
   * (src/outbound/delivery.service.ts UNSAVED_KEEP_MS), which then saves it instead of sending again.
   */
  redisRefusedRetryMs: ms(5_000, 100, 300_000, "a delivery's send whose save Redis refused is kept 10 min for the job's next run"),
  /** Worker / scheduler processes (no API): serve their own /metrics on this port when set. */
  metricsPort: tcpPort.optional(),
  facebookGraphVersion: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must be a Graph API version such as v27.0')
    .default(DEFAULT_FACEBOOK_GRAPH_VERSION),
  /** The ffmpeg binary the relay runs; unset: `ffmpeg` on PATH, else the one @ffmpeg-installer ships (src/lib/ffmpeg-path.ts). */
  ffmpegPath: z.string().min(1).optional(),
});
export type Config = z.infer<typeof ConfigSchema> & {
  publicBaseUrl: string;
  /**
   * PUBLIC_BASE_URL was not set: the links' base is http://localhost:{PORT}, and a process that serves
   * the API moves it to the port it bound (PORT=0 made every tracked link http://localhost:0/l/…).
   */
  publicBaseUrlFollowsPort?: boolean;
};

const ENV_KEYS: Record<string, keyof z.infer<typeof ConfigSchema>> = {
  PORT: 'port',
  HOST: 'host',
  TRUST_PROXY: 'trustProxy',
  PUBLIC_BASE_URL: 'publicBaseUrl',
  REDIS_URL: 'redisUrl',
  REDIS_CLUSTER_NODES: 'redisClusterNodes',
  REDIS_APPENDFSYNC: 'redisAppendfsync',
  REDIS_WAIT_REPLICAS: 'redisWaitReplicas',
  REDIS_WAIT_TIMEOUT_MS: 'redisWaitTimeoutMs',
  ADMIN_API_KEY: 'adminApiKey',
  SECRETS_KEY: 'secretsKey',
  SECRETS_KEY_PREVIOUS: 'secretsKeyPrevious',
  LOG_LEVEL: 'logLevel',
  ALLOW_PRIVATE_DESTINATIONS: 'allowPrivateDestinations',
  DNS_LOOKUP_CONCURRENCY: 'dnsLookupConcurrency',
  DATA_DIR: 'dataDir',
  KEY_PREFIX: 'keyPrefix',
  SYNC_SHARDS: 'syncShards',
  WORKER_CONCURRENCY: 'workerConcurrency',
  SYNC_TARGET_CONCURRENCY: 'syncTargetConcurrency',
  PLATFORM_TIMEOUT_MS: 'platformTimeoutMs',
  PLATFORM_TIMEOUTS_MS: 'platformTimeoutsMs',
  PLATFORM_SETTLE_MS: 'platformSettleMs',
  WEBHOOK_TOLERANCE_SEC: 'webhookToleranceSec',
  EVENT_FUTURE_SLACK_SEC: 'eventFutureSlackSec',
  SECRET_ROTATION_GRACE_HOURS: 'secretRotationGraceHours',
  SYNC_MAX_RETRIES: 'syncMaxRetries',
  SYNC_BACKOFF_BASE_MS: 'syncBackoffBaseMs',
  PIN_REFUSED_RETRY_BASE_MS: 'pinRefusedRetryBaseMs',
  SWEEP_INTERVAL_MS: 'sweepIntervalMs',
  DISPATCH_RECLAIM_MS: 'dispatchReclaimMs',
  INGEST_SYNC_JOBS: 'ingestSyncJobs',
  SWEEP_PAGE_SIZE: 'sweepPageSize',
  PENDING_ORDER_GRACE_MS: 'pendingOrderGraceMs',
  INBOX_TTL_DAYS: 'inboxTtlDays',
  CLAIM_PROVISIONAL_SEC: 'claimProvisionalSec',
  COMMISSION_HOLD_DAYS: 'commissionHoldDays',
  RECONCILE_CLOCK_SKEW_MS: 'reconcileClockSkewMs',
  SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
  SHUTDOWN_DRAIN_MS: 'shutdownDrainMs',
  HTTP_IDLE_TIMEOUT_MS: 'httpIdleTimeoutMs',
  HTTP_REQUEST_TIMEOUT_MS: 'httpRequestTimeoutMs',
  OPS_STREAMS_PER_KEY: 'opsStreamsPerKey',
  OUTBOUND_TIMEOUT_MS: 'outboundTimeoutMs',
  OUTBOUND_CONCURRENCY: 'outboundConcurrency',
  OUTBOUND_ENDPOINTS_PER_PARTNER: 'outboundEndpointsPerPartner',
  OUTBOUND_RETRY_SCHEDULE_MS: 'outboundRetryScheduleMs',
  WORKER_LOCK_MS: 'workerLockMs',
  REDIS_REFUSED_RETRY_MS: 'redisRefusedRetryMs',
  RELAY_RTMP_PORT: 'relayRtmpPort',
  RELAY_PUBLIC_URL: 'relayPublicUrl',
  RELAY_EDGE: 'relayEdge',
  RELAY_EDGE_INTERNAL_URL: 'relayEdgeInternalUrl',
  RELAY_LEASE_MS: 'relayLeaseMs',
  RELAY_POLL_MS: 'relayPollMs',
  RELAY_SOURCE_TTL_MS: 'relaySourceTtlMs',
  RELAY_STALL_MS: 'relayStallMs',
  RELAY_START_TIMEOUT_MS: 'relayStartTimeoutMs',
  RELAY_START_CONCURRENCY: 'relayStartConcurrency',
  RELAY_ARMED_READERS: 'relayArmedReaders',
  RELAY_RTMP_PENDING_PER_ADDRESS: 'relayRtmpPendingPerAddress',
  RELAY_HLS_FETCH_TIMEOUT_MS: 'relayHlsFetchTimeoutMs',
  FACEBOOK_GRAPH_VERSION: 'facebookGraphVersion',
  FFMPEG_PATH: 'ffmpegPath',
  METRICS_PORT: 'metricsPort',
};

export class ConfigError extends Error {}

function readJson(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    throw new Error('not an object');
  } catch (err) {
    // V8 quotes the text around a JSON syntax error (`Unexpected token 's', ..."nApiKey": supersecre"...`):
    // a file of keys and passwords (adminApiKey, secretsKey, redisUrl) must not be printed, not even a part.
    const message = (err as Error).message.replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, ' (not valid JSON; its text is not shown, it may hold a secret)');
    throw new ConfigError(`${file}: ${message}`);
  }
}

/**
 * A value of the wrong kind, said with the value given: zod's own words were "Invalid input: expected
 * number, received NaN" for PORT=abc (the NaN its coercion made, not what was set) and "Invalid input"
 * for REDIS_WAIT_REPLICAS=many or ALLOW_PRIVATE_DESTINATIONS=maybe.
 */
function plainIssue(issue: z.core.$ZodIssue, given: unknown): string {
  const got = ` (got ${JSON.stringify(typeof given === 'string' ? given : String(given))})`;
  if (issue.code === 'invalid_type' && issue.expected === 'number') return `must be a number${got}`;
  if (issue.code === 'invalid_type' && issue.expected === 'int') return `must be a whole number${got}`;
  if (issue.code === 'invalid_union') {
    // What a setting's text may be: the values listed, a number; not the JSON-only `true` of a file, nor '' (unset).
    const options = issue.errors.flat().flatMap((e) => (e.code === 'invalid_value' ? e.values.map(String).filter(Boolean) : e.code === 'invalid_type' && e.expected !== 'boolean' ? [e.expected === 'int' ? 'a whole number' : `a ${e.expected}`] : []));
    return `must be ${options.length > 0 ? `one of: ${[...new Set(options)].join(', ')}` : 'another value'}${got}`;
  }
  return issue.message;
}

/**
 * Whitespace around a setting's value is no part of it: an env file edited on Windows ends every value
 * with `\r`, and a pasted value often brings a space. No setting can mean it (hosts, URLs, ports,
 * numbers, names, levels, keys, and paths, where a name that really begins or ends with whitespace is
 * not supported), so it is trimmed rather than refused: `HOST=0.0.0.0\r` was a host the listen could not
 * find, `DATA_DIR=…\r` a directory named with the CR, `REDIS_URL=…\r` a host name ending in CR,
 * `FFMPEG_PATH=…\r` a binary that does not exist. Numbers were read right already (Number() trims), so a
 * refusal would have stopped starts that worked. Whitespace inside a value stays (ADMIN_API_KEY refuses it).
 */
function trimValues(values: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string') values[k] = v.trim();
}

/** Every environment variable the service reads, for the README table and error messages. */
export const ENVIRONMENT_VARIABLES = Object.keys(ENV_KEYS);

/** `npm run sim` (README "Platforms"): the simulators are a dev/test tool with their own small settings. */
export interface SimConfig {
  port: number;
  host: string;
  log: boolean;
  /** RTMP sinks the simulators' ingest addresses point at (README "Platforms"); 0 = any free port. */
  rtmpPort: number;
}
const SimConfigSchema = z.object({
  SIM_PORT: tcpPort.default(4100),
  SIM_HOST: z.string().min(1).default('127.0.0.1'),
  SIM_LOG: bool.default(false),
  SIM_RTMP_PORT: tcpPort.default(1936),
});
export function loadSimConfig(env: NodeJS.ProcessEnv = process.env): SimConfig {
  const set = Object.entries(env).filter(([k, v]) => k.startsWith('SIM_') && v !== '');
  // As loadConfig: SIM_PORT=' ' is a mistake, which the number coercion read as 0 (any free port).
  const blank = set.filter(([, v]) => v?.trim() === '').map(([k]) => `${k}: is blank (only whitespace): give a value, or leave it empty or unset for the default`);
  if (blank.length > 0) throw new ConfigError(`invalid configuration:\n  ${blank.join('\n  ')}`);
  const values: Record<string, unknown> = Object.fromEntries(set);
  trimValues(values);
  const parsed = SimConfigSchema.safeParse(values);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n  ${parsed.error.issues.map((i) => `${String(i.path[0])}: ${plainIssue(i, env[String(i.path[0])])}`).join('\n  ')}`);
  return { port: parsed.data.SIM_PORT, host: parsed.data.SIM_HOST, log: parsed.data.SIM_LOG, rtmpPort: parsed.data.SIM_RTMP_PORT };
}

/**
 * The threads of libuv's threadpool for a UV_THREADPOOL_SIZE value, as libuv reads it (uv__threadpool
 * init: unset or empty 4; atoi, 0 read as 1; at most 1024).
 */
export function threadpoolSize(value: string | undefined): number {
  if (value === undefined || value === '') return 4;
  const n = Number(/^\s*[+-]?\d+/.exec(value)?.[0] ?? 0);
  return Math.min(1024, Math.max(1, n));
}

/**
 * `defaults` apply where the environment says nothing; `overrides` win over it (the demo runs the
 * service with its own throw-away prefix, keys and ports, whatever the shell has).
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  configDir = resolve('config'),
  opts: { defaults?: Record<string, string>; overrides?: Record<string, string> } = {},
): Config {
  env = { ...opts.defaults, ...env, ...opts.overrides };
  const files = ['default.json', 'local.json'].map((f) => ({ file: join(configDir, f), values: readJson(join(configDir, f)) }));
  // A key that is no config key (an environment variable's name, a typo) would be dropped without a
  // word, and the service run on the defaults it was meant to override (the zero-configuration Redis).
  const unknown = files.flatMap(({ file, values }) => Object.keys(values).filter((k) => !Object.hasOwn(ConfigSchema.shape, k)).map((k) => ({ file, key: k })));
  if (unknown.length > 0) {
    const keyFor = (k: string): string | undefined => {
      const folded = k.replace(/_/g, '').toLowerCase();
      return Object.keys(ConfigSchema.shape).find((c) => c.toLowerCase() === folded);
    };
    const lines = unknown.map(({ file, key }) => {
      const meant = keyFor(key);
      return `${file}: ${key}: not a config key (${meant ? `the key is ${meant}` : 'the keys are the camelCase names in README "Configuration"'})`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  // Own keys only, into an object without a prototype: a JSON "__proto__" (or "constructor") is no
  // config key, and Object.assign would have made a "__proto__" object the merged object's prototype,
  // its values read as config values.
  const merged: Record<string, unknown> = Object.assign(Object.create(null) as Record<string, unknown>, ...files.map((f) => f.values));
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  const byKey = Object.fromEntries(Object.entries(ENV_KEYS).map(([e, k]) => [k, e]));
  // A value of spaces or tabs only (`PORT= ` in an env file) is a mistake, not a setting: zod's number
  // coercion read it as 0, so PORT=' ' listened on any free port, RELAY_RTMP_PORT=' ' likewise,
  // COMMISSION_HOLD_DAYS=' ' approved commission at once and SYNC_TARGET_CONCURRENCY=' ' lifted the cap.
  const blank = Object.keys(merged).filter((k) => typeof merged[k] === 'string' && merged[k] !== '' && (merged[k] as string).trim() === '');
  const blankLines = blank.map((k) => `${byKey[k] ?? k}: is blank (only whitespace): give a value, or leave it empty or unset for the default`);
  for (const k of blank) delete merged[k];
  trimValues(merged);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success || blankLines.length > 0) {
    // zod's int() also refuses a number past 2^53 in its own words; a setting over its bound says so
    // already (one line per variable: SWEEP_PAGE_SIZE=1e20 got both).
    const unsafe = (i: z.core.$ZodIssue): boolean => i.code === 'too_big' && Number(i.maximum) === Number.MAX_SAFE_INTEGER;
    const zodIssues = parsed.success ? [] : parsed.error.issues;
    const issues = zodIssues.filter((i, _, all) => !(unsafe(i) && all.some((j) => j !== i && !unsafe(j) && j.path[0] === i.path[0])));
    const lines = [
      ...blankLines,
      ...issues.map((i) => {
        const k = String(i.path[0] ?? '');
        return `${byKey[k] ?? k}: ${plainIssue(i, merged[k])}`;
      }),
    ];
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  const threads = threadpoolSize(env['UV_THREADPOOL_SIZE']);
  if (c.dnsLookupConcurrency >= threads) {
    throw new ConfigError(
      `invalid configuration:\n  DNS_LOOKUP_CONCURRENCY: ${c.dnsLookupConcurrency} is not below UV_THREADPOOL_SIZE (${threads}${env['UV_THREADPOOL_SIZE'] ? '' : ', unset'}); name servers that drop queries would hold every thread of libuv's threadpool and fs, crypto and every other lookup wait behind them: lower it, or raise UV_THREADPOOL_SIZE with it`,
    );
  }
  const longer = Object.entries(c.platformTimeoutsMs ?? {}).filter(([, v]) => v > c.platformTimeoutMs);
  if (longer.length > 0) {
    throw new ConfigError(
      `invalid configuration:\n  PLATFORM_TIMEOUTS_MS: ${longer.map(([p, v]) => `${p}=${v}`).join(',')} is more than PLATFORM_TIMEOUT_MS (${c.platformTimeoutMs}); a platform's own timeout may only be shorter: what is derived from PLATFORM_TIMEOUT_MS (an intent's attempt, a credential check's grant lock) bounds every platform's calls`,
    );
  }
  // The drain is part of the shutdown's grace, not added to it: the rest needs time too.
  if (c.shutdownDrainMs * 2 > c.shutdownTimeoutMs) {
    throw new ConfigError(
      `invalid configuration:\n  SHUTDOWN_DRAIN_MS: ${c.shutdownDrainMs} is more than half of SHUTDOWN_TIMEOUT_MS (${c.shutdownTimeoutMs}); the drain is part of the shutdown's grace, and the rest of the shutdown needs time too`,
    );
  }
  return { ...c, publicBaseUrl: (c.publicBaseUrl ?? `http://localhost:${c.port}`).replace(/\/+$/, ''), publicBaseUrlFollowsPort: c.publicBaseUrl === undefined };
}
