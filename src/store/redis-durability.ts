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
import type { Redis } from 'ioredis';
import { masters, type RedisClient } from './redis.js';

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
 * Why a Redis that answers refuses writes, as a sentence for the operator (null: it took the write).
 * A REDIS_URL naming a read-only replica, or a Redis that is full (`maxmemory` with noeviction) or
 * cannot persist (MISCONF) at start, answered PING, and the start then died on the scheduler's first
 * BullMQ script with an unhandled ReplyError: a Node stack trace and the whole Lua script on stderr,
 * no word about what to change. One SET of the readiness key (60 s TTL) at start asks first; any other
 * error is left to the start as before.
 */
export async function redisWriteRefusal(redis: RedisClient, probeKey: string): Promise<string | null> {
  try {
    await redis.set(probeKey, String(Date.now()), 'PX', 60_000);
    return null;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : '';
    if (/^READONLY\b/.test(message)) return `"${message}": it is a read-only replica. Point it at the primary (the server whose ROLE answers master)`;
    if (/^OOM\b/.test(message)) return `"${message}": it is full (maxmemory reached, maxmemory-policy noeviction). Free memory or raise maxmemory`;
    if (/^MISCONF\b/.test(message)) return `"${message}": it cannot persist its writes (a failed RDB snapshot or AOF write, e.g. a full disk; its log says why). Fix that`;
    return null;
  }
}
