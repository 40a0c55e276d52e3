/**
 * Redis's replies for a server that is there but takes no writes (or no commands) for now, the first
 * words of each: full (`OOM` at `maxmemory` with noeviction), a read-only replica (`READONLY`), one that
 * cannot persist (`MISCONF`: a failed snapshot, an AOF on a full disk), one loading its data
 * (`LOADING`), running a script past busy-reply-threshold (`BUSY`), a replica whose master is down
 * (`MASTERDOWN`), a master short of the replicas min-replicas-to-write asks for (`NOREPLICAS`), a
 * Cluster slot being moved (`TRYAGAIN`) or a Cluster that is down (`CLUSTERDOWN`); Redis 7's refusal,
 * at maxmemory, of a script that declares its flags without allow-oom (`OOM allow-oom flag is not set
 * on the script, can not run it when used memory > 'maxmemory'`).
 *
 * One list for both readers: src/store/redis.ts' isRedisUnavailable (a 503, the reply anywhere in the
 * message) and src/lib/redis-outage-log.ts' isRedisUnreachableOrRefusing (isRedisRefusalReply: the
 * reply as the message's start, or as the refusal a script met). Each is a whole word, case-sensitive: BUSYGROUP and BUSYKEY are answers about the command, and
 * an error of ours that says "loading" or "misconfigured" is a bug.
 */
export const REDIS_REFUSAL_REPLIES = ['OOM command not allowed', 'OOM allow-oom flag is not set', 'READONLY', 'MISCONF', 'LOADING', 'BUSY', 'MASTERDOWN', 'NOREPLICAS', 'TRYAGAIN', 'CLUSTERDOWN'] as const;

/** The replies as one alternation, for a regular expression. */
export const REDIS_REFUSAL_ALTERNATION = `(?:${REDIS_REFUSAL_REPLIES.join('|')})`;

/**
 * A reply's message (an ioredis ReplyError's) that is one of the refusals: at its start (a command's
 * reply; Redis 7 keeps a script's refusal there too: "OOM command not allowed when used memory >
 * 'maxmemory'. script: <sha>, on @user_script:1."), or, Redis 6.2 (the documented minimum), as the
 * refusal a script's redis.call met, wrapped: "ERR Error running script (call to f_<sha>):
 * @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'." (each of
 * BullMQ's writes is such a script).
 */
const REFUSAL_REPLY = new RegExp(`^(?:ERR Error running script \\(call to f_[0-9a-f]+\\): [^]*?-)?${REDIS_REFUSAL_ALTERNATION}\\b`);

export function isRedisRefusalReply(message: string): boolean {
  return REFUSAL_REPLY.test(message);
}
