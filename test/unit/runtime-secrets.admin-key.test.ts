/**
 * The zero-configuration ADMIN_API_KEY lives in DATA_DIR/admin-api-key, and operations.md tells the
 * operator to replace the file to change it. The file's key was taken as it was: an empty file (an
 * interrupted write, `: > admin-api-key`) started a service that no key could administer (every
 * request with any key: 401 "unknown API key", nothing in the log), and a short one ("changeme") was
 * accepted where ADMIN_API_KEY itself must have at least 16 characters. Now the start stops with a
 * paragraph naming the file, as it does for a SECRETS_KEY file it cannot use.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { resolveRuntimeSecrets } from '../../src/config/runtime-secrets.js';
import { StartupError } from '../../src/store/embedded-redis.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'syndicast-secrets-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const resolveIn = () => resolveRuntimeSecrets(loadConfig({ DATA_DIR: dir }));

test('a fresh data dir gets an admin key of at least 16 characters, used again on the next start', () => {
  const first = resolveIn();
  expect(first.adminApiKey.length).toBeGreaterThanOrEqual(16);
  expect(readFileSync(join(dir, 'admin-api-key'), 'utf8').trim()).toBe(first.adminApiKey);
  expect(resolveIn().adminApiKey).toBe(first.adminApiKey);
});

test.each([
  ['empty', ''],
  ['blank', '  \n'],
  ['short', 'changeme\n'],
])('an admin-api-key file that is %s stops the start, naming the file and what to do', (_what, content) => {
  resolveIn(); // the secrets key file exists
  writeFileSync(join(dir, 'admin-api-key'), content, { mode: 0o600 });
  let err: unknown;
  try {
    resolveIn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StartupError);
  expect((err as Error).message).toContain(join(dir, 'admin-api-key'));
  expect((err as Error).message).toMatch(/at least 16 characters/);
});

test('a replaced file of 16 characters or more is the admin key', () => {
  resolveIn();
  writeFileSync(join(dir, 'admin-api-key'), 'my-own-admin-key-0123\n', { mode: 0o600 });
  expect(resolveIn().adminApiKey).toBe('my-own-admin-key-0123');
});

test.each([
  ['an inner space', 'my own admin key 0123\n'],
  ['a second line', 'my-own-admin-key-0123\nsecond-line\n'],
  ['a tab', 'my-own-admin\tkey-0123\n'],
])('an admin-api-key file whose key has %s stops the start (Bearer <key> could never carry it)', (_what, content) => {
  resolveIn();
  writeFileSync(join(dir, 'admin-api-key'), content, { mode: 0o600 });
  let err: unknown;
  try {
    resolveIn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StartupError);
  expect((err as Error).message).toContain(join(dir, 'admin-api-key'));
  expect((err as Error).message).toMatch(/whitespace/);
});

test.each([
  ['a space', 'abcdefgh ijklmnopq'],
  ['a tab', 'abcdefgh\tijklmnopq'],
  ['a line break', 'abcdefghijklmnop\nqrst'],
])('ADMIN_API_KEY with %s in it stops the start, naming the variable (it could never be sent after "Bearer")', (_what, key) => {
  expect(() => loadConfig({ DATA_DIR: dir, ADMIN_API_KEY: key })).toThrow(/ADMIN_API_KEY must not contain whitespace/);
});

test('an ADMIN_API_KEY of 16 characters or more without whitespace is taken as it is', () => {
  expect(loadConfig({ DATA_DIR: dir, ADMIN_API_KEY: 'abcdefghijklmnop-_.~' }).adminApiKey).toBe('abcdefghijklmnop-_.~');
});
