/**
 * The pin sync's per-slot commands on a 3-master + 3-replica Redis Cluster (runs in
 * `npm run test:cluster`; skipped on one Redis, where both are inside the run's own Lua steps):
 * - the external-show index asserts waiting for one master go to it as one call (NODE_ASSERT_LUA), each
 *   with its own answer (how many orders wait); a slot map that names the wrong master, lost scripts and
 *   a master that refuses the call fall back to the ordinary command per assert;
 * - the limiter tokens taken alongside the intent starts of one moment go to the limiter's master as
 *   one call (NODE_ACQUIRE_LUA), in order, each with its own answer;
 * - runs started in one turn share one read of their target record (SyncService.targetRaw), and a run
 *   started after the record changed reads it again (disabled: nothing done).
 * Real redis-servers.
 */
import type { Cluster } from 'ioredis';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import { keySlot } from '../../src/store/slot.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { testTopology } from '../helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('pin sync reads and index asserts on a Redis Cluster', () => {
  let svc: TestService;
  let secret: string;
  const client = (): Cluster => svc.rt.redis as Cluster;
  beforeAll(async () => {
    svc = await startService(); // no workers: the test plays the runs
    secret = await createPartner(svc, 'cr');
    const r = await svc.api('/v1/partners/cr/targets?verify=false', {
      json: { id: 'cr-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
    for (let i = 0; i < 12; i++) {
      expect((await sendEvent(svc, 'cr', secret, showEvent('show.scheduled', sampleShow(`cr-s${i}`), '2026-11-24T17:00:00Z'))).status).toBe(202);
    }
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  });

  /** Sum of commands' calls over the masters (INFO commandstats). */
  async function calls(...cmds: string[]): Promise<number> {
    let n = 0;
    for (const node of client().nodes('master')) {
      const info = await node.info('commandstats');
      for (const cmd of cmds) n += Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    }
    return n;
  }

  test('index asserts of one moment go to their master as one call, each with its own count of waiting orders', async () => {
    const index = new ExternalShowIndex(client(), svc.rt.keys);
    const ids = Array.from({ length: 10 }, (_, i) => `ext-a${i}`);
    // orders waiting for some of them (attribution stored them before the entry existed)
    for (const [i, ext] of ids.entries()) for (let k = 0; k < i % 3; k++) await index.addWaiting('cr-yt', ext, `ref-${ext}-${k}`);
    const before = await calls('evalsha', 'eval');
    const got = await Promise.all(ids.map((ext, i) => index.assert('cr-yt', ext, `show-${i}`)));
    // a target's entries are all in its slot: one master, one call (its first on that connection: EVALSHA, NOSCRIPT, EVAL)
    expect((await calls('evalsha', 'eval')) - before).toBeLessThanOrEqual(2);
    expect(got).toEqual(ids.map((_, i) => i % 3));
    for (const [i, ext] of ids.entries()) expect(await index.get('cr-yt', ext)).toBe(`show-${i}`);
    // again (idempotent): same answers, one call
    const again = await calls('evalsha', 'eval');
    expect(await Promise.all(ids.map((ext, i) => index.assert('cr-yt', ext, `show-${i}`)))).toEqual(ids.map((_, i) => i % 3));
    expect((await calls('evalsha', 'eval')) - again).toBe(1);
  });

  test('a slot map that names the wrong master, lost scripts, a master that refuses the call: every assert still written and answered', async () => {
    const index = new ExternalShowIndex(client(), svc.rt.keys);
    const key = svc.rt.keys.targetExternalShow('cr-yt2', 'ext-w');
    const slot = keySlot(key);
    const slots = client().slots as string[][];
    const saved = slots[slot]!;
    slots[slot] = [client().nodes('master').map((m) => `${m.options.host}:${m.options.port}`).find((k) => k !== saved[0])!];
    try {
      await index.addWaiting('cr-yt2', 'ext-w', 'ref-1');
      expect(await index.assert('cr-yt2', 'ext-w', 'show-w')).toBe(1);
    } finally {
      slots[slot] = saved;
    }
    expect(await index.get('cr-yt2', 'ext-w')).toBe('show-w');

    for (const m of client().nodes('master')) await m.script('FLUSH');
    expect(await Promise.all(['x1', 'x2', 'x3'].map((ext) => index.assert('cr-yt2', ext, `show-${ext}`)))).toEqual([0, 0, 0]);
    expect(await index.get('cr-yt2', 'x2')).toBe('show-x2');

    // the entries' master refuses the call as a whole: each assert goes through the Cluster client
    const master = client().nodes('master').find((m) => `${m.options.host}:${m.options.port}` === client().slots[slot]![0])!;
    const sendCommand = master.sendCommand.bind(master);
    let refused = 0;
    master.sendCommand = ((cmd: { name: string; reject: (e: Error) => void }) => {
      // evalOnNode's EVALSHA (its wire form prebuilt: no args of its own); ioredis' own commands pass
      if (cmd.name === 'evalsha' && (cmd as unknown as { args: unknown[] }).args.length === 0) {
        refused++;
        cmd.reject(new Error('ERR Error compiling script (new function): unknown flag'));
        return undefined;
      }
      return sendCommand(cmd as never);
    }) as typeof master.sendCommand;
    try {
      const fresh = new ExternalShowIndex(client(), svc.rt.keys);
      expect(await Promise.all(['y1', 'y2'].map((ext) => fresh.assert('cr-yt2', ext, `show-${ext}`)))).toEqual([0, 0]);
      expect(refused).toBe(1);
    } finally {
      master.sendCommand = sendCommand;
    }
    expect(await index.get('cr-yt2', 'y1')).toBe('show-y1');
  });

  test('limiter tokens taken alongside the starts of one moment go to the limiter\'s master as one call, in order, each with its own answer; a stale slot map still takes it', async () => {
    const limiter = new RedisRateLimiter(client(), svc.rt.keys, 'acct-cr-1', { requests: 3, windowMs: 60_000 });
    const before = await calls('evalsha', 'eval');
    const takes = Array.from({ length: 5 }, () => limiter.take());
    const waits = await Promise.all(takes.map((t) => t.wait));
    expect((await calls('evalsha', 'eval')) - before).toBeLessThanOrEqual(2); // (first on that connection: EVALSHA, NOSCRIPT, EVAL)
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    expect(waits[3]).toBeGreaterThan(0);
    expect(waits[4]).toBeGreaterThan(0);
    await takes[0]!.giveBack();
    const windowKey = svc.rt.keys.targetLimit('acct-cr-1', 'window');
    expect(await client().zcard(windowKey)).toBe(2);
    // a slot map that names the wrong master: the token is taken through the Cluster client, once
    const slot = keySlot(windowKey);
    const slots = client().slots as string[][];
    const saved = slots[slot]!;
    slots[slot] = [client().nodes('master').map((m) => `${m.options.host}:${m.options.port}`).find((k) => k !== saved[0])!];
    try {
      expect(await limiter.take().wait).toBe(0);
    } finally {
      slots[slot] = saved;
    }
    expect(await client().zcard(windowKey)).toBe(3);
    expect(await limiter.take().wait).toBeGreaterThan(0);
  });

  test('runs started in one turn share one read of their target record; a run after the record changed reads it again', async () => {
    const { key, field } = svc.rt.partners.targetField('cr', 'cr-yt');
    // the HGETs of the target record a run's first read sends through the service's client (SyncService.targetRaw;
    // not its saves' target guard reads, which check the record again before each save)
    let reads = 0;
    let firstRead = false;
    const c = client();
    const hget = c.hget.bind(c);
    c.hget = ((k: string, f: string) => {
      if (firstRead && k === key && f === field) reads++;
      return hget(k, f);
    }) as typeof c.hget;
    const sync = svc.rt.syncService as unknown as { targetRaw: (p: string, t: string) => Promise<string | null> };
    const targetRaw = sync.targetRaw.bind(sync);
    sync.targetRaw = (p: string, t: string) => {
      firstRead = true;
      try {
        return targetRaw(p, t);
      } finally {
        firstRead = false;
      }
    };
    const run = (showId: string) => svc.rt.syncService.sync({ partnerId: 'cr', showId, targetId: 'cr-yt' });
    try {
      const outcomes = await Promise.all(['cr-s0', 'cr-s1', 'cr-s2', 'cr-s3', 'cr-s4'].map(run));
      for (const o of outcomes) expect(o).toMatchObject({ kind: 'delay' }); // enabled: the refused platform call is retried later
      expect(reads).toBe(1);
      // one after the other: a read each
      await run('cr-s8');
      await run('cr-s9');
      expect(reads).toBe(3);
    } finally {
      c.hget = hget;
      sync.targetRaw = targetRaw;
    }

    const patch = async (body: unknown): Promise<void> => {
      const r = await svc.api('/v1/partners/cr/targets/cr-yt?verify=false', { method: 'PATCH', json: body });
      expect(r.status).toBe(200);
    };
    await patch({ enabled: false });
    expect(await Promise.all(['cr-s5', 'cr-s6'].map(run))).toEqual([
      { kind: 'done', state: 'none' },
      { kind: 'done', state: 'none' },
    ]);
    await patch({ enabled: true });
    expect(await run('cr-s7')).toMatchObject({ kind: 'delay' });
  });
});
