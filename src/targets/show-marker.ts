/**
 * The intent marker a created show carries in its description (YouTube, Bambuser, Facebook): written
 * as its own line `syndicast:<marker>` so that crash recovery and later updates can find it again.
 */
import { platformText } from './platform-text.js';

export const MARKER_PREFIX = 'syndicast:';

export function markerLine(marker: string): string {
  return `${MARKER_PREFIX}${marker}`;
}

/** The marker of the first marker line of a description, if any. */
export function markerOf(description: string | null | undefined): string | undefined {
  const line = (description ?? '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(MARKER_PREFIX));
  return line?.slice(MARKER_PREFIX.length) || undefined;
}

/** The description as sent (platformText), with the marker last and on its own line. */
export function describeWithMarker(description: string | undefined, marker: string | undefined): string {
  const base = platformText(description ?? '').trim();
  if (!marker) return base;
  return base ? `${base}\n\n${markerLine(marker)}` : markerLine(marker);
}
