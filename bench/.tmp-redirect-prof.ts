import { buildApp } from '../src/api/app.js';
import { loadConfig } from '../src/config/config.js';
import { createRuntime } from '../src/main/runtime.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { serviceEnv } from './lib/service.js';
import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function get(u: string, headers: Record<string,string>): Promise<number> { return new Promise((res, rej) => { const r = http.get(u, { agent, headers }, (m) => { m.resume(); m.on('end', () => res(m.statusCode ?? 0)); }); r.on('error', rej); }); }

const redis = await startRedis();
const se = serviceEnv(redis.url);
const rt = await createRuntime(loadConfig(se.env as NodeJS.ProcessEnv), 'api');
const app = await buildApp(rt, { logger: false, dashboard: false });
const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
const codes: string[] = [];
for (let i = 0; i < 200; i++) {
  const u = await rt.links.ensure({ partnerId: 'bench', showId: `s${i % 50}`, targetId: 'yt1', platform: 'youtube', productId: `p${i}`, url: `https://shop.example.com/products/p${i}?ref=live` });
  codes.push(u.slice(u.lastIndexOf('/') + 1));
}
const N = Number(process.env['N'] ?? 20000);
const headers = { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', accept: 'text/html' };
let i = 0;
const run = async (n: number): Promise<void> => {
  const worker = async (): Promise<void> => {
    while (i < n) {
      const c = codes[i++ % codes.length]!;
      const st = await get(`${url}/l/${c}`, headers);
      if (st !== 302) throw new Error(String(st));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
};
await run(2000);
i = 0;
const c0 = process.cpuUsage();
const t0 = Date.now();
await run(N);
const c = process.cpuUsage(c0);
process.stdout.write(`${N} redirects, process CPU (server+client) ${((c.user + c.system) / 1000 / N).toFixed(4)} ms/req, ${Date.now() - t0} ms\n`);
await app.close();
await rt.close();
await redis.destroy();
process.exit(0);
