/**
 * A loopback HTTP proxy in front of the simulators that can make one request reach the platform LATE:
 * the request is received at once, held for `ms`, then forwarded — whether or not the client is still
 * waiting (it may have timed out and moved on). That is what a platform does with a request that sat in
 * its load balancer or queue, or that a stalled sender put on the wire late: the client cannot know
 * whether, or when, its call takes effect. Or NEVER: a dropped request is read and its connection
 * reset, never forwarded (a sender that died before its request went out, as far as the platform
 * knows; the client sees a reset and cannot tell). Or its ANSWER late: the platform handled it at once,
 * and its answer is held (and may be rewritten) before it reaches the client. Every other request
 * passes straight through.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LateProxy {
  url: string;
  /** The next request that `match`es is forwarded `ms` after it arrived (once). */
  holdNext(match: (method: string, path: string) => boolean, ms: number): void;
  /**
   * The next request that `match`es waits until `release()` before it is forwarded (once); `arrived`
   * resolves when it came in.
   */
  gateNext(match: (method: string, path: string) => boolean): { arrived: Promise<void>; release: () => void };
  /**
   * The next request that `match`es is forwarded at once, and its answer is held until `release()`
   * (once), then passed on as `edit` rewrites its body (if given); `answered` resolves when the platform
   * answered it.
   */
  holdAnswerNext(match: (method: string, path: string) => boolean, edit?: (body: string) => string): { answered: Promise<void>; release: () => void };
  /** The next request that `match`es never reaches the platform: its connection is reset (once). */
  dropNext(match: (method: string, path: string) => boolean): void;
  /** The next request that `match`es never reaches the platform: the proxy answers it `status` with `body` (JSON) instead (once). */
  replyNext(match: (method: string, path: string) => boolean, status: number, body: unknown): void;
  /** Forgets the holds, gates and drops that no request has matched yet. */
  clearRules(): void;
  /** Requests that were dropped. */
  dropped: { method: string; path: string }[];
  /** Requests that were held, with when they arrived and when the platform answered them. */
  held: { method: string; path: string; arrivedAt: number; forwardedAt?: number; answeredAt?: number; status?: number }[];
  /** Resolves when no request is held or being forwarded. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startLateProxy(target: string): Promise<LateProxy> {
  type Gate = { arrive: () => void; opened: Promise<void> };
  const gate = (): Gate & { arrived: Promise<void>; release: () => void } => {
    let arrive!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((r) => (arrive = r));
    const opened = new Promise<void>((r) => (release = r));
    return { arrive, opened, arrived, release };
  };
  const rules: { match: (method: string, path: string) => boolean; ms: number; drop?: true; reply?: { status: number; body: unknown }; gate?: Gate; answer?: Gate & { edit?: ((body: string) => string) | undefined } }[] = [];
  const held: LateProxy['held'] = [];
  const dropped: LateProxy['dropped'] = [];
  let busy = 0;
  const server: Server = createServer((req, res) => {
    busy++;
    void (async () => {
      try {
        const method = req.method ?? 'GET';
        const path = req.url ?? '/';
        const body = await bodyOf(req);
        const i = rules.findIndex((r) => r.match(method, path.split('?')[0]!));
        let entry: LateProxy['held'][number] | undefined;
        let answer: (typeof rules)[number]['answer'];
        if (i >= 0 && rules[i]!.drop) {
          rules.splice(i, 1);
          dropped.push({ method, path });
          req.socket.destroy();
          return;
        }
        if (i >= 0 && rules[i]!.reply) {
          const reply = rules.splice(i, 1)[0]!.reply!;
          res.writeHead(reply.status, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify(reply.body));
          return;
        }
        if (i >= 0) {
          const [rule] = rules.splice(i, 1);
          entry = { method, path, arrivedAt: Date.now() };
          held.push(entry);
          answer = rule!.answer;
          if (!answer) {
            rule!.gate?.arrive();
            await (rule!.gate?.opened ?? sleep(rule!.ms));
          }
          entry.forwardedAt = Date.now();
        }
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) {
          if (v === undefined || k === 'host' || k === 'connection' || k === 'content-length' || k === 'transfer-encoding') continue;
          headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        }
        const r = await fetch(target + path, { method, headers, ...(body.length > 0 ? { body } : {}), redirect: 'manual' });
        let text = Buffer.from(await r.arrayBuffer());
        if (entry) {
          entry.answeredAt = Date.now();
          entry.status = r.status;
        }
        if (answer) {
          answer.arrive();
          await answer.opened;
          if (answer.edit) text = Buffer.from(answer.edit(text.toString('utf8')));
        }
        if (res.destroyed || req.socket.destroyed) return; // the client gave up; the platform acted anyway
        const out: Record<string, string> = {};
        r.headers.forEach((v, k) => {
          if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection' && k !== 'content-encoding') out[k] = v;
        });
        res.writeHead(r.status, out).end(text);
      } catch (err) {
        if (!res.headersSent && !res.destroyed) res.writeHead(502).end(String(err));
      } finally {
        busy--;
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    holdNext: (match, ms) => rules.push({ match, ms }),
    gateNext: (match) => {
      const g = gate();
      rules.push({ match, ms: 0, gate: g });
      return { arrived: g.arrived, release: g.release };
    },
    holdAnswerNext: (match, edit) => {
      const g = gate();
      rules.push({ match, ms: 0, answer: { ...g, edit } });
      return { answered: g.arrived, release: g.release };
    },
    dropNext: (match) => rules.push({ match, ms: 0, drop: true }),
    replyNext: (match, status, body) => rules.push({ match, ms: 0, reply: { status, body } }),
    clearRules: () => {
      rules.length = 0;
    },
    held,
    dropped,
    idle: async () => {
      while (busy > 0) await sleep(20);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The create request of each platform whose API makes a show (matched on the proxied path). */
export const CREATE_PATHS: Record<string, RegExp> = {
  youtube: /^\/youtube\/youtube\/v3\/liveBroadcasts$/,
  facebook: /^\/facebook\/v[\d.]+\/[^/]+\/live_videos$/,
  bambuser: /^\/bambuser\/v1\/shows$/,
};
