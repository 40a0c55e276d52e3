import { sha256 } from '../lib/crypto.js';

/**
 * A pin that is a chat message or a comment (YouTube, Facebook without Live Shopping) is found again
 * after a crash by a short tag of its intent's marker (`op.marker`: one per pin episode,
 * `pin:<product>:<episode>` in src/mirror/sync.service.ts) written at the end of the text. The tracked
 * link alone does not tell episodes apart: a re-pin of the same product carries the same link, and a
 * lookup by link adopted the earlier episode's message, so the re-pin was never posted.
 *
 * 8 hex digits of SHA-256 of the marker: short enough for a 200-character chat message, and matched
 * together with the link (and, on Facebook, the Page as author), so two episodes of one product in one
 * chat share a tag with probability 2^-32.
 */
export function pinTag(marker: string): string {
  return sha256(marker, 'hex').slice(0, 8);
}

/** How the tag is written after the link: ` · 1a2b3c4d`. */
export function pinTagSuffix(tag: string): string {
  return ` · ${tag}`;
}

/** The text carries both the pin's link and the episode's tag (each as a whole whitespace-separated word). */
export function carriesPin(text: string, linkUrl: string, tag: string): boolean {
  const words = text.split(/\s+/);
  return words.includes(linkUrl) && words.includes(tag);
}
