/**
 * Relay review R3: one RTMP connection publishes show A with A's key, then sends a second
 * `publish` command with show B's key. The edge answers NetStream.Publish.BadConnection
 * (the connection keeps publishing A). The edge used to act on node-media-server's prePublish (emitted
 * before it refuses), so it recorded the connection as B's source and overwrote its session → show
 * entry (A forgotten): then show A ended and the publish was not cut off, and when the connection
 * closed A's `relay-source` was never cleared. Only an accepted publish (postPublish) counts now.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { scheduledIngest, viewOf } from '../helpers/relay.js';
import { testPort } from '../helpers/ports.js';
import { EDGE_PLAY_LABEL, edgePlayToken, startIngestEdge } from '../../src/relay/ingest.edge.js';
import { logSink } from '../helpers/log-sink.js';
import { AMF_NULL, amfNumber, amfString, chunk, connectOk, handshaken, streamOn, type Client } from '../helpers/rtmp-client.js';
import { createConnection, type Socket } from 'node:net';

const require = createRequire(import.meta.url);
interface NmsClient {
  info: { stream: string };
  on(ev: string, cb: (info?: { code?: string }) => void): void;
  startPush(): void;
  rtmpSendPublish(): void;
  socket: { destroyed: boolean; destroy(): void; once(ev: string, cb: () => void): void };
}
const NodeRtmpClient = require('node-media-server/src/node_rtmp_client.js') as new (url: string) => NmsClient;

let svc: TestService;
const P = 'atk-2pub';

beforeAll(async () => {
  svc = await startService({ workers: true, edge: true, env: { SECRETS_KEY: randomBytes(32).toString('base64'), KEY_PREFIX: 'r2' + randomBytes(2).toString('hex'), LOG_LEVEL: 'silent' } });
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

test('a second publish command on a publishing connection neither keeps an ended show on air nor leaves a stale source', async () => {
  const secret = await createPartner(svc, P);
  for (const id of ['a', 'b']) {
    const r = await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(id, { state: 'scheduled' }), new Date().toISOString()));
    expect(r.status).toBe(202);
  }
  const a = await waitFor(async () => (await viewOf(svc, P, 'a')).show.ingest.streamKey ? viewOf(svc, P, 'a') : undefined, 20_000);
  const b = await waitFor(async () => (await viewOf(svc, P, 'b')).show.ingest.streamKey ? viewOf(svc, P, 'b') : undefined, 20_000);
  const client = new NodeRtmpClient(`${a.show.ingest.url}/${a.show.ingest.streamKey}`);
  const codes: string[] = [];
  let closed = false;
  client.on('status', (info) => {
    if (info?.code) codes.push(info.code);
  });
  client.startPush();
  client.socket.once('close', () => (closed = true));
  try {
    await waitFor(async () => codes.includes('NetStream.Publish.Start'), 10_000);
    await waitFor(async () => (await svc.rt.relay.source(P, 'a')) !== null, 10_000);
    client.info.stream = b.show.ingest.streamKey!;
    client.rtmpSendPublish();
    await waitFor(async () => codes.includes('NetStream.Publish.BadConnection'), 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    // The refused second publish must not make B look published.
    const bSource = await svc.rt.relay.source(P, 'b');

    // Show A ends: its publish is cut off (the edge checks every 2 s)…
    const r = await sendEvent(svc, P, secret, showEvent('show.ended', sampleShow('a', { state: 'ended' }), new Date().toISOString()));
    expect(r.status).toBe(202);
    const cutOff = await waitFor(async () => closed, 8_000).then(() => true, () => false);
    // …and once the connection is gone, A has no source left behind.
    if (!client.socket.destroyed) client.socket.destroy();
    await new Promise((r2) => setTimeout(r2, 1000));
    const aSourceAfterClose = await svc.rt.relay.source(P, 'a');
    expect({ bSource, cutOff, aSourceAfterClose }).toEqual({ bSource: null, cutOff: true, aSourceAfterClose: null });
  } finally {
    if (!client.socket.destroyed) client.socket.destroy();
  }
}, 60_000);

/**
 * Found running the relay by hand: a second encoder publishing the show's key while the first one
 * publishes is refused by node-media-server (NetStream.Publish.BadName) with nothing in the service's
 * log, so ops looking for why a partner's (backup) encoder cannot connect found no trace. The refusal
 * is logged now, naming the show, never the key; the first publish goes on.
 */
test('a second encoder on a show that is being published is refused, and the refusal is logged with the show, not the key', async () => {
  const { key } = await scheduledIngest(svc, 'atk-2enc', await createPartner(svc, 'atk-2enc'), 'c');
  const { log, lines } = logSink<{ msg: string; showId?: string; why?: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys: svc.rt.box.derivedKeys(EDGE_PLAY_LABEL) });
  const publish = chunk(20, Buffer.concat([amfString('publish'), amfNumber(3), AMF_NULL, amfString(key)]), 1);
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await streamOn(edge.port);
      clients.push(c);
      let closed = false;
      void c.closed.then(() => (closed = true));
      c.socket.write(publish);
      // The second is refused: node-media-server closes the connection (its BadName may not get out first).
      await waitFor(async () => (i === 0 ? c.received().includes('NetStream.Publish.Start') : closed), 10_000, 20);
    }
    await waitFor(async () => lines.some((l) => l.msg === 'ingest publish refused'), 5_000, 20);
    const refused = lines.find((l) => l.msg === 'ingest publish refused');
    expect({ showId: refused?.showId, why: refused?.why, firstStillOn: !clients[0]!.socket.destroyed, keyLogged: JSON.stringify(lines).includes(key) }).toEqual({
      showId: 'c',
      why: "the show's stream is already being published by another connection (one encoder per show)",
      firstStillOn: true,
      keyLogged: false,
    });
  } finally {
    for (const c of clients) c.socket.destroy();
    await edge.close();
  }
}, 60_000);

/**
 * Found attacking the relay: an encoder whose connection went half-open (its process froze, its network
 * dropped without a FIN) stayed the show's publisher for good (the edge's pings kept node-media-server's
 * idle timeout from firing), so the encoder's reconnect on a new connection was refused for over a
 * minute (no end seen) and the show's video was down all that time. A publish on the key now takes the
 * stream over from a connection that has sent nothing for publishTakeoverMs.
 */
test('a new publish takes the show over from a connection that has sent nothing for a while (a half-open encoder)', async () => {
  const { key } = await scheduledIngest(svc, 'atk-stall', await createPartner(svc, 'atk-stall'), 'd');
  const { log, lines } = logSink<{ msg: string; showId?: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys: svc.rt.box.derivedKeys(EDGE_PLAY_LABEL), publishTakeoverMs: 1000 });
  const publish = chunk(20, Buffer.concat([amfString('publish'), amfNumber(3), AMF_NULL, amfString(key)]), 1);
  const clients: Client[] = [];
  try {
    const silent = await streamOn(edge.port);
    clients.push(silent);
    let silentClosed = false;
    void silent.closed.then(() => (silentClosed = true));
    silent.socket.write(publish);
    await waitFor(async () => silent.received().includes('NetStream.Publish.Start'), 10_000, 20);
    await new Promise((r) => setTimeout(r, 2000)); // it sends nothing: past publishTakeoverMs and a count of the edge's
    const next = await streamOn(edge.port);
    clients.push(next);
    next.socket.write(publish);
    const took = await waitFor(async () => next.received().includes('NetStream.Publish.Start'), 5_000, 20).then(
      () => true,
      () => false,
    );
    await waitFor(async () => silentClosed, 5_000, 20).catch(() => undefined);
    await waitFor(async () => lines.some((l) => l.msg.startsWith('ingest publish replaced')), 5_000, 20).catch(() => undefined);
    expect({ took, silentClosed, logged: lines.find((l) => l.msg.startsWith('ingest publish replaced'))?.showId, keyLogged: JSON.stringify(lines).includes(key) }).toEqual({ took: true, silentClosed: true, logged: 'd', keyLogged: false });
  } finally {
    for (const c of clients) c.socket.destroy();
    await edge.close();
  }
}, 60_000);

/**
 * Found attacking the relay: node-media-server keeps a connection that never publishes or plays for
 * good once it sent `connect` (the edge's pings kept its idle timeout from firing; before `connect`, for
 * 60 s). 2,600 such connections from one client, no key needed, filled the edge's connections
 * (maxRtmpConnections: 2,500 at 20,000 open files) for as long as the client held them: a real encoder
 * was refused ("Connection reset by peer"), and so would be the relay's own readers reconnecting. A
 * connection now has startMs (RTMP_START_MS) from its accept to publish or play; a publish and a play
 * (a reader armed before the publish) stay.
 */
test('a connection that neither publishes nor plays in time is closed; a publish and a waiting play stay', async () => {
  const { key } = await scheduledIngest(svc, 'atk-idle', await createPartner(svc, 'atk-idle'), 'e');
  const { log, lines } = logSink<{ msg: string; count?: number }>();
  const playKeys = svc.rt.box.derivedKeys(EDGE_PLAY_LABEL);
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys, startMs: 1000 });
  const sockets: Socket[] = [];
  const closedWithin = (s: Socket, ms: number): Promise<boolean> =>
    s.destroyed ? Promise.resolve(true) : new Promise((res) => {
      const t = setTimeout(() => res(false), ms);
      s.once('close', () => (clearTimeout(t), res(true)));
    });
  try {
    const raw = createConnection({ host: '127.0.0.1', port: edge.port });
    const halfway = createConnection({ host: '127.0.0.1', port: edge.port });
    for (const s of [raw, halfway]) s.on('error', () => undefined);
    halfway.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(500)])); // C0 and a third of C1
    const idle = await handshaken(edge.port);
    idle.socket.write(connectOk);
    const player = await streamOn(edge.port); // a reader armed before the show's publish
    player.socket.write(chunk(20, Buffer.concat([amfString('play'), amfNumber(4), AMF_NULL, amfString(`${key}?play=${edgePlayToken(playKeys[0]!, key)}`)]), 1));
    const publisher = await streamOn(edge.port);
    publisher.socket.write(chunk(20, Buffer.concat([amfString('publish'), amfNumber(3), AMF_NULL, amfString(key)]), 1));
    sockets.push(raw, halfway, idle.socket, player.socket, publisher.socket);
    const [rawClosed, halfwayClosed, idleClosed] = await Promise.all([raw, halfway, idle.socket].map((s) => closedWithin(s, 6000)));
    // The three may be closed by different sweeps (one line each): wait for all the lines, not the first.
    const closedLogged = (): number => lines.filter((l) => l.msg.startsWith('ingest connections closed')).reduce((n, l) => n + (l.count ?? 0), 0);
    await waitFor(async () => closedLogged() >= 3, 5000, 20).catch(() => undefined);
    expect({ rawClosed, halfwayClosed, idleClosed, playerOn: !player.socket.destroyed, publishing: publisher.received().includes('NetStream.Publish.Start'), publisherOn: !publisher.socket.destroyed, logged: closedLogged(), keyLogged: JSON.stringify(lines).includes(key) }).toEqual({
      rawClosed: true,
      halfwayClosed: true,
      idleClosed: true,
      playerOn: true,
      publishing: true,
      publisherOn: true,
      logged: 3,
      keyLogged: false,
    });
  } finally {
    for (const s of sockets) s.destroy();
    await edge.close();
  }
}, 60_000);

/**
 * Found attacking the relay: RTMP_START_MS closes a connection that neither publishes nor plays after
 * 10 s, but a client reconnecting at ~250 connections a second kept the edge's maxRtmpConnections full
 * all the same, and a real encoder was refused. One address now holds at most pendingPerAddress
 * connections that have neither published nor played (a newer one is closed at once); connections that
 * publish or play do not count, so encoders behind one NAT still get in. Here the edge takes 48
 * connections, one address 16 pending: 60 idle connections from 127.0.0.1, then a publish from 127.0.0.2
 * (Linux routes all of 127/8 to lo), and 20 players from 127.0.0.3.
 */
test('a flood of idle connections from one address does not fill the edge: another address still publishes, and players from one address are not capped', async () => {
  const { key } = await scheduledIngest(svc, 'atk-flood', await createPartner(svc, 'atk-flood'), 'f');
  const { log, lines } = logSink<{ msg: string; count?: number; addresses?: string[] }>();
  const playKeys = svc.rt.box.derivedKeys(EDGE_PLAY_LABEL);
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys, maxConnections: 48, pendingPerAddress: 16 });
  const sockets: Socket[] = [];
  try {
    const flood = await Promise.all(
      Array.from({ length: 60 }, () => new Promise<Socket>((res) => {
        const s = createConnection({ host: '127.0.0.1', port: edge.port, localAddress: '127.0.0.1' });
        sockets.push(s);
        s.on('error', () => undefined);
        s.once('connect', () => res(s));
        s.once('close', () => res(s));
      })),
    );
    await new Promise((r) => setTimeout(r, 500)); // the ones over the cap (or the limit) are closed at once
    const floodHeld = flood.filter((s) => !s.destroyed && s.readyState === 'open').length;
    const publisher = await streamOn(edge.port, '127.0.0.2').then(
      (c) => c,
      () => undefined,
    );
    if (publisher) sockets.push(publisher.socket);
    publisher?.socket.write(chunk(20, Buffer.concat([amfString('publish'), amfNumber(3), AMF_NULL, amfString(key)]), 1));
    const published = publisher ? await waitFor(async () => publisher.received().includes('NetStream.Publish.Start'), 5_000, 20).then(() => true, () => false) : false;
    let players = 0;
    for (let i = 0; i < 20; i++) {
      const p = await streamOn(edge.port, '127.0.0.3').catch(() => undefined);
      if (!p) break;
      sockets.push(p.socket);
      p.socket.write(chunk(20, Buffer.concat([amfString('play'), amfNumber(4), AMF_NULL, amfString(`${key}?play=${edgePlayToken(playKeys[0]!, key)}`)]), 1));
      await waitFor(async () => p.received().includes('NetStream.Play.Start'), 5_000, 20).catch(() => undefined);
      if (!p.socket.destroyed) players++;
    }
    // The edge's thread reports its refusals once a count (0.5 s): the flood's 44 may span two counts (two
    // lines), so wait for all of them, not for the first line.
    const refusedLines = (): { count?: number; addresses?: string[] }[] => lines.filter((l) => l.msg.startsWith('ingest connections refused'));
    await waitFor(async () => refusedLines().reduce((n, l) => n + (l.count ?? 0), 0) >= 44, 5000, 20).catch(() => undefined);
    const refused = refusedLines();
    expect({ floodHeld, published, players, refusedLogged: refused.reduce((n, l) => n + (l.count ?? 0), 0), addresses: [...new Set(refused.flatMap((l) => l.addresses ?? []))], keyLogged: JSON.stringify(lines).includes(key) }).toEqual({
      floodHeld: 16,
      published: true,
      players: 20,
      refusedLogged: 44,
      addresses: ['127.0.0.1'],
      keyLogged: false,
    });
  } finally {
    for (const s of sockets) s.destroy();
    await edge.close();
  }
}, 60_000);

/** Publishes `key` on a new connection from `address`: 'published' (NetStream.Publish.Start), or 'closed' (the edge closed it first). */
async function publishFrom(port: number, address: string, key: string): Promise<{ result: 'published' | 'closed'; client?: Client }> {
  const c = await streamOn(port, address).catch(() => undefined);
  if (!c) return { result: 'closed' };
  let closed = false;
  void c.closed.then(() => (closed = true));
  c.socket.write(chunk(20, Buffer.concat([amfString('publish'), amfNumber(3), AMF_NULL, amfString(key)]), 1));
  const r = await waitFor(async () => (c.received().includes('NetStream.Publish.Start') ? 'published' : closed && 'closed'), 5_000, 20);
  return { result: r, client: c };
}
const isOpen = (c: Client | undefined): boolean => !!c && !c.socket.destroyed && c.socket.readyState === 'open';

/**
 * Found reviewing the pending cap: a session left its address's pending count as soon as
 * node-media-server accepted its publish, before its key was checked, and the start deadline then
 * skipped it. With the key check waiting (Redis down: the relay's client queues its commands), one
 * address filled the edge with publishes of made-up keys, each holding up to 32 MiB. A publish now
 * counts until its key checks out. It is not closed at startMs while its check waits: that would cut a
 * real encoder reconnecting during a Redis outage every 10 s while its show rides the outage (review of
 * the first fix); the cap bounds what one address holds meanwhile. Here the key check of every key but
 * the show's waits (the real repository behind a wrapper that holds those answers).
 */
test('publishes of made-up keys whose check does not answer stay under the pending cap, kept past the start deadline until their check refuses them; a real publish from another address gets in', async () => {
  const { key } = await scheduledIngest(svc, 'atk-fake', await createPartner(svc, 'atk-fake'), 'k');
  const held: (() => void)[] = [];
  const real = svc.rt.relay;
  const relay = Object.create(real, {
    showOfKey: { value: (k: string) => (k === key ? real.showOfKey(k) : new Promise<null>((res) => held.push(() => res(null)))) },
  }) as typeof real;
  const { log } = logSink<{ msg: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay, shows: svc.rt.shows, log, playKeys: [], pendingPerAddress: 4, startMs: 2000 });
  const clients: Client[] = [];
  try {
    const results: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await publishFrom(edge.port, '127.0.0.5', randomBytes(12).toString('hex'));
      results.push(r.result);
      if (r.client) clients.push(r.client);
    }
    const fakeOpen = clients.filter(isOpen).length;
    const realPublish = await publishFrom(edge.port, '127.0.0.6', key);
    if (realPublish.client) clients.push(realPublish.client);
    const source = await waitFor(async () => svc.rt.relay.source('atk-fake', 'k'), 5_000).then(() => true, () => false);
    // Past the start deadline (2 s, checked every 0.5 s): the publishes whose check waits are kept.
    await new Promise((r) => setTimeout(r, 3_000));
    const fakeOpenAfterDeadline = clients.filter((c) => c !== realPublish.client && isOpen(c)).length;
    // Their checks answer (unknown keys): refused and closed.
    for (const release of held.splice(0)) release();
    await waitFor(async () => clients.filter(isOpen).length <= 1, 5_000).catch(() => undefined);
    expect({ results, fakeOpen, realPublished: realPublish.result, source, fakeOpenAfterDeadline, fakeOpenAfterRefusal: clients.filter((c) => c !== realPublish.client && isOpen(c)).length, realOpen: isOpen(realPublish.client) }).toEqual({
      results: ['published', 'published', 'published', 'published', 'closed', 'closed', 'closed', 'closed'],
      fakeOpen: 4,
      realPublished: 'published',
      source: true,
      fakeOpenAfterDeadline: 4,
      fakeOpenAfterRefusal: 0,
      realOpen: true,
    });
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const release of held) release();
    await edge.close();
  }
}, 60_000);

/**
 * Found attacking the relay under `npm start`: its Redis client fails fast (enableOfflineQueue off), so
 * during an outage the key check of an encoder that reconnected failed at once and the publish was
 * refused ('check failed'), while the show's video rode the outage: the video stayed down until the
 * encoder's next retry after Redis came back. The check (and the source's write) is now tried again
 * until Redis answers, the publish held meanwhile. Here the real repository behind a wrapper that
 * fails its first calls with the fail-fast client's error.
 */
test("a publish whose key check fails because Redis is down (a fail-fast client) is held and accepted once Redis answers, not refused", async () => {
  const { key } = await scheduledIngest(svc, 'atk-down', await createPartner(svc, 'atk-down'), 'd');
  const real = svc.rt.relay;
  const down = (): Error => new Error("Stream isn't writeable and enableOfflineQueue options is false");
  let checks = 0;
  let writes = 0;
  const relay = Object.create(real, {
    showOfKey: { value: (k: string) => (++checks <= 3 ? Promise.reject(down()) : real.showOfKey(k)) },
    setSourceFor: { value: (...a: Parameters<typeof real.setSourceFor>) => (++writes <= 1 ? Promise.reject(down()) : real.setSourceFor(...a)) },
  }) as typeof real;
  const { log, lines } = logSink<{ msg: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay, shows: svc.rt.shows, log, playKeys: [] });
  let client: Client | undefined;
  try {
    const r = await publishFrom(edge.port, '127.0.0.7', key);
    client = r.client;
    const settled = (): boolean => lines.some((l) => /^ingest publish (accepted|refused)/.test(l.msg));
    await waitFor(async () => settled(), 10_000).catch(() => undefined);
    const source = (await real.source('atk-down', 'd')) !== null;
    expect({ published: r.result, source, open: isOpen(client), checks: checks >= 4, msgs: [...new Set(lines.map((l) => l.msg))].filter((m) => /^ingest publish (accepted|refused|check)/.test(m)) }).toEqual({
      published: 'published',
      source: true,
      open: true,
      checks: true,
      msgs: ['ingest publish check waits for Redis; the publish is held until it answers', 'ingest publish accepted'],
    });
  } finally {
    client?.socket.destroy();
    await edge.close();
  }
}, 60_000);

/**
 * Found reviewing 747c73d: a publish whose source write waited for Redis, and whose encoder left
 * meanwhile, was still logged "ingest publish accepted" and handed to onSource (a relay pass woken for
 * a publish that is gone). Here the source's write fails with the fail-fast client's error until the
 * encoder has left.
 */
test('a publish whose encoder leaves while its source write waits for Redis is neither logged accepted nor handed on', async () => {
  const { key } = await scheduledIngest(svc, 'atk-gone', await createPartner(svc, 'atk-gone'), 'g');
  const real = svc.rt.relay;
  let writing!: () => void;
  const firstWrite = new Promise<void>((r) => (writing = r));
  const relay = Object.create(real, {
    setSourceFor: {
      value: () => {
        writing();
        return Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
      },
    },
  }) as typeof real;
  const { log, lines } = logSink<{ msg: string }>();
  const handed: string[] = [];
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay, shows: svc.rt.shows, log, playKeys: [], onSource: (show) => handed.push(show.showId) });
  try {
    const r = await publishFrom(edge.port, '127.0.0.8', key);
    await firstWrite;
    r.client?.socket.destroy(); // the encoder leaves while the write is retried (every 0.5 s)
    await new Promise((res) => setTimeout(res, 1_500));
    expect({ published: r.result, handed, msgs: [...new Set(lines.map((l) => l.msg))].filter((m) => /^ingest publish (accepted|refused|check)/.test(m)) }).toEqual({
      published: 'published',
      handed: [],
      msgs: ['ingest publish check waits for Redis; the publish is held until it answers'],
    });
  } finally {
    await edge.close();
  }
}, 60_000);

/**
 * Found reviewing 747c73d: nothing held a publish whose key was rotated during the hold. The key check
 * is made afresh on each retry: a check that remembered its first answer (the show found, then its
 * state unreadable while Redis was away) accepted a key rotated meanwhile, and wrote the show's source
 * for an encoder that no longer holds its key. Here the show's state cannot be read twice (the
 * fail-fast client's error), and the key is rotated between.
 */
test("a publish held while Redis is away whose key is rotated meanwhile is refused as an unknown key, its show's source not written", async () => {
  const { key } = await scheduledIngest(svc, 'atk-rot', await createPartner(svc, 'atk-rot'), 'r');
  const real = svc.rt.shows;
  let reads = 0;
  const shows = Object.create(real, {
    desired: {
      value: async (...a: Parameters<typeof real.desired>) => {
        reads += 1;
        if (reads === 1) await svc.rt.relay.rotateIngestKey('atk-rot', 'r');
        if (reads <= 2) throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
        return real.desired(...a);
      },
    },
  }) as typeof real;
  const { log, lines } = logSink<{ msg: string; why?: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows, log, playKeys: [] });
  let client: Client | undefined;
  try {
    const r = await publishFrom(edge.port, '127.0.0.9', key);
    client = r.client;
    await waitFor(async () => lines.some((l) => /^ingest publish (accepted|refused)/.test(l.msg)), 10_000).catch(() => undefined);
    const source = await svc.rt.relay.source('atk-rot', 'r');
    expect({ source, settled: lines.filter((l) => /^ingest publish (accepted|refused)/.test(l.msg)).map((l) => `${l.msg}: ${l.why ?? ''}`) }).toEqual({
      source: null,
      settled: ['ingest publish refused: unknown stream key'],
    });
  } finally {
    client?.socket.destroy();
    await edge.close();
  }
}, 60_000);

/** The show's `show.ended` (a later `occurredAt` than its scheduling), through the API; resolves once its desired state says so. */
async function endShow(partnerId: string, secret: string, showId: string): Promise<void> {
  const r = await sendEvent(svc, partnerId, secret, showEvent('show.ended', sampleShow(showId, { state: 'ended' }), new Date(Date.now() + 1000).toISOString()));
  expect(r.status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.desired(partnerId, showId))?.state === 'ended', 10_000);
}
const unavailable = (): Error => new Error("Stream isn't writeable and enableOfflineQueue options is false");

/**
 * A show that ends while an encoder's publish is held, its key check failing (Redis unavailable to the
 * edge: the fail-fast client's error) while the partner's `show.ended` goes through: once the check
 * answers, the publish is refused (the show is ended), its connection closed, no source written.
 */
test('a publish whose key check is held while Redis is away, and whose show ends meanwhile, is refused once Redis answers', async () => {
  const secret = await createPartner(svc, 'atk-endc');
  const { key } = await scheduledIngest(svc, 'atk-endc', secret, 'c');
  const real = svc.rt.shows;
  let ended = false;
  let failed = 0;
  let checking!: () => void;
  const firstCheck = new Promise<void>((r) => (checking = r));
  const shows = Object.create(real, {
    desired: {
      value: async (...a: Parameters<typeof real.desired>) => {
        if (ended) return real.desired(...a);
        failed += 1;
        checking();
        throw unavailable();
      },
    },
  }) as typeof real;
  const { log, lines } = logSink<{ msg: string; why?: string }>();
  const handed: string[] = [];
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows, log, playKeys: [], onSource: (s) => handed.push(s.showId) });
  let client: Client | undefined;
  try {
    const r = await publishFrom(edge.port, '127.0.0.10', key);
    client = r.client;
    await firstCheck;
    await endShow('atk-endc', secret, 'c');
    ended = true;
    await waitFor(async () => lines.some((l) => /^ingest publish (accepted|refused)/.test(l.msg)), 10_000).catch(() => undefined);
    await waitFor(async () => !isOpen(client), 5_000).catch(() => undefined);
    expect({ published: r.result, held: failed >= 1, source: await svc.rt.relay.source('atk-endc', 'c'), handed, open: isOpen(client), settled: lines.filter((l) => /^ingest publish (accepted|refused)/.test(l.msg)).map((l) => `${l.msg}: ${l.why ?? ''}`) }).toEqual({
      published: 'published',
      held: true,
      source: null,
      handed: [],
      open: false,
      settled: ['ingest publish refused: show c is ended'],
    });
  } finally {
    client?.socket.destroy();
    await edge.close();
  }
}, 60_000);

/**
 * A publish on `key` whose source write Redis does not answer until `meanwhile` has run (the periodic
 * check kept out of it: the write's retry alone answers): what it left once settled.
 */
async function heldSourceWrite(partnerId: string, showId: string, key: string, address: string, meanwhile: () => Promise<void>) {
  const real = svc.rt.relay;
  let changed = false;
  let writing!: () => void;
  const firstWrite = new Promise<void>((r) => (writing = r));
  const relay = Object.create(real, {
    setSourceFor: {
      value: (...a: Parameters<typeof real.setSourceFor>) => {
        if (changed) return real.setSourceFor(...a);
        writing();
        return Promise.reject(unavailable());
      },
    },
  }) as typeof real;
  const { log, lines } = logSink<{ msg: string; why?: string }>();
  const handed: string[] = [];
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay, shows: svc.rt.shows, log, playKeys: [], checkMs: 60_000, onSource: (s) => handed.push(s.showId) });
  let client: Client | undefined;
  try {
    const r = await publishFrom(edge.port, address, key);
    client = r.client;
    await firstWrite;
    await meanwhile();
    changed = true;
    await waitFor(async () => lines.some((l) => /^ingest publish (accepted|refused)/.test(l.msg)), 10_000).catch(() => undefined);
    await waitFor(async () => !isOpen(client), 5_000).catch(() => undefined);
    return { published: r.result, source: await real.source(partnerId, showId), handed, open: isOpen(client), settled: lines.filter((l) => /^ingest publish (accepted|refused)/.test(l.msg)).map((l) => `${l.msg}: ${l.why ?? ''}`) };
  } finally {
    client?.socket.destroy();
    await edge.close();
  }
}

/**
 * The same with the hold at the source's write: the key checked out (the show scheduled), then Redis
 * stopped answering the edge before the write, and the show ended meanwhile. The write was tried again
 * as it was: the ended show's source was set, the publish logged accepted and its relay woken, and it was
 * cut off only at the edge's next periodic check (up to 2 s later). A write that waited is now checked
 * afresh before it is tried again: refused, nothing written, nothing woken.
 */
test('a publish whose source write is held while Redis is away, and whose show ends meanwhile, is refused once Redis answers: no source, not accepted, nothing woken', async () => {
  const secret = await createPartner(svc, 'atk-endw');
  const { key } = await scheduledIngest(svc, 'atk-endw', secret, 'w');
  expect(await heldSourceWrite('atk-endw', 'w', key, '127.0.0.11', () => endShow('atk-endw', secret, 'w'))).toEqual({
    published: 'published',
    source: null,
    handed: [],
    open: false,
    settled: ['ingest publish refused: show w is ended'],
  });
}, 60_000);

/**
 * The same hold, the key rotated meanwhile: the re-check found the old key naming no show and refused
 * it as an "unknown stream key" (its "rotated" branch could not be reached), where the periodic check
 * says the key was rotated. Now both say so.
 */
test('a publish whose source write is held while Redis is away, and whose key is rotated meanwhile, is refused as rotated once Redis answers', async () => {
  const { key } = await scheduledIngest(svc, 'atk-rotw', await createPartner(svc, 'atk-rotw'), 'w');
  expect(await heldSourceWrite('atk-rotw', 'w', key, '127.0.0.12', async () => void (await svc.rt.relay.rotateIngestKey('atk-rotw', 'w')))).toEqual({
    published: 'published',
    source: null,
    handed: [],
    open: false,
    settled: ["ingest publish refused: show w's stream key was rotated"],
  });
}, 60_000);

/**
 * The pending count goes down when a connection closes and when a publish's key is accepted: connections
 * that open and close without publishing (a load balancer's health checks), many more than the cap, do
 * not lock their address out, and a publishing encoder does not hold one of its address's pending places.
 */
test('connections that close without publishing and accepted publishes leave their address pending count', async () => {
  const { key } = await scheduledIngest(svc, 'atk-lb', await createPartner(svc, 'atk-lb'), 'h');
  const { log } = logSink<{ msg: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys: [], pendingPerAddress: 4 });
  const sockets: Socket[] = [];
  const openFrom = (address: string): Promise<Socket> =>
    new Promise<Socket>((res) => {
      const s = createConnection({ host: '127.0.0.1', port: edge.port, localAddress: address });
      sockets.push(s);
      s.on('error', () => undefined);
      s.once('connect', () => res(s));
      s.once('close', () => res(s));
    });
  try {
    // Three rounds of 4 health checks (12 connections, 3 × the cap), each closed by the client.
    for (let round = 0; round < 3; round++) {
      const checks = await Promise.all(Array.from({ length: 4 }, () => openFrom('127.0.0.7')));
      await new Promise((r) => setTimeout(r, 100));
      for (const s of checks) s.destroy();
      await new Promise((r) => setTimeout(r, 200)); // the edge sees the closes
    }
    const pub = await publishFrom(edge.port, '127.0.0.7', key);
    const source = pub.result === 'published' && (await waitFor(async () => svc.rt.relay.source('atk-lb', 'h'), 5_000).then(() => true, () => false));
    // The accepted publish no longer counts: the address still has all 4 pending places.
    const idle = await Promise.all(Array.from({ length: 4 }, () => openFrom('127.0.0.7')));
    await new Promise((r) => setTimeout(r, 500));
    expect({ published: pub.result, source, idleHeld: idle.filter((s) => !s.destroyed && s.readyState === 'open').length, publisherOpen: isOpen(pub.client) }).toEqual({
      published: 'published',
      source: true,
      idleHeld: 4,
      publisherOpen: true,
    });
    pub.client?.socket.destroy();
  } finally {
    for (const s of sockets) s.destroy();
    await edge.close();
  }
}, 60_000);
