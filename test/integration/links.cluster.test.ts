/**
 * The redirect's clicks on a 3-master + 3-replica Redis Cluster (runs in `npm run test:cluster`):
 * clicks are batched per master (a click id whose key is on its show's master, one call per master's
 * batch), every counted click is stored and held by a replica (WAIT) before its 302, a stale slot map
 * and lost scripts fall back to the ordinary path, and frozen replicas turn the redirect into a 503.
 * Real redis-servers, real HTTP.
 */
import type { Cluster } from 'ioredis';
import { keySlot } from '../../src/store/slot.js';
import { startCluster, testTopology, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startService, type TestService } from '../helpers/service.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('tracked links on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let svc: TestService;
  const link = { partnerId: 'lc', showId: 'show-c', targetId: 'yt-c', platform: 'youtube' as const, productId: 'p1', url: 'https://shop.example.com/products/p1' };
  let trackedUrl: string;

  beforeAll(async () => {
    cluster = await startCluster();
    svc = await startService({ redis: cluster, env: { REDIS_WAIT_TIMEOUT_MS: '300' } });
    trackedUrl = await svc.rt.links.ensure(link);
  });
  afterAll(async () => {
    await svc?.close();
    await cluster?.destroy();
  });

  const client = (): Cluster => svc.rt.redis as Cluster;
  const masterOf = (key: string): string | undefined => client().slots[keySlot(key)]?.[0];
  const hit = (url: string): Promise<Response> => fetch(url, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0' } });
  const sclid = (r: Response): string => new URL(r.headers.get('location')!).searchParams.get('sclid')!;

  /** Sum of a command's calls over the masters (INFO commandstats). */
  async function calls(cmd: string): Promise<number> {
    let n = 0;
    for (const node of client().nodes('master')) {
      const m = new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(await node.info('commandstats'));
      n += m ? Number(m[1]) : 0;
    }
    return n;
  }

  test('keySlot agrees with the cluster (CLUSTER KEYSLOT)', async () => {
    for (const key of ['foo', 'somekey', svc.rt.keys.click('clk_01JDX0000000000000000000AB'), svc.rt.keys.desired('lc', 'show-c'), 'a{}b', 'x{a}{b}', '{}{b}', 'foo{bar', '{{x}}']) {
      expect(keySlot(key)).toBe(await client().cluster('KEYSLOT', key));
    }
  });

  test('clicks of one moment go per master: each click key is on its show\'s master, one call per batch, every click stored', async () => {
    const urls = await Promise.all(Array.from({ length: 150 }, (_, i) => svc.rt.links.ensure({ ...link, showId: `burst-${i % 7}`, productId: `bp${i}`, url: `https://shop.example.com/bp${i}` })));
    const records = await Promise.all(urls.map((u) => svc.rt.links.find(u.split('/l/')[1]!)));
    // scripts loaded on every master (the first batch a master gets is a NOSCRIPT, an EVAL and a second WAIT)
    await Promise.all(records.slice(0, 30).map((l) => svc.rt.links.click(l!, '198.51.100.1', true)));
    const [evalsha0, set0, wait0] = [await calls('evalsha'), await calls('set'), await calls('wait')];
    const results = await Promise.all(records.map((l, i) => svc.rt.links.click(l!, `198.51.100.${i % 250}`, true)));
    const [evalsha1, set1, wait1] = [await calls('evalsha'), await calls('set'), await calls('wait')];
    // one call per master's batch (3 masters; a batch holds up to 64), not a SET and a read per click,
    // and one WAIT behind each (a click's result comes once a replica holds it)
    expect(evalsha1 - evalsha0).toBeLessThanOrEqual(12);
    expect(set1 - set0).toBe(150); // the SETs inside the scripts (INFO counts those too), nothing else
    expect(wait1 - wait0).toBe(evalsha1 - evalsha0);
    for (const [i, r] of results.entries()) {
      const key = svc.rt.keys.click(r.click!.id);
      expect(masterOf(key)).toBe(masterOf(svc.rt.keys.desired('lc', `burst-${i % 7}`)));
      expect(r.replicated).toBe(true);
      expect(await svc.rt.links.findClick(r.click!.id)).toEqual(r.click);
    }
  });

  test('a click after the masters lost their scripts is still stored before its 302', async () => {
    for (const node of client().nodes('master')) await node.script('FLUSH');
    for (let k = 0; k < 2; k++) {
      const r = await hit(trackedUrl);
      expect(r.status).toBe(302);
      expect(await svc.rt.redis.get(svc.rt.keys.click(sclid(r)))).toContain('"productId":"p1"');
    }
  });

  test('lost scripts and frozen replicas: the EVAL fallback is acknowledged only once a replica holds the click (503, no location)', async () => {
    expect((await hit(trackedUrl)).status).toBe(302);
    for (const node of client().nodes('master')) await node.script('FLUSH');
    const { replicas } = await cluster.roles();
    for (const p of replicas) cluster.signalNode(p, 'SIGSTOP');
    let r: Response;
    try {
      r = await hit(trackedUrl);
    } finally {
      for (const p of replicas) cluster.signalNode(p, 'SIGCONT');
    }
    expect(r.status).toBe(503);
    expect(r.headers.get('location')).toBeNull();
  });

  /** Click records on the masters (a click key is `{c:<id>}`-tagged). */
  async function clickKeys(): Promise<number> {
    let n = 0;
    for (const node of client().nodes('master')) n += (await node.keys('*{c:*')).length;
    return n;
  }

  test('a slot map that sends a click to a master not serving its show: the click goes again the ordinary way, same id, stored', async () => {
    const record = (await svc.rt.links.find(trackedUrl.split('/l/')[1]!))!;
    await svc.rt.links.click(record, '192.0.2.1', true); // scripts loaded again, the link's click path warm
    const before = await clickKeys();
    const slot = keySlot(svc.rt.keys.desired('lc', 'show-c'));
    const right = client().slots[slot]!;
    const wrong = client().nodes('master').map((n) => `${n.options.host}:${n.options.port}`).find((k) => k !== right[0])!;
    client().slots[slot] = [wrong];
    let r;
    try {
      r = await svc.rt.links.click(record, '192.0.2.9', true);
    } finally {
      client().slots[slot] = right; // (a MOVED may have put it back already)
    }
    expect(await svc.rt.links.findClick(r.click!.id)).toEqual(r.click);
    expect(r.replicated).toBeUndefined(); // written through the cluster client: the API's ack WAITs on every master before the 302
    // One click, one record: the script's SET ran before its read failed (no rollback), so only the
    // same id keeps the ordinary path's write from being a second record.
    expect(await clickKeys()).toBe(before + 1);
  });

  test('with the replicas frozen a click is not acknowledged: 503 problem+json, no location', async () => {
    await hit(trackedUrl); // the link in this process' cache: the usual (batched) path
    const { replicas } = await cluster.roles();
    const links = svc.rt.links as unknown as { nodeClicksOn: boolean };
    const answers: Response[] = [];
    for (const p of replicas) cluster.signalNode(p, 'SIGSTOP');
    try {
      answers.push(await hit(trackedUrl)); // the batch's own WAIT fails
      links.nodeClicksOn = false; // the ordinary path: the API's WAIT before the 302 fails
      answers.push(await hit(trackedUrl));
    } finally {
      links.nodeClicksOn = true;
      for (const p of replicas) cluster.signalNode(p, 'SIGCONT');
    }
    for (const r of answers) {
      expect(r.status).toBe(503);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(r.headers.get('location')).toBeNull();
    }
  });

  test('an HTTP redirect WAITs once, behind its batch: no second WAIT before the 302', async () => {
    await hit(trackedUrl); // the link in this process' cache
    const w0 = await calls('wait');
    for (let k = 0; k < 3; k++) expect((await hit(trackedUrl)).status).toBe(302);
    expect((await calls('wait')) - w0).toBe(3); // the old way: 6 per redirect (3 masters × 2 connections)
  });

  test('click lookups of one moment go per master (one call each), find their clicks, and a stale slot map still finds them', async () => {
    const made = await Promise.all(
      Array.from({ length: 30 }, (_, i) => svc.rt.links.recordClick({ ...link, code: 'lkp', showId: `show-l${i}` }, '10.0.0.1')),
    );
    const masters = new Set(made.map((c) => masterOf(svc.rt.keys.click(c.id))));
    expect(masters.size).toBe(3);
    const g0 = await calls('get');
    const s0 = (await calls('evalsha')) + (await calls('eval'));
    // (the INFO reads above are done before the lookups start: none of them is a script call)
    const found = await Promise.all([...made.map((c) => svc.rt.links.findClick(c.id)), svc.rt.links.findClick('clk_unknown')]);
    expect(found.slice(0, -1).map((c) => [c?.id, c?.showId])).toEqual(made.map((c) => [c.id, c.showId]));
    expect(found.at(-1)).toBeNull();
    // (INFO counts the GETs the script runs too: 31 either way) one call per master's batch; was a GET each through the client, no script
    expect((await calls('get')) - g0).toBe(31);
    const scripts = (await calls('evalsha')) + (await calls('eval')) - s0;
    expect(scripts).toBeGreaterThanOrEqual(3);
    expect(scripts).toBeLessThanOrEqual(3 * 2);
    // the slot map names the wrong master for one click: read again through the Cluster client
    const key = svc.rt.keys.click(made[0]!.id);
    const slots = client().slots as string[][];
    const saved = slots[keySlot(key)]!;
    slots[keySlot(key)] = [client().nodes('master').map((m) => `${m.options.host}:${m.options.port}`).find((k) => k !== saved[0])!];
    try {
      expect((await svc.rt.links.findClick(made[0]!.id))?.id).toBe(made[0]!.id);
    } finally {
      slots[keySlot(key)] = saved;
    }
  });

  test('the first click of a link in this process (link read from Redis) WAITs once too, behind its batch', async () => {
    const cache = (svc.rt.links as unknown as { cache: Map<string, unknown> }).cache;
    for (let k = 0; k < 3; k++) {
      cache.clear(); // as when the link's cache entry expired (LINK_CACHE_MS): the route reads it again
      const w0 = await calls('wait');
      const r = await hit(trackedUrl);
      expect(r.status).toBe(302);
      expect(await client().exists(svc.rt.keys.click(sclid(r)))).toBe(1);
      expect((await calls('wait')) - w0).toBe(1); // was 7: the batch's WAIT, then the onSend hook's 6
    }
  });

});
