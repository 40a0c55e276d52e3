/** PUBLIC_BASE_URL is where buyers open tracked links: an http(s) URL, refused at start otherwise, naming the variable. */
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('PUBLIC_BASE_URL takes an http or https URL', () => {
  expect(load({ PUBLIC_BASE_URL: 'https://go.example.com' }).publicBaseUrl).toBe('https://go.example.com');
  expect(load({ PUBLIC_BASE_URL: 'http://127.0.0.1:3000' }).publicBaseUrl).toBe('http://127.0.0.1:3000');
});

test('a PUBLIC_BASE_URL a browser cannot open as a link is refused at start, naming the variable', () => {
  for (const bad of ['ftp://go.example.com', 'javascript:alert(1)', 'mailto:ops@example.com', 'rtmp://go.example.com/live']) {
    expect(() => load({ PUBLIC_BASE_URL: bad })).toThrow(ConfigError);
    expect(() => load({ PUBLIC_BASE_URL: bad })).toThrow(/PUBLIC_BASE_URL.*http/);
  }
});
