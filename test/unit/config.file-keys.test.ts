/**
 * config/local.json (and default.json) keys are the camelCase config keys (README "Configuration").
 * A key that is none of them — an environment variable's name (REDIS_URL), a typo (redisURL) — was
 * dropped without a word: the service started with the zero-configuration Redis (127.0.0.1:6379 or a
 * redis-server of its own) instead of the one the file named, and with the defaults for the rest.
 * Now it stops the start with the configuration message, naming the file, the key and the key meant.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.js';

function dirWith(local: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sc-config-'));
  writeFileSync(join(dir, 'local.json'), JSON.stringify(local));
  return dir;
}

test('known keys in local.json are taken', () => {
  const c = loadConfig({}, dirWith({ redisUrl: 'redis://10.0.0.5:6379', syncShards: 4 }));
  expect(c).toMatchObject({ redisUrl: 'redis://10.0.0.5:6379', syncShards: 4 });
});

test('an environment variable name or a mistyped key in local.json stops the start, naming the file, the key and the key meant', () => {
  const dir = dirWith({ REDIS_URL: 'redis://10.0.0.5:6379', redisURL: 'redis://10.0.0.5:6379', sycnShards: 4 });
  const load = (): unknown => loadConfig({}, dir);
  expect(load).toThrow(ConfigError);
  expect(load).toThrow(join(dir, 'local.json'));
  expect(load).toThrow(/REDIS_URL: not a config key \(the key is redisUrl\)/);
  expect(load).toThrow(/redisURL: not a config key \(the key is redisUrl\)/);
  expect(load).toThrow(/sycnShards: not a config key/);
});

test('the repository\'s default.json and example.local.json use config keys only', () => {
  expect(() => loadConfig({}, join(import.meta.dirname ?? '.', '../../config'))).not.toThrow();
  const example = mkdtempSync(join(tmpdir(), 'sc-config-'));
  writeFileSync(join(example, 'local.json'), readFileSync(join(import.meta.dirname ?? '.', '../../config/example.local.json'), 'utf8'));
  expect(() => loadConfig({}, example)).not.toThrow();
});

test.each([
  ['__proto__', '{"__proto__": {"redisUrl": "redis://10.0.0.9:6379"}}'],
  ['constructor', '{"constructor": {"redisUrl": "redis://10.0.0.9:6379"}}'],
  ['toString', '{"toString": "x"}'],
])('%s in local.json (an inherited name, no config key) stops the start and sets nothing', (key, json) => {
  // `k in ConfigSchema.shape` was true for the names every object inherits, and Object.assign made a
  // "__proto__" object the merged configuration's prototype: its redisUrl was taken as the config's.
  const dir = mkdtempSync(join(tmpdir(), 'sc-config-'));
  writeFileSync(join(dir, 'local.json'), json);
  const load = (): unknown => loadConfig({}, dir);
  expect(load).toThrow(ConfigError);
  expect(load).toThrow(new RegExp(`${key}: not a config key`));
});

test('a copy of example.local.json with another port makes links to that port (publicBaseUrl is left to its default)', () => {
  // The example pinned publicBaseUrl to http://localhost:3000: a copy run with PORT=3001 (or "port"
  // changed in the copy) made every tracked link point at :3000.
  const example = mkdtempSync(join(tmpdir(), 'sc-config-'));
  writeFileSync(join(example, 'local.json'), readFileSync(join(import.meta.dirname ?? '.', '../../config/example.local.json'), 'utf8'));
  expect(loadConfig({ PORT: '3001' }, example).publicBaseUrl).toBe('http://localhost:3001');
});

test('config/local.json (README: yours, not to be committed) is ignored by git and left out of the image', () => {
  const lines = (f: string): string[] => readFileSync(join(import.meta.dirname ?? '.', '../..', f), 'utf8').split('\n').map((l) => l.trim());
  expect(lines('.gitignore')).toContain('config/local.json');
  expect(lines('.dockerignore')).toContain('config/local.json');
});

/**
 * A number key of local.json given no number: zod's coercion read `true` as 1 and `false`, `null`, `""`,
 * `[]` as 0, silently (`"commissionHoldDays": false` approved every commission at once, `"port": null`
 * listened on any free port). Now the start stops naming the setting and the value given.
 */
test.each<[Record<string, unknown>, string]>([
  [{ commissionHoldDays: false }, 'COMMISSION_HOLD_DAYS: must be a number (got "false")'],
  [{ port: null }, 'PORT: must be a number (got "null")'],
  [{ port: '' }, 'PORT: must be a number (got "")'],
  [{ workerConcurrency: true }, 'WORKER_CONCURRENCY: must be a number (got "true")'],
  [{ inboxTtlDays: [] }, 'INBOX_TTL_DAYS: must be a number (got "")'],
  [{ metricsPort: false }, 'METRICS_PORT: must be a number (got "false")'],
  [{ syncTargetConcurrency: null }, 'SYNC_TARGET_CONCURRENCY: must be a number (got "null")'],
  [{ redisWaitTimeoutMs: true }, 'REDIS_WAIT_TIMEOUT_MS: must be a number (got "true")'],
])('local.json %j: no number, refused naming the setting', (local, line) => {
  expect(() => loadConfig({}, dirWith(local))).toThrow(`invalid configuration:\n  ${line}`);
  // Numbers and numeric text stay taken.
  expect(loadConfig({}, dirWith({ port: 3001, syncShards: '4' }))).toMatchObject({ port: 3001, syncShards: 4 });
});

/** V8 quotes the text around a JSON syntax error: a local.json holds keys and passwords, none of it is printed. */
test.each(['{"adminApiKey": supersecretkey123456}', 'supersecretkey123456', '{"redisUrl": redis://u:supersecretkey@h}'])('a local.json that is no JSON (%s) is refused without a word of its text', (json) => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-config-'));
  writeFileSync(join(dir, 'local.json'), json);
  let message = '';
  try {
    loadConfig({}, dir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    message = (e as Error).message;
  }
  expect(message).toContain(join(dir, 'local.json'));
  expect(message).toContain('not valid JSON');
  expect(message).not.toMatch(/supers|Key"|redis:/);
});
