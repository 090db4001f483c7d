import type { IncomingRequest, OverlayRouter } from '../../src/overlay/router.js';
import type { Id } from '../../src/wire/id.js';
import type { NodeIdentity } from '../../src/identity/identity.js';
import { overlayHash } from '../../src/identity/ids.js';
import { ed25519Suite } from '../../src/identity/signature-suite.js';
import { SealedLink } from '../../src/link/secure/sealed-link.js';
import { silentLogger } from '../../src/runtime/log.js';
import type { Simulation } from '../../src/sim/simulation.js';

/**
 * A hostile node inside the simulator that holds a believable certificate: it completes link
 * handshakes like anyone, then sends whatever frames it crafts, sealed.
 */
export function sealedAttacker(sim: Simulation, identity: NodeIdentity, overlay = 'sim.p2psip') {
  const raw = sim.network.addHost();
  const link = new SealedLink(raw, { identity, trust: sim.trust, suite: ed25519Suite, clock: sim.clock, random: sim.random.fork(), log: silentLogger, overlayId: overlayHash(overlay) });
  return { raw, link, localAddress: raw.localAddress, send: (to: Parameters<SealedLink['send']>[0], bytes: Uint8Array) => link.send(to, bytes) };
}

/** Counts the requests of one code that a peer's router handles from one origin (wraps the real handler). */
export function countHandled(router: OverlayRouter, code: number, origin: Id): { count: number } {
  const handlers = (router as unknown as { handlers: Map<number, (request: IncomingRequest) => void> }).handlers;
  const real = handlers.get(code)!;
  const counter = { count: 0 };
  handlers.set(code, (request) => {
    if (request.origin === origin) counter.count++;
    real(request);
  });
  return counter;
}
