/**
 * What each Page token may do in the Facebook simulator, and `GET /{version}/debug_token`.
 *
 * Facebook grants permissions per token (App Review + the admin's consent in Facebook Login); no API
 * grants one, so the simulator takes them from `PUT /_sim/facebook/permissions {token, granted}`. A
 * token nobody configured has what a Page admin grants a live-video app (the Live Video API and
 * comment permissions below) and not `live_shopping_manage_video`, which needs Meta's approval.
 * debug_token answers `{data: {app_id, type, application, is_valid, issued_at, expires_at, scopes,
 * granular_scopes, user_id}}` as developers.facebook.com/docs/graph-api/reference/debug_token shows it.
 */
import { GraphError, graphError, permissionDenied } from './facebook-graph.sim.js';

export const DEFAULT_PAGE_PERMISSIONS = ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement'] as const;
const SIM_APP_ID = '100000000000777';

export class FbPermissions {
  private readonly granted = new Map<string, Set<string>>();

  set(token: string, granted: readonly string[]): void {
    this.granted.set(token, new Set(granted));
  }

  of(token: string): ReadonlySet<string> {
    return this.granted.get(token) ?? new Set(DEFAULT_PAGE_PERMISSIONS);
  }

  /** Throws Graph's (#200) unless the token has every one of `all` and at least one of `anyOf` (when given). */
  require(token: string, all: readonly string[], anyOf: readonly string[] = []): void {
    const has = this.of(token);
    const missing = all.find((p) => !has.has(p));
    if (missing) throw permissionDenied(missing);
    if (anyOf.length > 0 && !anyOf.some((p) => has.has(p))) throw permissionDenied(anyOf.join(' or '));
  }

  clear(): void {
    this.granted.clear();
  }

  /**
   * `state`: `valid`, a token the simulator issued; `revoked`, one the Page admin revoked (Graph
   * answers `is_valid: false` with the error the token now gets: code 190, subcode 460, session
   * invalidated); `unknown`, one it never issued (not valid either). Neither has scopes.
   */
  debugToken(inputToken: string | undefined, state: 'valid' | 'revoked' | 'unknown'): Record<string, unknown> {
    if (!inputToken) throw new GraphError(graphError(400, 100, '(#100) The parameter input_token is required'));
    const dead = state !== 'valid';
    const scopes = dead ? [] : [...this.of(inputToken)].sort();
    const now = Math.floor(Date.now() / 1000);
    return {
      data: {
        app_id: SIM_APP_ID,
        type: 'PAGE',
        application: 'Syndicast (simulated app)',
        data_access_expires_at: now + 90 * 86_400,
        expires_at: 0,
        is_valid: !dead,
        issued_at: now - 3600,
        scopes,
        granular_scopes: scopes.map((scope) => ({ scope })),
        user_id: '100000000000042',
        ...(state === 'revoked'
          ? { error: { code: 190, subcode: 460, message: 'Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.' } }
          : {}),
      },
    };
  }
}
