import { createOpenIdentity } from '../identity/open-identity.js';
import { OpenTrustPolicy } from '../identity/trust.js';
import { ed25519Suite, simulatedSuite } from '../identity/signature-suite.js';
import { OverlayPeer, type OverlayTuning } from '../node/overlay-peer.js';
import { silentLogger } from '../runtime/log.js';
import { randomExponential, randomInt, SeededRandom } from '../runtime/random.js';
import { type Id, ID_BYTES, idFromBytes } from '../wire/id.js';
import { resourceDestination } from '../wire/message.js';
import { MessageCode } from '../wire/message-codes.js';
import { MemoryBackend } from '../storage/backends/memory-backend.js';
import { resourceId } from '../identity/ids.js';
import { pingReq } from '../wire/messages/ping.js';
import { RingOracle } from './ring-oracle.js';
import { SimNetwork } from './sim-network.js';
import { VirtualClock } from './virtual-clock.js';
import { LINK_ATTACKS, type LinkAttack, type RogueAttack, RogueLinkAttacker } from './rogue-link-attacks.js';

/*
 * `p2psip simulate`: the real overlay code (OverlayPeer and everything under it) on a simulated
 * network with virtual time. Every random choice comes from one seed, so a run replays exactly.
 */

export interface SimulationOptions {
  readonly nodes: number;
  readonly seed: number;
  /** Failures per node per hour, each replaced at once by a newcomer (mean session 1/churn h). */
  readonly churnPerHour?: number;
  readonly lookups?: number;
  /** Fraction of nodes that fail at the same instant once the ring has formed. */
  readonly failFraction?: number;
  readonly lossRate?: number;
  /** Virtual seconds of churn and lookups after the ring forms. */
  readonly durationSeconds?: number;
  readonly joinSpacingMs?: number;
  readonly maxConvergeSeconds?: number;
  readonly tuning?: OverlayTuning;
  readonly overlayName?: string;
  /** Message signatures: real Ed25519, or the simulator's cheap keyed hash (the default at scale). */
  readonly crypto?: 'ed25519' | 'simulated';
  /**
   * Link encryption: sealed (as on devices) or plain. By default it follows `crypto`: real
   * crypto seals links, the cheap model does not (sealing costs ~3.5x the wall time at 1,000 nodes).
   */
  readonly links?: 'sealed' | 'plain';
  /** Values stored once the ring has formed, and checked for loss at the end. */
  readonly values?: number;
  /** Copies of each value (the responsible peer's included). */
  readonly replicas?: number;
  /** Failures one after another, as a fraction of the nodes, `failGapSeconds` apart. */
  readonly failSequential?: number;
  readonly failGapSeconds?: number;
  /** This many ring-adjacent nodes fail at the same instant. */
  readonly failAdjacent?: number;
  /** Told what the run is doing as it goes (a run at thousands of nodes takes minutes). */
  readonly onProgress?: (step: string) => void;
  /** Fraction of nodes (never the first) that are rogue: enrolled, and hostile as `rogueAttacks` says. */
  readonly rogueFraction?: number;
  /** What rogue nodes do: drop what they should forward (the default), and/or attack links (rogue-link-attacks.ts). */
  readonly rogueAttacks?: readonly RogueAttack[];
}

export interface SimulationReport {
  nodes: number;
  seed: number;
  crypto: string;
  links: string;
  liveNodes: number;
  ringCorrect: boolean;
  /** Live nodes whose first successor is wrong at the end. */
  ringErrors: number;
  convergedAtSeconds: number | null;
  failed: number;
  recoveredAfterSeconds: number | null;
  churnEvents: number;
  /** After churn stops, how long until the ring was correct again. */
  settledAfterChurnSeconds: number | null;
  lookups: number;
  /** Share of lookups answered by the right node; null when none ran. */
  lookupSuccess: number | null;
  lookupsFailed: number;
  lookupsWrongResponder: number;
  rogue: number;
  rogueNodes: number;
  rogueAttacks: string[];
  /** Datagrams the rogues' link attacks sent. */
  attackDatagrams: number;
  /** Exceptions that honest peers' link guards caught (each would have ended a real process). */
  linkFaults: number;
  /** Samples (every 10 s) in which an honest peer believed a rogue's address to be another node. */
  impersonations: number;
  hopsMean: number;
  hopsP99: number;
  halfLog2N: number;
  messagesPerNodePerMinute: number;
  lossRate: number;
  valuesStored: number;
  valuesLost: number;
  simSeconds: number;
  wallSeconds: number;
  eventsRun: number;
}

export interface SimNode {
  readonly peer: OverlayPeer;
  alive: boolean;
  readonly rogue: boolean;
  readonly attacker?: RogueLinkAttacker;
}

const CHECK_INTERVAL_MS = 5_000;
/** How an application looks a name up: three recursive tries of 4 s, then hop by hop. */
const LOOKUP_POLICY = { attempts: 3, timeoutMs: 4_000, iterativeFallback: true };

export class Simulation {
  readonly clock = new VirtualClock();
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  readonly nodes: SimNode[] = [];
  readonly trust: OpenTrustPolicy;
  private readonly overlayName: string;
  private readonly oracle = new RingOracle<SimNode>();

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.clock, this.random.fork(), options.lossRate ?? 0);
    this.overlayName = options.overlayName ?? 'sim.p2psip';
    // One verification cache for all simulated nodes: certificate checks are pure functions
    // of the bytes, and a per-node cache would cost thousands of copies of the same results.
    this.trust = new OpenTrustPolicy(this.overlayName, 4 * options.nodes + 1024);
  }

  get linkSecurity(): 'sealed' | 'plain' {
    return this.options.tuning?.linkSecurity ?? this.options.links ?? (this.options.crypto === 'ed25519' ? 'sealed' : 'plain');
  }

  /** Creates and starts a node that joins through a bootstrap (none for the first). */
  addNode(bootstrap: SimNode | undefined): SimNode {
    const link = this.network.addHost();
    // Drawn only when asked for, so that runs without rogues replay exactly as before.
    const rogue = bootstrap !== undefined && (this.options.rogueFraction ?? 0) > 0 && this.random.float() < this.options.rogueFraction!;
    const nowSeconds = Math.floor(this.clock.wallTime() / 1000);
    const identity = createOpenIdentity(this.random.bytes(32), `sim-${this.nodes.length}`, this.overlayName, nowSeconds);
    const peer = new OverlayPeer({
      identity,
      trust: this.trust,
      link,
      clock: this.clock,
      random: this.random.fork(),
      log: silentLogger,
      overlayName: this.overlayName,
      tuning: {
        ...this.options.tuning,
        suite: this.options.crypto === 'ed25519' ? ed25519Suite : simulatedSuite,
        linkSecurity: this.linkSecurity,
        dropForwarded: rogue && this.rogueAttacks.includes('drop'),
      },
      storage: { backend: new MemoryBackend(), replicas: this.options.replicas },
    });
    const linkAttacks = this.rogueAttacks.filter((a): a is LinkAttack => (LINK_ATTACKS as readonly string[]).includes(a));
    const attacker =
      rogue && linkAttacks.length > 0 && this.linkSecurity === 'sealed'
        ? new RogueLinkAttacker(link, this.network, this.clock, this.random.fork(), linkAttacks, () => this.honestAddresses())
        : undefined;
    const node: SimNode = { peer, alive: true, rogue, ...(attacker ? { attacker } : {}) };
    this.nodes.push(node);
    this.oracle.add(peer.nodeId, node);
    peer.start(bootstrap ? [bootstrap.peer.address] : []);
    return node;
  }

  private get rogueAttacks(): readonly RogueAttack[] {
    return this.options.rogueAttacks ?? ['drop'];
  }

  private honestAddresses() {
    return this.oracle.liveNodes().filter((n) => !n.rogue).map((n) => n.peer.address);
  }

  /** Honest peers that believe some rogue's address to be a node other than that rogue. */
  private countImpersonations(): number {
    const rogues = this.oracle.liveNodes().filter((n) => n.rogue);
    let count = 0;
    for (const node of this.oracle.liveNodes()) {
      if (node.rogue || !node.peer.sealedLink) continue;
      for (const rogue of rogues) {
        const believed = node.peer.sealedLink.peerAt(rogue.peer.address);
        if (believed && !believed.nodeIds.includes(rogue.peer.nodeId)) count++;
      }
    }
    return count;
  }

  fail(node: SimNode): void {
    if (!node.alive) return;
    node.alive = false;
    this.oracle.remove(node.peer.nodeId);
    node.peer.halt();
  }

  live(): SimNode[] {
    return this.nodes.filter((n) => n.alive);
  }

  randomLive(): SimNode {
    const live = this.oracle.liveNodes();
    return live[randomInt(this.random, live.length)];
  }

  /** The live node that should answer for `id`. */
  trueResponsible(id: Id): Id | undefined {
    return this.oracle.successorOf(id);
  }

  /** Live nodes whose first successor is not the true next live node on the ring. */
  ringErrors(): number {
    let errors = 0;
    for (const node of this.oracle.liveNodes()) {
      const expected = this.oracle.successorOf(node.peer.nodeId + 1n);
      const actual = node.peer.topology.successorIds()[0];
      if (!node.peer.topology.joined || (this.oracle.size > 1 && actual !== expected)) errors++;
    }
    return errors;
  }

  /** Runs until the ring is correct or the deadline passes; returns the virtual time it took. */
  runUntilCorrect(maxMs: number): number | null {
    const start = this.clock.now();
    for (let t = start; t <= start + maxMs; t += CHECK_INTERVAL_MS) {
      this.clock.runUntil(t);
      if (this.ringErrors() === 0) return this.clock.now() - start;
    }
    return null;
  }

  run(): SimulationReport {
    const wallStart = performance.now();
    const o = this.options;
    const spacing = o.joinSpacingMs ?? 50;
    const progress = o.onProgress ?? (() => undefined);
    const wall = Date.now();
    const elapsed = (): string => `${((Date.now() - wall) / 1000).toFixed(1)} s`;
    progress(`${o.nodes} nodes joining, one every ${spacing} ms of virtual time`);
    const first = this.addNode(undefined);
    for (let i = 1; i < o.nodes; i++) {
      this.clock.schedule(i * spacing, () => this.addNode(first));
    }
    this.clock.runUntil((o.nodes - 1) * spacing);
    const convergedIn = this.runUntilCorrect((o.maxConvergeSeconds ?? 600) * 1000);
    const convergedAtSeconds = convergedIn === null ? null : this.clock.now() / 1000;
    progress(convergedAtSeconds === null ? `the ring did not converge (${elapsed()})` : `ring converged at virtual ${convergedAtSeconds.toFixed(0)} s (${elapsed()})`);

    if (o.values) this.storeValues(o.values);

    let failed = 0;
    let recoveredAfterSeconds: number | null = null;
    if (o.failFraction && o.failFraction > 0) {
      const victims = this.pick(Math.floor(o.nodes * o.failFraction));
      for (const v of victims) this.fail(v);
      failed = victims.length;
      const took = this.runUntilCorrect((o.maxConvergeSeconds ?? 600) * 1000);
      recoveredAfterSeconds = took === null ? null : took / 1000;
    }
    if (o.failAdjacent && o.failAdjacent > 0) {
      failed += this.failAdjacentRun(o.failAdjacent);
      this.runUntilCorrect((o.maxConvergeSeconds ?? 600) * 1000);
    }
    if (o.failSequential && o.failSequential > 0) {
      const count = Math.floor(o.nodes * o.failSequential);
      for (let i = 0; i < count; i++) {
        this.fail(this.randomLive());
        this.clock.runUntil(this.clock.now() + (o.failGapSeconds ?? 30) * 1000);
      }
      failed += count;
      this.runUntilCorrect((o.maxConvergeSeconds ?? 600) * 1000);
    }

    if (failed) progress(`${failed} nodes failed and the ring healed (${elapsed()})`);
    const measureFrom = this.clock.now();
    const sentBefore = this.datagramsSent();
    const duration = (o.durationSeconds ?? (o.lookups || o.churnPerHour ? 300 : 0)) * 1000;
    const churnEvents = this.scheduleChurn(measureFrom, duration);
    const lookups = this.scheduleLookups(measureFrom, duration, o.lookups ?? 0);
    for (const node of this.nodes) node.attacker?.schedule(measureFrom, duration);
    let impersonations = 0;
    if (this.nodes.some((n) => n.attacker)) {
      for (let t = 10_000; t <= duration; t += 10_000) this.clock.schedule(measureFrom + t - this.clock.now(), () => (impersonations += this.countImpersonations()));
    }
    if (duration) progress(`${duration / 1000} virtual s of ${o.lookups ?? 0} lookups and ${o.churnPerHour ?? 0}/h churn`);
    this.clock.runUntil(measureFrom + duration + 20_000);
    progress(`done (${elapsed()})`);
    const minutes = Math.max(1e-9, (this.clock.now() - measureFrom) / 60_000);
    const perNodePerMinute = (this.datagramsSent() - sentBefore) / this.oracle.size / minutes;

    const hops = lookups.hops.sort((a, b) => a - b);
    const valuesLost = o.values ? this.countLostValues() : 0;
    // Churn leaves the newest joiners mid-way; the ring must settle once it stops.
    const settled = churnEvents.count > 0 ? this.runUntilCorrect(120_000) : null;
    const errors = this.ringErrors();
    return {
      nodes: o.nodes,
      seed: o.seed,
      crypto: o.crypto ?? 'simulated',
      links: this.linkSecurity,
      liveNodes: this.oracle.size,
      ringCorrect: errors === 0,
      ringErrors: errors,
      convergedAtSeconds,
      failed,
      recoveredAfterSeconds,
      churnEvents: churnEvents.count,
      settledAfterChurnSeconds: settled === null ? null : settled / 1000,
      lookups: lookups.issued,
      lookupSuccess: lookups.issued ? lookups.succeeded / lookups.issued : null,
      lookupsFailed: lookups.failed,
      lookupsWrongResponder: lookups.wrong,
      rogue: o.rogueFraction ?? 0,
      rogueNodes: this.nodes.filter((n) => n.alive && n.rogue).length,
      rogueAttacks: o.rogueFraction ? [...this.rogueAttacks] : [],
      attackDatagrams: this.nodes.reduce((n, node) => n + (node.attacker?.sent ?? 0), 0),
      linkFaults: this.nodes.filter((n) => !n.rogue).reduce((n, node) => n + (node.peer.sealedLink?.counters.faults ?? 0) + node.peer.transport.counters.handlerFaults, 0),
      impersonations,
      hopsMean: hops.length ? hops.reduce((a, b) => a + b, 0) / hops.length : 0,
      hopsP99: hops.length ? hops[Math.min(hops.length - 1, Math.floor(hops.length * 0.99))] : 0,
      halfLog2N: Math.log2(o.nodes) / 2,
      messagesPerNodePerMinute: round(perNodePerMinute),
      lossRate: o.lossRate ?? 0,
      valuesStored: this.storedValues.filter((v) => v.acked).length,
      valuesLost: valuesLost,
      simSeconds: round(this.clock.now() / 1000),
      wallSeconds: round((performance.now() - wallStart) / 1000),
      eventsRun: this.clock.eventsRun,
    };
  }

  private readonly storedValues: { resource: Id; index: number; value: string; acked: boolean }[] = [];

  /** Each value goes into a random node's own DEBUG-NOTE array (USER-MATCH: H(its user name)). */
  storeValues(count: number): void {
    const kind = this.nodes[0].peer.kinds.named('DEBUG-NOTE')!;
    const nextIndex = new Map<SimNode, number>();
    for (let i = 0; i < count; i++) {
      this.clock.schedule(i * 10, () => {
        const node = this.randomLive();
        const index = nextIndex.get(node) ?? 0;
        if (index >= kind.maxCount) return;
        nextIndex.set(node, index + 1);
        const resource = resourceId(node.peer.subject);
        const record = { resource, index, value: `value-${i}`, acked: false };
        this.storedValues.push(record);
        const entry = { key: index, exists: true, value: new TextEncoder().encode(record.value) };
        node.peer.client.store(kind, resource, [entry], 24 * 3600, (error) => {
          record.acked = !error;
        });
      });
    }
    this.clock.runUntil(this.clock.now() + count * 10 + 20_000);
  }

  /** Fetches every acknowledged value from a random live node; counts those no one returns. */
  countLostValues(): number {
    const kind = this.nodes[0].peer.kinds.named('DEBUG-NOTE')!;
    let lost = 0;
    const acked = this.storedValues.filter((v) => v.acked);
    acked.forEach((record, i) => {
      this.clock.schedule(i * 5, () => {
        this.randomLive().peer.client.fetch(kind, record.resource, { ranges: [[record.index, record.index]] }, (error, result) => {
          const found = result?.values.some((v) => new TextDecoder().decode(v.entry.value) === record.value);
          if (error || !found) lost++;
        });
      });
    });
    this.clock.runUntil(this.clock.now() + acked.length * 5 + 30_000);
    return lost;
  }

  /** Fails `count` nodes that follow each other on the ring, all at once. */
  private failAdjacentRun(count: number): number {
    const start = this.randomLive();
    let id = start.peer.nodeId;
    const victims = [start];
    for (let i = 1; i < count; i++) {
      id = this.oracle.successorOf(id + 1n)!;
      victims.push(this.nodes.find((n) => n.alive && n.peer.nodeId === id)!);
    }
    for (const v of victims) this.fail(v);
    return victims.length;
  }

  private pick(count: number): SimNode[] {
    const live = [...this.oracle.liveNodes()];
    const out: SimNode[] = [];
    for (let i = 0; i < count && live.length > 0; i++) out.push(live.splice(randomInt(this.random, live.length), 1)[0]);
    return out;
  }

  private scheduleChurn(from: number, duration: number): { count: number } {
    const result = { count: 0 };
    const rate = this.options.churnPerHour ?? 0;
    if (rate <= 0 || duration <= 0) return result;
    // Poisson arrivals: the whole overlay sees nodes * rate failures an hour.
    const meanGapMs = 3_600_000 / (rate * this.options.nodes);
    let at = from + randomExponential(this.random, meanGapMs);
    while (at < from + duration) {
      this.clock.schedule(at - this.clock.now(), () => {
        this.fail(this.randomLive());
        this.addNode(this.randomLive());
        result.count++;
      });
      at += randomExponential(this.random, meanGapMs);
    }
    return result;
  }

  private scheduleLookups(from: number, duration: number, count: number) {
    const stats = { issued: 0, succeeded: 0, failed: 0, wrong: 0, hops: [] as number[] };
    const spread = Math.max(duration, 1);
    for (let i = 0; i < count; i++) {
      const at = from + (spread * i) / Math.max(1, count);
      this.clock.schedule(at - this.clock.now(), () => {
        const origin = this.randomLive();
        // Lookups measure what honest nodes get; a rogue one would only fool itself.
        if (!origin.peer.topology.joined || origin.rogue) return;
        const key: Id = idFromBytes(this.random.bytes(ID_BYTES));
        stats.issued++;
        const expectedAtStart = this.oracle.successorOf(key);
        const body = pingReq.encode({});
        origin.peer.router.request([resourceDestination(key)], MessageCode.PingReq, body, (error, response) => {
          if (error || !response) {
            stats.failed++;
            return;
          }
          const expectedNow = this.oracle.successorOf(key);
          if (response.responder !== expectedAtStart && response.responder !== expectedNow) {
            stats.wrong++;
            return;
          }
          stats.succeeded++;
          stats.hops.push(response.hops);
        }, LOOKUP_POLICY);
      });
    }
    return stats;
  }

  private datagramsSent(): number {
    return this.network.datagrams;
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function simulate(options: SimulationOptions): SimulationReport {
  return new Simulation(options).run();
}
