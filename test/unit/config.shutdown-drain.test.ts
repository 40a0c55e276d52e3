/** SHUTDOWN_DRAIN_MS: 1 s by default, 0 allowed, at most half of SHUTDOWN_TIMEOUT_MS (it is part of it). */
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { APP_CLOSE_GRACE_MS, appCloseGraceMs } from '../../src/main/process.js';

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

/**
 * The wait for unfinished requests at close (src/main/process.ts closeApp) is part of the shutdown's
 * grace too: 5 s, or a quarter of SHUTDOWN_TIMEOUT_MS when that is shorter. A fixed 5 s under a 4 s
 * shutdown timeout would let one slow client hold the close past it: the process killed (exit 1), the
 * workers never handing their jobs back.
 */
test('the close waits for unfinished requests at most a quarter of the shutdown timeout, and at most 5 s', () => {
  expect(APP_CLOSE_GRACE_MS).toBe(5000);
  expect(appCloseGraceMs(load({}).shutdownTimeoutMs)).toBe(5000);
  expect(appCloseGraceMs(20_000)).toBe(5000);
  expect(appCloseGraceMs(8_000)).toBe(2000);
  // The shortest shutdown timeout taken (with no drain).
  const shortest = load({ SHUTDOWN_TIMEOUT_MS: '1000', SHUTDOWN_DRAIN_MS: '0' }).shutdownTimeoutMs;
  expect(appCloseGraceMs(shortest)).toBe(250);
});
