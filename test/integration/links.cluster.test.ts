/**
 * The redirect's clicks on a 3-master + 3-replica Redis Cluster (runs in `npm run test:cluster`):
 * an API process writes its clicks on one master (a click id whose key is on that home master, one
 * call and one WAIT per batch; products read on their shows' masters), every counted click is stored and held by a replica (WAIT) before its 302, a stale slot map
 * and lost scripts fall back to the ordinary path, and frozen replicas turn the redirect into a 503.
 * Real redis-servers, real HTTP.
 */
import type { Cluster } from 'ioredis';
import type { LinkRecord } from '../../src/links/link.service.js';
import { keySlot } from '../../src/store/slot.js';
import { startCluster, testTopology, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('tracked links on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let svc: TestService;
  const link = { partnerId: 'lc', showId: 'show-c', targetId: 'yt-c', platform: 'youtube' as const, productId: 'p1', url: 'https://shop.example.com/products/p1' };
  let trackedUrl: string;

  beforeAll(async () => {
    cluster = await startCluster();
    // WAITs bounded to 1 s (it was 300 ms): every click of a burst must be held by a replica within it, and
    // a replica process of a loaded machine may answer late; frozen replicas still give a 503 after it.
    svc = await startService({ redis: cluster, env: { REDIS_WAIT_TIMEOUT_MS: '1000' } });
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

  /** A command's calls per master (INFO commandstats), by the slot map's node key. */
  async function callsBy(cmd: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const node of client().nodes('master')) {
      const m = new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(await node.info('commandstats'));
      out.set(`${node.options.host}:${node.options.port}`, m ? Number(m[1]) : 0);
    }
    return out;
  }
  const delta = (a: Map<string, number>, b: Map<string, number>): Map<string, number> => new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)]));

  test('clicks of one moment are all written on one master (the home master): one call and one WAIT per batch, products read on their shows\' masters, every click stored', async () => {
    // shows on every master (two each at least)
    const shows: string[] = [];
    const perMaster = new Map<string, number>();
    for (let i = 0; shows.length < 9 && i < 1000; i++) {
      const m = masterOf(svc.rt.keys.desired('lc', `burst-${i}`))!;
      if ((perMaster.get(m) ?? 0) >= 3) continue;
      perMaster.set(m, (perMaster.get(m) ?? 0) + 1);
      shows.push(`burst-${i}`);
    }
    expect(perMaster.size).toBe(3);
    const urls = await Promise.all(Array.from({ length: 150 }, (_, i) => svc.rt.links.ensure({ ...link, showId: shows[i % shows.length]!, productId: `bp${i}`, url: `https://shop.example.com/bp${i}` })));
    const records = await Promise.all(urls.map((u) => svc.rt.links.find(u.split('/l/')[1]!)));
    // scripts loaded on every master (the first batch a master gets is a NOSCRIPT, an EVAL and a second WAIT)
    await Promise.all(records.slice(0, 30).map((l) => svc.rt.links.click(l!, '198.51.100.1', true)));
    const [evalsha0, set0, wait0] = [await callsBy('evalsha'), await callsBy('set'), await callsBy('wait')];
    const results = await Promise.all(records.map((l, i) => svc.rt.links.click(l!, `198.51.100.${i % 250}`, true)));
    const [evalsha, set, wait] = [delta(evalsha0, await callsBy('evalsha')), delta(set0, await callsBy('set')), delta(wait0, await callsBy('wait'))];
    const homes = new Set(results.map((r) => masterOf(svc.rt.keys.click(r.click!.id))));
    expect(homes.size).toBe(1); // was one master per show's master: 3
    const home = [...homes][0]!;
    // The home master: every SET (inside its scripts: INFO counts those too), one WAIT behind each of its
    // batches (3 batches of up to 64 clicks, a few more when the burst leaves in more than one turn).
    expect(set.get(home)).toBe(150);
    expect(wait.get(home)).toBe(evalsha.get(home));
    expect(wait.get(home)).toBeLessThanOrEqual(6);
    for (const [node, n] of evalsha) {
      if (node === home) continue;
      expect(set.get(node)).toBe(0); // the other masters only read products: nothing to WAIT for
      expect(wait.get(node)).toBe(0);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(6);
    }
    for (const [i, r] of results.entries()) {
      expect(r.replicated).toBe(true);
      expect(new URL(r.location).pathname).toBe(`/bp${i}`);
      expect(await svc.rt.links.findClick(r.click!.id)).toEqual(r.click);
    }
  });

  test('a click goes to its product\'s current URL whichever master its show is on (read with the click, or apart on the show\'s master)', async () => {
    const secret = await createPartner(svc, 'lcp');
    const home = (): string | undefined => (svc.rt.links as unknown as { home?: { nodeKey: string } }).home?.nodeKey;
    // one show per master
    const shows = new Map<string, string>();
    for (let i = 0; shows.size < 3 && i < 1000; i++) {
      const m = masterOf(svc.rt.keys.desired('lcp', `cur-${i}`))!;
      if (!shows.has(m)) shows.set(m, `cur-${i}`);
    }
    expect(shows.size).toBe(3);
    const p1 = { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' } };
    const go = async (l: LinkRecord): Promise<string> => {
      const r = await svc.rt.links.click(l, '203.0.113.5', true);
      expect(r.replicated).toBe(true);
      expect(await svc.rt.links.findClick(r.click!.id)).toEqual(r.click);
      expect(masterOf(svc.rt.keys.click(r.click!.id))).toBe(home());
      const u = new URL(r.location);
      return u.origin + u.pathname;
    };
    let split = 0;
    for (const [master, showId] of shows) {
      const show = sampleShow(showId, { pinnedProductIds: ['p1'] });
      expect((await sendEvent(svc, 'lcp', secret, showEvent('show.scheduled', show, '2026-11-24T18:00:00Z'))).status).toBe(202);
      const l = { ...link, partnerId: 'lcp', showId, code: '' };
      l.code = (await svc.rt.links.ensure({ ...l, url: 'https://fallback.example.com/p1' })).split('/l/')[1]!;
      const record = { ...(await svc.rt.links.find(l.code))! };
      expect(await go(record)).toBe('https://shop.example.com/p1');
      if (master !== home()) split++;
      const updated = { type: 'product.updated', occurredAt: '2026-11-24T18:10:00Z', data: { showId, product: { ...p1, url: `https://shop.example.com/p1-${showId}` } } };
      expect((await sendEvent(svc, 'lcp', secret, updated)).status).toBe(202);
      expect(await go(record)).toBe(`https://shop.example.com/p1-${showId}`);
      expect(await go(record)).toBe(`https://shop.example.com/p1-${showId}`); // the held product is current ("1")
      const stale = { type: 'product.updated', occurredAt: '2026-11-24T18:05:00Z', data: { showId, product: { ...p1, url: 'https://shop.example.com/p1-stale' } } };
      expect((await sendEvent(svc, 'lcp', secret, stale)).status).toBe(202);
      expect(await go(record)).toBe(`https://shop.example.com/p1-${showId}`);
    }
    expect(split).toBe(2); // two of the three shows are on other masters than the clicks
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

  test('a slot map that sends a click\'s product read to a master not serving its show: the click is stored once, same id, and its product read again through the Cluster client', async () => {
    const record = (await svc.rt.links.find(trackedUrl.split('/l/')[1]!))!;
    await svc.rt.links.click(record, '192.0.2.1', true); // scripts loaded again, the link's click path warm
    const links = svc.rt.links as unknown as { home?: { nodeKey: string; batcher: unknown }; nodeBatcher(c: Cluster, k: string): unknown };
    const slot = keySlot(svc.rt.keys.desired('lc', 'show-c'));
    const right = client().slots[slot]!;
    const wrong = client().nodes('master').map((n) => `${n.options.host}:${n.options.port}`).find((k) => k !== right[0])!;
    // the click written on the wrong master (the read in its script fails after the SET), then on the right one (the read apart fails)
    for (const home of [wrong, right[0]!]) {
      links.home = { nodeKey: home, batcher: links.nodeBatcher(client(), home) };
      const before = await clickKeys();
      client().slots[slot] = [wrong];
      let r;
      try {
        r = await svc.rt.links.click(record, '192.0.2.9', true);
      } finally {
        client().slots[slot] = right; // (a MOVED may have put it back already)
      }
      expect(masterOf(svc.rt.keys.click(r.click!.id))).toBe(home);
      expect(await svc.rt.links.findClick(r.click!.id)).toEqual(r.click);
      expect(new URL(r.location).pathname).toBe('/products/p1');
      // wrong master: written again through the cluster client, so the API's ack WAITs on every master
      // before the 302; right one: the batch's WAIT holds it
      expect(r.replicated).toBe(home === wrong ? undefined : true);
      // One click, one record: the script's SET ran before its read failed (no rollback), so only the
      // same id keeps the ordinary path's write from being a second record.
      expect(await clickKeys()).toBe(before + 1);
    }
  });

  test('a home master that no longer serves slots (its connection alive): the click goes the ordinary way, and the next one picks a home master again', async () => {
    const record = (await svc.rt.links.find(trackedUrl.split('/l/')[1]!))!;
    await svc.rt.links.click(record, '192.0.2.1', true);
    const links = svc.rt.links as unknown as { home?: { nodeKey: string; batcher: unknown }; nodeBatchers: Map<string, unknown> };
    // as after a manual failover: the slot map no longer names the home master, its connection still lives
    const live = links.nodeBatchers.get(links.home!.nodeKey)!;
    links.nodeBatchers.set('192.0.2.254:1', live);
    links.home = { nodeKey: '192.0.2.254:1', batcher: (live as { batcher: unknown }).batcher };
    try {
      const first = await svc.rt.links.click(record, '192.0.2.2', true);
      expect(first.replicated).toBeUndefined(); // the ordinary path (the API's WAIT on every master)
      expect(await svc.rt.links.findClick(first.click!.id)).toEqual(first.click);
      const next = await svc.rt.links.click(record, '192.0.2.3', true);
      expect(next.replicated).toBe(true); // batched again, on a master the slot map names
      expect(masterOf(svc.rt.keys.click(next.click!.id))).toBe(links.home!.nodeKey);
    } finally {
      links.nodeBatchers.delete('192.0.2.254:1');
    }
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

  test('link records read at one moment go per master (one call each, not a GET each through the Cluster client), each with its own record; a stale slot map still finds them', async () => {
    const urls = await Promise.all(Array.from({ length: 40 }, (_, i) => svc.rt.links.ensure({ ...link, showId: `read-burst-${i % 7}`, productId: `rb${i}`, url: `https://shop.example.com/rb${i}` })));
    const codes = urls.map((u) => u.split('/l/')[1]!);
    expect(new Set(codes.map((c) => masterOf(svc.rt.keys.link(c)))).size).toBe(3);
    const s0 = (await calls('evalsha')) + (await calls('eval'));
    // none of them in this process' link cache yet (ensure() does not add them): each is read from Redis
    const found = await Promise.all([...codes.map((c) => svc.rt.links.find(c)), svc.rt.links.find('unknownCode123')]);
    found.slice(0, -1).forEach((l, i) => expect(l).toMatchObject({ code: codes[i], showId: `read-burst-${i % 7}`, productId: `rb${i}`, url: `https://shop.example.com/rb${i}` }));
    expect(found.at(-1)).toBeNull();
    // one call per master's batch (a few more if the reads leave in more than one turn); was none: 41 GETs through the client
    const scripts = (await calls('evalsha')) + (await calls('eval')) - s0;
    expect(scripts).toBeGreaterThanOrEqual(3);
    expect(scripts).toBeLessThanOrEqual(3 * 2);
    // the slot map names the wrong master for one link: read again through the Cluster client
    const cache = (svc.rt.links as unknown as { cache: Map<string, unknown> }).cache;
    cache.delete(codes[0]!);
    const key = svc.rt.keys.link(codes[0]!);
    const slots = client().slots as string[][];
    const saved = slots[keySlot(key)]!;
    slots[keySlot(key)] = [client().nodes('master').map((m) => `${m.options.host}:${m.options.port}`).find((k) => k !== saved[0])!];
    try {
      expect((await svc.rt.links.find(codes[0]!))?.productId).toBe('rb0');
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
