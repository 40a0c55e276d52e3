/**
 * What happened to a show's mirrors, for the ops console's timeline: each sync run (outcome, how
 * long, the error) and each mirror change the sync reported (state, remote id, pins, error). A
 * capped stream in the show's slot; written after the fact, so a lost entry loses history, never state.
 */
import type { MirrorDoc } from '../domain/mirror.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/** Approximate cap of each show's stream (XADD MAXLEN ~); also used by the sync's last save (SAVE_MIRROR_FINAL). */
export const ACTIVITY_MAX_LEN = '500';
const MAX_LEN = ACTIVITY_MAX_LEN;

export type ActivityEntry =
  | { kind: 'sync'; targetId: string; outcome: string; durationMs: number; error?: string | undefined }
  | { kind: 'mirror'; targetId: string; platform: string; state: string; externalId: string | null; pinned: string[]; lastError: string | null };

export type StoredActivity = ActivityEntry & { id: string; at: string };

/** The timeline entry of a mirror change the sync reported. */
export function mirrorActivityEntry(m: MirrorDoc): ActivityEntry {
  const pinned = Object.entries(m.pins).filter(([, p]) => p.state === 'pinned').map(([id]) => id).sort();
  return { kind: 'mirror', targetId: m.targetId, platform: m.platform, state: m.state, externalId: m.remote?.externalId ?? null, pinned, lastError: m.lastError };
}

export class ShowActivityRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async append(partnerId: string, showId: string, entry: ActivityEntry): Promise<void> {
    await this.redis.xadd(this.keys.showActivity(partnerId, showId), 'MAXLEN', '~', MAX_LEN, '*', 'entry', JSON.stringify(entry));
  }

  /** Newest first. */
  async list(partnerId: string, showId: string, limit: number): Promise<StoredActivity[]> {
    const rows = await this.redis.xrevrange(this.keys.showActivity(partnerId, showId), '+', '-', 'COUNT', limit);
    const out: StoredActivity[] = [];
    for (const [id, fields] of rows) {
      const raw = fields[fields.indexOf('entry') + 1];
      if (!raw) continue;
      out.push({ ...(JSON.parse(raw) as ActivityEntry), id, at: new Date(Number(id.split('-')[0])).toISOString() });
    }
    return out;
  }
}
