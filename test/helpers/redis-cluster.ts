/**
 * A private Redis Cluster per test file: 3 masters + 3 replicas, each a `redis-server` process with
 * `--cluster-enabled yes` on an ephemeral loopback port (and an ephemeral cluster-bus port), in its own
 * temp dir; the slots and replicas are assigned as `redis-cli --cluster create ... --cluster-replicas 1`
 * does (`formCluster`: the same commands, without its fixed waits). Tests
 * never mock Redis; this is the same code path a production cluster takes (`REDIS_CLUSTER_NODES`).
 *
 * `SYNDICAST_TEST_REDIS=cluster` makes `startTestRedis()` (and so `startService()`) use one of these
 * instead of a single redis-server: the e2e suites listed in `npm run test:cluster` run unchanged on
 * both topologies.
 */
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { testPort } from './ports.js';
import { closeProbe, endProbe, spawnRedisServer, startRedis, waitReady, type TestRedis } from './redis-server.js';

export interface ClusterNode {
  port: number;
  dir: string;
  /** Whether the process is running (a killed node is `false` until `startNode`). */
  running(): boolean;
  /** The redis-server's process id while it runs (benchmarks meter its CPU and RSS). */
  pid(): number | undefined;
}

export interface TestRedisCluster extends TestRedis {
  topology: 'cluster';
  nodes: ClusterNode[];
  /** `host:port,...` of every node, as REDIS_CLUSTER_NODES takes it. */
  clusterNodes: string;
  /** Ports of the current masters / replicas, as the cluster itself reports them (CLUSTER NODES). */
  roles(): Promise<{ masters: number[]; replicas: number[] }>;
  /** Kill one node (SIGKILL by default: a crash). */
  stopNode(port: number, signal?: NodeJS.Signals): Promise<void>;
  /** Send a signal to a running node without waiting for it to exit (SIGSTOP / SIGCONT: a frozen node). */
  signalNode(port: number, signal: NodeJS.Signals): void;
  /** Start a stopped node again (same port and dir: it rejoins from its nodes.conf). */
  startNode(port: number): Promise<void>;
  /** Resolves when every slot is served and the cluster says `cluster_state:ok` on every live node. */
  waitHealthy(timeoutMs?: number): Promise<void>;
}

export interface ClusterOptions {
  /** cluster-node-timeout: how long a master may be unreachable before its replica is promoted. */
  nodeTimeoutMs?: number;
  /** Parent of the nodes' temp dirs (default the OS temp dir; the benchmarks use .data/bench, as for one redis-server). */
  parentDir?: string;
}

function nodeArgs(port: number, busPort: number, dir: string, nodeTimeoutMs: number): string[] {
  return [
    '--port', String(port),
    '--cluster-port', String(busPort),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(nodeTimeoutMs),
    // A replica may always take over, however long it was disconnected (tests kill nodes at will).
    '--cluster-replica-validity-factor', '0',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    '--maxmemory-policy', 'noeviction',
    // A replica syncs at once (the default waits 5 s for more replicas to share one transfer).
    '--repl-diskless-sync-delay', '0',
    '--loglevel', 'warning',
  ];
}

/**
 * Makes the first three nodes masters of a third of the slots each (the ranges `redis-cli --cluster
 * create` gives) and node i + 3 the replica of node i, by the commands `redis-cli --cluster create
 * --cluster-replicas 1` sends: a config epoch of its own for each node, the slots, CLUSTER MEET, CLUSTER
 * REPLICATE. redis-cli has the first node meet the others (the rest learn each other by gossip), waits a
 * fixed second and polls the join once a second: 2.7 s of each start. Here every node meets every other
 * one and the replicas are set as soon as they know their masters (polled every 50 ms). The caller then
 * waits until the cluster is healthy (`waitHealthy`: every slot served, each master's replica linked).
 */
async function formCluster(nodes: { port: number; busPort: number }[]): Promise<void> {
  const clients = nodes.map((n) => probe(n.port));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    // A node takes SET-CONFIG-EPOCH only while it knows no other node: before the meets.
    await Promise.all(clients.map((c, i) => c.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1))));
    const ranges = [[0, 5460], [5461, 10922], [10923, 16383]] as const;
    await Promise.all(ranges.map(([from, to], i) => clients[i]!.call('CLUSTER', 'ADDSLOTSRANGE', String(from), String(to))));
    // Every node meets every other one: each knows the others after one handshake, not after gossip.
    await Promise.all(clients.flatMap((c, i) => nodes.filter((_, j) => j !== i).map((n) => c.call('CLUSTER', 'MEET', '127.0.0.1', String(n.port), String(n.busPort)))));
    const masterIds = (await Promise.all(clients.slice(0, 3).map((c) => c.call('CLUSTER', 'MYID')))).map(String);
    // "Unknown node" until the replica's handshake with its master is done.
    const deadline = Date.now() + 30_000;
    await Promise.all(
      clients.slice(3).map(async (c, i) => {
        for (;;) {
          try {
            await c.call('CLUSTER', 'REPLICATE', masterIds[i]!);
            return;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => endProbe(c)));
  }
}

async function clusterInfoOk(port: number): Promise<boolean> {
  const c = probe(port);
  try {
    await c.connect();
    const info = (await c.call('CLUSTER', 'INFO')) as string;
    return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info);
  } catch {
    return false;
  } finally {
    closeProbe(c);
  }
}

async function clusterNodesLines(port: number): Promise<string[]> {
  const c = probe(port);
  try {
    await c.connect();
    return ((await c.call('CLUSTER', 'NODES')) as string).trim().split('\n');
  } finally {
    closeProbe(c);
  }
}

export async function startCluster(opts: ClusterOptions = {}): Promise<TestRedisCluster> {
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 5000;
  const root = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'syndicast-cluster-'));
  const specs: { port: number; busPort: number; dir: string; proc?: ChildProcess }[] = [];
  const used = new Set<number>();
  const pick = async (): Promise<number> => {
    for (;;) {
      const p = await testPort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  // Ports are picked free and then bound by redis-server: another process (another test file starting
  // its own cluster, say) can take one in between. Then a node does not start or `--cluster create`
  // fails; the attempt's nodes are stopped and the cluster starts again on new ports and new dirs.
  const pickAll = async (attempt: number): Promise<void> => {
    specs.length = 0;
    for (let i = 0; i < 6; i++) {
      const dir = join(root, `a${attempt}n${i}`);
      mkdirSync(dir);
      specs.push({ port: await pick(), busPort: await pick(), dir });
    }
  };
  const isRunning = (s: (typeof specs)[number]): boolean => !!s.proc && s.proc.exitCode === null && s.proc.signalCode === null;
  const startNode = async (port: number): Promise<void> => {
    const s = specs.find((x) => x.port === port);
    if (!s) throw new Error(`no cluster node on ${port}`);
    if (isRunning(s)) return;
    // The whole environment of the jest worker is passed on (as spawn would by default; redis-server reads
    // none of ours), plus LC_ALL=C: byte order for Lua's string compare, as embedded-redis.ts and redis-server.ts.
    s.proc = spawnRedisServer(nodeArgs(s.port, s.busPort, s.dir, nodeTimeoutMs), { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C' } });
    // With the pid: a port another test's redis-server took between the pick and the bind fails the
    // start (and the attempt starts again on new ports) before any cluster command reaches that server.
    await waitReady(s.port, 10_000, s.proc.pid);
  };
  const stopNode = async (port: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const s = specs.find((x) => x.port === port);
    const p = s?.proc;
    if (!s || !p || !isRunning(s)) return;
    s.proc = undefined;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  };
  for (let attempt = 1; ; attempt++) {
    await pickAll(attempt);
    try {
      const started = await Promise.allSettled(specs.map((s) => startNode(s.port)));
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      // The first three become masters, each of the others a replica of one of them.
      await formCluster(specs);
      break;
    } catch (err) {
      await Promise.all(specs.map((s) => stopNode(s.port)));
      if (attempt >= 3) throw err;
    }
  }

  const roles = async (): Promise<{ masters: number[]; replicas: number[] }> => {
    const live = specs.find(isRunning);
    if (!live) return { masters: [], replicas: [] };
    const masters: number[] = [];
    const replicas: number[] = [];
    for (const line of await clusterNodesLines(live.port)) {
      const [, addr, flags] = line.split(' ');
      const port = Number(addr?.split('@')[0]?.split(':')[1]);
      if (!flags || flags.includes('fail')) continue;
      if (flags.includes('master')) masters.push(port);
      else if (flags.includes('slave')) replicas.push(port);
    }
    return { masters, replicas };
  };

  const waitHealthy = async (timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const live = specs.filter(isRunning);
      const ok = (await Promise.all(live.map((s) => clusterInfoOk(s.port)))).every(Boolean);
      if (ok) {
        // Every master that serves slots has a connected replica (so WAIT 1 can succeed) when one is alive.
        const r = await roles().catch(() => ({ masters: [], replicas: [] }));
        if (r.masters.length === 3 && r.replicas.length === live.length - 3) {
          const linked = await Promise.all(r.replicas.map((p) => replicaLinked(p)));
          if (linked.every(Boolean)) return;
        }
      }
      if (Date.now() > deadline) throw new Error('redis cluster did not become healthy');
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  await waitHealthy();

  const seeds = specs.map((s) => `127.0.0.1:${s.port}`).join(',');
  const cluster: TestRedisCluster = {
    topology: 'cluster',
    url: `redis://127.0.0.1:${specs[0]!.port}`,
    port: specs[0]!.port,
    dir: root,
    env: { REDIS_CLUSTER_NODES: seeds },
    clusterNodes: seeds,
    nodes: specs.map((s) => ({ port: s.port, dir: s.dir, running: () => isRunning(s), pid: () => (isRunning(s) ? s.proc?.pid : undefined) })),
    client: () => new Cluster(specs.map((s) => ({ host: '127.0.0.1', port: s.port }))),
    roles,
    stopNode,
    startNode,
    signalNode: (port, signal) => {
      const s = specs.find((x) => x.port === port);
      if (!s || !isRunning(s)) throw new Error(`no running cluster node on ${port}`);
      s.proc!.kill(signal);
    },
    waitHealthy,
    // The whole cluster down / up (a full outage): every node comes back from its nodes.conf and AOF.
    stop: async (signal: NodeJS.Signals = 'SIGKILL') => {
      await Promise.all(specs.map((s) => stopNode(s.port, signal)));
    },
    start: async () => {
      await Promise.all(specs.map((s) => startNode(s.port)));
      await waitHealthy();
    },
    destroy: async () => {
      await Promise.all(specs.map((s) => stopNode(s.port)));
      rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}

export interface OneNodeCluster {
  port: number;
  /** `127.0.0.1:port`, as REDIS_CLUSTER_NODES takes it (`redis://:<requirepass>@127.0.0.1:port` with a requirepass). */
  clusterNodes: string;
  /** Kill the node (SIGKILL: a crash). */
  stop(): Promise<void>;
  /** Start it again (same port and dir: its nodes.conf keeps its slots); resolves once `cluster_state:ok`. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A Redis Cluster of one node holding every slot, no replica: for a test that needs a Cluster client
 * that gets ready, and no failover, in about a second (the 3 + 3 of startCluster take several). The
 * node announces 127.0.0.1: a node that never met another does not know its own address, CLUSTER SLOTS
 * names it with an empty host, and ioredis skips a node with no host (no slot served: its Cluster
 * client refreshes and closes for ever, never ready). `pickPort`: how its ports are picked (a test of
 * this helper hands it a taken one). `requirepass`: the node then requires that password of the
 * default user (set once the node is healthy, by CONFIG SET: the probes here send none).
 */
export async function startOneNodeCluster(pickPort: () => Promise<number> = testPort, opts: { requirepass?: string } = {}): Promise<OneNodeCluster> {
  const root = mkdtempSync(join(tmpdir(), 'syndicast-cluster1-'));
  let port = 0;
  let busPort = 0;
  let dir = root;
  let proc: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  const start = async (): Promise<void> => {
    proc = spawnRedisServer([...nodeArgs(port, busPort, dir, 5000), '--cluster-announce-ip', '127.0.0.1'], { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C' } });
    await waitReady(port, 10_000, proc.pid);
    const c = probe(port);
    try {
      await c.connect();
      if (/^cluster_slots_assigned:0\s*$/m.test(String(await c.call('CLUSTER', 'INFO')))) await c.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    } finally {
      closeProbe(c);
    }
    const deadline = Date.now() + 10_000;
    while (!(await clusterInfoOk(port))) {
      if (Date.now() > deadline) throw new Error(`one-node cluster on ${port} did not become healthy`);
      await new Promise((res) => setTimeout(res, 50));
    }
    if (opts.requirepass === undefined) return;
    const admin = probe(port);
    try {
      await admin.connect();
      await admin.config('SET', 'requirepass', opts.requirepass);
    } finally {
      closeProbe(admin);
    }
  };
  // As startCluster: a port taken between its pick and the bind fails the start; new ports, a new dir.
  // A start that fails for good leaves no redis-server and no temp dir behind.
  for (let attempt = 1; ; attempt++) {
    port = await pickPort();
    busPort = await pickPort();
    while (busPort === port) busPort = await pickPort();
    dir = join(root, `a${attempt}`);
    mkdirSync(dir);
    try {
      await start();
      break;
    } catch (err) {
      await stop();
      if (attempt >= 3) {
        rmSync(root, { recursive: true, force: true });
        throw err;
      }
    }
  }
  return {
    port,
    clusterNodes: opts.requirepass === undefined ? `127.0.0.1:${port}` : `redis://:${encodeURIComponent(opts.requirepass)}@127.0.0.1:${port}`,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function replicaLinked(port: number): Promise<boolean> {
  const c = probe(port);
  try {
    await c.connect();
    const info = await c.info('replication');
    return /master_link_status:up/.test(info);
  } catch {
    return false;
  } finally {
    closeProbe(c);
  }
}

/** A one-off connection to one node (no reconnects; errors end up in the caller's catch). */
function probe(port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  c.on('error', () => undefined);
  return c;
}

/**
 * Every master node's client of a Cluster client (each holds a share of the keys), or `[redis]` for
 * one Redis: for the per-node commands (SCAN, KEYS, DBSIZE, INFO, CONFIG, DEBUG, FLUSHALL) that a
 * Cluster client sends to one node only. Waits for a cluster client's slots to be loaded.
 */
export async function masterNodes(redis: Redis | Cluster): Promise<Redis[]> {
  if (!(redis instanceof Cluster)) return [redis];
  if (redis.status !== 'ready') {
    if (redis.status === 'wait') void redis.connect().catch(() => undefined); // lazyConnect
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        redis.off('end', onEnd);
        resolve();
      };
      const onEnd = (): void => {
        redis.off('ready', onReady);
        reject(new Error('redis cluster client ended before it was ready'));
      };
      redis.once('ready', onReady);
      redis.once('end', onEnd);
    });
  }
  return redis.nodes('master');
}

/**
 * The keys that match `pattern` (a SCAN MATCH glob), on every master of a cluster or on the one
 * Redis, sorted. KEYS or SCAN through a Cluster client reach one node, and so only its share.
 */
export async function keysMatching(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  for (const node of await masterNodes(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) found.add(k);
    } while (cursor !== '0');
  }
  return [...found].sort();
}

export type Topology = 'single' | 'cluster';

/**
 * The topology the suites run on: `SYNDICAST_TEST_REDIS=cluster` selects the cluster. Read from the
 * environment at each call (it is the default argument of startTestRedis and runsFor, so it is read
 * when a file starts its Redis, not when this module loads): jest's workers inherit the variable from
 * the command (`npm run test:cluster`), and no config passes it; a file that sets it before its
 * beforeAll changes its own topology only.
 */
export function testTopology(): Topology {
  return process.env['SYNDICAST_TEST_REDIS'] === 'cluster' ? 'cluster' : 'single';
}

/** One redis-server, or a 3 + 3 cluster under `SYNDICAST_TEST_REDIS=cluster`. */
export async function startTestRedis(topology: Topology = testTopology()): Promise<TestRedis> {
  return topology === 'cluster' ? startCluster() : startRedis();
}

/** startTestRedis for one test file: it and a client on it handed to `use` before the file's tests; both gone after them. */
export function testRedisClientPerFile(use: (started: { redis: TestRedis; client: ReturnType<TestRedis['client']> }) => void): void {
  let redis: TestRedis | undefined;
  let client: ReturnType<TestRedis['client']> | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = redis.client();
    use({ redis, client });
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.destroy();
  });
}

/**
 * fast-check runs for a property suite: the full count on one Redis, a third (at least 3) on the
 * cluster, whose variant runs the same property for topology coverage within CI's time budget.
 */
export function runsFor(numRuns: number, topology: Topology = testTopology()): number {
  return topology === 'cluster' ? Math.max(3, Math.ceil(numRuns / 3)) : numRuns;
}
