/**
 * SSRF guard, table-driven over every range the guard lists (issue 13): the first, the last and an
 * inside address of each range are refused, in every spelling that reaches the same host — plain,
 * IPv4-mapped IPv6 (dotted and hex), IPv4-translated (::ffff:0:a.b.c.d), 6to4 (2002::/16),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), Teredo (2001::/32) and as a URL — and the addresses just
 * outside each IPv4 range are not (so a mask that is too wide fails as well as a missing range).
 * The table is written out here on purpose: deleting a range from src/lib/ssrf.ts must fail a test.
 */
import { assertPublicDestination, DestinationRefusedError, isPrivateAddress } from '../../src/lib/ssrf.js';

/** The ranges src/lib/ssrf.ts refuses, with why (IANA special-purpose registries). */
const IPV4_RANGES: [cidr: string, what: string][] = [
  ['0.0.0.0/8', '"this network"'],
  ['10.0.0.0/8', 'private (RFC 1918)'],
  ['100.64.0.0/10', 'carrier-grade NAT (RFC 6598)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private (RFC 1918)'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.88.99.0/24', '6to4 relay anycast (RFC 3068, deprecated by RFC 7526): a relay forwards it on'],
  ['192.168.0.0/16', 'private (RFC 1918)'],
  ['198.18.0.0/15', 'benchmarking (RFC 2544)'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved, and broadcast'],
];
const IPV6_RANGES: [cidr: string, what: string][] = [
  ['::/96', 'unspecified, loopback and IPv4-compatible ::a.b.c.d (deprecated; reaches the IPv4 address)'],
  ['fc00::/7', 'unique local'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
  ['64:ff9b::/96', 'NAT64 well-known prefix (reaches any IPv4 address, private ones included)'],
  ['64:ff9b:1::/48', 'local-use NAT64 (RFC 8215)'],
  ['2001::/32', 'Teredo (RFC 4380): tunnels through a relay to an IPv4 host, a private one included'],
];

const v4ToInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const intToV4 = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

function v6ToBig(ip: string): bigint {
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n);
}
const bigToV6 = (n: bigint): string => Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16)).join(':');

function v4Edges(cidr: string): { first: string; last: string; inside: string; before?: string; after?: string } {
  const [net, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  const first = v4ToInt(net);
  const last = first + size - 1;
  return {
    first: intToV4(first),
    last: intToV4(last),
    inside: intToV4(first + Math.floor(size / 2) + 1 > last ? first : first + Math.floor(size / 2) + 1),
    ...(first > 0 ? { before: intToV4(first - 1) } : {}),
    ...(last < 2 ** 32 - 1 ? { after: intToV4(last + 1) } : {}),
  };
}

function v6Edges(cidr: string): { first: string; last: string; inside: string } {
  const [net, bits] = cidr.split('/') as [string, string];
  const size = 1n << BigInt(128 - Number(bits));
  const first = v6ToBig(net);
  const last = first + size - 1n;
  return { first: bigToV6(first), last: bigToV6(last), inside: bigToV6(size > 2n ? first + size / 2n + 1n : first) };
}

const inAnyV4Range = (ip: string): boolean =>
  IPV4_RANGES.some(([cidr]) => {
    const e = v4Edges(cidr);
    const n = v4ToInt(ip);
    return n >= v4ToInt(e.first) && n <= v4ToInt(e.last);
  });

/**
 * Every way to write an IPv4 address as IPv6 that reaches it and is judged by that IPv4 address:
 * IPv4-mapped, IPv4-translated (SIIT) and 6to4. (IPv4-compatible and NAT64 forms are refused whatever
 * the IPv4 address: see the IPv6 ranges.)
 */
function v6Spellings(v4: string): string[] {
  const n = v4ToInt(v4);
  const hex = `${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
  return [
    `::ffff:${v4}`,
    `::ffff:${hex}`,
    `0:0:0:0:0:ffff:${v4}`,
    `0:0:0:0:0:ffff:${hex}`,
    `::FFFF:${hex.toUpperCase()}`,
    `::ffff:0:${v4}`,
    `::ffff:0:${hex}`,
    `0:0:0:0:ffff:0:${v4}`,
    `0:0::ffff:0:${v4}`,
    `0::ffff:${hex}`,
    `2002:${hex}::`,
    `2002:${hex}:1:2:3:4:5`,
    `2002:${hex}::${v4}`,
  ];
}

describe.each(IPV4_RANGES)('%s (%s)', (cidr) => {
  const e = v4Edges(cidr);
  test.each([
    ['first', e.first],
    ['last', e.last],
    ['inside', e.inside],
  ])('%s address %s is refused, also IPv4-mapped, -translated, -compatible, as 6to4, as NAT64 and in a URL', async (_which, ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
    for (const s of v6Spellings(ip)) expect([s, isPrivateAddress(s)]).toEqual([s, true]);
    expect(isPrivateAddress(`64:ff9b::${ip}`)).toBe(true);
    expect(isPrivateAddress(`64:ff9b:1::${ip}`)).toBe(true);
    expect(isPrivateAddress(`::${ip}`)).toBe(true);
    await expect(assertPublicDestination(`http://[::ffff:0:${ip}]/hook`, false)).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(assertPublicDestination(`http://[::${ip}]/hook`, false)).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(assertPublicDestination(`http://${ip}:8080/hook`, false)).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(assertPublicDestination(`http://[::ffff:${ip}]/hook`, false)).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(assertPublicDestination(`http://[64:ff9b::${ip}]/hook`, false)).rejects.toBeInstanceOf(DestinationRefusedError);
  });

  const outside = [e.before, e.after].filter((ip): ip is string => ip !== undefined && !inAnyV4Range(ip));
  if (outside.length) {
    test.each(outside)('just outside: %s is allowed, also IPv4-mapped (the mask is not too wide)', async (ip) => {
      expect(isPrivateAddress(ip)).toBe(false);
      for (const s of v6Spellings(ip)) expect([s, isPrivateAddress(s)]).toEqual([s, false]);
      await expect(assertPublicDestination(`http://${ip}/hook`, false)).resolves.toBeUndefined();
    });
  }
});

describe.each(IPV6_RANGES)('%s (%s)', (cidr) => {
  const e = v6Edges(cidr);
  test.each([
    ['first', e.first],
    ['last', e.last],
    ['inside', e.inside],
  ])('%s address %s is refused, also in a URL', async (_which, ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
    await expect(assertPublicDestination(`http://[${ip}]:8443/hook`, false)).rejects.toBeInstanceOf(DestinationRefusedError);
  });
});

test('NAT64 of a public IPv4 address is refused too (the whole /96 is refused); just past the /96 it is not', () => {
  expect(isPrivateAddress('64:ff9b::8.8.8.8')).toBe(true);
  expect(isPrivateAddress('64:ff9b::808:808')).toBe(true);
  expect(isPrivateAddress('64:ff9b::1:0:0')).toBe(false);
  expect(isPrivateAddress('64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(false);
});

test('local-use NAT64 (64:ff9b:1::/48) is refused whole; just outside it is not', () => {
  expect(isPrivateAddress('64:ff9b:1::8.8.8.8')).toBe(true);
  expect(isPrivateAddress('64:ff9b:0:ffff:ffff:ffff:ffff:ffff')).toBe(false);
  expect(isPrivateAddress('64:ff9b:2::')).toBe(false);
});

test('IPv4-compatible ::a.b.c.d is refused for any IPv4 address (the whole ::/96); just past it is not', () => {
  expect(isPrivateAddress('::8.8.8.8')).toBe(true);
  expect(isPrivateAddress('::808:808')).toBe(true);
  expect(isPrivateAddress('::1:0:0')).toBe(false);
});

test('6to4 and IPv4-translated forms of a public IPv4 address are allowed; the prefixes next to them are not mistaken for them', () => {
  expect(isPrivateAddress('2002:808:808::1')).toBe(false);
  expect(isPrivateAddress('::ffff:0:8.8.8.8')).toBe(false);
  // 2001:a00:1:: and 2003:a00:1:: are not 6to4: they do not embed 10.0.0.1.
  expect(isPrivateAddress('2001:a00:1::')).toBe(false);
  expect(isPrivateAddress('2003:a00:1::')).toBe(false);
  // neither IPv4-mapped nor IPv4-translated, though close to both:
  expect(isPrivateAddress('0:0:0:1:ffff:0:a00:1')).toBe(false);
  expect(isPrivateAddress('::ffff:1:a00:1')).toBe(false);
  expect(isPrivateAddress('0:0:0:0:1:ffff:a00:1')).toBe(false);
});

test('Teredo is refused whole, also with a public server and client; the prefixes next to it are not', async () => {
  // 2001:0:<server 4.2.2.2>:<flags>:<port>:<client 8.8.8.8 XOR ffff:ffff>
  expect(isPrivateAddress('2001:0:402:202:8000:f227:f7f7:f7f7')).toBe(true);
  // client 10.0.0.1 behind the relay (obfuscated f5ff:fffe)
  expect(isPrivateAddress('2001:0:402:202::f5ff:fffe')).toBe(true);
  await expect(assertPublicDestination('https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook', false)).rejects.toBeInstanceOf(DestinationRefusedError);
  expect(isPrivateAddress('2001:1::1')).toBe(false);
  expect(isPrivateAddress('2001:4860:4860::8888')).toBe(false);
});

test('the 6to4 relay anycast is refused as IPv4 and in its 6to4 spelling', async () => {
  expect(isPrivateAddress('192.88.99.1')).toBe(true);
  expect(isPrivateAddress('2002:c058:6301::1')).toBe(true);
  await expect(assertPublicDestination('http://192.88.99.1/hook', false)).rejects.toBeInstanceOf(DestinationRefusedError);
  await expect(assertPublicDestination('http://[::ffff:192.88.99.1]/hook', false)).rejects.toBeInstanceOf(DestinationRefusedError);
});

test('a zone id does not hide the address', () => {
  expect(isPrivateAddress('fe80::1%eth0')).toBe(true);
  expect(isPrivateAddress('::ffff:10.0.0.1%eth0')).toBe(true);
  expect(isPrivateAddress('2002:a00:1::1%1')).toBe(true);
});

test('the helpers above compute what they claim (so the table tests the right addresses)', () => {
  expect(v4Edges('198.18.0.0/15')).toEqual({ first: '198.18.0.0', last: '198.19.255.255', inside: '198.19.0.1', before: '198.17.255.255', after: '198.20.0.0' });
  expect(v6Edges('64:ff9b::/96')).toEqual({ first: '64:ff9b:0:0:0:0:0:0', last: '64:ff9b:0:0:0:0:ffff:ffff', inside: '64:ff9b:0:0:0:0:8000:1' });
  expect(v6Edges('::/96')).toEqual({ first: '0:0:0:0:0:0:0:0', last: '0:0:0:0:0:0:ffff:ffff', inside: '0:0:0:0:0:0:8000:1' });
  expect(v6Spellings('10.0.0.1')).toEqual(expect.arrayContaining(['::ffff:0:10.0.0.1', '2002:a00:1::']));
  expect(v6Spellings('169.254.169.254')).toContain('::ffff:a9fe:a9fe');
});
