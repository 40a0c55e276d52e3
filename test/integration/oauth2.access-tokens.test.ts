/**
 * accessTokens() (src/targets/oauth2.ts): which access token a platform call uses — the cached one
 * while it has more than `earlyMs` to live, else the one given with the credentials (until the
 * platform refuses it or a refresh replaced it), else a refresh. The adapter tests (Whatnot's OAuth
 * app, TikTok) go through a token refused with a 401; these breaks passed them: a cached token
 * used to its last second (no early refresh), the given token preferred over a cached record another
 * process refreshed, and the given token used again after a refresh once the cached record went.
 * Real Redis token store (RedisTokenStore); the refresh is a function that stores a new token.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { accessTokens } from '../../src/targets/oauth2.js';
import type { AdapterContext } from '../../src/targets/target.adapter.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));

const keys = new Keys('oa');
const box = new SecretBox(randomBytes(32).toString('base64'));
const EARLY_MS = 60_000;
const HOUR_MS = 3_600_000;

function tokensOf(targetId: string, given?: string) {
  const store = new RedisTokenStore(redis, keys, box, targetId);
  let refreshes = 0;
  const refreshNow = async (): Promise<string> => {
    const token = `at_fresh_${++refreshes}`;
    await store.set({ accessToken: token, expiresAt: Date.now() + HOUR_MS });
    return token;
  };
  const tokens = accessTokens({ tokens: store } as unknown as AdapterContext, refreshNow, { now: Date.now, earlyMs: EARLY_MS, given: () => given });
  return { store, tokens, refreshes: () => refreshes };
}

test('a cached token with less than earlyMs to live is refreshed before the call, one with more is used', async () => {
  const t = tokensOf('tgt_early');
  await t.store.set({ accessToken: 'at_cached', expiresAt: Date.now() + 10 * EARLY_MS });
  expect(await t.tokens.current()).toBe('at_cached');
  await t.store.set({ accessToken: 'at_ending', expiresAt: Date.now() + EARLY_MS / 2 });
  expect(await t.tokens.current()).toBe('at_fresh_1');
  expect(t.refreshes()).toBe(1);
});

test("the token given with the credentials is not used over a cached record (another process's refresh), even an expired one", async () => {
  const t = tokensOf('tgt_given_cached', 'at_given');
  await t.store.set({ accessToken: 'at_other_process', expiresAt: 0, refreshToken: 'rt_rotated' });
  expect(await t.tokens.current()).toBe('at_fresh_1');
});

test('the given token is used until a refresh replaced it, and not again when the cached record goes', async () => {
  const t = tokensOf('tgt_given_refreshed', 'at_given');
  expect(await t.tokens.current()).toBe('at_given');
  expect(await t.tokens.refresh()).toBe('at_fresh_1');
  expect(await t.store.dropGrant(undefined)).toBe(true); // the record went (invalid_grant elsewhere)
  expect(await t.store.get()).toBeNull();
  expect(await t.tokens.current()).toBe('at_fresh_2');
});

test('a refused given token is not used again: the next call refreshes', async () => {
  const t = tokensOf('tgt_given_refused', 'at_given');
  expect(await t.tokens.current()).toBe('at_given');
  await t.tokens.rejected('at_given');
  expect(await t.tokens.current()).toBe('at_fresh_1');
});
