/**
 * KEYS: a claim, lease or lock (a string key). ARGV: its holder's token. Deletes it only while that
 * holder has it (compare and delete in one step): 1 when this call deleted it, else 0 (another holder
 * has it, or nobody). The outbound attempt claim and the relay lease use it (a webhook-id claim's
 * release also counts the deliveries that passed it: RELEASE_HELD_LUA, src/store/webhook-id.repository.ts).
 */
export const DEL_IF_HELD_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
