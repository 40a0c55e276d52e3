/**
 * The accounts every simulator knows, and the credentials that work for each (issue 13: simulators
 * check credentials the way the platforms do). A credential works only for its own account — a
 * YouTube channel, a TikTok shop (authorised for one app), a Whatnot seller, a Bambuser organisation,
 * a Facebook Page — and a show belongs to the account that made it. Anything else gets the
 * platform's own error.
 *
 * Two accounts per platform exist from the start and again after `POST /_sim/reset` (`a` for
 * ordinary use, `b` to show that one account's credentials do not reach the other's shows); they are
 * what the demo, the benchmarks and the tests use (README "Simulator credentials"). More are made with
 * `POST /_sim/{platform}/accounts` (the way one registers an app or issues a key in the platform's
 * console), e.g. a TikTok authorisation without the affiliate scopes or a Bambuser key with fewer scopes.
 *
 * CONTRACT §9: the simulators accept any non-empty credentials. Credentials never seen before are an
 * account that exists, registered on first use: a YouTube OAuth client (with the secret given) or a
 * channel's refresh token, a TikTok app (with the app secret given) or a shop's refresh token (with
 * the shop_cipher the refresh names, when free), a Whatnot seller's token (or an app's client id with the
 * secret given, and a seller's refresh token of it), a Bambuser organisation's
 * key (every scope), a Facebook Page's token (the Page id the request names, when free). A known
 * identity with a wrong secret is still refused the platform's way (a known OAuth client or TikTok app
 * with another secret, a refresh token of another client or app, a made-up token for a known Page), and
 * so is a credential revoked with `POST /_sim/{platform}/revocations {token}`.
 */

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseControlBody } from './sim.platform.js';

export interface YoutubeSimAccount {
  /** The channel the credentials act for. */
  channelId: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /**
   * The OAuth scopes the channel owner granted with this refresh token (space-separated, as Google's
   * token endpoint answers them). Omitted: `https://www.googleapis.com/auth/youtube`.
   */
  scope?: string;
}

export interface TiktokSimApp {
  appKey: string;
  appSecret: string;
}

export interface TiktokSimShop {
  shopId: string;
  /** The shop's cipher: the only `shop_cipher` this shop's access tokens work with. */
  shopCipher: string;
  /** The app the seller authorised; its refresh token works with that app only. */
  appKey: string;
  refreshToken: string;
  /** Without the affiliate scopes (`seller.affiliate_collaboration.*`). */
  limited?: boolean;
}

export interface WhatnotSimAccount {
  sellerId: string;
  /** The seller's personal access token (it does not expire). */
  accessToken: string;
  /** The app the seller connected through OAuth, and the refresh token that authorisation gave. */
  clientId?: string;
  refreshToken?: string;
}

export interface WhatnotSimApp {
  clientId: string;
  clientSecret: string;
}

export interface BambuserSimAccount {
  orgId: string;
  apiKey: string;
  /** Omitted: every scope. */
  scopes?: string[];
  /** false: the organisation has not the product highlights beta (a highlight is refused with a 400). Omitted: it has. */
  highlights?: boolean;
}

export interface FacebookSimAccount {
  pageId: string;
  pageAccessToken: string;
}

export interface SimAccounts {
  youtube: YoutubeSimAccount[];
  tiktok: { apps: TiktokSimApp[]; shops: TiktokSimShop[] };
  whatnot: WhatnotSimAccount[];
  whatnotApps: WhatnotSimApp[];
  bambuser: BambuserSimAccount[];
  facebook: FacebookSimAccount[];
}

const WHATNOT_APP: WhatnotSimApp = { clientId: 'wn_sim_client_syndicast', clientSecret: 'wn_sim_client_secret_4f2a9c' };
const TIKTOK_APP: TiktokSimApp = { appKey: '6a6simapp01', appSecret: 'sim-tiktok-app-secret-4eb1c0ffee' };

/** The seeded accounts: `[0]` is account a, `[1]` account b. */
export const SIM_ACCOUNTS: Readonly<SimAccounts> = Object.freeze({
  youtube: [
    { channelId: 'UCsimSyndicastChannel0001', clientId: 'sim-client-1.apps.googleusercontent.com', clientSecret: 'GOCSPX-sim-client-secret-1', refreshToken: '1//sim-refresh-channel-a' },
    { channelId: 'UCsimOtherChannel00000002', clientId: 'sim-client-1.apps.googleusercontent.com', clientSecret: 'GOCSPX-sim-client-secret-1', refreshToken: '1//sim-refresh-channel-b' },
  ],
  tiktok: {
    apps: [TIKTOK_APP],
    shops: [
      { shopId: '7494049642642441621', shopCipher: 'ROW_simShopCipherA', appKey: TIKTOK_APP.appKey, refreshToken: 'ROW_sim_refresh_shop_a' },
      { shopId: '7494049642642441622', shopCipher: 'ROW_simShopCipherB', appKey: TIKTOK_APP.appKey, refreshToken: 'ROW_sim_refresh_shop_b' },
    ],
  },
  whatnot: [
    { sellerId: 'sim-seller-a', accessToken: 'wn_sim_access_token_seller_a', clientId: WHATNOT_APP.clientId, refreshToken: 'wn_sim_refresh_seller_a' },
    { sellerId: 'sim-seller-b', accessToken: 'wn_sim_access_token_seller_b', clientId: WHATNOT_APP.clientId, refreshToken: 'wn_sim_refresh_seller_b' },
  ],
  whatnotApps: [WHATNOT_APP],
  bambuser: [
    { orgId: 'sim-org-a', apiKey: 'bmb_sim_key_org_a' },
    { orgId: 'sim-org-b', apiKey: 'bmb_sim_key_org_b' },
  ],
  facebook: [
    { pageId: '104857600000001', pageAccessToken: 'EAAGsimPageTokenA' },
    { pageId: '104857600000002', pageAccessToken: 'EAAGsimPageTokenB' },
  ],
});

/**
 * Whatnot target credentials of a seeded seller as an app it connected through OAuth (the access
 * token expires and is refreshed), where simTargetCredentials gives its personal access token.
 */
export function simWhatnotAppCredentials(which: 'a' | 'b' = 'a'): { clientId: string; clientSecret: string; refreshToken: string } {
  const seller = SIM_ACCOUNTS.whatnot[which === 'a' ? 0 : 1]!;
  const app = SIM_ACCOUNTS.whatnotApps.find((a) => a.clientId === seller.clientId)!;
  return { clientId: app.clientId, clientSecret: app.clientSecret, refreshToken: seller.refreshToken! };
}

/** Target credentials (as `POST /v1/partners/{id}/targets` takes them) for a seeded account. */
export function simTargetCredentials(platform: Exclude<keyof SimAccounts, 'whatnotApps'>, which: 'a' | 'b' = 'a'): Record<string, string> {
  const i = which === 'a' ? 0 : 1;
  switch (platform) {
    case 'youtube': {
      const { clientId, clientSecret, refreshToken } = SIM_ACCOUNTS.youtube[i]!;
      return { clientId, clientSecret, refreshToken };
    }
    case 'tiktok': {
      const shop = SIM_ACCOUNTS.tiktok.shops[i]!;
      const app = SIM_ACCOUNTS.tiktok.apps.find((a) => a.appKey === shop.appKey)!;
      return { appKey: app.appKey, appSecret: app.appSecret, refreshToken: shop.refreshToken, shopCipher: shop.shopCipher };
    }
    case 'whatnot':
      return { accessToken: SIM_ACCOUNTS.whatnot[i]!.accessToken };
    case 'bambuser':
      return { apiKey: SIM_ACCOUNTS.bambuser[i]!.apiKey };
    case 'facebook': {
      const { pageId, pageAccessToken } = SIM_ACCOUNTS.facebook[i]!;
      return { pageId, pageAccessToken };
    }
  }
}

/** A fresh, mutable copy of the seeded accounts (each simulator keeps its own; reset goes back to it). */
export function seededAccounts<K extends keyof SimAccounts>(platform: K): SimAccounts[K] {
  return structuredClone(SIM_ACCOUNTS[platform]) as SimAccounts[K];
}

/**
 * `POST /_sim/{platform}/revocations {token}`: the account owner revokes a credential (a refresh
 * token, a seller token, an API key), as in the platform's own settings. A revoked credential is
 * refused the platform's way from then on and is never taken for a new account (credentials never
 * seen are: CONTRACT §9); `POST /_sim/reset` forgets revocations.
 */
export function registerRevocations(app: FastifyInstance, revoked: Set<string>): void {
  app.post('/revocations', async (req, reply) => {
    const body = parseControlBody(RevokeBody, req.body, 'expected {token: string}');
    revoked.add(body.token);
    return reply.code(204).send();
  });
}

const RevokeBody = z.strictObject({ token: z.string().min(1).max(4000) });
