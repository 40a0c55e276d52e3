/**
 * A loopback TCP proxy in front of a redis-server that can hold one client's commands: the first chunk
 * a client sends that matches `from` is held, and so is everything that client sends after it (in
 * order), until a held chunk matches `until` (or `maxHoldMs` passes); then all of them go to Redis in
 * the order they were sent. Redis itself is not slowed: other clients' commands pass at once. That puts
 * a command that a client sent *after* another (a BullMQ lock renewal after a job's moveToDelayed) at
 * Redis after it without a race on the clock. Replies pass straight through.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface RedisHoldProxy {
  port: number;
  /**
   * Arms one hold (once). `held` resolves when a chunk matched `from`; `released` with why the hold
   * ended: `until` (a held chunk matched it) or `timeout`.
   */
  holdNext(from: (chunk: string) => boolean, until: (chunk: string) => boolean, maxHoldMs?: number): { held: Promise<void>; released: Promise<'until' | 'timeout'> };
  close(): Promise<void>;
}

export async function startRedisHoldProxy(redisPort: number): Promise<RedisHoldProxy> {
  type Rule = { from: (c: string) => boolean; until: (c: string) => boolean; maxHoldMs: number; held: () => void; released: (why: 'until' | 'timeout') => void };
  let armed: Rule | undefined;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let holding: { rule: Rule; chunks: Buffer[]; timer: NodeJS.Timeout } | undefined;
    const release = (why: 'until' | 'timeout'): void => {
      if (!holding) return;
      clearTimeout(holding.timer);
      for (const c of holding.chunks) upstream.write(c);
      const { rule } = holding;
      holding = undefined;
      rule.released(why);
    };
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (holding) {
        holding.chunks.push(chunk);
        if (holding.rule.until(text)) release('until');
        return;
      }
      if (armed && armed.from(text)) {
        const rule = armed;
        armed = undefined;
        holding = { rule, chunks: [chunk], timer: setTimeout(() => release('timeout'), rule.maxHoldMs) };
        rule.held();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      if (holding) clearTimeout(holding.timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    holdNext(from, until, maxHoldMs = 5_000) {
      let held!: () => void;
      let released!: (why: 'until' | 'timeout') => void;
      const h = new Promise<void>((r) => (held = r));
      const rel = new Promise<'until' | 'timeout'>((r) => (released = r));
      armed = { from, until, maxHoldMs, held, released };
      return { held: h, released: rel };
    },
    async close() {
      armed = undefined;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
