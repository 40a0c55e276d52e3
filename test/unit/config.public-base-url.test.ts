/**
 * PUBLIC_BASE_URL is where buyers open tracked links, and RELAY_PUBLIC_URL where encoders publish: each
 * is the base a path is appended to (`{PUBLIC_BASE_URL}/l/{code}`, `{RELAY_PUBLIC_URL}/{streamKey}`).
 * A URL of the wrong scheme, or with a query, a fragment (either swallows the path) or a user/password
 * (handed out in every link) is refused at start, naming the variable.
 */
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('PUBLIC_BASE_URL takes an http or https URL', () => {
  expect(load({ PUBLIC_BASE_URL: 'https://go.example.com' }).publicBaseUrl).toBe('https://go.example.com');
  expect(load({ PUBLIC_BASE_URL: 'http://127.0.0.1:3000' }).publicBaseUrl).toBe('http://127.0.0.1:3000');
  expect(load({ PUBLIC_BASE_URL: 'https://example.com/go/' }).publicBaseUrl).toBe('https://example.com/go');
  // Set, it is where links go; unset, links follow the port the API binds (PORT=0: any free port).
  expect(load({ PUBLIC_BASE_URL: 'https://go.example.com' }).publicBaseUrlFollowsPort).toBe(false);
  expect(load({ PORT: '0' })).toMatchObject({ publicBaseUrl: 'http://localhost:0', publicBaseUrlFollowsPort: true });
});

test('a PUBLIC_BASE_URL a browser cannot open as a link is refused at start, naming the variable', () => {
  for (const bad of ['ftp://go.example.com', 'javascript:alert(1)', 'mailto:ops@example.com', 'rtmp://go.example.com/live']) {
    expect(() => load({ PUBLIC_BASE_URL: bad })).toThrow(ConfigError);
    expect(() => load({ PUBLIC_BASE_URL: bad })).toThrow(/PUBLIC_BASE_URL.*http/);
  }
});

const NOT_A_BASE = /^ {2}(PUBLIC_BASE_URL|RELAY_PUBLIC_URL): must have no query \(\?\), fragment \(#\) or user@/m;

test('a PUBLIC_BASE_URL with a query, a fragment or a user is refused at start, naming the variable', () => {
  for (const bad of ['https://go.example.com/?utm=x', 'https://go.example.com?', 'https://go.example.com/#top', 'https://ops:secret@go.example.com', 'https://ops@go.example.com/go']) {
    expect(() => load({ PUBLIC_BASE_URL: bad })).toThrow(ConfigError);
    expect(() => load({ PUBLIC_BASE_URL: bad })).toThrow(NOT_A_BASE);
  }
  // An @ in the path is no user.
  expect(load({ PUBLIC_BASE_URL: 'https://go.example.com/@shop' }).publicBaseUrl).toBe('https://go.example.com/@shop');
});

test('a RELAY_PUBLIC_URL with a query, a fragment or a user is refused at start, naming the variable', () => {
  expect(load({ RELAY_PUBLIC_URL: 'rtmps://live.example.com:443/live' }).relayPublicUrl).toBe('rtmps://live.example.com:443/live');
  for (const bad of ['rtmp://live.example.com/live?key=1', 'rtmp://live.example.com/live#x', 'rtmp://pub:pw@live.example.com/live']) {
    expect(() => load({ RELAY_PUBLIC_URL: bad })).toThrow(ConfigError);
    expect(() => load({ RELAY_PUBLIC_URL: bad })).toThrow(NOT_A_BASE);
  }
});
