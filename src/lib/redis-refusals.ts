/**
 * Redis's replies for a server that is there but takes no writes (or no commands) for now, the first
 * words of each: full (`OOM` at `maxmemory` with noeviction), a read-only replica (`READONLY`), one that
 * cannot persist (`MISCONF`: a failed snapshot, an AOF on a full disk), one loading its data
 * (`LOADING`), running a script past busy-reply-threshold (`BUSY`), a replica whose master is down
 * (`MASTERDOWN`), a master short of the replicas min-replicas-to-write asks for (`NOREPLICAS`), a
 * Cluster slot being moved (`TRYAGAIN`) or a Cluster that is down (`CLUSTERDOWN`).
 *
 * One list for both readers: src/store/redis.ts' isRedisUnavailable (a 503, the reply anywhere in the
 * message) and src/lib/redis-outage-log.ts' isRedisUnreachableOrRefusing (the reply as the message's
 * start). Each is a whole word, case-sensitive: BUSYGROUP and BUSYKEY are answers about the command, and
 * an error of ours that says "loading" or "misconfigured" is a bug.
 */
export const REDIS_REFUSAL_REPLIES = ['OOM command not allowed', 'READONLY', 'MISCONF', 'LOADING', 'BUSY', 'MASTERDOWN', 'NOREPLICAS', 'TRYAGAIN', 'CLUSTERDOWN'] as const;

/** The replies as one alternation, for a regular expression. */
export const REDIS_REFUSAL_ALTERNATION = `(?:${REDIS_REFUSAL_REPLIES.join('|')})`;
