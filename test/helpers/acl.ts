/**
 * Redis refusing one write for real: an ACL on the default user (every connection of the service)
 * that lets it read and write every key but `key`, and only read that one. On a Cluster, on every node.
 */
import type { Cluster, Redis } from 'ioredis';

/** Redis glob patterns matching every key except `key` (a key that differs at some position, or is longer, or shorter). */
export function everyKeyBut(key: string): string[] {
  const esc = (s: string): string => s.replace(/[*?[\]\\^-]/g, (c) => `\\${c}`);
  const out: string[] = [];
  for (let i = 0; i < key.length; i++) {
    out.push(`${esc(key.slice(0, i))}[^${esc(key[i]!)}]*`);
    if (i > 0) out.push(esc(key.slice(0, i)));
  }
  out.push(`${esc(key)}?*`);
  return out;
}

const nodes = (admin: Redis | Cluster): (Redis | Cluster)[] => ('nodes' in admin ? admin.nodes('all') : [admin]);

/**
 * The default user may read and write every key but `key`, and only read that one. (A command's key
 * must match one pattern that grants all it needs: a script's keys need read and write, so `%R~*` plus
 * write patterns would refuse them all.)
 */
export async function refuseWritesTo(admin: Redis | Cluster, key: string): Promise<void> {
  for (const n of nodes(admin)) await n.call('ACL', 'SETUSER', 'default', 'resetkeys', ...everyKeyBut(key).map((p) => `~${p}`), `%R~${key.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}`);
}

/** Undoes refuseWritesTo: every key readable and writable again. */
export async function allowAllWrites(admin: Redis | Cluster): Promise<void> {
  for (const n of nodes(admin)) await n.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
}

/**
 * Redis refusing every command on `key` for real (NOPERM: an error that is neither a key of another type
 * nor an unavailable Redis). Undone by allowAllWrites.
 */
export async function refuseAccessTo(admin: Redis | Cluster, key: string): Promise<void> {
  for (const n of nodes(admin)) await n.call('ACL', 'SETUSER', 'default', 'resetkeys', ...everyKeyBut(key).map((p) => `~${p}`));
}
