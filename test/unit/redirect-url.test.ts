/** The redirect's spliced URL (fastRedirectUrl) is the same string the URL API builds (redirectUrl). */
import { fastRedirectUrl, redirectUrl, type LinkRecord } from '../../src/links/link.service.js';
import { sortableId } from '../../src/lib/ids.js';

const link: LinkRecord = { code: 'abc', partnerId: 'p', showId: 'show 1/ü', targetId: 't', platform: 'youtube', productId: 'p1', url: 'https://shop.example.com/p1' };

test.each([
  'https://shop.example.com/p1',
  'https://shop.example.com/p1?ref=live&utm_source=old&x=1#frag',
  'https://shop.example.com/p%C3%BC?sclid=old&sclid=older&a=b+c',
  'https://shop.example.com/?utm_campaign=a&utm_medium=b',
  'https://shop.example.com/clkZZplaceholderZZ7q3?q=clkZZplaceholderZZ7q3',
])('same URL as redirectUrl for %s, click after click', (url) => {
  for (let i = 0; i < 3; i++) {
    const id = sortableId('clk_');
    expect(fastRedirectUrl(link, id, url)).toBe(redirectUrl(link, id, url));
  }
  expect(fastRedirectUrl(link, undefined, url)).toBe(redirectUrl(link, undefined, url));
  expect(fastRedirectUrl({ ...link, showId: 'other' }, 'clk_1', url)).toBe(redirectUrl({ ...link, showId: 'other' }, 'clk_1', url));
});

test('a click id that would need escaping takes the URL API path', () => {
  expect(fastRedirectUrl(link, 'a&b=c', link.url)).toBe(redirectUrl(link, 'a&b=c', link.url));
});
