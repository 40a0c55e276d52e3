/**
 * The bare baseline API: what a minimal Fastify service does for the same requests.
 *  - POST /v1/partners/:partnerId/events: verify the Standard Webhooks HMAC (raw body, ±300 s,
 *    constant-time compare; secret held in memory), JSON.parse, one BullMQ `queue.add` (job id =
 *    webhook-id), 202.
 *  - GET /l/:code: 302 to a fixed product URL.
 * Env: BARE_REDIS_URL or BARE_REDIS_CLUSTER_NODES (bench/sut/bare-redis.ts), BARE_SECRET (whsec_…),
 * BARE_QUEUE, BARE_PREFIX.
 */
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { bareRedis } from './bare-redis.js';
import { onStop, ready, requireEnv } from './child.js';

const redis = bareRedis();
const secret = requireEnv('BARE_SECRET');
const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
const queueName = requireEnv('BARE_QUEUE');
const queue = new Queue(queueName, { connection: redis.connection(false), prefix: redis.prefix(requireEnv('BARE_PREFIX'), queueName) });
// a Cluster connection is ready only once it has the slot map: BullMQ takes it as it is
await queue.waitUntilReady();

function verified(id: string, ts: string, signature: string, body: Buffer): boolean {
  if (!/^\d{1,12}$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest();
  for (const part of signature.split(' ')) {
    const [v, sig] = part.split(',', 2);
    if (v !== 'v1' || !sig) continue;
    const given = Buffer.from(sig, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  }
  return false;
}

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

app.post<{ Params: { partnerId: string } }>('/v1/partners/:partnerId/events', async (req, reply) => {
  const { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': sig } = req.headers;
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string' || !verified(id, ts, sig, body)) {
    return reply.code(401).send({ title: 'Unauthorized' });
  }
  let event: unknown;
  try {
    event = JSON.parse(body.toString('utf8'));
  } catch {
    return reply.code(400).send({ title: 'Bad Request' });
  }
  await queue.add('event', { partnerId: req.params.partnerId, webhookId: id, event }, { jobId: id, removeOnComplete: true });
  return reply.code(202).send({ eventId: id, duplicate: false });
});

app.get('/l/:code', async (_req, reply) => reply.redirect('https://shop.example.com/products/p1?utm_source=youtube&utm_medium=live', 302));

const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
onStop(async () => {
  await app.close();
  await queue.close();
});
ready({ url });
