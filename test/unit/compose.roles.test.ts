/**
 * docker-compose.yml and the Dockerfile against what the code reads: each role's command is its npm
 * script's, every variable a role is given is one the service reads (ENVIRONMENT_VARIABLES), and the
 * settings every role must agree on (README "Production roles"; SYNC_SHARDS names the sync queues)
 * come out the same on every role for whatever the operator's .env sets. The relay service's own
 * `environment:` replaced the shared one whole (a YAML merge is shallow), so SYNC_SHARDS and
 * PUBLIC_BASE_URL set in .env reached every role but the relay: with SYNC_SHARDS=1 its "video is
 * flowing, go live now" syncs went to sync-<platform>-1, a queue no worker reads.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { ENVIRONMENT_VARIABLES, loadConfig } from '../../src/config/config.js';

const root = resolve(import.meta.dirname ?? '.', '../..');
const compose = parse(readFileSync(resolve(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string | number | boolean> }>;
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
