/**
 * What the Redis we were given would lose. The API answers 202 for an event "only after it is durably
 * stored" (the contract, §3), which Redis can only do when it persists its writes (docs/operations.md
 * "Redis": appendonly yes, maxmemory-policy noeviction). A Redis started without persistence
 * (`--appendonly no --save ""`, a cache-style default) or one that evicts keys under memory pressure
 * was used as it was, without a word: every acknowledged event, order and ledger entry went with its
 * next restart (or eviction), and an evicted webhook-id claim let a repeat have a second effect.
 * Read once at startup and logged as a warning per problem (REDIS_URL names a server we do not manage,
 * so it is not changed). A server that does not let us read its settings (CONFIG renamed or denied,
 * as on some managed services) is not reported: nothing is known about it.
 */
import { Cluster, type Redis } from 'ioredis';
import { masters, type RedisClient } from './redis.js';
import { keySlot } from './slot.js';

const SETTINGS = ['appendonly', 'save', 'maxmemory', 'maxmemory-policy'];

/** CONFIG GET's flat name/value reply as a record. */
function settingsOf(reply: unknown, into: Record<string, string>): void {
  if (!Array.isArray(reply)) return;
  for (let i = 0; i + 1 < reply.length; i += 2) into[String(reply[i])] = String(reply[i + 1]);
}

/**
 * One server's settings that matter here, as CONFIG GET answers them (null: not readable). One CONFIG
 * GET for all of them (Redis 7 takes several parameters); a Redis 6.2, which takes one, is asked once
 * per setting.
 */
async function settings(node: Redis): Promise<Record<string, string> | null> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  try {
    settingsOf(await node.config('GET', ...SETTINGS), out);
    return out;
  } catch (err) {
    if (!/wrong number of arguments/i.test((err as Error).message)) return null;
  }
  try {
    for (const name of SETTINGS) settingsOf(await node.config('GET', name), out);
    return out;
  } catch {
    return null;
  }
}

/** The problems of one server's settings, each a sentence for the operator. */
export function durabilityProblems(s: Record<string, string>): string[] {
  const problems: string[] = [];
  if (s['appendonly'] === 'no') {
    problems.push(
      (s['save'] ?? '').trim() === ''
        ? 'Redis persists nothing (appendonly no, no save points): every acknowledged event, order and ledger entry is lost when it restarts; set appendonly yes'
        : 'Redis persists only RDB snapshots (appendonly no): acknowledged events, orders and ledger entries written since the last snapshot are lost when it restarts; set appendonly yes',
    );
  }
  const policy = s['maxmemory-policy'];
  // (No maxmemory, 0: the policy never applies on a 64-bit server.)
  if (policy !== undefined && policy !== 'noeviction' && s['maxmemory'] !== undefined && s['maxmemory'] !== '0') {
    problems.push(`Redis evicts keys under memory pressure (maxmemory-policy ${policy}): an evicted webhook-id claim, intent or ledger entry breaks idempotency or loses money; set maxmemory-policy noeviction`);
  }
  return problems;
}

/** The problems of every server we write to (each master of a Cluster), with the node named. */
export async function redisDurabilityProblems(redis: RedisClient): Promise<{ node: string; problem: string }[]> {
  const out: { node: string; problem: string }[] = [];
  for (const node of masters(redis)) {
    const s = await settings(node);
    if (!s) continue;
    for (const problem of durabilityProblems(s)) out.push({ node: `${node.options.host ?? '?'}:${node.options.port ?? '?'}`, problem });
  }
  return out;
}

/**
 * The problems as /health/ready's `warnings` say them: without the node (host:port). The ready check
 * takes no API key and a load balancer's health check may be reachable from outside, so an internal
 * address is not for it; the start's log lines name the node. Each problem once (the masters of a
 * Cluster set up alike have the same).
 */
export function readyWarnings(problems: readonly { node: string; problem: string }[]): string[] {
  return [...new Set(problems.map((p) => p.problem))];
}

/**
 * The probe key, and on a Cluster one more for each master its slot is not on (every master is written
 * to; each may refuse on its own: a replica's full disk, its own min-replicas-to-write): the key with its
 * `{tag}` made `{tag:n}`, the first n whose slot that master serves. A master that serves no slot gets none.
 * Each key with its master (host:port; none on a single Redis).
 */
export function probeKeys(redis: RedisClient, probeKey: string): { key: string; owner?: string }[] {
  if (!(redis instanceof Cluster)) return [{ key: probeKey }];
  const wanted = new Set(redis.nodes('master').map((m) => `${m.options.host ?? ''}:${m.options.port ?? ''}`));
  const out: { key: string; owner: string }[] = [];
  const take = (key: string): void => {
    const owner = redis.slots[keySlot(key)]?.[0];
    if (owner !== undefined && wanted.delete(owner)) out.push({ key, owner });
  };
  take(probeKey);
  const tag = /\{([^}]+)\}/.exec(probeKey);
  for (let n = 0; wanted.size > 0 && n < 65_536; n++) take(tag ? probeKey.replace(tag[0], `{${tag[1]}:${n}}`) : `${probeKey}:{${n}}`);
  return out;
}

/** The operator's sentence for a write refused with this error (null: not a refusal we know). */
function refusalSentence(message: string): string | null {
  if (/^READONLY\b/.test(message)) return `"${message}": it is a read-only replica. Point it at the primary (the server whose ROLE answers master)`;
  if (/^OOM\b/.test(message)) return `"${message}": it is full (maxmemory reached, maxmemory-policy noeviction). Free memory or raise maxmemory`;
  if (/^MISCONF\b/.test(message)) return `"${message}": it cannot persist its writes (a failed RDB snapshot or AOF write, e.g. a full disk; its log says why). Fix that`;
  if (/^NOREPLICAS\b/.test(message)) {
    return `"${message}": it takes writes only while min-replicas-to-write replicas are connected with a lag under min-replicas-max-lag seconds, and fewer are. Start or reconnect its replicas (INFO replication lists them), or lower min-replicas-to-write`;
  }
  return null;
}

/**
 * Why a Redis that answers refuses writes, as a sentence for the operator (null: it took the write).
 * A REDIS_URL naming a read-only replica, or a Redis that is full (`maxmemory` with noeviction), cannot
 * persist (MISCONF) or lacks the replicas its min-replicas-to-write asks for (NOREPLICAS) at start,
 * answered PING, and the start then died on the scheduler's first BullMQ script with an unhandled
 * ReplyError: a Node stack trace and the whole Lua script on stderr, no word about what to change. One
 * SET of the readiness key (60 s TTL) per master at start asks first (probeKeys: on a Cluster, every
 * master); any other error is left to the start as before.
 */
export async function redisWriteRefusal(redis: RedisClient, probeKey: string): Promise<string | null> {
  for (const { key, owner } of probeKeys(redis, probeKey)) {
    try {
      await redis.set(key, String(Date.now()), 'PX', 60_000);
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : '';
      const sentence = refusalSentence(message);
      if (sentence === null) return null;
      return owner === undefined ? sentence : `its master ${owner} answered ${sentence}`;
    }
  }
  return null;
}
