import { pinComment } from '../../src/targets/facebook/facebook.adapter.js';
import { carriesPin, pinTag } from '../../src/targets/pin-tag.js';
import type { PinSpec } from '../../src/targets/target.adapter.js';
import { pinMessage } from '../../src/targets/youtube/youtube.adapter.js';

const PIN: PinSpec = {
  productId: 'p-1',
  title: 'Linen shirt',
  price: { amount: 4900, currency: 'USD' },
  linkUrl: 'http://127.0.0.1:3000/l/Ab3dEf',
  platformProductId: 'p-1',
};

describe('pin episode tag', () => {
  it('is 8 hex digits of the marker, different per episode marker, the same on every retry', () => {
    expect(pinTag('abc-def')).toMatch(/^[0-9a-f]{8}$/);
    expect(pinTag('abc-def')).toBe(pinTag('abc-def'));
    expect(pinTag('abc-def')).not.toBe(pinTag('abc-deg'));
  });

  it('is written after the link; a message carries a pin only with both the link and the tag as whole words', () => {
    const tag = pinTag('m1');
    const text = pinMessage(PIN, tag);
    expect(text).toBe(`🛍 Linen shirt — 49.00 USD http://127.0.0.1:3000/l/Ab3dEf · ${tag}`);
    expect(pinComment(PIN, tag)).toBe(text);
    expect(carriesPin(text, PIN.linkUrl, tag)).toBe(true);
    expect(carriesPin(text, PIN.linkUrl, pinTag('m2'))).toBe(false); // another episode of the product
    expect(carriesPin(`🛍 Linen shirt — 49.00 USD ${PIN.linkUrl}`, PIN.linkUrl, tag)).toBe(false); // untagged
    expect(carriesPin(text.replace(PIN.linkUrl, `${PIN.linkUrl}x`), PIN.linkUrl, tag)).toBe(false); // another link
    expect(carriesPin(text.replace(` · ${tag}`, ` · ${tag}0`), PIN.linkUrl, tag)).toBe(false);
  });

  it('YouTube: a long title is cut so the message fits 200 characters; the link and the tag never are', () => {
    const tag = pinTag('m1');
    const text = pinMessage({ ...PIN, title: 'x'.repeat(400) }, tag);
    expect(text).toHaveLength(200); // UTF-16 units (the 🛍 is two)
    expect(text).toContain('x…');
    expect(text.endsWith(` — 49.00 USD ${PIN.linkUrl} · ${tag}`)).toBe(true);
    expect(carriesPin(text, PIN.linkUrl, tag)).toBe(true);
  });
});
