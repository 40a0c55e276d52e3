/**
 * SSRF guard (src/lib/ssrf.ts): private, loopback, link-local and unspecified addresses — also in
 * IPv4-mapped IPv6 and the other spellings URL parsing normalizes — are refused unless allowPrivate.
 * No test here needs DNS to reach the network.
 */
import { assertPublicDestination, DestinationRefusedError, isPrivateAddress } from '../../src/lib/ssrf.js';

describe('isPrivateAddress', () => {
  test.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '192.168.255.255',
    '169.254.169.254',
    '169.254.0.1',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'FE80::abcd',
    'fc00::1',
    'fd12:3456:789a::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.1.2.3',
    '::ffff:a9fe:a9fe',
    '::FFFF:C0A8:0101',
    '0:0:0:0:0:ffff:127.0.0.1',
  ])('%s is private', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  test.each(['93.184.216.34', '8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '192.167.1.1', '11.0.0.1', '169.255.0.1', '2606:2800:220:1:248:1893:25c8:1946', '2001:4860:4860::8888', '::ffff:93.184.216.34', '::ffff:5db8:d822'])(
    '%s is public',
    (ip) => {
      expect(isPrivateAddress(ip)).toBe(false);
    },
  );

  test('anything that is not an IP literal is refused', () => {
    expect(isPrivateAddress('localhost')).toBe(true);
    expect(isPrivateAddress('example.com')).toBe(true);
    expect(isPrivateAddress('')).toBe(true);
    expect(isPrivateAddress('999.1.1.1')).toBe(true);
  });
});

describe('assertPublicDestination', () => {
  const refused = async (url: string, allowPrivate = false): Promise<string> => {
    try {
      await assertPublicDestination(url, allowPrivate);
    } catch (err) {
      expect(err).toBeInstanceOf(DestinationRefusedError);
      return (err as Error).message;
    }
    throw new Error(`${url} was not refused`);
  };

  test.each([
    'http://localhost/',
    'http://LOCALHOST:3000/x',
    'http://api.localhost/',
    'http://127.0.0.1/',
    'http://127.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://0/',
    'http://10.0.0.7:8080/hook',
    'http://169.254.169.254/latest/meta-data/',
    'https://192.168.1.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[fe80::1]/',
    'http://[fc00::1]/',
  ])('%s is refused', async (url) => {
    expect(await refused(url)).toMatch(/loopback|private|link-local/);
  });

  test('the same URLs pass when private destinations are allowed', async () => {
    for (const url of ['http://localhost/', 'http://127.0.0.1:4100/youtube', 'http://[::1]/', 'http://10.0.0.7/']) {
      await expect(assertPublicDestination(url, true)).resolves.toBeUndefined();
    }
  });

  test('public IP literals pass', async () => {
    await expect(assertPublicDestination('https://93.184.216.34/hook', false)).resolves.toBeUndefined();
    await expect(assertPublicDestination('http://[2606:2800:220:1:248:1893:25c8:1946]:8443/', false)).resolves.toBeUndefined();
  });

  test('non-http schemes, credentials in the URL and garbage are refused even with allowPrivate', async () => {
    expect(await refused('ftp://93.184.216.34/', true)).toMatch(/http/);
    expect(await refused('file:///etc/passwd', true)).toMatch(/http/);
    expect(await refused('gopher://127.0.0.1:6379/_PING', true)).toMatch(/http/);
    expect(await refused('https://user:pw@93.184.216.34/', true)).toMatch(/credentials/);
    expect(await refused('not a url', true)).toMatch(/valid/);
  });

  test('port 0 is refused, also with allowPrivate: nothing listens there (an endpoint or baseUrl on it only ever fails)', async () => {
    expect(await refused('https://93.184.216.34:0/hook', true)).toMatch(/port 0/);
    expect(await refused('http://example.com:00/hook', false)).toMatch(/port 0/);
    await expect(assertPublicDestination('https://93.184.216.34:8443/hook', false)).resolves.toBeUndefined();
  });

  test('a name that does not resolve is refused', async () => {
    expect(await refused('http://no-such-host.invalid/')).toMatch(/resolve|private/);
  });
});
