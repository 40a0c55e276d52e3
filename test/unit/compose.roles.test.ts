/**
 * docker-compose.yml and the Dockerfile against what the code reads: each role's command is its npm
 * script's, every variable a role is given is one the service reads (ENVIRONMENT_VARIABLES), and the
 * settings every role must agree on (README "Production roles"; SYNC_SHARDS names the sync queues)
 * come out the same on every role for whatever the operator's .env sets. The relay service's own
 * `environment:` replaced the shared one whole (a YAML merge is shallow), so SYNC_SHARDS and
 * PUBLIC_BASE_URL set in .env reached every role but the relay: with SYNC_SHARDS=1 its "video is
 * flowing, go live now" syncs went to sync-<platform>-1, a queue no worker reads.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { ENVIRONMENT_VARIABLES, loadConfig } from '../../src/config/config.js';
import { startRedis } from '../helpers/redis-server.js';

const root = resolve(import.meta.dirname ?? '.', '../..');
const compose = parse(readFileSync(resolve(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string | number | boolean>; healthcheck?: { test: string[]; timeout?: string } }>;
};
const scripts = (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** The services that run Syndicast (the image the Dockerfile builds). */
const roles = Object.entries(compose.services).filter(([, s]) => s.image === 'syndicast:local');

/** Compose's interpolation of one value: ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?:(:?)([-?])([^}]*))?\}/g, (_, name: string, colon: string, op: string | undefined, arg: string) => {
    const v = env[name];
    const unset = v === undefined || (colon === ':' && v === '');
    if (!op) return v ?? '';
    if (op === '-') return unset ? arg : v!;
    if (unset) throw new Error(`${name} required: ${arg}`);
    return v!;
  });
}

function environmentOf(service: string, env: Record<string, string>): Record<string, string> {
  const e = compose.services[service]!.environment ?? {};
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, interpolate(String(v), env)]));
}

const required = { ADMIN_API_KEY: 'a'.repeat(32), SECRETS_KEY: Buffer.alloc(32, 7).toString('base64') };

test('the compose file runs the four roles, each with its npm script\'s command; the image runs npm start\'s', () => {
  const byScript = Object.fromEntries(Object.entries(scripts).filter(([k]) => k === 'start' || k.startsWith('start:')).map(([k, v]) => [v.replace(/^exec /, ''), k]));
  expect(Object.fromEntries(roles.map(([name, s]) => [name, byScript[(s.command ?? []).join(' ')]]))).toEqual({
    api: 'start:api',
    worker: 'start:worker',
    scheduler: 'start:scheduler',
    relay: 'start:relay',
  });
  const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(resolve(root, 'Dockerfile'), 'utf8'))?.[1];
  expect(byScript[(JSON.parse(cmd ?? '[]') as string[]).join(' ')]).toBe('start');
});

test('every variable a role is given is one the service reads', () => {
  for (const [name] of roles) {
    const unknown = Object.keys(environmentOf(name, required)).filter((k) => !ENVIRONMENT_VARIABLES.includes(k));
    expect({ role: name, unknown }).toEqual({ role: name, unknown: [] });
  }
});

test.each([
  ['nothing but the required secrets', {}],
  ['shards, public URL and key prefix set', { SYNC_SHARDS: '1', PUBLIC_BASE_URL: 'https://shop.example.com', KEY_PREFIX: 'shop' }],
])('the settings every role must share come out the same on every role (.env: %s)', (_, extra: Record<string, string>) => {
  const env = { ...required, ...extra };
  const shared = ['redisUrl', 'redisClusterNodes', 'adminApiKey', 'secretsKey', 'secretsKeyPrevious', 'publicBaseUrl', 'keyPrefix', 'syncShards'] as const;
  const configs = Object.fromEntries(roles.map(([name]) => [name, loadConfig(environmentOf(name, env), '/nonexistent')]));
  const differing = shared.flatMap((key) => {
    const values = Object.fromEntries(roles.map(([name]) => [name, configs[name]![key]]));
    return roles.some(([name]) => values[name] !== values['api']) ? [{ key, values }] : [];
  });
  expect(differing).toEqual([]);
  expect(configs['api']).toMatchObject({ syncShards: Number(extra['SYNC_SHARDS'] ?? 2), secretsKey: required.SECRETS_KEY });
});

/** Runs a compose healthcheck's `test` here (CMD: the argv; CMD-SHELL: through sh); its exit code and how long it took, or 'hung' past `limitMs`. */
function runCheck(test: string[], env: Record<string, string>, limitMs: number): Promise<{ code: number | string; ms: number }> {
  const [kind, ...rest] = test;
  const [cmd, ...args] = kind === 'CMD-SHELL' ? ['sh', '-c', rest.join(' ')] : rest;
  const t0 = Date.now();
  const child = spawn(cmd!, args, { cwd: root, env: { ...process.env, ...env }, stdio: 'ignore', detached: true });
  return new Promise((res) => {
    const hung = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      res({ code: 'hung', ms: Date.now() - t0 });
    }, limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(hung);
      res({ code: code ?? signal ?? 'none', ms: Date.now() - t0 });
    });
  });
}

// Found reading the compose file (2026-12-05): against a frozen Redis (SIGSTOP: a paused container, a
// hung VM; the kernel still accepts the connection) both Redis healthchecks waited for ever — Redis's
// own `redis-cli ping` (no reply timeout) and the roles' ioredis PING (no commandTimeout) — past their
// compose `timeout`. Each now ends unhealthy within that timeout. Run here with bookworm's redis-cli,
// coreutils' timeout and this checkout's node_modules, as in the images.
test('the Redis healthchecks (the redis service\'s, the roles\') pass against a live Redis and fail within their own timeout against a frozen one', async () => {
  const redis = await startRedis();
  const shim = mkdtempSync(join(tmpdir(), 'syndicast-compose-'));
  const c = redis.client();
  let pid: number | undefined;
  try {
    pid = Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
    // The redis service's check runs in Redis's container (127.0.0.1:6379): redis-cli pointed at this one.
    const redisCli = execFileSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' }).trim();
    writeFileSync(join(shim, 'redis-cli'), `#!/bin/sh\nexec ${redisCli} -p ${redis.port} "$@"\n`);
    chmodSync(join(shim, 'redis-cli'), 0o755);
    const checks = {
      redis: { test: compose.services['redis']!.healthcheck!.test, env: { PATH: `${shim}:${process.env['PATH'] ?? ''}` }, timeout: compose.services['redis']!.healthcheck!.timeout! },
      worker: { test: compose.services['worker']!.healthcheck!.test, env: { REDIS_URL: redis.url }, timeout: compose.services['worker']!.healthcheck!.timeout! },
    };
    const limitOf = (t: string): number => Number(/^(\d+)s$/.exec(t)?.[1]) * 1000;
    for (const [name, check] of Object.entries(checks)) {
      expect([name, (await runCheck(check.test, check.env, 15_000)).code]).toEqual([name, 0]);
    }
    process.kill(pid, 'SIGSTOP');
    for (const [name, check] of Object.entries(checks)) {
      const limit = limitOf(check.timeout);
      expect(limit).toBeGreaterThan(0);
      const r = await runCheck(check.test, check.env, limit + 5000);
      expect({ name, failed: r.code !== 0 && r.code !== 'hung', withinTimeout: r.ms < limit }).toEqual({ name, failed: true, withinTimeout: true });
    }
  } finally {
    if (pid) process.kill(pid, 'SIGCONT');
    c.disconnect();
    await redis.destroy();
    rmSync(shim, { recursive: true, force: true });
  }
}, 60_000);
