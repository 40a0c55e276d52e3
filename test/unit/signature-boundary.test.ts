/**
 * The webhook timestamp's ±300 s window compares whole seconds, like the `standardwebhooks` reference
 * (floor(now) − timestamp > tolerance is too old; timestamp − floor(now) > tolerance too new). It
 * compared the fractional now: a timestamp exactly 300 s old was refused during most of each second,
 * and the window was asymmetric (+300 s accepted, −300 s not).
 */
import { Webhook } from 'standardwebhooks';
import { newWebhookSecret, signatureHeader, verifyWebhook } from '../../src/sources/signature.js';

const body = '{"type":"show.live"}';
const id = 'msg_edge';

/** Our verdict and the reference's for a timestamp `offsetSec` from the whole second of `nowMs`. */
function verdicts(nowMs: number, offsetSec: number): { ours: boolean; reference: boolean } {
  const secret = newWebhookSecret();
  const ts = Math.floor(nowMs / 1000) + offsetSec;
  const signature = signatureHeader(secret, id, ts, body);
  let ours = true;
  try {
    verifyWebhook({ id, timestamp: String(ts), signature }, Buffer.from(body), [secret], 300, nowMs);
  } catch {
    ours = false;
  }
  const realNow = Date.now;
  Date.now = () => nowMs;
  let reference = true;
  try {
    new Webhook(secret).verify(body, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signature });
  } catch {
    reference = false;
  } finally {
    Date.now = realNow;
  }
  return { ours, reference };
}

test('a timestamp exactly at the −300 s edge is accepted like the reference library accepts it', () => {
  expect(verdicts(1_800_000_000_500, -300)).toEqual({ ours: true, reference: true }); // half a second into a second
});

test.each([0, 1, 500, 999])('at %i ms into a second: ±300 s accepted, ±301 s refused, as the reference does', (ms) => {
  const nowMs = 1_800_000_000_000 + ms;
  for (const [offset, accepted] of [[-301, false], [-300, true], [0, true], [300, true], [301, false]] as const) {
    expect({ offset, ...verdicts(nowMs, offset) }).toEqual({ offset, ours: accepted, reference: accepted });
  }
});
