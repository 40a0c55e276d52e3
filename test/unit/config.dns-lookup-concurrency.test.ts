/** DNS_LOOKUP_CONCURRENCY: system DNS lookups in flight in the process (src/lib/ssrf.ts), 2 by default, at least 1. */
import { ConfigError, loadConfig } from '../../src/config/config.js';

test('DNS lookups in flight: 2 by default, any whole number from 1, anything else stops the start naming the variable', () => {
  const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');
  expect(load({}).dnsLookupConcurrency).toBe(2);
  expect(load({ DNS_LOOKUP_CONCURRENCY: '1' }).dnsLookupConcurrency).toBe(1);
  expect(load({ DNS_LOOKUP_CONCURRENCY: '3' }).dnsLookupConcurrency).toBe(3);
  for (const bad of ['0', '-1', '1.5', 'two']) {
    expect(() => load({ DNS_LOOKUP_CONCURRENCY: bad })).toThrow(ConfigError);
    expect(() => load({ DNS_LOOKUP_CONCURRENCY: bad })).toThrow(/DNS_LOOKUP_CONCURRENCY/);
  }
});
