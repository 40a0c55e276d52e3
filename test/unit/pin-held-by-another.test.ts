/**
 * takeBack's rule (sync.service heldByAnotherPin): a pin is taken back on the platform only when no
 * other pinned product of the mirror still holds what it made there. Products A and B share a SKU on
 * Facebook Live Shopping; A's pin timed out (no ref, sent as the SKU), B is pinned with ref `lsp:<item>`.
 * A's take-back without a ref deletes the featured item when its retailer_id is the SKU: B's. The rule
 * compared refs only ('SKU' vs 'lsp:…') and let it through: B vanished from Facebook while the show
 * view said pinned (review of f269d7f, 2026-12-05).
 */
import type { MirrorPin } from '../../src/domain/mirror.js';
import { heldByAnotherPin } from '../../src/mirror/sync.service.js';

const pin = (p: Partial<MirrorPin>): MirrorPin => ({ state: 'pinned', episode: 1, linkUrl: undefined, ref: undefined, at: undefined, ...p });

test('a timed-out pin (no ref) sent as a SKU another pinned product was sent as is still held: not taken back', () => {
  const a = pin({ state: 'pending', tried: true, sentAs: 'LIP-01' });
  const pins = { a, b: pin({ ref: 'lsp:77', sentAs: 'LIP-01' }) };
  expect(heldByAnotherPin(pins, 'a', a, true)).toBe(true);
  // B unpinned (or sent as another SKU): A's take-back goes ahead.
  expect(heldByAnotherPin({ a, b: pin({ state: 'unpinned', ref: 'lsp:77', sentAs: 'LIP-01' }) }, 'a', a, true)).toBe(false);
  expect(heldByAnotherPin({ a, b: pin({ ref: 'lsp:78', sentAs: 'LIP-02' }) }, 'a', a, true)).toBe(false);
});

test('a pin with a ref is held only by another pin with that ref (Whatnot: ref = the product id sent)', () => {
  const a = pin({ ref: 'lsp:77', sentAs: 'LIP-01' });
  expect(heldByAnotherPin({ a, b: pin({ ref: 'lsp:77', sentAs: 'LIP-01' }) }, 'a', a, true)).toBe(true);
  // Its own item taken down by id: another featured item with the same SKU is not touched by it.
  expect(heldByAnotherPin({ a, b: pin({ ref: 'lsp:78', sentAs: 'LIP-01' }) }, 'a', a, true)).toBe(false);
  const w = pin({ ref: 'LIP-01', sentAs: 'LIP-01' });
  expect(heldByAnotherPin({ w, x: pin({ ref: 'LIP-01', sentAs: 'LIP-01' }) }, 'w', w, true)).toBe(true);
  expect(heldByAnotherPin({ w }, 'w', w, true)).toBe(false);
});

test('where a pin does not name its product by that id (a Bambuser highlight, found by its own link), a shared SKU holds nothing', () => {
  const a = pin({ state: 'pending', tried: true, sentAs: 'LIP-01' });
  expect(heldByAnotherPin({ a, b: pin({ ref: 'hl-9', sentAs: 'LIP-01' }) }, 'a', a, false)).toBe(false);
});
