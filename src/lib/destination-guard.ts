/**
 * The connect-time SSRF guard as one reusable piece, for every outgoing connection that carries
 * credentials: the platform clients and their token endpoints (axios, through `httpAgent` /
 * `httpsAgent`), and the relay's RTMP destinations (`lookup` for net/tls sockets, or `resolve` to hand
 * a checked address to a child process such as ffmpeg). Outbound partner webhooks apply the same
 * rule in src/outbound/webhook.sender.ts.
 *
 * A destination is checked when the connection is made, not when it was configured: a base URL whose
 * DNS name later resolves to 169.254.169.254 or 127.0.0.1 is refused before a byte (or a token) is
 * sent, and the socket goes to the very address that was checked, so a DNS answer that changes
 * between check and connect cannot slip through. IP literals (Node calls no `lookup` for them) are
 * checked in the agents' `createConnection`. With `allowPrivate` (ALLOW_PRIVATE_DESTINATIONS: tests,
 * the demo, simulators on loopback) nothing is checked and Node's default agents are used.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { destinationRefused, guardedLookup, isPrivateAddress, sharedConnectLookup, sharedResolver, type Resolver } from './ssrf.js';

export interface DestinationGuard {
  readonly allowPrivate: boolean;
  /** For axios `httpAgent` / http.request `agent`; undefined when private destinations are allowed. */
  readonly httpAgent: http.Agent | undefined;
  /** For axios `httpsAgent` / https.request `agent`; undefined when private destinations are allowed. */
  readonly httpsAgent: https.Agent | undefined;
  /** A dns.lookup for net.connect / tls.connect (`{ host, port, lookup }`): refuses private answers. */
  readonly lookup: LookupFunction;
  /** Throws DestinationRefusedError when `host` is an IP literal the guard refuses (no lookup runs for those). */
  checkHost(host: string): void;
  /**
   * Resolves `host` (a name or an IP literal) once and returns an address that passed the check:
   * for a program that connects by itself (ffmpeg), give it this address, not the name.
   */
  resolve(host: string): Promise<{ address: string; family: number }>;
}

function bare(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}

/**
 * @param opts.allowPrivate ALLOW_PRIVATE_DESTINATIONS.
 * @param opts.resolver DNS resolution: by default sharedLookup's (src/lib/ssrf.ts: one system lookup in
 *   flight per host name, at most DNS_LOOKUP_CONCURRENCY in the process), never dns.lookup directly: a
 *   platform's or ingest's name whose name server drops queries holds at most those threads of libuv's
 *   threadpool, not all of them. Tests map names to loopback with it.
 */
export function destinationGuard(opts: { allowPrivate: boolean; resolver?: Resolver }): DestinationGuard {
  const { allowPrivate } = opts;
  const resolver: Resolver = opts.resolver ?? sharedResolver();

  const literalRefusal = (host: string | null | undefined): NodeJS.ErrnoException | undefined => {
    if (allowPrivate || !host) return undefined;
    const h = bare(host);
    if (isIP(h) && isPrivateAddress(h)) return destinationRefused(`${h} is a private, loopback or link-local address`);
    return undefined;
  };

  // With allowPrivate any answer is taken (no agents are installed then anyway), through the shared lookup all the same.
  const lookup = (allowPrivate ? sharedConnectLookup(undefined, true) : guardedLookup(resolver)) as LookupFunction;

  class GuardedHttpAgent extends http.Agent {
    override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
      const refused = literalRefusal(options.host ?? options.hostname);
      if (refused) {
        // http.Agent's createSocket hands this error to the request ('error' event): nothing is sent.
        callback?.(refused, undefined as unknown as Duplex);
        return undefined;
      }
      return super.createConnection({ ...options, lookup }, callback);
    }
  }
  class GuardedHttpsAgent extends https.Agent {
    override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
      const refused = literalRefusal(options.host ?? options.hostname);
      if (refused) {
        callback?.(refused, undefined as unknown as Duplex);
        return undefined;
      }
      return super.createConnection({ ...options, lookup }, callback);
    }
  }

  return {
    allowPrivate,
    // Keep-alive like Node's default agents: platform calls reuse connections to checked addresses.
    httpAgent: allowPrivate ? undefined : new GuardedHttpAgent({ keepAlive: true }),
    httpsAgent: allowPrivate ? undefined : new GuardedHttpsAgent({ keepAlive: true }),
    lookup,
    checkHost(host: string): void {
      const refused = literalRefusal(host);
      if (refused) throw refused;
    },
    resolve(host: string): Promise<{ address: string; family: number }> {
      const h = bare(host);
      if (isIP(h)) {
        const refused = literalRefusal(h);
        return refused ? Promise.reject(refused) : Promise.resolve({ address: h, family: isIP(h) });
      }
      return new Promise((resolve, reject) => {
        lookup(h, {}, (err, address, family) => (err ? reject(err) : resolve({ address: address as string, family: family ?? 4 })));
      });
    },
  };
}
