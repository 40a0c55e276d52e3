/**
 * The platform's show id → our show id, per target. Written by the mirror worker as soon as a mirror
 * has its remote show (created by API or linked by an operator) and re-asserted by every later sync
 * of that mirror, so a write that failed (or a process that died before it) is repaired by the next
 * sync; read by attribution to apply rule 2 (a platform order that names the broadcast / room /
 * content is attributed to that show and target).
 *
 * Orders that named a platform show the index did not know yet are stored unattributed and listed
 * under that show id ("waiting"); when the entry appears they are attributed after all, with new
 * ledger entries (AttributionService.attributeWaiting).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Cluster, type Result } from 'ioredis';
import type { Keys } from './keys.js';
import { evalOnNode, NodeBatches, nodeBatchLua, nodeScript } from './node-batch.js';
import { defineRedisScripts, type RedisClient } from './redis.js';

/**
 * Lua that writes an index entry and sets the variable `waiting` (declared by the caller) to how many
 * orders wait for it; the arguments are the Lua expressions of the entry's key, its waiting set's key
 * and the show id. Shared with the run's last mirror save on a single Redis (show.repository.ts
 * SAVE_MIRROR_FINAL_LUA), which asserts the entry in its own step.
 */
export function assertEntryLua(entry: string, waitingSet: string, showId: string): string {
  return `redis.call('SET', ${entry}, ${showId})
waiting = redis.call('SCARD', ${waitingSet})
`;
}

/** KEYS: the entry, its waiting set (one slot). ARGV: show id. Writes the entry, returns how many orders wait. */
const ASSERT_LUA = `
local waiting
${assertEntryLua('KEYS[1]', 'KEYS[2]', 'ARGV[1]')}return waiting
`;

/**
 * The asserts waiting for one master of a Cluster (every entry of a target is in its `{t:…}` slot, so
 * one master takes all of a target's): ASSERT_LUA's step for each, in one call on that master's
 * connection (keys of many slots possible: none declared, the `allow-cross-slot-keys` flag, as the
 * redirect's click batches). ARGV: entry, waiting set, show id, per assert. An assert this node cannot
 * do (a slot it no longer serves) answers an error of its own and is sent again through the Cluster
 * client; the step is idempotent, so a call that failed as a whole is sent again the same way.
 */
const NODE_ASSERT_LUA = `#!lua flags=allow-cross-slot-keys
local function assertEntry(a)
  local waiting
  ${assertEntryLua('ARGV[a + 1]', 'ARGV[a + 2]', 'ARGV[a + 3]')}return waiting
end
${nodeBatchLua('assertEntry', 3)}`;
const NODE_ASSERT = nodeScript(NODE_ASSERT_LUA);
/** Asserts per master call (3 arguments each). */
const ASSERTS_PER_CALL = 200;

/**
 * KEYS: a platform show's link claim, its index entry (one slot). ARGV: the link's nonce, the claim's
 * lease ms. Claims (SET NX, with the lease) and reads the entry in the same step: {1, entry or false}
 * when claimed, {0} while another link holds the claim.
 */
const LINK_CLAIM_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return {1, redis.call('GET', KEYS[2])}
end
return {0}
`;

/**
 * KEYS: the link claim, the entry. ARGV: the link's nonce, the show id the entry names ('' to write
 * none). Writes the entry and frees the claim only if the claim is still this link's, in one step: no
 * other link reads the entry between the two. A claim whose lease ran out (a slow link) may be another
 * link's by now, which read the entry and may have written its own: that link's entry stays (the
 * slow link's write overwrote it). Returns 1 when settled as this link's, 0 when the claim was lost.
 */
const LINK_SETTLE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * How often a link waiting for another link's claim of the same platform show looks again: first
 * after LINK_CLAIM_POLL_MS, each wait 1.5 times the last, up to LINK_CLAIM_POLL_MAX_MS (a link holds
 * its claim a few round trips; one whose process died holds it for the lease).
 */
const LINK_CLAIM_POLL_MS = 20;
const LINK_CLAIM_POLL_MAX_MS = 200;

/** An operator link's hold on a platform show (ExternalShowIndex.claimLink). */
export interface LinkClaim {
  /** The show the index named for the platform show when the claim was taken (null: none). */
  readonly holder: string | null;
  /**
   * Writes the entry naming `showId` (none when undefined) and frees the claim, if the claim is still
   * this link's (false, nothing written, when its lease ran out and another link may hold it).
   */
  settle(showId?: string): Promise<boolean>;
}

interface PendingAssert {
  entry: string;
  waiting: string;
  showId: string;
  resolve: (waiting: number) => void;
  reject: (err: unknown) => void;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scExtShowAssert(entry: string, waiting: string, showId: string): Result<number, Context>;
    scExtShowLinkClaim(claim: string, entry: string, nonce: string, leaseMs: number): Result<[number, string | null], Context>;
    scExtShowLinkSettle(claim: string, entry: string, nonce: string, showId: string): Result<number, Context>;
  }
}

export class ExternalShowIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    defineRedisScripts(redis, {
      scExtShowAssert: { numberOfKeys: 2, lua: ASSERT_LUA },
      scExtShowLinkClaim: { numberOfKeys: 2, lua: LINK_CLAIM_LUA },
      scExtShowLinkSettle: { numberOfKeys: 2, lua: LINK_SETTLE_LUA },
    });
  }

  /**
   * An operator link's claim of a platform show: while it holds it, no other link of that platform
   * show checks the index or saves its mirror, so of two links at the same instant the second finds
   * the first's entry (and its mirror linked) and is refused. Read with the claim, in the same step,
   * the show the entry names. A claim another link holds is waited for, up to `waitMs`; null when it
   * was not freed by then, or when `signal` aborted (the client went away: nobody waits for the answer).
   * `leaseMs` frees a claim whose process died.
   */
  async claimLink(targetId: string, externalId: string, leaseMs: number, waitMs: number, signal?: AbortSignal): Promise<LinkClaim | null> {
    const claim = this.keys.targetExternalShowLink(targetId, externalId);
    const entry = this.keys.targetExternalShow(targetId, externalId);
    const nonce = randomBytes(12).toString('base64url');
    const until = Date.now() + waitMs;
    let pollMs = LINK_CLAIM_POLL_MS;
    for (;;) {
      if (signal?.aborted) return null;
      const [claimed, holder] = await this.redis.scExtShowLinkClaim(claim, entry, nonce, leaseMs);
      if (Number(claimed) === 1) {
        return { holder: holder ?? null, settle: async (showId) => Number(await this.redis.scExtShowLinkSettle(claim, entry, nonce, showId ?? '')) === 1 };
      }
      const left = until - Date.now();
      if (left <= 0) return null;
      try {
        await delay(Math.min(pollMs, left), undefined, signal ? { signal } : undefined);
      } catch (err) {
        if (signal?.aborted) return null;
        throw err;
      }
      pollMs = Math.min(Math.round(pollMs * 1.5), LINK_CLAIM_POLL_MAX_MS);
    }
  }

  async set(targetId: string, externalId: string, showId: string): Promise<void> {
    await this.redis.set(this.keys.targetExternalShow(targetId, externalId), showId);
  }

  /**
   * Writes the entry (idempotent) and says how many orders wait for it; one command, one slot. On a
   * Cluster the asserts waiting for the entry's master go to it together (NODE_ASSERT_LUA): every sync
   * of a mirror with a remote show asserts its entry, and a target's entries are all on one master.
   */
  async assert(targetId: string, externalId: string, showId: string): Promise<number> {
    const entry = this.keys.targetExternalShow(targetId, externalId);
    const waiting = this.keys.targetExternalShowWaiting(targetId, externalId);
    if (this.redis instanceof Cluster) return this.nodeAssert(this.redis, entry, waiting, showId);
    return Number(await this.redis.scExtShowAssert(entry, waiting, showId));
  }

  private nodeAsserts: NodeBatches<PendingAssert, (number | Error)[]> | undefined;
  private nodeAssert(cluster: Cluster, entry: string, waiting: string, showId: string): Promise<number> {
    const direct = (a: { entry: string; waiting: string; showId: string }): Promise<number> => cluster.scExtShowAssert(a.entry, a.waiting, a.showId).then(Number);
    const batches = (this.nodeAsserts ??= new NodeBatches<PendingAssert, (number | Error)[]>(cluster, {
      maxPerCall: ASSERTS_PER_CALL,
      maxInFlight: 1,
      send: (node, batch) => evalOnNode<(number | Error)[]>(node, NODE_ASSERT, 0, batch.flatMap((a) => [a.entry, a.waiting, a.showId])),
      deliver: (batch, replies) =>
        batch.forEach((a, i) => {
          const r = replies[i];
          if (typeof r === 'number') a.resolve(r);
          else direct(a).then(a.resolve, a.reject);
        }),
      fail: (batch) => {
        for (const a of batch) direct(a).then(a.resolve, a.reject);
      },
    }));
    return new Promise<number>((resolve, reject) => {
      const item = { entry, waiting, showId, resolve, reject };
      if (!batches.add(entry, item)) direct(item).then(resolve, reject);
    });
  }

  async get(targetId: string, externalId: string): Promise<string | null> {
    return this.redis.get(this.keys.targetExternalShow(targetId, externalId));
  }

  /** An order stored unattributed because `externalId` was not in the index yet. Idempotent. */
  async addWaiting(targetId: string, externalId: string, ref: string): Promise<void> {
    await this.redis.sadd(this.keys.targetExternalShowWaiting(targetId, externalId), ref);
  }

  async waiting(targetId: string, externalId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.targetExternalShowWaiting(targetId, externalId));
  }

  async doneWaiting(targetId: string, externalId: string, refs: string[]): Promise<void> {
    if (refs.length > 0) await this.redis.srem(this.keys.targetExternalShowWaiting(targetId, externalId), ...refs);
  }
}
