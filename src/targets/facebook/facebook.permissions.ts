/**
 * What a Facebook target's Page token is allowed to do, read from Graph once and cached in the
 * adapter (one adapter per target, rebuilt when its credentials change).
 *
 * Source: `GET /debug_token?input_token={token}` answers the token's `scopes` (granted permissions)
 * and `granular_scopes` (the Pages a Page permission applies to), developers.facebook.com/docs/
 * graph-api/reference/debug_token. The token debugs itself: no app token is needed for that (assumed
 * from public client code; if Graph refuses, we cannot know and pins stay comments).
 *
 * The Live Shopping Tools API needs `live_shopping_manage_video` plus `catalog_management` or
 * `pages_manage_posts` (developers.facebook.com/documentation/live-shopping/live-shopping-tools-api).
 * Permissions change (an admin grants or removes one), so the answer is kept for PERMISSIONS_TTL_MS and
 * dropped as soon as a call is refused for a permission.
 */
import type { Logger } from 'pino';
import { isTargetError } from '../target.errors.js';
import type { FacebookClient } from './facebook.client.js';
import { DebugTokenSchema } from './facebook.schemas.js';

export const LIVE_SHOPPING_PERMISSION = 'live_shopping_manage_video';
/** Either of these satisfies the Live Shopping Tools API's second check. */
const LIVE_SHOPPING_ALSO_ONE_OF = ['catalog_management', 'pages_manage_posts'];
export const PERMISSIONS_TTL_MS = 10 * 60_000;
/**
 * What every Facebook mirror needs: broadcasting on a Page takes pages_read_engagement and
 * pages_manage_posts (developers.facebook.com/docs/live-video-api/guides/streaming), a pin comment
 * pages_manage_engagement.
 */
export const REQUIRED_PAGE_PERMISSIONS = ['pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement'] as const;

export interface PagePermissions {
  /** The token may pin products with the Live Shopping Tools API (on this target's Page). */
  liveShopping: boolean;
  /**
   * REQUIRED_PAGE_PERMISSIONS the token lacks on this target's Page, as debug_token says; empty when
   * Graph would not say (nothing to judge by: the calls themselves will tell).
   */
  missing: string[];
}

export interface PermissionReader {
  get(): Promise<PagePermissions>;
  /** A call was refused for a permission: read them again next time. */
  forget(): void;
}

/** Graph permission errors: code 10 and 200–299 (developers.facebook.com/docs/graph-api/guides/error-handling). */
export function isPermissionRefusal(err: unknown): boolean {
  if (!isTargetError(err) || !err.reason) return false;
  const m = /^code_(\d+)/.exec(err.reason);
  const code = m?.[1] ? Number(m[1]) : NaN;
  return code === 10 || (code >= 200 && code <= 299);
}

export function createPermissionReader(client: FacebookClient, log: Logger, now: () => number = Date.now): PermissionReader {
  let cached: { at: number; value: Promise<PagePermissions> } | undefined;

  async function read(): Promise<PagePermissions> {
    const { pageId, pageAccessToken } = client.credentials;
    let res;
    try {
      res = await client.call({ method: 'GET', path: '/debug_token', params: { input_token: pageAccessToken }, schema: DebugTokenSchema });
    } catch (err) {
      // A dead token (190), throttling or an outage is the caller's problem; a refusal to debug means
      // we cannot tell, and a comment is what works without the permission.
      if (!isTargetError(err) || err.kind !== 'permanent' || err.reason === 'oauth_190') throw err;
      log.warn({ reason: err.reason }, 'cannot read the Page token permissions; product pins fall back to comments');
      return { liveShopping: false, missing: [] };
    }
    const scopes = new Set(res.data.scopes ?? []);
    // A Page-level grant names the Pages it covers; no list means the whole token.
    const onThisPage = (permission: string): boolean => {
      const granular = res.data.granular_scopes?.find((g) => g.scope === permission);
      return !granular?.target_ids || granular.target_ids.includes(pageId);
    };
    const granted = (permission: string): boolean => scopes.has(permission) && onThisPage(permission);
    const liveShopping =
      res.data.is_valid !== false && scopes.has(LIVE_SHOPPING_PERMISSION) && onThisPage(LIVE_SHOPPING_PERMISSION) && LIVE_SHOPPING_ALSO_ONE_OF.some((p) => scopes.has(p));
    // An invalid token is Graph's to refuse (190 on the next call), not a list of missing permissions.
    // No `scopes` in the answer (Graph documents it as always there) is no verdict, as TikTok's and YouTube's
    // checks give none when their answers name no scopes: the first call refuses what the token cannot do.
    const missing = res.data.is_valid === false || res.data.scopes === undefined ? [] : REQUIRED_PAGE_PERMISSIONS.filter((p) => !granted(p));
    log.info({ liveShopping, missing }, 'facebook page token permissions read');
    return { liveShopping, missing };
  }

  return {
    async get() {
      if (!cached || now() - cached.at > PERMISSIONS_TTL_MS) {
        const value = read();
        cached = { at: now(), value };
        // A failed read is not remembered: the next call tries again.
        value.catch(() => {
          if (cached?.value === value) cached = undefined;
        });
      }
      return cached.value;
    },
    forget() {
      cached = undefined;
    },
  };
}
