/**
 * SSRF guard for URLs we call on a partner's say-so (outbound webhook endpoints, target base URLs):
 * loopback, private, link-local, CGNAT, multicast and unspecified addresses are refused — also when
 * a DNS name resolves there, and in every IPv6 form that carries an IPv4 address (IPv4-mapped,
 * IPv4-translated, IPv4-compatible, 6to4, NAT64, Teredo), and the 6to4 relay anycast 192.88.99.0/24 —
 * unless ALLOW_PRIVATE_DESTINATIONS.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AppError } from './errors.js';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  // 6to4 relay anycast (RFC 3068, deprecated by RFC 7526): whatever relay the route reaches
  // decapsulates and forwards, so its destination is not the public host it seems to be.
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1)
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): reaches whatever IPv4 the operator maps it to
  // Teredo (RFC 4380): a tunnel through a relay to an IPv4 host (the client address, obfuscated in the
  // last 32 bits, may be a private one behind the relay's NAT): refused whole, like NAT64.
  ['2001::', 32],
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

export class DestinationRefusedError extends Error {}

/**
 * The name could not be looked up now (resolver unreachable, timed out, SERVFAIL: EAI_AGAIN, EAI_FAIL,
 * ETIMEOUT, …), which says nothing about the URL: a 503 with Retry-After where an API call checks
 * one, a failed attempt (retried) for a delivery. It used to be "does not resolve", a 400 that told an
 * operator to fix a URL that was fine.
 */
export class DestinationLookupError extends AppError {
  constructor(host: string, code: string) {
    super(503, 'Service Unavailable', `${host} could not be looked up now (DNS ${code}): retry later`, undefined, { 'retry-after': '5' });
  }
}

/** lookup errors that answer the question: the name has no address (or is no host name at all). */
const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA', 'EINVAL', 'EBADNAME']);

/**
 * How long assertPublicDestination waits for a DNS answer: a name server that does not answer is a
 * lookup that cannot be made now (DestinationLookupError, code ETIMEOUT: 503 with Retry-After for an
 * API call), not a request left hanging for as long as the system resolver keeps trying.
 */
export const DESTINATION_LOOKUP_TIMEOUT_MS = 5_000;

/** The lookup, or a DestinationLookupError (ETIMEOUT) once `timeoutMs` passed without an answer. */
function lookupWithin(host: string, timeoutMs: number, owner: string | undefined): Promise<{ address: string }[]> {
  let timer: NodeJS.Timeout | undefined;
  const answer = sharedLookup(host, owner, timeoutMs);
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error(`lookup of ${host} timed out`), { code: 'ETIMEOUT' })), timeoutMs)));
  return Promise.race([answer, deadline]).finally(() => clearTimeout(timer));
}

/** The system DNS lookup behind sharedLookup (getaddrinfo: /etc/hosts, then DNS; tests swap in one that fails on purpose). */
export const hostLookup = {
  lookup: (host: string): Promise<{ address: string }[]> => lookup(host, { all: true, verbatim: true }),
};

/**
 * How many system lookups one owner (a partner) may have in flight. A system lookup cannot be
 * cancelled: it keeps one of libuv's threadpool threads (4 by default, shared with fs and crypto) until
 * the resolver gives up, long after a caller's deadline abandoned it. So a partner whose name servers
 * drop queries, and whose deliveries kept asking, took the whole threadpool and stalled every other
 * partner's lookups (and fs, crypto) with it. Its further names wait for its one lookup instead.
 */
export const LOOKUPS_PER_OWNER = 1;

/**
 * How many system lookups the process may have in flight, whoever the owners (DNS_LOOKUP_CONCURRENCY,
 * set by the runtime with setLookupConcurrency). One lookup per owner was not enough: four partners
 * whose name servers drop queries held one thread each, the whole threadpool. With at most 2 of its 4
 * threads for lookups, fs, crypto and the rest keep 2 whatever DNS does.
 */
export const DEFAULT_LOOKUP_CONCURRENCY = 2;

/** Slots, first come first served: `take` when one is free, else `wait` for one to be handed over. */
class Slots {
  held = 0;
  readonly waiting: (() => void)[] = [];
  constructor(public limit: number) {}

  take(): boolean {
    if (this.held >= this.limit) return false;
    this.held += 1;
    return true;
  }

  /** Resolves once a slot is handed to this caller; rejects (ETIMEOUT, `message`) after `waitMs`. */
  wait(waitMs: number, message: string): Promise<void> {
    const { waiting } = this;
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(grant), 1);
        reject(lookupTimeout(message));
      }, Math.max(0, waitMs));
      timer.unref();
      waiting.push(grant);
    });
  }

  /** Hands the slot to the next waiting caller, or gives it back. */
  release(): void {
    const next = this.waiting.shift();
    if (next) return next();
    this.held -= 1;
  }

  /** A new limit; callers waiting get the slots it adds. */
  setLimit(limit: number): void {
    this.limit = limit;
    while (this.held < this.limit && this.waiting.length > 0) {
      this.held += 1;
      this.waiting.shift()!();
    }
  }
}

/** The system lookups in flight, by host name: callers of the same name share one. */
const lookupsInFlight = new Map<string, Promise<{ address: string }[]>>();
/** Per owner: its lookups in flight (at most LOOKUPS_PER_OWNER) and the starts waiting for one to end. */
const ownerSlots = new Map<string, Slots>();
/** The process's lookups in flight (at most the lookup concurrency) and the starts waiting for one to end. */
const processSlots = new Slots(DEFAULT_LOOKUP_CONCURRENCY);

/** Sets how many system lookups the process may have in flight (DNS_LOOKUP_CONCURRENCY, at least 1). */
export function setLookupConcurrency(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`lookup concurrency must be a whole number of at least 1, not ${n}`);
  processSlots.setLimit(n);
}

function lookupTimeout(message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code: 'ETIMEOUT' });
}

function slotsOf(owner: string): Slots {
  let slots = ownerSlots.get(owner);
  if (!slots) ownerSlots.set(owner, (slots = new Slots(LOOKUPS_PER_OWNER)));
  return slots;
}

function releaseOwner(owner: string, slots: Slots): void {
  slots.release();
  if (slots.held === 0 && ownerSlots.get(owner) === slots) ownerSlots.delete(owner);
}

/** Starts the system lookup of `name`, holding a slot of `owner`'s and one of the process's until it ends. */
function start(name: string, owner: string, slots: Slots): Promise<{ address: string }[]> {
  const answer = Promise.resolve()
    .then(() => hostLookup.lookup(name))
    .finally(() => {
      lookupsInFlight.delete(name);
      processSlots.release();
      releaseOwner(owner, slots);
    });
  lookupsInFlight.set(name, answer);
  return answer;
}

/**
 * A start that found no free slot: waits for the owner's, then for the process's, both within the
 * one `waitMs` (ETIMEOUT after it, as a lookup that did not answer), then starts, unless another
 * caller started the same name meanwhile (then it shares that one).
 */
async function startWhenFree(name: string, owner: string, slots: Slots, ownerSlotHeld: boolean, waitMs: number): Promise<{ address: string }[]> {
  const until = Date.now() + waitMs;
  // (the owner's lookup in flight holds its slot until a hand-over, so its entry stays while this waits)
  if (!ownerSlotHeld) await slots.wait(waitMs, `lookup of ${name} timed out waiting for another lookup of the same owner`);
  let started = lookupsInFlight.get(name); // another owner started it while this one waited
  if (started) {
    releaseOwner(owner, slots);
    return started;
  }
  if (!processSlots.take()) {
    try {
      await processSlots.wait(until - Date.now(), `lookup of ${name} timed out waiting for a DNS lookup slot (DNS_LOOKUP_CONCURRENCY in flight)`);
    } catch (err) {
      releaseOwner(owner, slots);
      throw err;
    }
    started = lookupsInFlight.get(name);
    if (started) {
      processSlots.release();
      releaseOwner(owner, slots);
      return started;
    }
  }
  return start(name, owner, slots);
}

/**
 * hostLookup.lookup, with at most one system lookup in flight per host name (later callers share
 * it), at most LOOKUPS_PER_OWNER per owner and at most the lookup concurrency (DNS_LOOKUP_CONCURRENCY)
 * in the whole process: a start waits up to `waitMs` in all for the owner's slot and then the
 * process's, then fails with ETIMEOUT. Without an owner, the host name is the owner. Nothing is
 * cached: an answer serves the callers that asked while it was under way. A start with free slots
 * awaits nothing before the system lookup.
 */
export function sharedLookup(host: string, owner: string = host, waitMs: number = DESTINATION_LOOKUP_TIMEOUT_MS): Promise<{ address: string }[]> {
  const name = host.toLowerCase();
  const running = lookupsInFlight.get(name);
  if (running) return running;
  const slots = slotsOf(owner);
  if (!slots.take()) return startWhenFree(name, owner, slots, false, waitMs);
  if (!processSlots.take()) return startWhenFree(name, owner, slots, true, waitMs);
  return start(name, owner, slots);
}

/** The eight 16-bit groups of an IPv6 literal that `isIP` accepted (a zone id is dropped). */
function ipv6Groups(ip: string): number[] {
  let s = ip.replace(/%.*$/, '');
  const tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    tail.push(a * 256 + b, c * 256 + d);
    s = s.slice(0, dotted.index);
    if (!s.endsWith('::')) s = s.slice(0, -1); // the ':' before the dotted part
  }
  const [head = '', rest] = s.split('::');
  const h = head ? head.split(':') : [];
  const r = rest ? rest.split(':') : [];
  const fill = rest === undefined ? [] : Array<string>(8 - tail.length - h.length - r.length).fill('0');
  return [...[...h, ...fill, ...r].map((g) => parseInt(g, 16)), ...tail];
}

/**
 * The IPv4 address an IPv6 address stands for, when the connection ends up there: IPv4-mapped
 * `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d` (SIIT, RFC 6145) and 6to4 `2002:aabb:ccdd::/48`
 * (RFC 3056). (IPv4-compatible `::a.b.c.d` and NAT64 are refused as whole ranges above.)
 */
function embeddedIPv4(g: number[]): string | undefined {
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeroUpTo = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(5) && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (zeroUpTo(4) && g[4] === 0xffff && g[5] === 0) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return undefined;
}

/** True when the literal IP address must not be called. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family === 6) {
    const groups = ipv6Groups(ip.toLowerCase());
    const v4 = embeddedIPv4(groups);
    if (v4 !== undefined) return blocked.check(v4, 'ipv4');
    return blocked.check(ip, 'ipv6');
  }
  return true; // not an IP at all: refuse
}

/**
 * Throws DestinationRefusedError unless `rawUrl` is an http(s) URL to a public address; DestinationLookupError when DNS cannot answer now.
 * With `allowPrivate` (ALLOW_PRIVATE_DESTINATIONS) any address is accepted and no lookup is made, unless
 * `mustResolve`: then the name is still looked up, and one that does not exist is refused ("does not
 * resolve") as without allowPrivate (a target's baseUrl: else its credential check found it out as the
 * platform "unreachable (ENOTFOUND)", a 503 that said to retry a typo).
 */
export async function assertPublicDestination(rawUrl: string, allowPrivate: boolean, lookupTimeoutMs = DESTINATION_LOOKUP_TIMEOUT_MS, owner?: string, mustResolve = false): Promise<void> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new DestinationRefusedError('not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DestinationRefusedError('only http(s) URLs are allowed');
  if (url.username || url.password) throw new DestinationRefusedError('credentials in URLs are not allowed');
  // Nothing listens on port 0 (connecting there is refused): an endpoint or a baseUrl on it could only ever fail.
  if (url.port === '0') throw new DestinationRefusedError('port 0 is not a port a server listens on');
  if (allowPrivate && !mustResolve) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost'))) throw new DestinationRefusedError(`${host} is a loopback name`);
  const addrs = isIP(host)
    ? [host]
    : (
        await lookupWithin(host, lookupTimeoutMs, owner).catch((err: unknown) => {
          const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
          if (NO_SUCH_NAME.has(code)) return [];
          throw new DestinationLookupError(host, code);
        })
      ).map((a) => a.address);
  if (addrs.length === 0) throw new DestinationRefusedError(`${host} does not resolve`);
  if (allowPrivate) return;
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


/** sharedLookup as a Resolver (the addresses of `options.family` when it is 4 or 6). */
export function sharedResolver(owner?: string): Resolver {
  return (hostname, options, callback) => {
    sharedLookup(hostname, owner).then(
      (addrs) => {
        const all = addrs.map((a) => ({ address: a.address, family: isIP(a.address) }));
        callback(null, options.family === 4 || options.family === 6 ? all.filter((a) => a.family === options.family) : all);
      },
      (err: NodeJS.ErrnoException) => callback(err, []),
    );
  };
}

/** guardedLookup over sharedResolver (no owner: one lookup in flight per host name). */
export const publicOnlyLookup = guardedLookup(sharedResolver());

/** A `lookup` for http.request over sharedResolver: private answers refused unless `allowPrivate`. */
export function sharedConnectLookup(owner: string | undefined, allowPrivate: boolean): (hostname: string, options: LookupOptions, callback: LookupCallback) => void {
  const resolver = sharedResolver(owner);
  if (!allowPrivate) return guardedLookup(resolver);
  return (hostname, options, callback) =>
    resolver(hostname, { ...options, all: true }, (err, addrs) => {
      if (err) return callback(err, '');
      if (options.all) return callback(null, addrs);
      const first = addrs[0];
      if (!first) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
      return callback(null, first.address, first.family);
    });
}
