/** EVENT_FUTURE_SLACK_SEC: how far past now an inbound event's occurredAt may be (default 24 h). */
import { ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('the future slack defaults to 86400 s, takes 0 and more, and refuses the rest naming the variable', () => {
  expect(load({}).eventFutureSlackSec).toBe(86_400);
  expect(load({ EVENT_FUTURE_SLACK_SEC: '0' }).eventFutureSlackSec).toBe(0);
  expect(load({ EVENT_FUTURE_SLACK_SEC: '3600' }).eventFutureSlackSec).toBe(3600);
  expect(() => load({ EVENT_FUTURE_SLACK_SEC: '-1' })).toThrow(ConfigError);
  expect(() => load({ EVENT_FUTURE_SLACK_SEC: 'soon' })).toThrow(/EVENT_FUTURE_SLACK_SEC/);
});
