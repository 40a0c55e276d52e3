/**
 * Redis Cluster hash slots (https://redis.io/docs/reference/cluster-spec/#key-distribution-model):
 * CRC16-XMODEM of the key, or of its first non-empty `{hash tag}`, mod 16384 — the same rule as
 * `CLUSTER KEYSLOT` and ioredis' own routing. Used where the service picks which master a batch goes
 * to (the redirect's clicks on a Cluster: LinkService) or which master to WAIT on (ReplicaAck).
 */
import type { Cluster, Redis } from 'ioredis';

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** The slot of `key` (keys are ASCII here; other characters are hashed as their UTF-8 bytes). */
export function keySlot(key: string): number {
  let from = 0;
  let to = key.length;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) {
      from = open + 1;
      to = close;
    }
  }
  let crc = 0;
  for (let i = from; i < to; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x80) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ c) & 0xff]!;
    else return utf8Slot(key.slice(from, to));
  }
  return crc & 16383;
}

function utf8Slot(s: string): number {
  let crc = 0;
  for (const b of Buffer.from(s, 'utf8')) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc & 16383;
}

/** A node's address as ioredis' slot map names it (`host:port`). */
export function nodeKey(node: Redis): string {
  return `${node.options.host ?? ''}:${node.options.port ?? ''}`;
}

/** The master connection the Cluster's slot map names by `key` (a `nodeKey`); undefined when none is. */
export function masterByKey(cluster: Cluster, key: string | undefined): Redis | undefined {
  return key === undefined ? undefined : cluster.nodes('master').find((m) => nodeKey(m) === key);
}
