/**
 * A/B micro-benchmark of the pin run's last save (SAVE_MIRROR_FINAL_LUA, `scSaveMirrorFinal`) on a
 * private redis-server (a development tool, not a benchmark of the suite): the script of this checkout,
 * of others (SAVE_AB_OTHER: dir or name=dir, bench/lib/ab.ts) and hand-edited Lua files (SAVE_AB_LUA:
 * name=file.lua, comma-separated; e.g. a variant with a part left out, to see what that part costs)
 * alternate in rounds (the order reversed every other round). Each round and script: N fresh pin syncs'
 * keys written as a pin sync finds them (a live mirror, its lease, the desired hash with a snapshot, a
 * timeline of four entries, the index entry, the pin step's started intent record; one partner hash with
 * the target), then N calls with 32 in flight, as the worker sends them, each of which must save,
 * complete the step and release the lease. The sizes are those of a pin sync of bench/sync-ab.ts
 * (mirror ≈ 1.1 KB, target record ≈ 0.5 KB; SAVE_AB_TARGET_BYTES pads the sealed credentials, e.g.
 * 1600 for a production-sized record). Prints redis-server's µs per call by INFO commandstats (the
 * script's own time, its inner commands included: the stable figure) and by /proc CPU (10 ms ticks),
 * and each script's per-round ratio to the first. SLOWLOG is not used: at threshold 0 it logs every
 * inner command too, inside the script's time.
 *   flock /tmp/syndicast-heavy.lock timeout 600 npx tsx bench/save-final-ab.ts
 * Env: SAVE_AB_ROUNDS (8), SAVE_AB_CALLS (3000), SAVE_AB_OTHER, SAVE_AB_LUA, SAVE_AB_TARGET_BYTES.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { otherCheckouts } from './lib/ab.js';
import { processCpuMs } from './lib/machine.js';
import { startBenchRedis } from './lib/redis-server.js';

const rounds = Number(process.env['SAVE_AB_ROUNDS'] ?? 8);
const calls = Number(process.env['SAVE_AB_CALLS'] ?? 3000);
const targetBytes = Number(process.env['SAVE_AB_TARGET_BYTES'] ?? 0);
const INFLIGHT = 32;

/** The last save's Lua text of the checkout at `dir` (its defineStoreScripts, given a recorder for a client). */
async function scriptOf(dir: string): Promise<string> {
  const mod = (await import(resolve(dir, 'src/store/show.repository.ts'))) as { defineStoreScripts: (r: unknown) => void };
  const lua = new Map<string, string>();
  mod.defineStoreScripts({ defineCommand: (name: string, def: { lua: string }) => lua.set(name, def.lua) });
  const text = lua.get('scSaveMirrorFinal');
  if (!text) throw new Error(`${dir}: no scSaveMirrorFinal`);
  return text;
}

const scripts: { name: string; lua: string }[] = [{ name: 'this', lua: await scriptOf('.') }];
/** A script whose target guard compares incarnations takes the mirror's after the guard's field (ARGV[12]); earlier ones do not. */
const takesIncarnation = (lua: string): boolean => lua.includes('"incarnation":"');
for (const o of otherCheckouts(process.env['SAVE_AB_OTHER'])) scripts.push({ name: o.name, lua: await scriptOf(o.dir) });
for (const e of (process.env['SAVE_AB_LUA'] ?? '').split(',').filter(Boolean)) {
  const at = e.indexOf('=');
  scripts.push({ name: e.slice(0, at), lua: readFileSync(e.slice(at + 1), 'utf8') });
}

const token = '9145e2f6-8831-40c7-ab45-c0a6d9c68883:43';
const pinTime = '2026-12-04T21:22:28.173Z';
const sealed = 'v1.-F6skFTUBb-MBDI7.x-FKaD-AxoBIOGPzQ4o8LQ.pTbDJIirWcIT3YPcsCYjfqu-6cyE0QYlVD2drOmh6AFu6B0mLzJ94BXdHnLrbs6WzSXHVJXVC_UJO7FoLz1Vahf_Clmf5m';
const incarnation = 'inc_Q2xpbmtCZW5j';
const target = JSON.stringify({ id: 'yt1', platform: 'youtube', name: 'YouTube (simulator)', baseUrl: 'http://127.0.0.1:36157/youtube', commissionRateBps: 1000, enabled: true, pinDelayMs: 0, partnerId: 'bench', credentialsSealed: sealed.padEnd(Math.max(sealed.length, targetBytes - 380), 'x'), incarnation, createdAt: pinTime, updatedAt: pinTime });
const mirror = (rev: number, ext: string, pinned: boolean): string => {
  const pins = pinned ? { p1: { state: 'pinned', episode: 1, linkUrl: 'https://go.syndicast.example/l/YxreiDPX4qft8gpw', ref: 'LCC.fp5pMriB29CgCNdjzQfrrBhP_iukzxGE', at: pinTime } } : {};
  return JSON.stringify({ rev, targetId: 'yt1', platform: 'youtube', incarnation, state: 'live', remote: { externalId: ext, url: `https://www.youtube.com/watch?v=${ext}`, ingest: { url: 'rtmp://127.0.0.1:37673/youtube', streamKeySealed: 'v1.Mon2QXLQLVFd8dLX.3aB9h5eR44fPG0m3CY2ATg.KTO5S8yGYZHocAvbUuuSaKiH9qLYm6DE' }, data: { streamId: 'simSyndicastChannel000117964193468155vw2', liveChatId: 'Cg0KC2ZkLWppMkpVcUNj' } }, applied: { title: 'Bench show', scheduledAt: '2026-11-24T18:00:00Z' }, pins, lastError: null, syncedVersion: pinned ? 3 : 2, retries: 0, generation: 0, wentLive: true, updatedAt: pinTime, since: { state: 'live', at: pinTime }, notified: JSON.stringify({ s: 'live', p: pins, r: ext, e: null }) });
};
const products = [1, 2, 3].map((i) => ({ id: `p${i}`, title: `Bench product ${i}`, price: { amount: 900 + 100 * i, currency: 'USD' }, url: `https://shop.example.com/products/p${i}` }));
const snapshot = JSON.stringify({ id: 'show', title: 'Bench show', scheduledAt: '2026-11-24T18:00:00Z', state: 'live', products, pinnedProductIds: [] });
const mirrorEntry = (pinned: string[]): string => JSON.stringify({ kind: 'mirror', targetId: 'yt1', platform: 'youtube', state: 'live', externalId: 'fd-ji2JUqCc', pinned, lastError: null });
const syncEntry = (outcome: string): string => JSON.stringify({ kind: 'sync', targetId: 'yt1', outcome, durationMs: 6 });

const server = await startBenchRedis('everysec');
const redis = new Redis(server.url);
const partnerKey = 'ab:{p:bench}:partner';
try {
  const shas = new Map<string, string>();
  for (const s of scripts) shas.set(s.name, (await redis.script('LOAD', s.lua)) as string);
  const byRound = new Map<string, { cs: number[]; cpu: number[] }>(scripts.map((s) => [s.name, { cs: [], cpu: [] }]));
  let gen = 0;
  for (let k = 0; k < rounds; k++) {
    for (const s of k % 2 ? [...scripts].reverse() : scripts) {
      await redis.flushall();
      await redis.hset(partnerKey, 't:yt1', target);
      const batch: (string | number)[][] = [];
      let p = redis.pipeline();
      for (let i = 0; i < calls; i++) {
        const show = `g${++gen}`;
        const ext = `fd-${show}`;
        const slot = `ab:{s:bench:${show}}`;
        const keys = [`${slot}:mirror:yt1`, `${slot}:lease:yt1`, `${slot}:desired`, `${slot}:activity`, partnerKey, `ab:{t:yt1}:ext:${ext}`, `ab:{t:yt1}:ext-waiting:${ext}`, `${slot}:intent:yt1:g0:pin:p1:1:message`];
        p.set(keys[0]!, mirror(5, ext, false));
        p.set(keys[1]!, token, 'PX', 600_000);
        p.hset(keys[2]!, { v: '3', 'snap@': '001796418748536000000|live', snap: snapshot, 'pin:p1': '1', 'pin:p1@': '001796418749977000000|pin' });
        for (const entry of [syncEntry('ready'), mirrorEntry([]), syncEntry('live'), mirrorEntry([])]) p.xadd(keys[3]!, '*', 'entry', entry);
        p.set(keys[5]!, show);
        p.set(keys[7]!, `{"status":"started","owner":"${token}","startedAt":"${pinTime}","until":1796419368169}`, 'EX', 7_776_000);
        const done = JSON.stringify({ status: 'done', owner: token, result: { id: 'LCC.fp5pMriB29CgCNdjzQfrrBhP_iukzxGE' }, startedAt: pinTime });
        batch.push([keys.length, ...keys, 5, mirror(6, ext, true), token, 30_000, 3, mirrorEntry(['p1']), '500', syncEntry('live'), show, 7_776_000, 't:yt1', ...(takesIncarnation(s.lua) ? [incarnation] : []), done]);
        if (i % 200 === 199) {
          await p.exec();
          p = redis.pipeline();
        }
      }
      await p.exec();
      await redis.config('RESETSTAT');
      const cpu0 = processCpuMs(server.pid);
      const sha = shas.get(s.name)!;
      let next = 0;
      await Promise.all(Array.from({ length: INFLIGHT }, async () => {
        while (next < batch.length) {
          const reply = (await redis.evalsha(sha, ...(batch[next++] as [number, ...(string | number)[]]))) as number[];
          if (reply[0] !== 1 || reply[2] !== 1) throw new Error(`${s.name}: ${JSON.stringify(reply)} (expected a save that released the lease)`);
        }
      }));
      const cpu = ((processCpuMs(server.pid) - cpu0) * 1000) / calls;
      const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'));
      const r = byRound.get(s.name)!;
      r.cs.push(Number(m?.[2]) / Number(m?.[1]));
      r.cpu.push(cpu);
      process.stdout.write(`round ${k} ${s.name.padEnd(12)} ${r.cs.at(-1)!.toFixed(1)} µs per call (commandstats) · ${cpu.toFixed(1)} µs CPU\n`);
    }
  }
  const median = (xs: number[]): number => {
    const o = [...xs].sort((a, b) => a - b);
    return o.length % 2 ? o[(o.length - 1) / 2]! : (o[o.length / 2 - 1]! + o[o.length / 2]!) / 2;
  };
  const first = byRound.get(scripts[0]!.name)!;
  process.stdout.write(`\nmedians (${rounds} rounds × ${calls} calls):\n`);
  for (const [name, r] of byRound) {
    const ratios = r.cs.map((x, i) => x / first.cs[i]!);
    process.stdout.write(`  ${name.padEnd(12)} ${median(r.cs).toFixed(1)} µs per call · CPU ${median(r.cpu).toFixed(1)} µs · per-round ratio to ${scripts[0]!.name} ${median(ratios).toFixed(3)} (lower in ${ratios.filter((x) => x < 1).length} of ${rounds})\n`);
  }
} finally {
  redis.disconnect();
  await server.destroy();
}
