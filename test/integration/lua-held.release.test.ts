/**
 * The compare-and-delete releases (src/store/lua-held.ts DEL_IF_HELD_LUA; a webhook-id claim's
 * RELEASE_HELD_LUA, src/store/webhook-id.repository.ts): a webhook-id claim, an outbound attempt claim
 * and a relay lease are each dropped only by the holder that has them. A holder
 * whose claim expired and was taken by another (a slow worker, a lost BullMQ lock, a relay that missed
 * its renewal) must not drop the new holder's claim on its way out: a webhook-id would be free for a
 * second store, an attempt could be sent twice at once, a show relayed by two processes. No test
 * released a claim it no longer held, so a release that deleted whatever was there passed the suite.
 * Real Redis (SYNDICAST_TEST_REDIS=cluster too).
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import { OutboundMessageRepository } from '../../src/store/outbound-message.repository.js';
import type { RedisClient } from '../../src/store/redis.js';
import { RelayRepository } from '../../src/store/relay.repository.js';
import { WebhookIdClaims } from '../../src/store/webhook-id.repository.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));

const keys = new Keys('lh');

test("a webhook-id claim is released only by the scope that holds it", async () => {
  const claims = new WebhookIdClaims(redis, keys, 3_600);
  const claim = keys.partnerWebhookId('p1', 'msg_1');
  expect(await claims.claim('p1', 'msg_1', 'show:s1', 'tok_1')).toBe('show:s1');
  expect(await claims.claim('p1', 'msg_1', 'order:o1', 'tok_2')).toBe('show:s1');
  expect(await claims.releaseIfHeld('p1', 'msg_1', 'order:o1', 'tok_2')).toBe(false);
  expect(await redis.get(claim)).toBe('show:s1');
  expect(await claims.releaseIfHeld('p1', 'msg_1', 'show:s1', 'tok_1')).toBe(true);
  expect(await redis.get(claim)).toBeNull();
  expect(await claims.releaseIfHeld('p1', 'msg_1', 'show:s1', 'tok_1')).toBe(false);

  // The claim expired under a delivery and another scope claimed the id (untracked, as a claim made
  // before tokens): the old delivery's release, its token the last in the set, leaves the new claim.
  expect(await claims.claim('p1', 'msg_1', 'show:s1', 'tok_3')).toBe('show:s1');
  await redis.del(claim);
  expect(await claims.claim('p1', 'msg_1', 'order:o1')).toBe('order:o1');
  expect(await claims.releaseIfHeld('p1', 'msg_1', 'show:s1', 'tok_3')).toBe(false);
  expect(await redis.get(claim)).toBe('order:o1');
});

/**
 * Deliveries that passed one claim with tokens of their own (the Cluster show path): a refused one's
 * release deletes the claim only when no other delivery that passed it is left (the other may have
 * stored under it); deleted by the scope check alone, the id was free for a second event elsewhere.
 */
test('a webhook-id claim passed by two deliveries is released only by the last of them', async () => {
  const claims = new WebhookIdClaims(redis, keys, 3_600);
  const claim = keys.partnerWebhookId('p2', 'msg_2');
  expect(await claims.claim('p2', 'msg_2', 'show:s1', 'tok_a')).toBe('show:s1');
  expect(await claims.claim('p2', 'msg_2', 'show:s1', 'tok_b')).toBe('show:s1');
  // Another scope does not pass it (a duplicate): its token is not tracked, its release changes nothing.
  expect(await claims.claim('p2', 'msg_2', 'show:s2', 'tok_x')).toBe('show:s1');
  expect(await claims.releaseIfHeld('p2', 'msg_2', 'show:s2', 'tok_x')).toBe(false);
  expect(await claims.releaseIfHeld('p2', 'msg_2', 'show:s1', 'tok_b')).toBe(false);
  expect(await redis.get(claim)).toBe('show:s1');
  expect(await claims.releaseIfHeld('p2', 'msg_2', 'show:s1', 'tok_b')).toBe(false); // a repeat
  expect(await redis.get(claim)).toBe('show:s1');
  expect(await claims.releaseIfHeld('p2', 'msg_2', 'show:s1', 'tok_a')).toBe(true);
  expect(await redis.get(claim)).toBeNull();

  // A claim made without tracking (no token: a delivery's of before tokens): a
  // delivery that passes it later cannot tell who else did, and leaves it.
  expect(await claims.claim('p2', 'msg_3', 'show:s1')).toBe('show:s1');
  expect(await claims.claim('p2', 'msg_3', 'show:s1', 'tok_c')).toBe('show:s1');
  expect(await claims.releaseIfHeld('p2', 'msg_3', 'show:s1', 'tok_c')).toBe(false);
  expect(await redis.get(keys.partnerWebhookId('p2', 'msg_3'))).toBe('show:s1');
});

test("an outbound attempt claim another worker took is left to it by the old holder's release", async () => {
  const messages = new OutboundMessageRepository(redis, keys);
  expect(await messages.claimAttempt('p1', 'm1', 'e1', 'tok_new', 60_000)).toBe(true);
  await messages.releaseAttempt('p1', 'm1', 'e1', 'tok_old');
  expect(await messages.claimAttempt('p1', 'm1', 'e1', 'tok_other', 60_000)).toBe(false);
  await messages.releaseAttempt('p1', 'm1', 'e1', 'tok_new');
  expect(await messages.claimAttempt('p1', 'm1', 'e1', 'tok_other', 60_000)).toBe(true);
});

test("a relay lease taken over by another process is not dropped by the old holder", async () => {
  const relay = new RelayRepository(redis, keys, new SecretBox(randomBytes(32).toString('base64')));
  expect(await relay.takeLease('p1', 's1', 'tok_new', 60_000)).toBe(true);
  await relay.dropLease('p1', 's1', 'tok_old');
  expect(await relay.leaseHolder('p1', 's1')).toBe('tok_new');
  await relay.dropLease('p1', 's1', 'tok_new');
  expect(await relay.leaseHolder('p1', 's1')).toBeNull();
});
