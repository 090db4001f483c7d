import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rankByRoundTrip } from '../../../src/nat/relay/relay-choice.js';
import type { Address } from '../../../src/wire/address.js';

/*
 * Relays found by name are taken nearest first (issue 16): each of the first four is asked a
 * Binding at once, those that answered go first by round trip, then the silent ones and those
 * never measured, in the order found.
 */
const relay = (name: string, host: string) => ({ name, address: { host, port: 6084 } });

test('relays are ranked by measured round trip; the silent and the unmeasured go last, in the order found', () => {
  const found = [relay('far', '198.18.0.1'), relay('silent', '198.18.0.2'), relay('near', '198.18.0.3'), relay('middle', '198.18.0.4'), relay('fifth', '198.18.0.5')];
  const rtt: Record<string, number | undefined> = { '198.18.0.1': 120, '198.18.0.2': undefined, '198.18.0.3': 8, '198.18.0.4': 40 };
  const asked: string[] = [];
  let ranked: string[] = [];
  const pending: (() => void)[] = [];
  rankByRoundTrip(found, (address: Address, done) => {
    asked.push(address.host);
    pending.push(() => done(rtt[address.host]));
  }, (result) => (ranked = result.map((r) => r.relay.name)));
  assert.deepEqual(asked, ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4'], 'four asked at once, the fifth not');
  for (const answer of pending.reverse()) answer(); // answers arrive in any order
  assert.deepEqual(ranked, ['near', 'middle', 'far', 'silent', 'fifth']);
});

test('no relay found: nothing to measure', () => {
  let ranked: unknown[] | undefined;
  rankByRoundTrip([], () => assert.fail('nothing to ask'), (result) => (ranked = result));
  assert.deepEqual(ranked, []);
});
