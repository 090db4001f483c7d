import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Simulation, simulate } from '../../src/sim/simulation.js';

/*
 * The real overlay code at scale in the deterministic simulator: a thousand nodes form a
 * correct ring, route in about half log2 N hops, and heal after a fifth of them fail at once.
 */
const N = 1000;
const sim = new Simulation({ nodes: N, seed: 11 });

test('1,000 nodes joining through one bootstrap peer converge to a correct ring', () => {
  const first = sim.addNode(undefined);
  for (let i = 1; i < N; i++) sim.clock.schedule(i * 50, () => sim.addNode(first));
  sim.clock.runUntil(N * 50);
  const took = sim.runUntilCorrect(600_000);
  assert.notEqual(took, null, `ring still wrong at ${sim.ringErrors()} nodes`);
  assert.equal(sim.ringErrors(), 0);
  assert.equal(sim.live().length, N);
});

test('lookups reach the responsible peer in about half log2 N hops', () => {
  const report = lookups(sim, 500);
  assert.equal(report.success, 1);
  const bound = Math.log2(N) / 2;
  assert.ok(report.hopsMean < bound + 1.5, `mean hops ${report.hopsMean} vs half log2 N ${bound}`);
  assert.ok(report.hopsMax <= Math.log2(N) + 2, `max hops ${report.hopsMax}`);
});

test('after 20% of the nodes fail at the same instant the ring is correct again within 3 virtual minutes', () => {
  const live = sim.live();
  for (let i = 0; i < N / 5; i++) sim.fail(live[(i * 7919) % live.length]);
  assert.equal(sim.live().length, N - N / 5);
  const took = sim.runUntilCorrect(180_000);
  assert.notEqual(took, null, `ring still wrong at ${sim.ringErrors()} nodes`);
  // Dead fingers linger until their next refresh; like the product's lookups, these retry once
  // (a retry leaves through another finger).
  const after = lookups(sim, 300, 2);
  assert.equal(after.success, 1);
});

test('the same seed gives the same run, event for event', () => {
  const options = { nodes: 120, seed: 99, lookups: 200, churnPerHour: 4, durationSeconds: 120 };
  const a = simulate(options);
  const b = simulate(options);
  const strip = (r: Record<string, unknown>) => ({ ...r, wallSeconds: 0 });
  assert.deepEqual(strip({ ...a }), strip({ ...b }));
  assert.ok(a.eventsRun > 10_000);
  assert.notDeepEqual(strip({ ...simulate({ ...options, seed: 100 }) }), strip({ ...a }));
});

test('under continuous churn (mean session 30 min) at least 99% of lookups succeed', () => {
  const report = simulate({ nodes: 400, seed: 5, churnPerHour: 2, lookups: 2000, durationSeconds: 600 });
  assert.ok(report.churnEvents > 100, `churn events ${report.churnEvents}`);
  assert.ok((report.lookupSuccess ?? 0) >= 0.99, `lookup success ${report.lookupSuccess}`);
  assert.equal(report.ringCorrect, true, `ring settles after churn: ${report.ringErrors} errors`);
});

function lookups(s: Simulation, count: number, attempts = 1): { success: number; hopsMean: number; hopsMax: number } {
  const results: number[] = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    s.clock.schedule(i * 10, () => {
      const origin = s.randomLive();
      const key = BigInt(`0x${Buffer.from(s.random.bytes(16)).toString('hex')}`);
      const expected = s.trueResponsible(key);
      origin.peer.router.request([{ kind: 1, id: key }], 23, new Uint8Array([0x80]), (error, response) => {
        if (error || !response || response.responder !== expected) failed++;
        else results.push(response.hops);
      }, { attempts });
    });
  }
  s.clock.runUntil(s.clock.now() + count * 10 + 30_000);
  return {
    success: results.length / count,
    hopsMean: results.reduce((a, b) => a + b, 0) / Math.max(1, results.length),
    hopsMax: Math.max(...results),
  };
}

test('with 10% of peers silently dropping what they should forward, at least 95% of lookups succeed', () => {
  const report = simulate({ nodes: 400, seed: 9, rogueFraction: 0.1, lookups: 800, durationSeconds: 300 });
  assert.ok(report.rogueNodes >= 30, `${report.rogueNodes} rogue peers`);
  assert.ok((report.lookupSuccess ?? 0) >= 0.95, `lookup success ${report.lookupSuccess}`);
});
