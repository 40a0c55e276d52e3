/**
 * The bare baseline worker: plain BullMQ Workers, one per queue, no state, no intents.
 *  - BARE_MODE=noop: the processor returns at once (the queue's own cost per job).
 *  - BARE_MODE=chat: the processor posts one YouTube live-chat message to the simulator for the
 *    job's show (liveChatId looked up in BARE_CHATS, a JSON map showId → liveChatId; one access
 *    token fetched at start; node:http with a keep-alive agent, the leanest client Node has): the
 *    least a pin can cost on YouTube.
 * Env: BARE_REDIS_URL or BARE_REDIS_CLUSTER_NODES (bench/sut/bare-redis.ts), BARE_QUEUES (comma list), BARE_PREFIX, BARE_CONCURRENCY, BARE_MODE,
 * BARE_SIM_URL (the simulator's /youtube base), BARE_CHATS.
 */
import { Worker, type Job } from 'bullmq';
import { Agent, request } from 'node:http';
import { bareRedis } from './bare-redis.js';
import { onStop, ready, requireEnv } from './child.js';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';

const redis = bareRedis();
const queues = requireEnv('BARE_QUEUES').split(',');
const prefix = requireEnv('BARE_PREFIX');
const concurrency = Number(requireEnv('BARE_CONCURRENCY'));
const mode = requireEnv('BARE_MODE');

interface EventJob {
  event?: { data?: { showId?: string; productId?: string } };
}

let processor: (job: Job) => Promise<string>;
if (mode === 'chat') {
  const base = requireEnv('BARE_SIM_URL');
  const chats = JSON.parse(requireEnv('BARE_CHATS')) as Record<string, string>;
  const tok = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: SIM_ACCOUNTS.youtube[0]!.clientId, client_secret: SIM_ACCOUNTS.youtube[0]!.clientSecret, refresh_token: SIM_ACCOUNTS.youtube[0]!.refreshToken }),
  });
  if (!tok.ok) throw new Error(`token: ${tok.status}`);
  const token = ((await tok.json()) as { access_token: string }).access_token;
  const agent = new Agent({ keepAlive: true });
  const url = new URL(`${base}/youtube/v3/liveChat/messages?part=snippet`);
  const post = (body: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end(body);
    });
  processor = async (job: Job) => {
    const data = (job.data as EventJob).event?.data;
    const liveChatId = chats[data?.showId ?? ''];
    if (!liveChatId) throw new Error(`no chat for show ${data?.showId}`);
    const messageText = `🛍 ${data?.productId ?? ''} https://shop.example.com/products/${data?.productId ?? ''}`;
    const r = await post(JSON.stringify({ snippet: { liveChatId, type: 'textMessageEvent', textMessageDetails: { messageText } } }));
    if (r.status < 200 || r.status >= 300) throw new Error(`chat: ${r.status} ${r.text}`);
    JSON.parse(r.text);
    return 'posted';
  };
} else {
  processor = async () => 'ok';
}

const workers = queues.map((name) => {
  const w = new Worker(name, processor, { connection: redis.connection(true), prefix: redis.prefix(prefix, name), concurrency });
  w.on('error', (err) => process.stderr.write(`bare worker ${name}: ${err.message}\n`));
  return w;
});
await Promise.all(workers.map((w) => w.waitUntilReady()));
onStop(async () => {
  await Promise.all(workers.map((w) => w.close()));
});
ready({ queues });
