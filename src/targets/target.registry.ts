/** Platform → adapter factory and shared account limits. The only place that lists the adapters. */
import { createHash } from 'node:crypto';
import type { WindowLimit } from '../store/rate-limiter.js';
import type { AdapterFactory, Platform } from './target.adapter.js';
import { createYoutubeAdapter } from './youtube/youtube.adapter.js';
import { createTiktokAdapter } from './tiktok/tiktok.adapter.js';
import { createWhatnotAdapter } from './whatnot/whatnot.adapter.js';
import { createBambuserAdapter } from './bambuser/bambuser.adapter.js';
import { createFacebookAdapter } from './facebook/facebook.adapter.js';
import { adviceTarget, credentialsPatch } from './credentials-advice.js';
import { CREDENTIAL_FIELDS as YOUTUBE_FIELDS } from './youtube/youtube.client.js';
import { CREDENTIAL_FIELDS as TIKTOK_FIELDS } from './tiktok/tiktok.client.js';
import { CREDENTIAL_FIELDS as WHATNOT_FIELDS, CREDENTIAL_KINDS as WHATNOT_KINDS } from './whatnot/whatnot.client.js';
import { CREDENTIAL_FIELDS as FACEBOOK_FIELDS } from './facebook/facebook.client.js';
import { CREDENTIAL_FIELDS as BAMBUSER_FIELDS } from './bambuser/bambuser.client.js';

const FACTORIES: Partial<Record<Platform, AdapterFactory>> = {
  youtube: createYoutubeAdapter,
  tiktok: createTiktokAdapter,
  whatnot: createWhatnotAdapter,
  bambuser: createBambuserAdapter,
  facebook: createFacebookAdapter,
};

/** Request windows per account, as documented by each platform (YouTube is quota-based instead). */
export const PLATFORM_LIMITS: Partial<Record<Platform, WindowLimit>> = {
  // TikTok Shop: 50 requests/s per app per shop (announced to partners in 2025; 36009002 beyond).
  tiktok: { requests: 50, windowMs: 1000 },
  // Whatnot Seller API: 10 requests/s per seller per app (RateLimit-Limit: 10, 10;w=1).
  whatnot: { requests: 10, windowMs: 1000 },
  // Bambuser: 5 requests per 10 s moving window per API key (429 beyond). We count a request when it
  // leaves, Bambuser when it arrives; the extra second absorbs the difference in delay between two
  // requests (event loop, network), so that the platform never sees 6 in its 10 s.
  bambuser: { requests: 5, windowMs: 11_000 },
};

export function adapterFactory(platform: Platform): AdapterFactory | undefined {
  return FACTORIES[platform];
}

export function supportedPlatforms(): Platform[] {
  return Object.keys(FACTORIES) as Platform[];
}

/**
 * The credential that identifies the platform account whose limits a target uses, so that two
 * targets on one account share one limiter: YouTube's quota is per Google Cloud project (OAuth
 * client), TikTok's per app and shop, Whatnot's per seller and app (an app's grant: client id and the
 * seller's refresh token; else the personal access token), Bambuser's per API key, Facebook's per
 * Page. Alternatives in order: the first whose fields are all given names the account.
 */
const ACCOUNT_FIELDS: Record<Platform, string[][]> = {
  youtube: [['clientId']],
  tiktok: [['appKey', 'shopCipher']],
  whatnot: [['clientId', 'refreshToken'], ['accessToken']],
  bambuser: [['apiKey']],
  facebook: [['pageId']],
};

/** The id the shared rate limiter uses for a target: its account's identity, or the target id. */
export function limiterId(platform: Platform, credentials: Record<string, string>, targetId: string): string {
  const identity = accountIdentity(platform, credentials);
  return identity ? `acct-${createHash('sha256').update(identity).digest('base64url').slice(0, 16)}` : targetId;
}

/**
 * The platform account whose order report a target reads, for reconciliation (src/reconcile/account-orders.ts):
 * two targets (of one partner or of two) with the same account identity (ACCOUNT_FIELDS) on the same
 * API host read the same report. A hash (the identity holds tokens; it names Redis keys); a target
 * whose credentials name no account is an account of its own.
 */
export function reportAccountId(platform: Platform, baseUrl: string | undefined, credentials: Record<string, string>, targetId: string): string {
  const identity = accountIdentity(platform, credentials) ?? `${platform}\u0000target\u0000${targetId}`;
  return createHash('sha256').update(`${identity}\u0000${baseUrl ?? ''}`).digest('base64url').slice(0, 22);
}

/**
 * The account id of a platform account the platform itself named (the adapter's accountId(): the
 * Whatnot seller, the TikTok shop) on the API host: every credential of that account has it, once
 * learned (src/reconcile/account-orders.ts). Hashed as reportAccountId is (the id is data in a key name).
 */
export function platformAccountId(platform: Platform, baseUrl: string | undefined, platformId: string): string {
  return createHash('sha256').update(`${platform}\u0000platform\u0000${platformId}\u0000${baseUrl ?? ''}`).digest('base64url').slice(0, 22);
}

export function accountIdentity(platform: Platform, credentials: Record<string, string>): string | undefined {
  for (const fields of ACCOUNT_FIELDS[platform]) {
    const parts = fields.map((f) => credentials[f]);
    if (parts.every((p) => typeof p === 'string' && p.length > 0)) return `${platform}\u0000${parts.join('\u0000')}`;
  }
  return undefined;
}

/**
 * The fields that make an OAuth grant: the app (its client id and secret) and the refresh token the
 * account's authorisation of it gave. Platforms that may rotate the refresh token keep the live one in
 * the target's token record, not in its credentials. The secret is part of it: a PATCH with a new
 * client secret must be checked with that secret, not passed on the stored record's access token.
 */
const GRANT_FIELDS: Partial<Record<Platform, string[]>> = {
  youtube: ['clientId', 'clientSecret', 'refreshToken'],
  tiktok: ['appKey', 'appSecret', 'refreshToken'],
  whatnot: ['clientId', 'clientSecret', 'refreshToken'],
};

/**
 * Whether `next` credentials carry the same OAuth grant as `prev` (the same app and secret, the same
 * original refresh token): a PATCH that re-sends them (to change another field, or unchanged) keeps the
 * target's token record, whose refresh token the platform may have rotated since (the one in the
 * credentials is then dead). False for platforms without refresh tokens, and for a new grant.
 */
export function sameGrant(platform: Platform, prev: Record<string, string>, next: Record<string, string>): boolean {
  const fields = GRANT_FIELDS[platform];
  return fields !== undefined && fields.every((f) => typeof next[f] === 'string' && next[f] !== '' && prev[f] === next[f]);
}

/** The field of GRANT_FIELDS that is the app's secret. */
const GRANT_SECRET: Partial<Record<Platform, string>> = { youtube: 'clientSecret', tiktok: 'appSecret', whatnot: 'clientSecret' };

/**
 * What a target's credentials and host authorise, from their plaintext (a pending token record is told
 * committed by it: AccessToken.pending.identity): the platform, the host and the grant's fields but the
 * app's secret (GRANT_FIELDS; a new secret keeps the grant's token record), or every field for a platform
 * without refresh tokens. It does not change when the same credentials are sealed again (a new nonce)
 * or when a field outside the grant does (webhookSecret), as the hash of the sealed text did. Kept
 * inside the sealed token record only.
 */
export function grantIdentity(platform: Platform, credentials: Record<string, string>, baseUrl: string | undefined): string {
  const secret = GRANT_SECRET[platform];
  const fields = GRANT_FIELDS[platform]?.filter((f) => f !== secret) ?? Object.keys(credentials).sort();
  const named = JSON.stringify([platform, baseUrl ?? '', ...fields.map((f) => [f, credentials[f] ?? ''])]);
  return createHash('sha256').update(named).digest('base64url').slice(0, 22);
}

/**
 * Whether `next` carries the grant of `prev` with another app secret only (the same app and original
 * refresh token): the operator fixes a wrong secret, or stores one rotated in the platform's console.
 * The account's authorisation is the same, and the refresh token the platform rotated since is in the
 * target's token record only: that record must survive (the check refreshes from it with the new
 * secret), not be replaced as for a new grant.
 */
export function sameGrantNewSecret(platform: Platform, prev: Record<string, string>, next: Record<string, string>): boolean {
  const fields = GRANT_FIELDS[platform];
  const secret = GRANT_SECRET[platform];
  if (fields === undefined || secret === undefined) return false;
  const given = (f: string): boolean => typeof next[f] === 'string' && next[f] !== '';
  return fields.every((f) => given(f) && (f === secret ? prev[f] !== next[f] : prev[f] === next[f]));
}

/**
 * The fields a platform's credentials may name in advice (its schema's), and what a renewed
 * authorization of a target replaces: YouTube's and TikTok Shop's refresh token (TikTok's and a Whatnot
 * app's access token, made stale, left out), a Whatnot app's refresh token or its personal access
 * token, Facebook's Page token, Bambuser's API key.
 */
const AUTHORIZATION: Record<
  Platform,
  { known: readonly string[]; kinds?: readonly (readonly string[])[]; kindNames?: readonly string[]; renewal: (held: Record<string, string> | undefined) => [renew: string[], drop: string[]] }
> = {
  youtube: { known: YOUTUBE_FIELDS, renewal: () => [['refreshToken'], []] },
  tiktok: { known: TIKTOK_FIELDS, renewal: () => [['refreshToken'], ['accessToken']] },
  whatnot: {
    known: WHATNOT_FIELDS,
    kinds: WHATNOT_KINDS,
    kindNames: ['an app the seller connected', 'a personal access token'],
    renewal: (held) => (held?.['accessToken'] !== undefined && held['refreshToken'] === undefined ? [['accessToken'], []] : [['refreshToken'], ['accessToken']]),
  },
  facebook: { known: FACEBOOK_FIELDS, renewal: () => [['pageAccessToken'], []] },
  bambuser: { known: BAMBUSER_FIELDS, renewal: () => [['apiKey'], []] },
};

/**
 * The PATCH (credentialsPatch) that stores a renewed authorization of target `t`: the fields the
 * renewal replaces and every other field its credentials hold (`credentials`: read for their names
 * only; undefined when they cannot be opened, and the PATCH says to send the others as they are: for a
 * platform with two kinds of credentials, Whatnot's, which one the target holds is unknown then, so the
 * PATCH of each is given).
 */
export function renewedAuthorizationPatch(t: { id: string; partnerId: string; platform: Platform }, credentials: Record<string, string> | undefined): string {
  const a = AUTHORIZATION[t.platform];
  if (credentials === undefined && a.kinds && a.kindNames) {
    const names = a.kindNames;
    return a.kinds.map((kind, i) => `${credentialsPatch({ id: t.id, partnerId: t.partnerId }, ...a.renewal(Object.fromEntries(kind.map((f) => [f, '']))))} for ${names[i]}`).join(', or ');
  }
  const [renew, drop] = a.renewal(credentials);
  const advice = credentials ? adviceTarget({ id: t.id, partnerId: t.partnerId, credentials }, a.known, a.kinds) : { id: t.id, partnerId: t.partnerId };
  return credentialsPatch(advice, renew, drop);
}
