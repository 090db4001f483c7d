import { createOpenIdentity } from '../../src/identity/open-identity.js';
import { ed25519Suite } from '../../src/identity/signature-suite.js';
import { OpenTrustPolicy } from '../../src/identity/trust.js';
import { overlayHash } from '../../src/identity/ids.js';
import { SealedLink, type SealedLinkOptions } from '../../src/link/secure/sealed-link.js';
import type { LinkPeer } from '../../src/link/link.js';
import { silentLogger } from '../../src/runtime/log.js';
import { SeededRandom } from '../../src/runtime/random.js';
import { SimNetwork, type SimLink } from '../../src/sim/sim-network.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import type { Address } from '../../src/wire/address.js';

/** Sealed links over the simulator's network, each end's wire recorded as an on-path observer sees it. */
export const OVERLAY = 'seal.p2psip';

export class RevocableTrust extends OpenTrustPolicy {
  revoked = new Set<string>();
  override accept(bytes: Uint8Array, nowSeconds: number) {
    const cert = super.accept(bytes, nowSeconds);
    if (this.revoked.has(cert.claims.subject)) throw new Error(`${cert.claims.subject} is revoked`);
    return cert;
  }
}

export function world(options: Partial<SealedLinkOptions> = {}) {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  const network = new SimNetwork(clock, random);
  const trust = new RevocableTrust(OVERLAY);
  const nowSeconds = Math.floor(clock.wallTime() / 1000);
  const make = (n: number, overlay = OVERLAY, raw: SimLink = network.addHost()) => {
    const identity = createOpenIdentity(new Uint8Array(32).fill(n), `node${n}@${overlay}`, overlay, nowSeconds);
    const link = new SealedLink(raw, { identity, trust, suite: ed25519Suite, clock, random: random.fork(), log: silentLogger, overlayId: overlayHash(OVERLAY), options });
    const received: { from: Address; bytes: Uint8Array; peer: LinkPeer | undefined }[] = [];
    link.onDatagram((from, bytes, peer) => received.push({ from, bytes, peer }));
    // Everything this end puts on the wire, as an on-path observer sees it.
    const wire: Uint8Array[] = [];
    const send = raw.send.bind(raw);
    raw.send = (to, bytes) => {
      wire.push(bytes);
      send(to, bytes);
    };
    return { identity, link, raw, received, wire, send };
  };
  const settle = (ms = 1000) => clock.runUntil(clock.now() + ms);
  return { clock, network, trust, make, settle };
}

/** A plain overlay-looking datagram: a CBOR array [0, n]. */
export const frame = (n: number): Uint8Array => new Uint8Array([0x82, 0x00, n]);

