/** Shared by every adapter client: credentials parsed with zod at the edge of the adapter. */
import type { z } from 'zod';
import { PermanentError } from './target.errors.js';

/**
 * The parsed credentials, or a PermanentError (mirror `failed`) that names the bad keys only —
 * credential values must never end up in an error message. `expected` says what a valid set is.
 */
export function parseTargetCredentials<T>(schema: z.ZodType<T>, raw: Record<string, string>, platformName: string, expected: string): T | PermanentError {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const keys = [...new Set(parsed.error.issues.map((i) => i.path.join('.')))].join(', ');
  return new PermanentError(`${platformName} target credentials are incomplete or invalid (${keys}): ${expected}`, 'invalid_credentials');
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
