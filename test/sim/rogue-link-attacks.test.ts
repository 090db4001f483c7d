import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LINK_ATTACKS } from '../../src/sim/rogue-link-attacks.js';
import { simulate } from '../../src/sim/simulation.js';

/*
 * Rogue enrolled peers inside the overlay that attack the link layer as well as dropping what
 * they should forward (issue 13's attacks, played by peers on the real link code): the 2^48
 * counter on their own sessions, relayed and replayed hellos, junk hellos and spoofed frames for
 * unknown sessions. Honest peers must lose no process (no fault reaches a guard), believe no
 * rogue address to be another node, and keep answering lookups.
 */
test('with 10% of peers dropping forwards and attacking links, lookups succeed and no honest peer faults or is fooled', () => {
  const report = simulate({ nodes: 60, seed: 13, crypto: 'ed25519', rogueFraction: 0.1, rogueAttacks: ['drop', ...LINK_ATTACKS], lookups: 400, durationSeconds: 150 });
  console.log(JSON.stringify(report));
  assert.ok(report.rogueNodes >= 4, `${report.rogueNodes} rogue peers`);
  assert.ok(report.attackDatagrams > 10_000, `${report.attackDatagrams} attack datagrams`);
  assert.equal(report.linkFaults, 0);
  assert.equal(report.impersonations, 0);
  assert.ok((report.lookupSuccess ?? 0) >= 0.95, `lookup success ${report.lookupSuccess}`);
  assert.equal(report.ringCorrect, true);
});

test('a simulation without lookups reports no lookup success rather than a perfect one', () => {
  const report = simulate({ nodes: 5, seed: 1 });
  assert.equal(report.lookups, 0);
  assert.equal(report.lookupSuccess, null);
});
