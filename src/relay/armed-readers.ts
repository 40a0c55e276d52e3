/**
 * Which live shows nobody publishes to yet get their readers armed: started ahead of the publish and
 * waiting on this process's edge, so the publish reaches the platforms from its first packet with no
 * ffmpeg start-up on its way (relay bench: publish → first byte p99 1.2–1.5 s armed, 47 s when 100
 * readers started on their publishes at once on 2 cores). Each armed reader is an idle ffmpeg
 * (~15 MiB PSS, ~0.15 s of CPU to start), so a process arms at most `pool` of them
 * (RELAY_ARMED_READERS); partner A's 150 live shows without video had armed ≈ 300, and partner B's
 * publishing show took 75 s to send behind their start-ups.
 *
 * The pool is shared fairly: partners take turns, a show (all of its readers) per turn, each partner's
 * shows oldest first, until no waiting show fits; a show that does not fit is passed over for a
 * smaller one. So a partner with many video-less shows cannot take the whole pool from the others,
 * and a show armed stays armed while what waits does not change. A show left out starts its readers
 * on the publish (ahead of every armed start in the start gate).
 */
export interface WaitingShow {
  key: string;
  partnerId: string;
  /** Readers it would arm (its destinations). */
  readers: number;
  /** Order among the partner's shows: lower first (the order this process took them in). */
  order: number;
}

export function armedShows(waiting: Iterable<WaitingShow>, pool: number): Set<string> {
  const byPartner = new Map<string, WaitingShow[]>();
  for (const w of waiting) {
    if (w.readers <= 0) continue;
    const list = byPartner.get(w.partnerId);
    if (list) list.push(w);
    else byPartner.set(w.partnerId, [w]);
  }
  const queues = [...byPartner.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, l]) => l.sort((a, b) => a.order - b.order));
  const armed = new Set<string>();
  let left = pool;
  let turned = true;
  while (turned && left > 0) {
    turned = false;
    for (const q of queues) {
      // This partner's next show that fits what is left; the ones that do not fit now never will.
      let next = q.shift();
      while (next && next.readers > left) next = q.shift();
      if (!next) continue;
      armed.add(next.key);
      left -= next.readers;
      turned = true;
    }
  }
  return armed;
}
