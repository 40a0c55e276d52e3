/**
 * A REDIS_URL ioredis cannot read stops the start with the configuration message naming REDIS_URL
 * (README "Configuration": a bad value stops the process with one message that names every bad key).
 * Before, a port past 65535, a letter for the port or an unclosed IPv6 bracket passed the check (it
 * looked only at the scheme) and ioredis threw ERR_INVALID_URL with a stack trace; a database that is
 * no number (`/abc`) was sent as `SELECT NaN` and the start died on that Redis error's stack trace.
 */
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('a REDIS_URL that is no URL, or whose database is no number, is refused at start, naming the variable', () => {
  for (const bad of ['redis://127.0.0.1:99999', 'redis://127.0.0.1:abc', 'redis://[::1', 'redis://127.0.0.1:6379/abc', 'redis://127.0.0.1:6379/-1', 'redis://127.0.0.1:6379/0/1', 'rediss://h:6380?db=x']) {
    expect(() => load({ REDIS_URL: bad })).toThrow(ConfigError);
    expect(() => load({ REDIS_URL: bad })).toThrow(/^ {2}REDIS_URL: /m);
  }
});

test('the URLs ioredis reads are taken as they are', () => {
  for (const good of ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/', 'redis://127.0.0.1:6379/2', 'rediss://user:pw@redis.example.com:6380/0', 'redis://:pw@[::1]:6379', 'redis://redis', 'redis://h:6379?db=3&family=6']) {
    expect(load({ REDIS_URL: good }).redisUrl).toBe(good);
  }
});

test('a REDIS_URL without its scheme (127.0.0.1:6379) is one mistake, said in one line', () => {
  for (const bad of ['127.0.0.1:6379', 'localhost', 'http://127.0.0.1:6379']) {
    let message = '';
    try {
      load({ REDIS_URL: bad });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.match(/^ {2}REDIS_URL: .*$/gm)).toEqual(['  REDIS_URL: must be a redis:// or rediss:// URL (for example redis://127.0.0.1:6379)']);
  }
});

// `REDIS_URL=redis://${REDIS_HOST}` with the variable unset: ioredis took its default host, 127.0.0.1:6379.
test.each(['redis://', 'rediss://', 'redis:///2', 'redis://?db=1'])('%s names no host: refused at start, naming REDIS_URL', (bad) => {
  expect(() => load({ REDIS_URL: bad })).toThrow(ConfigError);
  expect(() => load({ REDIS_URL: bad })).toThrow(/^ {2}REDIS_URL: names no host \(redis:\/\/host:6379\)/m);
});
