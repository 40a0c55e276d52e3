/**
 * Preloaded into a service child (NODE_OPTIONS=--import=<this file>) by tests that give it host names
 * under `.invalid`: answers them as every resolver must (RFC 6761: they never resolve, ENOTFOUND)
 * without asking the machine's DNS server, so those tests use loopback only. Other names go to the
 * real lookup (localhost and IP addresses resolve on the machine).
 */
import { createRequire } from 'node:module';
import { syncBuiltinESMExports } from 'node:module';

const dnsPromises = createRequire(import.meta.url)('node:dns/promises');
const real = dnsPromises.lookup;
dnsPromises.lookup = (host, ...rest) =>
  /\.invalid\.?$/i.test(host)
    ? Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname: host }))
    : real(host, ...rest);
syncBuiltinESMExports();
