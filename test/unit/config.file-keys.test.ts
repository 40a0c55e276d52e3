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
