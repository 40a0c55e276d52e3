/** SHUTDOWN_DRAIN_MS: 1 s by default, 0 allowed, at most half of SHUTDOWN_TIMEOUT_MS (it is part of it). */
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('the drain defaults to 1 s; 0 and up to half of the shutdown timeout are taken', () => {
  expect(load({}).shutdownDrainMs).toBe(1000);
  expect(load({ SHUTDOWN_DRAIN_MS: '0' }).shutdownDrainMs).toBe(0);
  expect(load({ SHUTDOWN_DRAIN_MS: '12500' }).shutdownDrainMs).toBe(12500);
  expect(load({ SHUTDOWN_DRAIN_MS: '15000', SHUTDOWN_TIMEOUT_MS: '30000' }).shutdownDrainMs).toBe(15000);
});

test('a drain longer than half of the shutdown timeout, or negative, is refused, naming the variable', () => {
  expect(() => load({ SHUTDOWN_DRAIN_MS: '12501' })).toThrow(ConfigError);
  expect(() => load({ SHUTDOWN_DRAIN_MS: '1000', SHUTDOWN_TIMEOUT_MS: '1000' })).toThrow(/SHUTDOWN_DRAIN_MS.*half of SHUTDOWN_TIMEOUT_MS/);
  expect(() => load({ SHUTDOWN_DRAIN_MS: '-1' })).toThrow(/SHUTDOWN_DRAIN_MS/);
});
