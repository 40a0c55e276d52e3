/**
 * A/B of the single-Redis ingest script's cost to redis-server (a development tool, not a benchmark of
 * the suite): ShowRepository.ingestOne of this checkout and of INGEST_LUA_AB_OTHER (a checkout with
 * node_modules linked), each on its own redis-server (AOF everysec), the same `product.pinned`-shaped
 * events for a new show each, 500 at a time (one socket write each turn, as the API sends them), rounds
 * alternating which goes first. Per round: redis-server CPU µs per event (/proc), the script's own
 * µs per event (INFO commandstats, EVALSHA incl. its inner commands) and commands per event. No HTTP,
 * no dispatcher: only what the script costs Redis.
 *   flock /tmp/syndicast-heavy.lock env INGEST_LUA_AB_OTHER=/path/to/base npx tsx bench/ingest-lua-ab.ts
 * Env: INGEST_LUA_AB_OTHER (required), INGEST_LUA_AB_EVENTS (40000 per round), INGEST_LUA_AB_ROUNDS (10).
 */
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { processCpuMs } from './lib/machine.js';
import { startBenchRedis, type BenchRedis } from './lib/redis-server.js';
import { mean } from './lib/stats.js';

const other = process.env['INGEST_LUA_AB_OTHER'];
if (!other) throw new Error('INGEST_LUA_AB_OTHER: the other checkout');
const N = Number(process.env['INGEST_LUA_AB_EVENTS'] ?? 40_000);
const ROUNDS = Number(process.env['INGEST_LUA_AB_ROUNDS'] ?? 10);

interface Ingest {
  ingestOne(...args: unknown[]): Promise<unknown>;
}
interface Side {
  name: string;
  repo: Ingest;
  redis: Redis;
  server: BenchRedis;
  cpu: number[];
  script: number[];
  commands: number[];
}

async function side(name: string, dir: string): Promise<Side> {
  const server = await startBenchRedis('everysec');
  const { ShowRepository } = (await import(`${dir}/src/store/show.repository.ts`)) as { ShowRepository: new (...a: unknown[]) => Ingest };
  const { Keys } = (await import(`${dir}/src/store/keys.ts`)) as { Keys: new (prefix: string) => unknown };
  const redis = new Redis(server.url);
  return { name, repo: new ShowRepository(redis, new Keys('b'), 86_400, undefined), redis, server, cpu: [], script: [], commands: [] };
}

/** Commands executed (inner commands of scripts included) and EVALSHA's µs, from INFO commandstats. */
async function stats(c: Redis): Promise<{ calls: number; evalUs: number }> {
  const info = await c.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) calls += Number(m[1]);
  return { calls, evalUs: Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(info)?.[1] ?? 0) };
}

let seq = 0;
async function round(s: Side): Promise<void> {
  const a = await stats(s.redis);
  const t0 = processCpuMs(s.server.pid);
  for (let i = 0; i < N; i += 500) {
    const turn: Promise<unknown>[] = [];
    for (let j = 0; j < 500; j++) {
      const id = `e${seq++}`;
      turn.push(s.repo.ingestOne('p1', `show-${id}`, id, `s:show-${id}`, '{"type":"product.pinned","productId":"x"}', `2026-12-07T05:00:00.000Z|${id}`, { field: 'pin:x', value: '1' }, undefined, 'req-1'));
    }
    await Promise.all(turn);
  }
  const cpuMs = processCpuMs(s.server.pid) - t0;
  const b = await stats(s.redis);
  s.cpu.push((cpuMs * 1000) / N);
  s.script.push((b.evalUs - a.evalUs) / N);
  s.commands.push((b.calls - a.calls - 1) / N); // the second INFO itself
}

const sides = [await side('this', process.cwd()), await side('other', resolve(other))];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) await round(s);
    console.log(`round ${r}`, order.map((s) => `${s.name} redis-server ${s.cpu.at(-1)!.toFixed(2)} µs/event, script ${s.script.at(-1)!.toFixed(2)} µs`).join(' · '));
  }
  for (const s of sides) {
    console.log(`${s.name}: redis-server ${mean(s.cpu).toFixed(2)} µs/event, script ${mean(s.script).toFixed(2)} µs/event, ${s.commands.at(-1)!.toFixed(2)} commands/event`);
  }
} finally {
  for (const s of sides) {
    s.redis.disconnect();
    await s.server.destroy();
  }
}
