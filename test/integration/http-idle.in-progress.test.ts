/**
 * The API's idle timeout (HTTP_IDLE_TIMEOUT_MS) closes a connection that sends nothing, and is off
 * while a request is in progress (src/api/app.ts: its request listener switches it off): a handler
 * that waits longer than it is not cut, on a connection's first request (whose timeout the
 * connection listener set) and on a kept-alive connection's later one. The handler waits on Redis: a
 * redirect whose click batch Redis holds back (CLIENT PAUSE … WRITE) for longer than the idle timeout.
 * One Redis only (CLIENT PAUSE is one server's).
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import { testTopology } from '../helpers/redis-cluster.js';
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started), { env: { HTTP_IDLE_TIMEOUT_MS: '1000' } }, 60_000);

const IDLE_MS = 1000;
const HELD_MS = 1800;

function get(agent: http.Agent, url: string): Promise<{ status: number; reused: boolean; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, ms: Date.now() - t0 }));
    });
    req.on('error', reject);
  });
}

(testTopology() === 'single' ? test : test.skip)("a redirect that waits on Redis longer than the idle timeout is answered, as a connection's first request and as a later one", async () => {
  expect(svc.config.httpIdleTimeoutMs).toBe(IDLE_MS);
  const url = await svc.rt.links.ensure({ partnerId: 'idle', showId: 'show-idle', targetId: 'tt', platform: 'tiktok', productId: 'p1', url: 'https://shop.example.com/p1' });
  const pauser = new Redis(svc.redis.url, { lazyConnect: true });
  await pauser.connect();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    expect((await get(agent, url)).status).toBe(302); // the link read and cached (and this connection's first request)
    agent.destroy(); // a new connection for the first held request
    const fresh = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answers = [];
      for (let k = 0; k < 2; k++) {
        await pauser.client('PAUSE', HELD_MS, 'WRITE');
        answers.push(await get(fresh, url));
      }
      expect(answers.map((a) => ({ status: a.status, reused: a.reused, held: a.ms >= IDLE_MS + 300 }))).toEqual([
        { status: 302, reused: false, held: true },
        { status: 302, reused: true, held: true },
      ]);
    } finally {
      fresh.destroy();
    }
  } finally {
    agent.destroy();
    await pauser.client('UNPAUSE').catch(() => undefined);
    pauser.disconnect();
  }
});
