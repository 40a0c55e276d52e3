/**
 * A/B harness for the redirect's CPU per request (a development tool, not a benchmark of the suite):
 * one private redis-server, the bare 302 route and one or more Syndicast API builds (this checkout,
 * plus any other checkout given in REDIRECT_AB_OTHER, e.g. an unpacked `git archive` of the base
 * commit with node_modules linked), the same links, rounds of a fixed number of redirects at 32
 * connections, the systems' order rotating per round. Per system: req/s and CPU µs per redirect of the
 * API process, redis-server and the load generator (this process), from /proc.
 *   flock /tmp/syndicast-heavy.lock npx tsx bench/redirect-ab.ts
 * Env: REDIRECT_AB_ROUNDS (4), REDIRECT_AB_REQUESTS (30000), REDIRECT_AB_OTHER (dir, or name=dir, several comma-separated: bench/lib/ab.ts), REDIRECT_AB_LINKS (1000),
 * REDIRECT_AB_TOPOLOGY (single | cluster: the 3+3 cluster of the benchmark, Syndicast with its default
 * WAIT; redis CPU is then also given per role, masters and replicas, and the commands Redis executed
 * per redirect, INFO commandstats summed over the masters, with the script calls and WAITs apart),
 * REDIRECT_AB_PROFILE (dir: this checkout's API writes a V8 CPU profile there, read it with bench/profile.ts),
 * REDIRECT_AB_NODE_ARGS (node flags for the Syndicast APIs and the bare route, e.g. `--perf-basic-prof` for `perf record -p <pid>`).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { otherCheckouts } from './lib/ab.js';
import { runLoad } from './lib/load.js';
import { cpuMeter } from './lib/machine.js';
import { startChild, type Child } from './lib/proc.js';
import { benchRuntime } from './lib/service.js';
import { mean, round } from './lib/stats.js';
import { startBareApi } from './lib/systems.js';
import { startBenchStore, storeServiceEnv } from './lib/topology.js';

const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const rounds = Number(process.env['REDIRECT_AB_ROUNDS'] ?? 4);
const requests = Number(process.env['REDIRECT_AB_REQUESTS'] ?? 30_000);
const nLinks = Number(process.env['REDIRECT_AB_LINKS'] ?? 1000);
const others = otherCheckouts(process.env['REDIRECT_AB_OTHER']);
const only = process.env['REDIRECT_AB_ONLY']?.split(',');
const profileDir = process.env['REDIRECT_AB_PROFILE'] ? resolve(process.env['REDIRECT_AB_PROFILE']) : undefined;
const nodeArgs = process.env['REDIRECT_AB_NODE_ARGS']?.split(' ').filter((a) => a !== '');

const topology = process.env['REDIRECT_AB_TOPOLOGY'] === 'cluster' ? 'cluster' : 'single';
const redis = await startBenchStore(topology, 'everysec');
const roles = await redis.pidsByRole();
const se = storeServiceEnv(redis);
const rt = await benchRuntime(se);
const systems: { name: string; child: Child<{ url: string }> }[] = [];
const started: Child[] = [];
try {
  systems.push({ name: 'bare', child: await startBareApi({ redisUrl: redis.url, store: redis, secret: 'whsec_' + Buffer.from('unused').toString('base64'), queue: 'bare-unused', prefix: 'bare' }, undefined, nodeArgs) });
  systems.push({ name: 'this', child: await startChild<{ url: string }>('bench/sut/service-api.ts', { name: 'syndicast-api', env: se.env, ready: 'ipc', profileDir, nodeArgs }) });
  for (const o of others) systems.push({ name: o.name, child: await startChild<{ url: string }>(resolve(o.dir, 'bench/sut/service-api.ts'), { name: `syndicast-api-${o.name}`, env: se.env, ready: 'ipc', nodeArgs }) });
  started.push(...systems.map((s) => s.child));
  if (only) systems.splice(0, systems.length, ...systems.filter((s) => only.includes(s.name)));
  process.stdout.write(`pids ${systems.map((s) => `${s.name}=${s.child.proc.pid}`).join(' ')} redis=${redis.pids.join(',')}\n`);
  const codes: string[] = [];
  for (let i = 0; i < nLinks; i++) {
    const url = await rt.links.ensure({ partnerId: 'bench', showId: `s${i % 50}`, targetId: 'yt1', platform: 'youtube', productId: `p${i}`, url: `https://shop.example.com/products/p${i}?ref=live` });
    codes.push(url.slice(url.lastIndexOf('/') + 1));
  }
  const headers = { 'user-agent': BROWSER_UA, accept: 'text/html' };
  if (process.env['REDIRECT_AB_SHOW']) {
    for (const s of systems) {
      const r = await fetch(`${s.child.info.url}/l/${codes[0] ?? ''}`, { redirect: 'manual', headers });
      process.stdout.write(`${s.name}: ${r.status}\n${[...r.headers].map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
    }
  }
  const results = new Map<string, { rps: number; cpu: Record<string, number> }[]>();
  // the API's user and system time apart (ticks of /proc/<pid>/stat), and the clicks per Lua call
  const userSys = (pid: number | undefined): [number, number] => {
    const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').map(Number);
    return [((rest[11] ?? 0) * 1000) / 100, ((rest[12] ?? 0) * 1000) / 100];
  };
  // commands executed, script calls and WAITs, summed over the masters
  const commandStats = async (): Promise<{ all: number; scripts: number; waits: number }> => {
    const out = { all: 0, scripts: 0, waits: 0 };
    for (const node of 'nodes' in rt.redis ? rt.redis.nodes('master') : [rt.redis]) {
      const info = await node.info('commandstats');
      for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) {
        const n = Number(m[2]);
        out.all += n;
        if (m[1] === 'evalsha' || m[1] === 'eval') out.scripts += n;
        if (m[1] === 'wait') out.waits += n;
      }
    }
    return out;
  };
  const once = async (s: (typeof systems)[number], n: number): Promise<{ rps: number; cpu: Record<string, number> }> => {
    let i = 0;
    const us0 = userSys(s.child.proc.pid);
    const calls0 = await commandStats();
    const meter0 = cpuMeter({ api: s.child.proc.pid, redis: redis.pids, masters: roles.masters, replicas: roles.replicas, loadgen: process.pid });
    const meter = (): Record<string, number> => {
      const m = meter0();
      const us1 = userSys(s.child.proc.pid);
      return { ...m, apiUser: us1[0] - us0[0], apiSys: us1[1] - us0[1] };
    };
    const r = await runLoad({ url: s.child.info.url, connections: 32, durationS: 60, maxRequests: n, ok: (c) => c === 302, sampleIntMs: 50, next: () => ({ method: 'GET', path: `/l/${codes[i++ % codes.length] ?? ''}`, headers }) });
    const cpu = meter();
    if (r.ok !== r.total || r.errors) throw new Error(`${s.name}: ${JSON.stringify(r.statusCodes)} errors ${r.errors}`);
    const c1 = await commandStats();
    const calls = c1.scripts - calls0.scripts;
    const waits = c1.waits - calls0.waits;
    return {
      rps: r.rps,
      cpu: { ...Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, (ms * 1000) / r.ok])), clicksPerCall: calls > 0 ? r.ok / calls : 0, clicksPerWait: waits > 0 ? r.ok / waits : 0, cmdsPerClick: (c1.all - calls0.all) / r.ok },
    };
  };
  for (const s of systems) await once(s, Math.min(requests, 20_000)); // warm-up
  for (let k = 0; k < rounds; k++) {
    const order = systems.map((_, j) => systems[(j + k) % systems.length]!);
    for (const s of order) {
      const r = await once(s, requests);
      results.set(s.name, [...(results.get(s.name) ?? []), r]);
      process.stdout.write(`round ${k} ${s.name.padEnd(5)} ${round(r.rps, 0)} req/s  µs/req ${Object.entries(r.cpu).map(([c, us]) => `${c} ${round(us, 1)}`).join(' · ')}\n`);
    }
  }
  for (const [name, rs] of results) {
    const cpu = (c: string): number => round(mean(rs.map((r) => r.cpu[c] ?? 0)), 1);
    process.stdout.write(`MEAN ${name.padEnd(5)} ${round(mean(rs.map((r) => r.rps)), 0)} req/s  µs/req api ${cpu('api')} (user ${cpu('apiUser')} · sys ${cpu('apiSys')}) · redis ${cpu('redis')} (masters ${cpu('masters')} · replicas ${cpu('replicas')}) · loadgen ${cpu('loadgen')} · sum ${round(cpu('api') + cpu('redis') + cpu('loadgen'), 1)} · clicks/call ${cpu('clicksPerCall')} · clicks/WAIT ${cpu('clicksPerWait')} · commands/click ${cpu('cmdsPerClick')}\n`);
  }
} finally {
  for (const c of started.length > 0 ? started : systems.map((s) => s.child)) await c.stop();
  await rt.close();
  await redis.destroy();
}
