import type { Logger } from '../runtime/log.js';
import type { MediaBackhaul } from '../usages/sip/media/call-media.js';
import type { MediaAnchor } from '../usages/sip/media/media-anchor.js';
import type { TimerHandle } from '../runtime/clock.js';
import { type Backoff, nextWait } from '../runtime/backoff.js';
import { type Address, addressKey, sameAddress } from '../wire/address.js';
import { type Id, idToHex } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';
import type { OverlayPeer } from './overlay-peer.js';

/*
 * Calls' media over the overlay link between two home peers (issue 16), for when their media
 * ports cannot reach each other through the homes' NATs. The link is the one the overlay's
 * Attach set up (ICE-style checks on candidates exchanged through the overlay: direct wherever
 * the NATs allow it, else through a relay peer found by name under RELAY-SERVICE), so media
 * takes the same way. A frame is the receiving anchor's port (2 bytes) and the sealed datagram
 * (whose flags, under its tag, say whether the sender hears us directly: relay-stream.ts); whoever
 * forges one, or changes one on the way, gets no further than the call key's AEAD check.
 */
const HEADER_BYTES = 2;
/** A link a call's media used is held watched until no frame went on it for this long. */
const HOLD_IDLE_MS = 30_000;
/** A link set up for a call that is still ringing is held this long (SIP's Timer C), media or not. */
const RINGING_HOLD_MS = 180_000;
/** After a failed Attach to a home, the next waits this long, doubling to the most. */
const ATTACH_BACKOFF: Backoff = { firstMs: 1_000, maxMs: 16_000 };

export class OverlayMediaBackhaul implements MediaBackhaul {
  private readonly attaching = new Set<string>();
  private readonly backoff = new Map<string, { until: number; waitMs: number }>();
  /** Homes whose link an Attach set up through a relay (theirs or ours). */
  private readonly relayedLinks = new Set<string>();
  /**
   * Links our media is going over, by home: held watched in the hop transport, which sees none of
   * the media and would otherwise expire the link as idle in the middle of a long call.
   */
  private readonly held = new Map<Id, { address: Address; release: () => void; lastSentAt: number; keepUntil: number }>();
  private holdTimer: TimerHandle | undefined;
  private stopped = false;
  readonly counters = { framesSent: 0, framesWithoutLink: 0, attaches: 0, attachFailures: 0 };

  constructor(
    private readonly peer: OverlayPeer,
    private readonly log: Logger,
  ) {
    peer.attach.onAttached((outcome) => {
      if (this.relayedLinks.size >= 1024) this.relayedLinks.clear();
      if (outcome.relayed) this.relayedLinks.add(idToHex(outcome.id));
      else this.relayedLinks.delete(idToHex(outcome.id));
    });
  }

  /** Hands frames that arrive to the anchor. */
  deliverTo(anchor: MediaAnchor): void {
    this.peer.mediaLink.onMedia((from, body) => {
      if (body.length <= HEADER_BYTES) return;
      anchor.receiveOverOverlay((body[0] << 8) | body[1], body.subarray(HEADER_BYTES));
    });
  }

  prepare(nodeId: Id): void {
    if (this.stopped) return;
    // Held while the phone rings, so that the link is still open when the call is answered.
    const live = this.peer.router.liveAddress(nodeId);
    if (live) return this.holdLink(nodeId, live, RINGING_HOLD_MS);
    const key = idToHex(nodeId);
    if (this.attaching.has(key) || this.attaching.size >= 64) return;
    // Every media frame without a link asks again: after a failure, wait before the next Attach.
    const now = this.peer.router.clock.now();
    const backoff = this.backoff.get(key);
    if (backoff && now < backoff.until) return;
    this.attaching.add(key);
    this.counters.attaches++;
    this.peer.attach.attach(nodeDestination(nodeId), { timeoutMs: 6_000, attempts: 2 }, (error, outcome) => {
      this.attaching.delete(key);
      const linked = !error && outcome?.id === nodeId ? this.peer.router.liveAddress(nodeId) : undefined;
      if (linked && !this.stopped) {
        this.backoff.delete(key);
        return this.holdLink(nodeId, linked, RINGING_HOLD_MS);
      }
      // Also when another node answered for that Node-ID (the home is gone): no Attach per frame.
      this.counters.attachFailures++;
      const waitMs = nextWait(backoff?.waitMs, ATTACH_BACKOFF);
      if (this.backoff.size >= 1024) this.backoff.clear();
      this.backoff.set(key, { until: this.peer.router.clock.now() + waitMs, waitMs });
      this.log.info('media-link-failed', { home: key.slice(0, 8), error: error?.message ?? 'answered by another node', retryInMs: waitMs });
    });
  }

  send(nodeId: Id, port: number, sealed: Uint8Array, directLost: boolean): void {
    if (this.stopped) return;
    // Our own public address may have changed under the call (NatUpkeep checks, at most every 15 s).
    if (directLost) this.peer.addressMayHaveChanged();
    // A link that is not live (it died, or idled since a last call until the far NAT's pinhole
    // likely closed) is set up again; the next one is held afresh. One we hold is watched, so live
    // while the node is proven there (per frame: no string is built on this path).
    const held = this.held.get(nodeId);
    const proven = held && this.peer.router.connections.proven(nodeId);
    const address = proven && sameAddress(proven, held.address) ? proven : this.peer.router.liveAddress(nodeId);
    if (!address) {
      this.letGo(nodeId);
      this.counters.framesWithoutLink++;
      this.prepare(nodeId);
      return;
    }
    const body = new Uint8Array(HEADER_BYTES + sealed.length);
    body[0] = port >> 8;
    body[1] = port & 0xff;
    body.set(sealed, HEADER_BYTES);
    this.counters.framesSent++;
    this.holdLink(nodeId, address);
    this.peer.mediaLink.sendMedia(address, body);
  }

  /** Per media frame, so no strings are built: keyed by Node-ID, addresses compared field by field. */
  private holdLink(key: Id, address: Address, keepForMs = 0): void {
    const now = this.peer.router.clock.now();
    const held = this.held.get(key);
    if (held && sameAddress(held.address, address)) {
      held.lastSentAt = now;
      if (keepForMs) held.keepUntil = Math.max(held.keepUntil, now + keepForMs);
      return;
    }
    held?.release();
    this.held.set(key, { address, release: this.peer.transport.hold(address), lastSentAt: now, keepUntil: now + keepForMs });
    this.holdTimer ??= this.peer.router.clock.setTimer(HOLD_IDLE_MS, () => this.releaseIdle());
  }

  stop(): void {
    this.stopped = true;
    this.peer.router.clock.clearTimer(this.holdTimer);
    this.holdTimer = undefined;
    for (const key of [...this.held.keys()]) this.letGo(key);
  }

  private letGo(key: Id): void {
    this.held.get(key)?.release();
    this.held.delete(key);
  }

  /** Lets go of links no media went on for a while (their calls ended, or moved to direct paths). */
  private releaseIdle(): void {
    this.holdTimer = undefined;
    const now = this.peer.router.clock.now();
    for (const [key, held] of this.held) if (now - held.lastSentAt >= HOLD_IDLE_MS && now >= held.keepUntil) this.letGo(key);
    if (this.held.size) this.holdTimer = this.peer.router.clock.setTimer(HOLD_IDLE_MS, () => this.releaseIdle());
  }

  /**
   * Where the sealed link to the home `nodeId` proved it is, when that link is direct: its
   * public address now, vouched for by its handshake (not by any media frame's source).
   */
  directHost(nodeId: Id): string | undefined {
    const address = this.peer.router.connections.proven(nodeId);
    return address && !this.relayOf(nodeId).relayed ? address.host : undefined;
  }

  /** Whether the link to `nodeId` goes through a relay peer: ours (its Node-ID, hex), or the far home's (the relayed address it gave). */
  relayOf(nodeId: Id): { relayed: boolean; relay?: string } {
    const address = this.peer.router.connections.proven(nodeId);
    const server = address && this.peer.relayServerFor(address);
    if (server) {
      const ids = this.peer.router.connections.idsAt(server);
      return { relayed: true, relay: ids.length ? idToHex(ids[0]) : addressKey(server) };
    }
    // Through the far home's relay: what we know of it is its relayed address.
    return this.relayedLinks.has(idToHex(nodeId)) ? { relayed: true, ...(address ? { relay: addressKey(address) } : {}) } : { relayed: false };
  }
}
