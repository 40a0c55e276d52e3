/**
 * The live stream at shutdown: preClose stops each open stream (its timer, and the write of a board
 * read in flight) before it ends it; it ended the response alone. A guard, not a reproduction: on
 * Node 20 a flushed response's 'finish' and 'close' (which stopped the stream) are emitted before a
 * read finishing at the end can go on, so the old code passes this too. The board's source is a
 * stand-in whose second read finishes as the stream is ended (no Redis: the routes alone, real HTTP).
 */
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Principal } from '../../src/store/apikey.repository.js';
import type { OpsService } from '../../src/api/ops/ops.service.js';
import type { SessionRepository } from '../../src/store/session.repository.js';
import { opsRoutes } from '../../src/api/routes/ops.routes.js';

const principal: Principal = { id: 'k1', role: 'viewer' } as Principal;
const boardOf = (title: string) => ({ generatedAt: new Date().toISOString(), partners: [], shows: [{ partnerId: 'p', partnerName: 'P', showId: 's', title, state: 'live', scheduledAt: new Date().toISOString(), mirrors: [] }], leftOff: 0 });

/**
 * Opens the stream of `app` (its routes on `ops`), reads up to its first board, closes the app once
 * `started` (the read or check in flight), and answers all the client got.
 */
async function shutDownDuringStream(app: ReturnType<typeof Fastify>, ops: OpsService, started: Promise<void>): Promise<string> {
  await app.register(opsRoutes, { ops, sessions: {} as SessionRepository, streamIntervalMs: 10 });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const res = await fetch(`${url}/v1/ops/stream`);
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while (!text.includes('event: board')) text += (await reader.read()).value ?? '';
  await started;
  await app.close();
  for (;;) {
    const r = await reader.read().catch(() => ({ done: true, value: undefined }));
    if (r.done) break;
    text += r.value ?? '';
  }
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return text;
}

test('shutdown ends a stream whose board read is in flight without writing after the end', async () => {
  let reads = 0;
  let finishRead: ((b: ReturnType<typeof boardOf>) => void) | undefined;
  let secondRead!: () => void;
  const secondReadStarted = new Promise<void>((r) => (secondRead = r));
  const ops = {
    board: async () => {
      reads += 1;
      if (reads === 1) return boardOf('first');
      secondRead();
      return new Promise<ReturnType<typeof boardOf>>((r) => (finishRead = r));
    },
  } as unknown as OpsService;
  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);
  app.decorate('requireRole', () => async (req: { principal: Principal | null }) => void (req.principal = principal));
  app.decorate('principalActive', async () => true);
  const errors: Error[] = [];
  const writesAfterEnd: string[] = [];
  app.addHook('onRequest', async (req, reply) => {
    const res = reply.raw;
    res.on('error', (err) => errors.push(err));
    if (req.url !== '/v1/ops/stream') return;
    // The read in flight finishes, with a changed board, as the stream is ended: its continuation
    // runs right after end() returns, before the response's 'close' event.
    const end = res.end.bind(res) as (...a: unknown[]) => typeof res;
    res.end = ((...a: unknown[]) => {
      const r = end(...a);
      finishRead?.(boardOf('second'));
      return r;
    }) as typeof res.end;
    // Writes after the end: Node drops them (and emits an error only while the socket lives).
    const write = res.write.bind(res) as (...a: unknown[]) => boolean;
    res.write = ((...a: unknown[]) => {
      if (res.writableEnded) writesAfterEnd.push(String(a[0]).slice(0, 40));
      return write(...a);
    }) as typeof res.write;
  });
  const text = await shutDownDuringStream(app, ops, secondReadStarted);
  expect(writesAfterEnd).toEqual([]);
  expect(errors).toEqual([]);
  expect(text).not.toContain('second');
});

test("shutdown during a key check that finds the key revoked: the stream is ended once, not again with the problem", async () => {
  let checks = 0;
  let finishCheck: ((active: boolean) => void) | undefined;
  let secondCheck!: () => void;
  const secondCheckStarted = new Promise<void>((r) => (secondCheck = r));
  const ops = { board: async () => boardOf('first') } as unknown as OpsService;
  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);
  app.decorate('requireRole', () => async (req: { principal: Principal | null }) => void (req.principal = principal));
  app.decorate('principalActive', async () => {
    checks += 1;
    if (checks === 1) return true;
    secondCheck();
    return new Promise<boolean>((r) => (finishCheck = r));
  });
  const endsAfterEnd: string[] = [];
  app.addHook('onRequest', async (req, reply) => {
    if (req.url !== '/v1/ops/stream') return;
    const res = reply.raw;
    res.on('error', () => undefined);
    // The check in flight finds the key revoked as preClose ends the stream.
    const end = res.end.bind(res) as (...a: unknown[]) => typeof res;
    res.end = ((...a: unknown[]) => {
      if (res.writableEnded) endsAfterEnd.push(String(a[0]).slice(0, 40));
      const r = end(...a);
      finishCheck?.(false);
      return r;
    }) as typeof res.end;
  });
  const text = await shutDownDuringStream(app, ops, secondCheckStarted);
  expect(endsAfterEnd).toEqual([]);
  expect(text).not.toContain('event: problem');
});
