/** FACEBOOK_GRAPH_VERSION: a current default, any Graph version can be chosen, anything else is refused at start. */
import { ConfigError, DEFAULT_FACEBOOK_GRAPH_VERSION, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('the Graph version defaults to a current one and follows FACEBOOK_GRAPH_VERSION', () => {
  expect(DEFAULT_FACEBOOK_GRAPH_VERSION).toBe('v27.0');
  expect(load({}).facebookGraphVersion).toBe('v27.0');
  expect(load({ FACEBOOK_GRAPH_VERSION: 'v26.0' }).facebookGraphVersion).toBe('v26.0');
});

test('a value that is not a Graph version is refused, naming the variable', () => {
  expect(() => load({ FACEBOOK_GRAPH_VERSION: '27' })).toThrow(ConfigError);
  expect(() => load({ FACEBOOK_GRAPH_VERSION: 'v27' })).toThrow(/FACEBOOK_GRAPH_VERSION: must be a Graph API version such as v27\.0/);
});
