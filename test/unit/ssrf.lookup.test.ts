/**
 * The SSRF guard's DNS paths (src/lib/ssrf.ts), without the network: names that resolve locally (this
 * machine's own name, `localhost`), IP literals (dns.lookup answers them itself), names that do not
 * resolve, and credentials in URLs. The connect-time `publicOnlyLookup` is called as http.request
 * calls it, with and without `all`.
 */
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { assertPublicDestination, DestinationRefusedError, isPrivateAddress, publicOnlyLookup } from '../../src/lib/ssrf.js';

function lookupVia(host: string, all: boolean): Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }> {
  return new Promise((resolve) => publicOnlyLookup(host, all ? { all: true } : {}, (err, address, family) => resolve({ err, address, ...(family !== undefined ? { family } : {}) })));
}

describe('publicOnlyLookup (connect time)', () => {
  test('a public address passes, as one address or as the list `all` asks for', async () => {
    expect(await lookupVia('93.184.216.34', false)).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await lookupVia('93.184.216.34', true)).toEqual({ err: null, address: [{ address: '93.184.216.34', family: 4 }] });
  });

  test.each(['127.0.0.1', '10.1.2.3', 'localhost'])('%s is refused with EDESTREFUSED and says why', async (host) => {
    const { err, address } = await lookupVia(host, false);
    expect(err).toBeInstanceOf(DestinationRefusedError);
    expect(err?.code).toBe('EDESTREFUSED');
    expect(err?.message).toMatch(new RegExp(`^${host} resolves to a private, loopback or link-local address \\(`));
    expect(address).toBe('');
  });

  test('a name that does not resolve fails with the resolver’s error, not a refusal', async () => {
    const { err } = await lookupVia('no-such-host.invalid', false);
    expect(err).not.toBeNull();
    expect(err).not.toBeInstanceOf(DestinationRefusedError);
  });
});

describe('assertPublicDestination (configuration time)', () => {
  test("this machine's own name resolves to a private or loopback address: refused, naming it", async () => {
    const name = hostname();
    const addrs = (await lookup(name, { all: true })).map((a) => a.address);
    if (!addrs.every(isPrivateAddress)) return; // a machine with a public name has nothing to show here
    await expect(assertPublicDestination(`http://${name}:8080/hook`, false)).rejects.toThrow(new RegExp(`^${name} resolves to a private, loopback or link-local address \\(`));
  });

  test('*.localhost is refused as a loopback name before any lookup', async () => {
    await expect(assertPublicDestination('http://api.localhost/', false)).rejects.toThrow('api.localhost is a loopback name');
    await expect(assertPublicDestination('http://localhost:3000/', false)).rejects.toThrow('localhost is a loopback name');
  });

  test('a user name alone or a password alone in the URL is refused', async () => {
    await expect(assertPublicDestination('https://user@93.184.216.34/', true)).rejects.toThrow(/credentials/);
    await expect(assertPublicDestination('https://:secret@93.184.216.34/', true)).rejects.toThrow(/credentials/);
  });

  test('a name that does not resolve is refused as such', async () => {
    await expect(assertPublicDestination('http://no-such-host.invalid/', false)).rejects.toThrow('no-such-host.invalid does not resolve');
  });
});
