import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resourceId } from '../src/identity/ids.js';
import { createOpenIdentity } from '../src/identity/open-identity.js';
import { OpenTrustPolicy } from '../src/identity/trust.js';
import { OverlayPeer } from '../src/node/overlay-peer.js';
import { silentLogger } from '../src/runtime/log.js';
import { SystemClock } from '../src/runtime/clock.js';
import { SeededRandom } from '../src/runtime/random.js';
import { createBackend } from '../src/storage/backends/registry.js';
import { DEFAULT_KINDS, type KindDefinition, KindRegistry } from '../src/storage/kind.js';
import { SimNetwork } from '../src/sim/sim-network.js';
import { VirtualClock } from '../src/sim/virtual-clock.js';

/*
 * Storage figures on one peer (alone in its overlay, so every Store and Fetch is answered by
 * itself, through the real message path with Ed25519 signatures), one JSON line per backend:
 * Store and Fetch operations per second with 16 in flight, the cost of fdatasync measured in the
 * same run (a 200-byte write with and without it), and heap per 10,000 stored values.
 */
declare const gc: (() => void) | undefined;
const heap = (): number => {
  if (typeof gc === 'function') gc();
  return process.memoryUsage().heapUsed;
};

function makePeer(backendName: string, dir: string): OverlayPeer {
  // Real timers (a lone peer never sends a datagram, so the simulated network stays idle).
  const clock = new SystemClock();
  const random = new SeededRandom(1);
  const network = new SimNetwork(new VirtualClock(), random);
  const overlay = 'bench.p2psip';
  const identity = createOpenIdentity(random.bytes(32), 'bench@bench.p2psip', overlay, Math.floor(clock.wallTime() / 1000));
  const peer = new OverlayPeer({
    identity,
    trust: new OpenTrustPolicy(overlay),
    link: network.addHost(),
    clock,
    random,
    log: silentLogger,
    overlayName: overlay,
    storage: { backend: createBackend(backendName, dir), kinds: new KindRegistry([...DEFAULT_KINDS, BENCH_KIND]), limits: { maxBytesPerResource: 1 << 30, maxBytesTotal: 1 << 30 } },
  });
  peer.start([]);
  return peer;
}

async function runConcurrent(total: number, inFlight: number, op: (i: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await op(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

function fsyncCost(dir: string): { writeUs: number; writeSyncUs: number } {
  const fd = openSync(path.join(dir, 'probe'), 'a');
  const record = Buffer.alloc(200, 7);
  const time = (sync: boolean): number => {
    const start = performance.now();
    for (let i = 0; i < 200; i++) {
      writeSync(fd, record);
      if (sync) fdatasyncSync(fd);
    }
    return ((performance.now() - start) * 1000) / 200;
  };
  const writeUs = time(false);
  const writeSyncUs = time(true);
  closeSync(fd);
  return { writeUs, writeSyncUs };
}

/** One user's array wide enough for every benchmark value. */
const BENCH_KIND: KindDefinition = { id: 0xf00ff, name: 'BENCH', model: 'array', policy: 'USER-MATCH', maxCount: 1_000_000, maxSize: 1024 };

async function main(): Promise<void> {
  const rates: Record<string, { stores: number; fetches: number }> = {};
  for (const backendName of ['memory', 'file']) {
    const dir = mkdtempSync(path.join(tmpdir(), 'p2psip-bench-'));
    const peer = makePeer(backendName, dir);
    const wide = BENCH_KIND;
    const resource = resourceId(peer.subject);
    const store = (i: number) =>
      new Promise<void>((resolve, reject) =>
        peer.client.store(wide, resource, [{ key: i, exists: true, value: new Uint8Array(100).fill(i & 0xff) }], 3600, (e) => (e ? reject(e) : resolve())),
      );
    // Warm up (JIT, caches) before measuring heap growth.
    const warm = 1_000;
    await runConcurrent(warm, 16, store);
    const heapBefore = heap();
    const stores = 10_000;
    const storeOps = await runConcurrent(stores, 16, (i) => store(warm + i));
    const heapPer10k = ((heap() - heapBefore) / stores) * 10_000;
    const fetches = 2_000;
    const fetchOps = await runConcurrent(fetches, 16, (i) =>
      new Promise<void>((resolve, reject) =>
        peer.client.fetch(wide, resource, { ranges: [[warm + (i % stores), warm + (i % stores)]] }, (e, r) => (e || r?.values.length !== 1 ? reject(e ?? new Error('missing')) : resolve())),
      ),
    );
    const sync = fsyncCost(dir);
    const stats = peer.storage!.backend.stats();
    console.log(
      JSON.stringify({
        bench: 'storage',
        backend: backendName,
        valueBytes: 100,
        storesPerSecond: Math.round(storeOps),
        fetchesPerSecond: Math.round(fetchOps),
        syncs: stats.syncs,
        storesPerSync: stats.syncs ? Number((stores / stats.syncs).toFixed(2)) : null,
        write200BUs: Number(sync.writeUs.toFixed(1)),
        write200BWithFdatasyncUs: Number(sync.writeSyncUs.toFixed(1)),
        fsyncCostRatio: Number((sync.writeSyncUs / sync.writeUs).toFixed(1)),
        heapMbPer10kValues: Number((heapPer10k / 1048576).toFixed(2)),
        storedEntries: peer.storage!.store.size.entries,
        rssMb: Number((process.memoryUsage().rss / 1048576).toFixed(1)),
      }),
    );
    rates[backendName] = { stores: storeOps, fetches: fetchOps };
    await peer.leave();
    rmSync(dir, { recursive: true, force: true });
  }
  // The durable backend against the in-memory reference, measured in the same process.
  console.log(
    JSON.stringify({
      bench: 'storage-ratio',
      fileStoresVsMemory: Number((rates.file.stores / rates.memory.stores).toFixed(2)),
      fileFetchesVsMemory: Number((rates.file.fetches / rates.memory.fetches).toFixed(2)),
    }),
  );
}

void main();
