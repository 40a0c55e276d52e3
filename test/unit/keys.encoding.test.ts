/**
 * Key builders and ids that contain ':' (src/store/keys.ts keyPart). Ids over the contract's alphabet
 * `[A-Za-z0-9_.:-]` (webhook-ids: any printable ASCII) must never make two different tuples one key,
 * and keys of ids without '%', ':', '{', '}' must be exactly what they were before keyPart.
 */
import fc from 'fast-check';
import { fromKeyPart, keyPart, Keys } from '../../src/store/keys.js';
import { keySlot } from '../../src/store/slot.js';
import { syncJobId } from '../../src/queues/queues.js';

const k = new Keys('sc');

/**
 * expect(…) only where a check fails: jest's matchers cost about ten times the check itself, and the
 * properties below make some 200,000 checks (the file took 28 s of a loaded CI; a failure reads the same).
 */
const distinct = (a: string, b: string): void => {
  if (a === b) expect(a).not.toBe(b);
};
const same = (a: unknown, b: unknown): void => {
  if (a !== b) expect(a).toBe(b);
};

// Few characters, ':' often: tuples that differ only by where a ':' falls are drawn often.
const id = fc.string({ unit: fc.constantFrom('a', 'b', ':', ':', '.', '-', '_', '9'), minLength: 1, maxLength: 8 });
const webhookId = fc.string({ unit: fc.constantFrom('a', ':', '%', '{', '}', '3', 'A'), minLength: 1, maxLength: 8 });
const bucket = fc.integer({ min: 0, max: 31 });
const day = fc.integer({ min: 0, max: 30_000 });

type Builder = { name: string; arb: fc.Arbitrary<unknown[]>; key: (args: unknown[]) => string };
const s = (a: unknown[], i: number): string => a[i] as string;
const n = (a: unknown[], i: number): number => a[i] as number;

/** Every builder that joins two or more ids (and the sync job's deduplication id, built the same way). */
const MULTI: Builder[] = [
  { name: 'partnerWebhookId', arb: fc.tuple(id, webhookId), key: (a) => k.partnerWebhookId(s(a, 0), s(a, 1)) },
  { name: 'showTag', arb: fc.tuple(id, id), key: (a) => k.showTag(s(a, 0), s(a, 1)) },
  { name: 'desired', arb: fc.tuple(id, id), key: (a) => k.desired(s(a, 0), s(a, 1)) },
  { name: 'showEvents', arb: fc.tuple(id, id), key: (a) => k.showEvents(s(a, 0), s(a, 1)) },
  { name: 'showInbox', arb: fc.tuple(id, id, webhookId), key: (a) => k.showInbox(s(a, 0), s(a, 1), s(a, 2)) },
  { name: 'mirror', arb: fc.tuple(id, id, id), key: (a) => k.mirror(s(a, 0), s(a, 1), s(a, 2)) },
  { name: 'mirrorLease', arb: fc.tuple(id, id, id), key: (a) => k.mirrorLease(s(a, 0), s(a, 1), s(a, 2)) },
  { name: 'showActivity', arb: fc.tuple(id, id), key: (a) => k.showActivity(s(a, 0), s(a, 1)) },
  { name: 'intent', arb: fc.tuple(id, id, id, id), key: (a) => k.intent(s(a, 0), s(a, 1), s(a, 2), s(a, 3)) },
  { name: 'relayIngest', arb: fc.tuple(id, id), key: (a) => k.relayIngest(s(a, 0), s(a, 1)) },
  { name: 'relaySource', arb: fc.tuple(id, id), key: (a) => k.relaySource(s(a, 0), s(a, 1)) },
  { name: 'relayStatus', arb: fc.tuple(id, id, id), key: (a) => k.relayStatus(s(a, 0), s(a, 1), s(a, 2)) },
  { name: 'relayLease', arb: fc.tuple(id, id), key: (a) => k.relayLease(s(a, 0), s(a, 1)) },
  { name: 'relayLeaseLast', arb: fc.tuple(id, id), key: (a) => k.relayLeaseLast(s(a, 0), s(a, 1)) },
  { name: 'orderTag', arb: fc.tuple(id, id), key: (a) => k.orderTag(s(a, 0), s(a, 1)) },
  { name: 'orderInbox', arb: fc.tuple(id, id, webhookId), key: (a) => k.orderInbox(s(a, 0), s(a, 1), s(a, 2)) },
  { name: 'orderEvents', arb: fc.tuple(id, id), key: (a) => k.orderEvents(s(a, 0), s(a, 1)) },
  { name: 'orderPending', arb: fc.tuple(id, id), key: (a) => k.orderPending(s(a, 0), s(a, 1)) },
  { name: 'ledgerBase', arb: fc.tuple(id, bucket), key: (a) => k.ledgerBase(s(a, 0), n(a, 1)) },
  { name: 'ledgerOrders', arb: fc.tuple(id, bucket), key: (a) => k.ledgerOrders(s(a, 0), n(a, 1)) },
  { name: 'ledgerDay', arb: fc.tuple(id, bucket, day), key: (a) => k.ledgerDay(s(a, 0), n(a, 1), n(a, 2)) },
  { name: 'ledgerDayAgg', arb: fc.tuple(id, bucket, day), key: (a) => k.ledgerDayAgg(s(a, 0), n(a, 1), n(a, 2)) },
  { name: 'ledgerShowAgg', arb: fc.tuple(id, bucket, id), key: (a) => k.ledgerShowAgg(s(a, 0), n(a, 1), s(a, 2)) },
  { name: 'ledgerReconMark', arb: fc.tuple(id, bucket, id), key: (a) => k.ledgerReconMark(s(a, 0), n(a, 1), s(a, 2)) },
  { name: 'ledgerDays', arb: fc.tuple(id, bucket), key: (a) => k.ledgerDays(s(a, 0), n(a, 1)) },
  { name: 'targetExternalShow', arb: fc.tuple(id, id), key: (a) => k.targetExternalShow(s(a, 0), s(a, 1)) },
  { name: 'targetExternalShowWaiting', arb: fc.tuple(id, id), key: (a) => k.targetExternalShowWaiting(s(a, 0), s(a, 1)) },
  { name: 'targetLimit', arb: fc.tuple(id, fc.constantFrom('a', 'b:c', 'b')), key: (a) => k.targetLimit(s(a, 0), s(a, 1)) },
  { name: 'endpoint', arb: fc.tuple(id, id), key: (a) => k.endpoint(s(a, 0), s(a, 1)) },
  { name: 'endpointAttempts', arb: fc.tuple(id, id), key: (a) => k.endpointAttempts(s(a, 0), s(a, 1)) },
  { name: 'outboundMessage', arb: fc.tuple(id, id), key: (a) => k.outboundMessage(s(a, 0), s(a, 1)) },
  { name: 'outboundIdempotency', arb: fc.tuple(id, id), key: (a) => k.outboundIdempotency(s(a, 0), s(a, 1)) },
  { name: 'syncJobId', arb: fc.tuple(id, id, id), key: (a) => syncJobId({ partnerId: s(a, 0), showId: s(a, 1), targetId: s(a, 2) }) },
];

/** The builders of one id (for the cross-builder check). */
const SINGLE: Builder[] = (['partner', 'partnerShows', 'partnerLiveShows', 'targetOwner', 'targetToken', 'audit', 'partnerEndpoints', 'link', 'click', 'reconciliation', 'partnerReconciliations', 'reconHealed', 'apiKey', 'consoleSession', 'relayKeyIndex'] as const).map(
  (name) => ({ name, arb: fc.tuple(id), key: (a) => (k[name] as (x: string) => string).call(k, s(a, 0)) }),
);

test('keyPart: the fixed cases, no separator or brace in its output, fromKeyPart undoes it', () => {
  expect(keyPart('show-1.a_B')).toBe('show-1.a_B');
  expect(keyPart('a:b')).toBe('a%3Ab');
  expect(keyPart('%3A')).toBe('%253A');
  expect(keyPart('{x}:%')).toBe('%7Bx%7D%3A%25');
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('a', ':', '%', '{', '}', '3', 'A', '2', '5') }), (x) => {
      const p = keyPart(x);
      if (/[:{}]/.test(p)) expect(p).not.toMatch(/[:{}]/);
      same(fromKeyPart(p), x);
    }),
    { numRuns: 2000 },
  );
});

/**
 * The tuple `x` with the ':' boundary between two neighbouring string ids moved to another ':' of
 * their join (`['a', 'b:c']` → `['a:b', 'c']`): the tuples a plain ':' join would make one key.
 */
function resplit(x: unknown[], pick: number, at: number): unknown[] {
  const pairs = x.flatMap((v, i) => (typeof v === 'string' && typeof x[i + 1] === 'string' ? [i] : []));
  if (pairs.length === 0) return x;
  const i = pairs[pick % pairs.length]!;
  const joined = `${s(x, i)}:${s(x, i + 1)}`;
  const cuts = [...joined].flatMap((c, j) => (c === ':' && j > 0 && j < joined.length - 1 ? [j] : []));
  const cut = cuts[at % cuts.length]!;
  const y = [...x];
  y[i] = joined.slice(0, cut);
  y[i + 1] = joined.slice(cut + 1);
  return y;
}

test.each(MULTI.map((b) => [b.name, b] as const))('%s: distinct id tuples give distinct keys', (_name, b) => {
  // random pairs, and pairs that differ only by where a ':' falls
  fc.assert(
    fc.property(b.arb, b.arb, (x, y) => {
      if (JSON.stringify(x) !== JSON.stringify(y)) distinct(b.key(x), b.key(y));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(b.arb, fc.nat(), fc.nat(), (x, pick, at) => {
      const y = resplit(x, pick, at);
      if (JSON.stringify(x) !== JSON.stringify(y)) distinct(b.key(x), b.key(y));
    }),
    { numRuns: 2000 },
  );
});

test('no two different builders or tuples share a key', () => {
  const all = [...MULTI.filter((b) => b.name !== 'showTag' && b.name !== 'orderTag' && b.name !== 'ledgerBase' && b.name !== 'syncJobId'), ...SINGLE];
  const call = fc.oneof(...all.map((b) => b.arb.map((args) => ({ b, args }))));
  fc.assert(
    fc.property(fc.array(call, { minLength: 2, maxLength: 40 }), (calls) => {
      const seen = new Map<string, string>();
      for (const { b, args } of calls) {
        const key = b.key(args);
        const who = `${b.name}${JSON.stringify(args)}`;
        const before = seen.get(key);
        if (before !== undefined) same(before, who);
        seen.set(key, who);
      }
    }),
    { numRuns: 3000 },
  );
});

test('a show keeps its slot: every key of (partner, show) is in the slot of its desired state, also for ids with ":"', () => {
  fc.assert(
    fc.property(id, id, id, (p, sh, t) => {
      const slot = keySlot(k.desired(p, sh));
      for (const key of [k.showEvents(p, sh), k.showInbox(p, sh, 'w}{:'), k.mirror(p, sh, t), k.mirrorLease(p, sh, t), k.intent(p, sh, t, 'g1:pin:x:1:message'), k.relayIngest(p, sh), k.relayStatus(p, sh, t), k.showActivity(p, sh)]) {
        same(keySlot(key), slot);
      }
      same(keySlot(k.desired(p, sh)), keySlot(`s:${keyPart(p)}:${sh}`));
      same(keySlot(k.partnerWebhookId(p, 'a}b')), keySlot(`w:${keyPart(p)}:a%7Db`));
    }),
    { numRuns: 1000 },
  );
});

test('keys of ids without special characters are what they were before keyPart', () => {
  expect(k.desired('p1', 'show-1')).toBe('sc:{s:p1:show-1}:desired');
  expect(k.showInbox('p1', 'show-1', 'msg_1')).toBe('sc:{s:p1:show-1}:inbox:msg_1');
  expect(k.intent('p1', 'show-1', 'tgt_x', 'g1:pin:prod.9:2:message')).toBe('sc:{s:p1:show-1}:intent:tgt_x:g1:pin:prod.9:2:message');
  expect(k.partnerWebhookId('p1', 'msg_1')).toBe('sc:{w:p1:msg_1}:wid');
  expect(k.orderInbox('p1', 'o-1', 'msg_2')).toBe('sc:{o:p1:o-1}:inbox:msg_2');
  expect(k.ledgerShowAgg('p1', 7, 'show-1')).toBe('sc:{lg:p1:7}:s:show-1');
  expect(k.endpointAttempts('p1', 'ep_1')).toBe('sc:{e:p1:ep_1}:attempts');
  expect(k.outboundMessage('p1', 'msg_1')).toBe('sc:{m:p1:msg_1}:message');
  expect(k.outboundIdempotency('p1', 'abc')).toBe('sc:{oi:p1:abc}:idem');
  expect(syncJobId({ partnerId: 'p1', showId: 'show-1', targetId: 'tgt_x' })).toBe('sync:p1:show-1:tgt_x');
  // an id with ':' where its tag or the key ends it is written as it is (existing keys did not move)
  expect(k.desired('p1', 'b:c')).toBe('sc:{s:p1:b:c}:desired');
  expect(k.mirror('p1', 'show-1', 't:1')).toBe('sc:{s:p1:show-1}:mirror:t:1');
  expect(k.partner('a:b')).toBe('sc:{p:a:b}:partner');
  // … and one that another part follows is encoded
  expect(k.desired('a:b', 'c')).toBe('sc:{s:a%3Ab:c}:desired');
  expect(k.partnerWebhookId('a:b', 'msg1')).toBe('sc:{w:a%3Ab:msg1}:wid');
});
