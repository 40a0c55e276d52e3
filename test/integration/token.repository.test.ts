/**
 * Review 2026-12-03: the cached token record was stored with PX = the access token's lifetime, so a
 * refresh token the platform rotated (kept in it) went with the access token at its expiry, and the
 * next refresh sent the credentials' dead one (invalid_grant: authorisation lost). A 401 cleared the
 * record too. Now the record has no TTL and a 401 marks only the refused access token expired, and
 * only while it is still the stored one (another process's fresh token and refresh token stay).
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import type { AccessToken } from '../../src/targets/target.adapter.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));

const keys = new Keys('tk');
const box = new SecretBox(randomBytes(32).toString('base64'));

test('a rotated refresh token outlives the access token beside it, and a 401 drops only that access token', async () => {
  const store = new RedisTokenStore(redis, keys, box, 'tgt_rot');
  await store.set({ accessToken: 'at_1', expiresAt: Date.now() + 1_000, refreshToken: 'rt_rotated' });
  expect(await redis.pttl(keys.targetToken('tgt_rot'))).toBe(-1);
  expect((await new RedisTokenStore(redis, keys, box, 'tgt_rot').get())?.refreshToken).toBe('rt_rotated');

  // Another process refreshed meanwhile: a 401 on the old token leaves its token alone.
  const other = new RedisTokenStore(redis, keys, box, 'tgt_rot');
  await other.set({ accessToken: 'at_2', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_rotated_2' });
  await store.expire('at_1');
  const kept = await new RedisTokenStore(redis, keys, box, 'tgt_rot').get();
  expect(kept).toMatchObject({ accessToken: 'at_2', refreshToken: 'rt_rotated_2' });
  expect(kept!.expiresAt).toBeGreaterThan(Date.now()); // not expired: only the refused at_1 would be

  await store.expire('at_2');
  const after = await new RedisTokenStore(redis, keys, box, 'tgt_rot').get();
  expect(after).toMatchObject({ accessToken: 'at_2', expiresAt: 0, refreshToken: 'rt_rotated_2' });
});

test('expireAccess (a run refused even with a fresh token) marks whatever access token is stored expired and keeps the rotated refresh token', async () => {
  const store = new RedisTokenStore(redis, keys, box, 'tgt_all');
  await store.set({ accessToken: 'at_1', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_rotated' });
  // Another process stored a newer token: that is the one expired (read from Redis, not the memo).
  await new RedisTokenStore(redis, keys, box, 'tgt_all').set({ accessToken: 'at_2', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_rotated_2' });
  await store.expireAccess();
  expect(await store.get()).toMatchObject({ accessToken: 'at_2', expiresAt: 0, refreshToken: 'rt_rotated_2' });
  expect(await redis.pttl(keys.targetToken('tgt_all'))).toBe(-1);
  // No record: nothing to expire, none made.
  await new RedisTokenStore(redis, keys, box, 'tgt_none').expireAccess();
  expect(await redis.exists(keys.targetToken('tgt_none'))).toBe(0);
});

/**
 * A client whose GET of `key` runs `between` (once) after Redis answered and before the caller sees
 * the answer: another process's write landing between a store's read and its write.
 */
function writeAfterRead(key: string, between: () => Promise<void>): RedisClient {
  let pending: (() => Promise<void>) | undefined = between;
  return new Proxy(redis, {
    get(target, prop) {
      // The store reads its record as bytes (getBuffer): either read is the one hooked.
      if (prop === 'get' || prop === 'getBuffer') {
        return async (k: string) => {
          const v = await (prop === 'get' ? target.get(k) : target.getBuffer(k));
          const run = k === key ? pending : undefined;
          if (run) {
            pending = undefined;
            await run();
          }
          return v;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('review of f08ff3f: a 401 and a dead grant never overwrite or delete a token another process stored after they read theirs', async () => {
  // expire/expireAccess read the record and wrote it back with expiresAt 0; a refresh of another
  // process stored in between (a new access token, a rotated refresh token) was overwritten with the
  // old record: its refresh token dead at the platform, the target's authorisation lost.
  const id = 'tgt_race';
  const key = keys.targetToken(id);
  const fresh = { accessToken: 'at_2', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_2' };
  const otherStores = (): Promise<void> => new RedisTokenStore(redis, keys, box, id).set(fresh);
  const current = async () => new RedisTokenStore(redis, keys, box, id).get();

  await new RedisTokenStore(redis, keys, box, id).set({ accessToken: 'at_1', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_1' });
  await new RedisTokenStore(writeAfterRead(key, otherStores), keys, box, id).expire('at_1');
  expect(await current()).toEqual(fresh);

  await new RedisTokenStore(redis, keys, box, id).set({ accessToken: 'at_1', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_1' });
  await new RedisTokenStore(writeAfterRead(key, otherStores), keys, box, id).expireAccess();
  expect(await current()).toEqual(fresh);

  // rt_1 refused for good: the record goes only while it holds rt_1.
  await new RedisTokenStore(redis, keys, box, id).set({ accessToken: 'at_1', expiresAt: 0, refreshToken: 'rt_1' });
  expect(await new RedisTokenStore(writeAfterRead(key, otherStores), keys, box, id).dropGrant('rt_1')).toBe(false);
  expect(await current()).toEqual(fresh);
  expect(await new RedisTokenStore(redis, keys, box, id).dropGrant('rt_1')).toBe(false);
  expect(await current()).toEqual(fresh);
  expect(await new RedisTokenStore(redis, keys, box, id).dropGrant('rt_2')).toBe(true);
  expect(await redis.exists(key)).toBe(0);
});

test("replaceGrant (a target PATCH's check of the same grant) stores the check's token unless another process rotated the grant meanwhile", async () => {
  const id = 'tgt_patch';
  const key = keys.targetToken(id);
  const current = async () => new RedisTokenStore(redis, keys, box, id).get();
  const held = { accessToken: 'at_1', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_1' };
  const checked = { accessToken: 'at_c', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_c' };

  // A worker only refreshed the access token (the platform did not rotate): the check's token is stored.
  await new RedisTokenStore(redis, keys, box, id).set(held);
  const accessOnly = (): Promise<void> => new RedisTokenStore(redis, keys, box, id).set({ ...held, accessToken: 'at_w' });
  expect(await new RedisTokenStore(writeAfterRead(key, accessOnly), keys, box, id).replaceGrant(held, checked)).toBe(true);
  expect(await current()).toEqual(checked);

  // A worker rotated the grant meanwhile: its refresh token is the live one, and stays.
  await new RedisTokenStore(redis, keys, box, id).set(held);
  const rotated = { accessToken: 'at_w', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_w' };
  const rotates = (): Promise<void> => new RedisTokenStore(redis, keys, box, id).set(rotated);
  expect(await new RedisTokenStore(writeAfterRead(key, rotates), keys, box, id).replaceGrant(held, checked)).toBe(false);
  expect(await current()).toEqual(rotated);

  // The record went meanwhile (a worker's refresh with rt_1 was refused after the check rotated it): the check's token is the live one.
  await redis.del(key);
  expect(await new RedisTokenStore(redis, keys, box, id).replaceGrant(held, checked)).toBe(true);
  expect(await current()).toEqual(checked);
});

test('reseal (a target PATCH of the same credentials) seals a record of SECRETS_KEY_PREVIOUS with SECRETS_KEY, so it outlives the old key', async () => {
  const id = 'tgt_reseal';
  const key = keys.targetToken(id);
  const token = { accessToken: 'at_1', expiresAt: 0, refreshToken: 'rt_rotated' };
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  await new RedisTokenStore(redis, keys, new SecretBox(oldKey), id).set(token);
  const rotating = new SecretBox(newKey, [oldKey]);
  await new RedisTokenStore(redis, keys, rotating, id).reseal();
  // SECRETS_KEY_PREVIOUS removed: the record still opens, with its rotated refresh token.
  expect(await new RedisTokenStore(redis, keys, new SecretBox(newKey), id).get()).toEqual(token);
  // Already under SECRETS_KEY: left as it is.
  const raw = await redis.get(key);
  await new RedisTokenStore(redis, keys, rotating, id).reseal();
  expect(await redis.get(key)).toBe(raw);
});

test("refreshed (a worker's refresh) stores its token only while the record still holds the grant it refreshed", async () => {
  const id = 'tgt_refreshed';
  const key = keys.targetToken(id);
  const current = async () => new RedisTokenStore(redis, keys, box, id).get();
  const from = { accessToken: 'at_1', expiresAt: 0, refreshToken: 'rt_1' };
  const ours = { accessToken: 'at_w', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_w' };
  const set = (t: AccessToken) => (): Promise<void> => new RedisTokenStore(redis, keys, box, id).set(t);

  // The first token: none when the refresh started, none now.
  await redis.del(key);
  expect(await new RedisTokenStore(redis, keys, box, id).refreshed(ours, 'rt_cred', null)).toEqual(ours);
  expect(await current()).toEqual(ours);
  // ... but another process's record of the same grant, stored meanwhile, is replaced, and one of another grant is not.
  await redis.del(key);
  const sameMeanwhile = { accessToken: 'at_o', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_cred' };
  expect(await new RedisTokenStore(writeAfterRead(key, set(sameMeanwhile)), keys, box, id).refreshed(ours, 'rt_cred', null)).toEqual(ours);
  await redis.del(key);
  const newGrant = { accessToken: 'at_new', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_new' };
  expect(await new RedisTokenStore(writeAfterRead(key, set(newGrant)), keys, box, id).refreshed(ours, 'rt_cred', null)).toEqual(newGrant);
  expect(await current()).toEqual(newGrant);

  // New credentials saved while a refresh of the old grant ran (a target PATCH replaced the record): it stays, and is used.
  await set(from)();
  expect(await new RedisTokenStore(writeAfterRead(key, set(newGrant)), keys, box, id).refreshed(ours, 'rt_1', from)).toEqual(newGrant);
  expect(await current()).toEqual(newGrant);
  // A record of the same grant whose access token was refreshed or expired meanwhile takes ours.
  await set(from)();
  expect(await new RedisTokenStore(writeAfterRead(key, set({ ...from, accessToken: 'at_2' })), keys, box, id).refreshed(ours, 'rt_1', from)).toEqual(ours);
  expect(await current()).toEqual(ours);
  // The record went while ours was under way with its refresh token (refused to another process after
  // ours rotated it: dropGrant): ours holds the only live refresh token, and is stored.
  await set(from)();
  expect(await new RedisTokenStore(writeAfterRead(key, async () => void (await redis.del(key))), keys, box, id).refreshed(ours, 'rt_1', from)).toEqual(ours);
  expect(await current()).toEqual(ours);
  // A record from before refresh tokens were always kept (none in it) takes ours while it is unchanged.
  const legacy = { accessToken: 'at_l', expiresAt: 0 };
  await new RedisTokenStore(redis, keys, box, id).set(legacy);
  expect(await new RedisTokenStore(redis, keys, box, id).refreshed(ours, 'rt_cred', legacy)).toEqual(ours);
  await new RedisTokenStore(redis, keys, box, id).set(legacy);
  const otherLegacy = { accessToken: 'at_l2', expiresAt: Date.now() + 3_600_000 };
  expect(await new RedisTokenStore(writeAfterRead(key, set(otherLegacy)), keys, box, id).refreshed(ours, 'rt_cred', legacy)).toEqual(otherLegacy);
  expect(await current()).toEqual(otherLegacy);
});

test('a token record that is not valid UTF-8 (a hand edit) is replaced by new credentials and dropped: the compare-and-set compares the bytes', async () => {
  const key = keys.targetToken('tgt_bytes');
  const garbage = Buffer.from([0x76, 0x31, 0x2e, 0xe9, 0x80]); // 'v1.' then bytes that are no UTF-8
  await redis.set(key, garbage);
  const store = new RedisTokenStore(redis, keys, box, 'tgt_bytes');
  const lock = await store.lockGrant(30_000, 'pb');
  expect(lock).not.toBeNull();
  // Before: read as text (U+FFFD), never equal to the bytes held: ConcurrentTokenWriteError on every PATCH.
  await store.newGrant({ accessToken: 'at_new', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_new' }, lock!.fence);
  await lock!.release();
  expect(await new RedisTokenStore(redis, keys, box, 'tgt_bytes').get()).toMatchObject({ accessToken: 'at_new', refreshToken: 'rt_new' });
  // Unfenced, the drop of an unreadable record deletes it (before: it looped for ever).
  await redis.set(key, garbage);
  expect(await store.dropGrant(undefined)).toBe(true);
  expect(await redis.exists(key)).toBe(0);
});
