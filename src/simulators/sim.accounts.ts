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
 */

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
  accessToken: string;
}

export interface BambuserSimAccount {
  orgId: string;
  apiKey: string;
  /** Omitted: every scope. */
  scopes?: string[];
}

export interface FacebookSimAccount {
  pageId: string;
  pageAccessToken: string;
}

export interface SimAccounts {
  youtube: YoutubeSimAccount[];
  tiktok: { apps: TiktokSimApp[]; shops: TiktokSimShop[] };
  whatnot: WhatnotSimAccount[];
  bambuser: BambuserSimAccount[];
  facebook: FacebookSimAccount[];
}

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
    { sellerId: 'sim-seller-a', accessToken: 'wn_sim_access_token_seller_a' },
    { sellerId: 'sim-seller-b', accessToken: 'wn_sim_access_token_seller_b' },
  ],
  bambuser: [
    { orgId: 'sim-org-a', apiKey: 'bmb_sim_key_org_a' },
    { orgId: 'sim-org-b', apiKey: 'bmb_sim_key_org_b' },
  ],
  facebook: [
    { pageId: '104857600000001', pageAccessToken: 'EAAGsimPageTokenA' },
    { pageId: '104857600000002', pageAccessToken: 'EAAGsimPageTokenB' },
  ],
});

/** Target credentials (as `POST /v1/partners/{id}/targets` takes them) for a seeded account. */
export function simTargetCredentials(platform: keyof SimAccounts, which: 'a' | 'b' = 'a'): Record<string, string> {
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
