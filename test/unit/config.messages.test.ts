/**
 * A value of the wrong kind stops the start with one line that names the variable, says what it must
 * be and shows what was given (README "Configuration"). zod's own words were "PORT: Invalid input:
 * expected number, received NaN" for PORT=abc (the NaN its coercion made, not the value set) and
 * "REDIS_WAIT_REPLICAS: Invalid input" for a word it does not take.
 */
import { ConfigError, loadConfig, loadSimConfig } from '../../src/config/config.js';

const message = (env: Record<string, string>): string => {
  try {
    loadConfig(env, '/nonexistent');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(env)} was taken`);
};

test.each([
  [{ PORT: 'abc' }, 'PORT: must be a number (got "abc")'],
  [{ PLATFORM_TIMEOUT_MS: '10s' }, 'PLATFORM_TIMEOUT_MS: must be a number (got "10s")'],
  [{ SYNC_SHARDS: '1.5' }, 'SYNC_SHARDS: must be a whole number (got "1.5")'],
  [{ PORT: '0x10' }, 'PORT: must be a number (got "0x10")'],
  [{ SYNC_SHARDS: '0b11' }, 'SYNC_SHARDS: must be a number (got "0b11")'],
  [{ WORKER_CONCURRENCY: '0o7' }, 'WORKER_CONCURRENCY: must be a number (got "0o7")'],
  [{ SHUTDOWN_TIMEOUT_MS: 'Infinity' }, 'SHUTDOWN_TIMEOUT_MS: must be a number (got "Infinity")'],
  [{ REDIS_WAIT_REPLICAS: 'many' }, 'REDIS_WAIT_REPLICAS: must be one of: auto, a number (got "many")'],
  [{ ALLOW_PRIVATE_DESTINATIONS: 'maybe' }, 'ALLOW_PRIVATE_DESTINATIONS: must be one of: 0, 1, true, false, yes, no (got "maybe")'],
])('%j stops the start with one plain line', (env, line) => {
  expect(message(env)).toBe(`invalid configuration:\n  ${line}`);
});

test('every bad key is on its own line, and the other messages stay as they were', () => {
  expect(message({ PORT: 'abc', WORKER_CONCURRENCY: 'x', LOG_LEVEL: 'loud' }).split('\n')).toEqual([
    'invalid configuration:',
    '  PORT: must be a number (got "abc")',
    '  LOG_LEVEL: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"',
    '  WORKER_CONCURRENCY: must be a number (got "x")',
  ]);
});

// A value of spaces or tabs only was read as 0 by the number coercion: PORT=' ' listened on any free
// port, COMMISSION_HOLD_DAYS=' ' approved commission at once, SIM_PORT=' ' likewise.
test.each([
  [{ PORT: ' ' }, 'PORT'],
  [{ RELAY_RTMP_PORT: '\t' }, 'RELAY_RTMP_PORT'],
  [{ COMMISSION_HOLD_DAYS: '  ' }, 'COMMISSION_HOLD_DAYS'],
  [{ SYNC_TARGET_CONCURRENCY: ' ' }, 'SYNC_TARGET_CONCURRENCY'],
  [{ DATA_DIR: ' ' }, 'DATA_DIR'],
])('%j (blank) stops the start naming the variable', (env, name) => {
  expect(message(env)).toBe(`invalid configuration:\n  ${name}: is blank (only whitespace): give a value, or leave it empty or unset for the default`);
});

test('a blank value is named with the other bad ones; an empty one is still unset', () => {
  expect(message({ PORT: ' ', WORKER_CONCURRENCY: 'x', LOG_LEVEL: '' }).split('\n')).toEqual([
    'invalid configuration:',
    '  PORT: is blank (only whitespace): give a value, or leave it empty or unset for the default',
    '  WORKER_CONCURRENCY: must be a number (got "x")',
  ]);
  expect(loadConfig({ PORT: '' }, '/nonexistent').port).toBe(3000);
});

test('SIM_PORT blank, or a port not in decimal, stops npm run sim naming it', () => {
  expect(() => loadSimConfig({ SIM_PORT: ' ' })).toThrow('SIM_PORT: is blank (only whitespace)');
  expect(loadSimConfig({ SIM_PORT: '' }).port).toBe(4100);
  expect(() => loadSimConfig({ SIM_PORT: '0x10' })).toThrow('SIM_PORT: must be a number (got "0x10")');
  expect(() => loadSimConfig({ SIM_RTMP_PORT: '0b11' })).toThrow('SIM_RTMP_PORT: must be a number (got "0b11")');
});

test('PLATFORM_TIMEOUTS_MS: platform=milliseconds, each platform once, each at most PLATFORM_TIMEOUT_MS', () => {
  expect(loadConfig({ PLATFORM_TIMEOUTS_MS: 'youtube=3000,tiktok=500' }, '/nonexistent').platformTimeoutsMs).toEqual({ youtube: 3000, tiktok: 500 });
  expect(loadConfig({}, '/nonexistent').platformTimeoutsMs).toBeUndefined();
  expect(message({ PLATFORM_TIMEOUTS_MS: 'myspace=3000' })).toMatch(/^invalid configuration:\n {2}PLATFORM_TIMEOUTS_MS: must be a comma-separated list of platform=milliseconds .*each platform one of youtube, tiktok, whatnot, bambuser, facebook$/);
  expect(message({ PLATFORM_TIMEOUTS_MS: 'youtube=3000,youtube=2000' })).toBe('invalid configuration:\n  PLATFORM_TIMEOUTS_MS: each platform at most once');
  expect(message({ PLATFORM_TIMEOUTS_MS: 'youtube=99' })).toBe("invalid configuration:\n  PLATFORM_TIMEOUTS_MS: each timeout at least 100 (PLATFORM_TIMEOUT_MS's least)");
  expect(message({ PLATFORM_TIMEOUT_MS: '5000', PLATFORM_TIMEOUTS_MS: 'youtube=5000,tiktok=5001' })).toMatch(/^invalid configuration:\n {2}PLATFORM_TIMEOUTS_MS: tiktok=5001 is more than PLATFORM_TIMEOUT_MS \(5000\);/);
});

// Only the scheme was checked: `rtmp://` or a port past 65535 started the service, and every partner was
// handed a publish address (RELAY_PUBLIC_URL), or every relay process an edge (RELAY_EDGE_INTERNAL_URL), that reaches nobody.
test.each([
  ['RELAY_PUBLIC_URL', 'rtmp://h:99999/live'],
  ['RELAY_PUBLIC_URL', 'rtmp://h:abc/live'],
  ['RELAY_PUBLIC_URL', 'rtmps://h:0/live'],
  ['RELAY_EDGE_INTERNAL_URL', 'rtmp://h:65536/live'],
  ['RELAY_EDGE_INTERNAL_URL', 'rtmp://127.0.0.1:0/live'],
])('%s=%s (no port 1 to 65535) stops the start naming it', (name, value) => {
  expect(message({ [name]: value })).toBe(`invalid configuration:\n  ${name}: must name a host, and a port of 1 to 65535 if it gives one (rtmp://host:1935/live)`);
});
test.each([
  ['RELAY_EDGE_INTERNAL_URL', 'rtmp://'],
  ['RELAY_EDGE_INTERNAL_URL', 'rtmp:// x/live'],
])('%s=%j (no host) stops the start naming it', (name, value) => {
  expect(message({ [name]: value })).toBe(`invalid configuration:\n  ${name}: must be an rtmp:// URL`);
});
test('the RTMP URLs the docs and tests use stay taken', () => {
  const c = loadConfig({ RELAY_PUBLIC_URL: 'rtmps://live.example.com:443/live', RELAY_EDGE_INTERNAL_URL: 'rtmp://127.0.0.1:19350/live' }, '/nonexistent');
  expect([c.relayPublicUrl, c.relayEdgeInternalUrl]).toEqual(['rtmps://live.example.com:443/live', 'rtmp://127.0.0.1:19350/live']);
  expect(loadConfig({ RELAY_PUBLIC_URL: 'rtmp://relay.example.com/live', RELAY_EDGE_INTERNAL_URL: 'rtmp://[::1]:1935/live' }, '/nonexistent').relayEdgeInternalUrl).toBe('rtmp://[::1]:1935/live');
});

// A number setting is written in decimal as people write it: a sign, a point with or without digits on
// either side, an exponent in either case and with either sign. Each reads as the number it writes
// (only 0x…, 0b…, 0o…, Infinity and words are refused as no number, above); a negative or fractional
// one is a number refused for its value, not "must be a number".
test.each(['3000', '+3000', '3000.', '3000.0', '3e3', '3E3', '3.0e+3', '30000e-1', '.3e4', ' 3000 '])('PORT=%j is port 3000', (v) => {
  expect(loadConfig({ PORT: v }, '/nonexistent').port).toBe(3000);
});

test('a negative or fractional number is refused for its value, as a number', () => {
  expect(message({ PORT: '-1' })).toMatch(/^invalid configuration:\n {2}PORT: (?!must be a number)/);
  expect(message({ SYNC_SHARDS: '.5' })).toBe('invalid configuration:\n  SYNC_SHARDS: must be a whole number (got ".5")');
});

// Every port setting is a TCP port: 0 (any free port) to 65535, whole. One past it, or a fraction, stops
// the start naming the variable (listen() threw a RangeError at start-up, after the config said yes).
test.each(['PORT', 'RELAY_RTMP_PORT', 'METRICS_PORT'])('%s: 0 and 65535 are taken; 65536 and 1.5 stop the start naming it', (name) => {
  const key = { PORT: 'port', RELAY_RTMP_PORT: 'relayRtmpPort', METRICS_PORT: 'metricsPort' }[name] as 'port' | 'relayRtmpPort' | 'metricsPort';
  for (const v of ['0', '65535']) expect(loadConfig({ [name]: v }, '/nonexistent')[key]).toBe(Number(v));
  expect(message({ [name]: '65536' })).toBe(`invalid configuration:\n  ${name}: must be a TCP port, 0 to 65535`);
  expect(message({ [name]: '1.5' })).toBe(`invalid configuration:\n  ${name}: must be a whole number (got "1.5")`);
});

test.each(['SIM_PORT', 'SIM_RTMP_PORT'])('%s (npm run sim): 0 and 65535 are taken; 65536 and 1.5 stop it naming the variable', (name) => {
  const key = name === 'SIM_PORT' ? 'port' : 'rtmpPort';
  for (const v of ['0', '65535']) expect(loadSimConfig({ [name]: v })[key]).toBe(Number(v));
  expect(() => loadSimConfig({ [name]: '65536' })).toThrow(`${name}: must be a TCP port, 0 to 65535`);
  expect(() => loadSimConfig({ [name]: '1.5' })).toThrow(`${name}: must be a whole number (got "1.5")`);
});
