/**
 * TRUST_PROXY: whose X-Forwarded-* headers the API believes (Fastify's trustProxy). Default: a proxy on
 * this host only. Accepted: true, false, or a list of addresses, CIDRs and proxy-addr's range names;
 * anything else (a hop count, which Fastify 5 silently ignores, a typo, a /0) stops the start naming
 * the variable. Every accepted value is one Fastify takes.
 */
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('unset: loopback (a proxy on this host)', () => {
  expect(load({}).trustProxy).toEqual(['loopback']);
});

test.each([
  ['false', false],
  ['true', true],
  ['FALSE', false],
  ['loopback', ['loopback']],
  ['10.0.0.0/8, 192.168.1.5 ,::1', ['10.0.0.0/8', '192.168.1.5', '::1']],
  ['uniquelocal,linklocal', ['uniquelocal', 'linklocal']],
  ['fd00::/8', ['fd00::/8']],
  ['127.0.0.1/32', ['127.0.0.1/32']],
])('TRUST_PROXY=%s', (value, expected) => {
  const v = load({ TRUST_PROXY: value }).trustProxy;
  expect(v).toEqual(expected);
  // Fastify compiles it when the app is built: an accepted value never fails there.
  expect(() => Fastify({ trustProxy: v })).not.toThrow();
});

test.each(['1', '2', 'yes', 'foo', '10.0.0.0/33', '0.0.0.0/0', '::/0', '10.0.0.1,', '10.0.0.0/255.0.0.0', '300.1.1.1', 'localhost'])('TRUST_PROXY=%s stops the start, naming the variable', (value) => {
  expect(() => load({ TRUST_PROXY: value })).toThrow(ConfigError);
  expect(() => load({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY: /);
});

test('a hop count is refused with the reason', () => {
  expect(() => load({ TRUST_PROXY: '1' })).toThrow(/hop count/);
});

test('config/local.json may give a boolean; an empty TRUST_PROXY is unset', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syndicast-config-'));
  try {
    writeFileSync(join(dir, 'local.json'), JSON.stringify({ trustProxy: false }));
    expect(loadConfig({}, dir).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '' }, dir).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '10.1.2.3' }, dir).trustProxy).toEqual(['10.1.2.3']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
