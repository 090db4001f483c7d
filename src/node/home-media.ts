import type { NodeIdentity } from '../identity/identity.js';
import type { TrustPolicy } from '../identity/trust.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import { CallMedia } from '../usages/sip/media/call-media.js';
import { MediaAnchor, UNANSWERED_MS } from '../usages/sip/media/media-anchor.js';
import { MediaPortPool } from '../usages/sip/media/port-pool.js';
import { type MediaAnchorMode, SipMedia } from '../usages/sip/media/sip-media.js';
import { udpMediaSockets } from './media-sockets.js';
import { OverlayMediaBackhaul } from './media-backhaul.js';
import type { OverlayPeer } from './overlay-peer.js';

/** Defaults of the media flags (docs/commands.md): a range clear of SIP's and the overlay's ports. */
export const MEDIA_DEFAULTS = { low: 40000, high: 40999, timeoutSeconds: 60, maxCalls: 32 } as const;
/** What a caller refused for want of ports or calls is told to wait before trying again. */
const RETRY_AFTER_SECONDS = 30;

export interface HomeMediaOptions {
  readonly bindHost: string;
  readonly mediaAnchor?: MediaAnchorMode;
  readonly mediaPorts?: { low: number; high: number };
  readonly mediaTimeoutSeconds?: number;
  readonly maxCalls?: number;
  /** The proxy's Timer C (--sip-timer-c): a call may ring that long, and the 2xx may take 64*T1 more. */
  readonly sipTimerCSeconds?: number;
}

/**
 * The home peer's media anchor on real UDP (issue 16): phones reach it at the address they
 * register to (`lanHost`), other homes at the public address STUN or the router's port mapping
 * gave this peer, or the advertised one while neither has answered.
 */
export function homeMedia(options: HomeMediaOptions, identity: NodeIdentity, trust: TrustPolicy, peer: OverlayPeer, lanHost: string, clock: Clock, random: Random, nowSeconds: () => number, log: Logger): SipMedia {
  const ports = options.mediaPorts ?? MEDIA_DEFAULTS;
  const ringingMs = Math.max(UNANSWERED_MS, ((options.sipTimerCSeconds ?? 0) + 32) * 1000); // review M13
  const anchor = new MediaAnchor(new MediaPortPool(ports.low, ports.high), udpMediaSockets(options.bindHost, log), clock, (options.mediaTimeoutSeconds ?? MEDIA_DEFAULTS.timeoutSeconds) * 1000, ringingMs);
  const backhaul = new OverlayMediaBackhaul(peer, log);
  backhaul.deliverTo(anchor);
  const calls = new CallMedia({ anchor, identity, random, lanHost, publicHost: () => peer.nat.publicHost ?? lanHost, trust, nowSeconds, backhaul });
  return new SipMedia(calls, options.mediaAnchor ?? 'auto', { maxCalls: options.maxCalls ?? MEDIA_DEFAULTS.maxCalls, retryAfterSeconds: RETRY_AFTER_SECONDS }, () => clock.now(), {
    relayOf: (home) => backhaul.relayOf(home),
    counters: () => backhaul.counters,
  });
}
