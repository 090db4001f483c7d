import { Simulation } from '../src/sim/simulation.js';

/*
 * Overlay figures from the simulator, one JSON line per ring size:
 * - hopsMean against the Chord reference half log2 N (ratio < ~1.2 is healthy),
 * - simulator speed: simulated node-seconds per wall second,
 * - memory per simulated node: heap growth while the ring forms divided by N, beside the
 *   heap of the empty simulator measured in the same process.
 * Usage: node scripts/bench.mjs overlay-scale [N ...]   (default 1000 4000 10000)
 */
declare const gc: (() => void) | undefined;

function heapMb(): number {
  if (typeof gc === 'function') gc();
  return process.memoryUsage().heapUsed / 1048576;
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
for (const nodes of sizes.length ? sizes : [1000, 4000, 10000]) {
  const wallStart = performance.now();
  const baseHeap = heapMb();
  const sim = new Simulation({ nodes, seed: 1 });
  const first = sim.addNode(undefined);
  const spacing = 20;
  for (let i = 1; i < nodes; i++) sim.clock.schedule(i * spacing, () => sim.addNode(first));
  sim.clock.runUntil(nodes * spacing);
  const converged = sim.runUntilCorrect(900_000);
  const convergedAtSeconds = converged === null ? null : sim.clock.now() / 1000;
  // Let fingers settle for two refresh rounds before measuring routes.
  sim.clock.runUntil(sim.clock.now() + 120_000);
  const heapPerNodeKb = ((heapMb() - baseHeap) * 1024) / nodes;
  const hops: number[] = [];
  let failed = 0;
  const lookups = 2000;
  for (let i = 0; i < lookups; i++) {
    sim.clock.schedule(i * 20, () => {
      const key = BigInt(`0x${Buffer.from(sim.random.bytes(16)).toString('hex')}`);
      const expected = sim.trueResponsible(key);
      sim.randomLive().peer.router.request([{ kind: 1, id: key }], 23, new Uint8Array([0x80]), (error, r) => {
        if (error || !r || r.responder !== expected) failed++;
        else hops.push(r.hops);
      });
    });
  }
  sim.clock.runUntil(sim.clock.now() + lookups * 20 + 20_000);
  hops.sort((a, b) => a - b);
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const hopsMean = hops.reduce((a, b) => a + b, 0) / hops.length;
  const halfLog2N = Math.log2(nodes) / 2;
  console.log(
    JSON.stringify({
      bench: 'overlay-scale',
      nodes,
      convergedAtSeconds,
      lookupSuccess: hops.length / lookups,
      hopsMean: Number(hopsMean.toFixed(3)),
      hopsP99: hops[Math.floor(hops.length * 0.99)],
      halfLog2N: Number(halfLog2N.toFixed(3)),
      hopsRatio: Number((hopsMean / halfLog2N).toFixed(3)),
      simSeconds: Number((sim.clock.now() / 1000).toFixed(1)),
      wallSeconds: Number(wallSeconds.toFixed(1)),
      nodeSecondsPerWallSecond: Math.round((nodes * sim.clock.now()) / 1000 / wallSeconds),
      eventsPerWallSecond: Math.round(sim.clock.eventsRun / wallSeconds),
      heapPerNodeKb: Number(heapPerNodeKb.toFixed(1)),
      emptySimulatorHeapMb: Number(baseHeap.toFixed(1)),
      failedLookups: failed,
    }),
  );
}
