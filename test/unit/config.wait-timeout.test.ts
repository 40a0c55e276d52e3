/** REDIS_WAIT_TIMEOUT_MS: 10–1500 ms, refused at start beyond (the API's Redis commands time out at 2 s). */
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('the WAIT timeout defaults to 500 ms and takes 10–1500', () => {
  expect(load({}).redisWaitTimeoutMs).toBe(500);
  expect(load({ REDIS_WAIT_TIMEOUT_MS: '10' }).redisWaitTimeoutMs).toBe(10);
  expect(load({ REDIS_WAIT_TIMEOUT_MS: '1500' }).redisWaitTimeoutMs).toBe(1500);
});

test('a WAIT timeout the command timeout would cut short is refused, naming the variable', () => {
  expect(() => load({ REDIS_WAIT_TIMEOUT_MS: '2000' })).toThrow(ConfigError);
  expect(() => load({ REDIS_WAIT_TIMEOUT_MS: '1501' })).toThrow(/REDIS_WAIT_TIMEOUT_MS.*at most 1500/);
  expect(() => load({ REDIS_WAIT_TIMEOUT_MS: '5' })).toThrow(/REDIS_WAIT_TIMEOUT_MS/);
});
