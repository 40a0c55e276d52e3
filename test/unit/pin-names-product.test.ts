/**
 * Which pins name their product to the platform by its platform id (the sku, else the product id), so
 * that a pinned product whose sku changes is taken back and pinned again under the new one
 * (sync.service replaceSent; docs/platforms.md): Whatnot's lineup, TikTok Shop's promotion link and
 * Facebook Live Shopping's product pin do. A YouTube chat message, a Facebook comment and a Bambuser
 * highlight carry the tracked link, whose code does not depend on the sku: re-pinned, each would be
 * posted (or featured) a second time for nothing.
 */
import { BAMBUSER_CAPABILITIES } from '../../src/targets/bambuser/bambuser.adapter.js';
import { FACEBOOK_CAPABILITIES, FACEBOOK_LIVE_SHOPPING_CAPABILITIES } from '../../src/targets/facebook/facebook.adapter.js';
import { pinNamesProduct } from '../../src/targets/target.adapter.js';
import { TIKTOK_CAPABILITIES } from '../../src/targets/tiktok/tiktok.adapter.js';
import { WHATNOT_CAPABILITIES } from '../../src/targets/whatnot/whatnot.adapter.js';
import { YOUTUBE_CAPABILITIES } from '../../src/targets/youtube/youtube.adapter.js';

test('a pin names its product on Whatnot, TikTok Shop and Facebook Live Shopping; not in a chat message, a comment or a highlight', () => {
  const names = Object.fromEntries(
    Object.entries({ WHATNOT_CAPABILITIES, TIKTOK_CAPABILITIES, FACEBOOK_LIVE_SHOPPING_CAPABILITIES, YOUTUBE_CAPABILITIES, FACEBOOK_CAPABILITIES, BAMBUSER_CAPABILITIES }).map(([name, caps]) => [name, pinNamesProduct(caps)]),
  );
  expect(names).toEqual({
    WHATNOT_CAPABILITIES: true,
    TIKTOK_CAPABILITIES: true,
    FACEBOOK_LIVE_SHOPPING_CAPABILITIES: true,
    YOUTUBE_CAPABILITIES: false,
    FACEBOOK_CAPABILITIES: false,
    BAMBUSER_CAPABILITIES: false,
  });
});
