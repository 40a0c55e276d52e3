/**
 * The other checkouts an A/B harness (bench/ingest-ab.ts, redirect-ab.ts, sync-ab.ts) runs beside this
 * one: `dir` or `name=dir`, several separated by commas (e.g. `old=/tmp/at-base,mid=/tmp/at-mid`), each
 * an unpacked `git archive` with node_modules linked. Unnamed ones are `other`, `other2`, …
 */
import { resolve } from 'node:path';

export interface OtherCheckout {
  name: string;
  dir: string;
}

export function otherCheckouts(value: string | undefined): OtherCheckout[] {
  const entries = (value ?? '').split(',').map((e) => e.trim()).filter((e) => e !== '');
  return entries.map((e, i) => {
    const at = e.indexOf('=');
    const name = at > 0 ? e.slice(0, at) : i === 0 ? 'other' : `other${i + 1}`;
    return { name, dir: resolve(at > 0 ? e.slice(at + 1) : e) };
  });
}
