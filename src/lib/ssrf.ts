/**
 * SSRF guard for URLs we call on a partner's say-so (outbound webhook endpoints, target base URLs):
 * loopback, private, link-local, CGNAT, multicast and unspecified addresses are refused — also when
 * a DNS name resolves there, and in IPv4-mapped IPv6 form — unless ALLOW_PRIVATE_DESTINATIONS.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

export class DestinationRefusedError extends Error {}

/** True when the literal IP address must not be called. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family === 6) {
    const lower = ip.toLowerCase();
    const mapped = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    if (mapped?.[1]) return blocked.check(mapped[1], 'ipv4');
    const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
    if (hexMapped?.[1] && hexMapped[2]) {
      const hi = parseInt(hexMapped[1], 16);
      const lo = parseInt(hexMapped[2], 16);
      return blocked.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
    }
    return blocked.check(ip, 'ipv6');
  }
  return true; // not an IP at all: refuse
}

/** Throws DestinationRefusedError unless `rawUrl` is an http(s) URL to a public address. */
export async function assertPublicDestination(rawUrl: string, allowPrivate: boolean): Promise<void> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new DestinationRefusedError('not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DestinationRefusedError('only http(s) URLs are allowed');
  if (url.username || url.password) throw new DestinationRefusedError('credentials in URLs are not allowed');
  if (allowPrivate) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) throw new DestinationRefusedError(`${host} is a loopback name`);
  const addrs = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true }).catch(() => [])).map((a) => a.address);
  if (addrs.length === 0) throw new DestinationRefusedError(`${host} does not resolve`);
  const bad = addrs.find(isPrivateAddress);
  if (bad) throw new DestinationRefusedError(`${host} resolves to a private, loopback or link-local address (${bad})`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
/** dns.lookup with `all: true` (injectable: tests map names to loopback with it). */
export type Resolver = (hostname: string, options: LookupOptions & { all: true }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/** A refusal as a connection error: `code` EDESTREFUSED (axios keeps it as `err.code`). */
export function destinationRefused(message: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new DestinationRefusedError(message);
  err.code = 'EDESTREFUSED';
  return err;
}

/**
 * A `lookup` for http(s).request / net.connect that resolves with `resolver` but refuses a name with
 * any private, loopback or link-local address. The connection goes to the address checked here, so
 * a DNS answer that changes between a configuration-time check and connect (DNS rebinding) cannot
 * slip through. (Node skips `lookup` for IP literals: see src/lib/destination-guard.ts.)
 */
export function guardedLookup(resolver: Resolver): (hostname: string, options: LookupOptions, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    resolver(hostname, { ...options, all: true }, (err, addrs) => {
      if (err) return callback(err, '');
      const bad = addrs.find((a) => isPrivateAddress(a.address));
      if (bad || addrs.length === 0) {
        return callback(destinationRefused(bad ? `${hostname} resolves to a private, loopback or link-local address (${bad.address})` : `${hostname} does not resolve`), '');
      }
      if (options.all) return callback(null, addrs);
      const first = addrs[0]!;
      return callback(null, first.address, first.family);
    });
  };
}

/** guardedLookup over the system resolver (outbound webhooks). */
export const publicOnlyLookup = guardedLookup((hostname, options, callback) => dnsLookup(hostname, options, callback));
