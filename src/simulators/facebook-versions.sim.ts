/**
 * Graph API versions, as the Facebook simulator serves them.
 *
 * Release and expiry dates: developers.facebook.com/docs/graph-api/changelog/versions (v27.0:
 * developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/).
 * What Graph does with a call to an expired version (developers.facebook.com/docs/apps/versions,
 * "Version Schedules"): "once a version is no longer usable, any calls made to it will be defaulted to
 * the next oldest, usable version" — no error; the `facebook-api-version` response header names the
 * version that answered. (The "(#2635) You are calling a deprecated version of the Ads API" error is
 * the Marketing API's, not Graph's.) A version that does not exist (yet) is answered like any other
 * unknown path: code 2500 "Unknown path components" (our model; not documented).
 */

interface GraphVersion {
  version: string;
  released: string;
  /** undefined: no expiry announced yet ("TBD"). */
  expires: string | undefined;
}

export const GRAPH_VERSIONS: readonly GraphVersion[] = [
  { version: 'v18.0', released: '2023-09-12', expires: '2026-01-26' },
  { version: 'v19.0', released: '2024-01-23', expires: '2026-05-21' },
  { version: 'v20.0', released: '2024-05-21', expires: '2026-09-24' },
  { version: 'v21.0', released: '2024-10-02', expires: '2027-01-21' },
  { version: 'v22.0', released: '2025-01-21', expires: '2027-05-20' },
  { version: 'v23.0', released: '2025-05-29', expires: '2027-10-08' },
  { version: 'v24.0', released: '2025-10-08', expires: '2028-02-18' },
  { version: 'v25.0', released: '2026-02-18', expires: '2028-07-29' },
  { version: 'v26.0', released: '2026-07-29', expires: undefined },
  { version: 'v27.0', released: '2026-11-04', expires: undefined },
];

function numberOf(version: string): number {
  const m = /^v(\d+)\.(\d+)$/.exec(version);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : NaN;
}

const usable = (v: GraphVersion, atMs: number): boolean => Date.parse(v.released) <= atMs && (v.expires === undefined || atMs < Date.parse(v.expires));

/**
 * The version that answers a call naming `requested` on the day `atMs`: itself while usable, the
 * oldest usable version once it expired (older than every listed version counts as expired), and
 * undefined for a version that does not exist on that day.
 */
export function servedGraphVersion(requested: string, atMs: number): string | undefined {
  const n = numberOf(requested);
  if (Number.isNaN(n)) return undefined;
  const known = GRAPH_VERSIONS.find((v) => v.version === requested);
  if (known && usable(known, atMs)) return requested;
  const released = known ? Date.parse(known.released) <= atMs : n < numberOf(GRAPH_VERSIONS[0]!.version);
  if (!released) return undefined;
  return GRAPH_VERSIONS.find((v) => usable(v, atMs))?.version;
}
