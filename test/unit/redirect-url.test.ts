/** The redirect's spliced URL (fastRedirectUrl) is the same string the URL API builds (redirectUrl). */
import { fastRedirectUrl, isBot, redirectUrl, type LinkRecord } from '../../src/links/link.service.js';
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

test('isBot answers each user agent for itself when they alternate (the last one is memoised apart)', () => {
  const browser = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
  const crawler = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
  const seq = [browser, browser, crawler, crawler, browser, crawler, `${browser} `, 'Slackbot-LinkExpanding 1.0', browser];
  expect(seq.map((ua) => isBot('GET', ua, undefined))).toEqual([false, false, true, true, false, true, false, true, false]);
  // a prefetch or a HEAD is a bot's whatever the user agent just memoised says
  expect(isBot('GET', browser, 'prefetch')).toBe(true);
  expect(isBot('HEAD', browser, undefined)).toBe(true);
  expect(isBot('GET', browser, undefined)).toBe(false);
  expect(isBot('GET', undefined, undefined)).toBe(false);
});

/**
 * The partner's own query parameters reach the shop as the partner wrote them; only sclid and the utm
 * parameters are set (contract §4: the product url "with sclid added"). URLSearchParams re-serialised
 * the whole query: `a=b%20c` became `a=b+c`, `next=/cart` `next=%2Fcart`, a bare `flag` `flag=`
 * (attack on npm start, 2026-12-02).
 */
test.each([
  ['https://shop.example.com/p?a=b%20c&next=/cart&ids=1,2&flag', 'https://shop.example.com/p?a=b%20c&next=/cart&ids=1,2&flag&'],
  ['https://shop.example.com/p?sig=ab%2Fcd%3D&x=%7E~#top', 'https://shop.example.com/p?sig=ab%2Fcd%3D&x=%7E~&'],
  ['https://shop.example.com/p', 'https://shop.example.com/p?'],
])('%s keeps its own parameters byte for byte', (url, prefix) => {
  for (const build of [redirectUrl, fastRedirectUrl]) {
    const out = build(link, 'clk_01ABC', url);
    expect(out.startsWith(prefix)).toBe(true);
    expect(out.slice(prefix.length).replace(/#.*/, '')).toBe('sclid=clk_01ABC&utm_source=youtube&utm_medium=live&utm_campaign=show+1%2F%C3%BC');
  }
});

test('sclid and utm parameters already in the URL are replaced where they stand, repeats dropped, the rest untouched', () => {
  const url = 'https://shop.example.com/p?utm_source=mail&a=b%20c&sclid=old&utm%5Fmedium=x&sclid=older&z';
  const want = 'https://shop.example.com/p?utm_source=youtube&a=b%20c&sclid=clk_9&utm_medium=live&z&utm_campaign=show+1%2F%C3%BC';
  expect(redirectUrl(link, 'clk_9', url)).toBe(want);
  expect(fastRedirectUrl(link, 'clk_9', url)).toBe(want);
  expect(new URL(want).searchParams.getAll('sclid')).toEqual(['clk_9']);
});
