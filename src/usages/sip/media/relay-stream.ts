import { type Endpoint, isUnspecified } from './sdp.js';

/*
 * One anchored media stream (issue 16): packets that reach the anchor's port on one side go out
 * of the other side's port to that side's party, and back. Each side learns its party's real
 * source by symmetric RTP latching (RFC 7362 s4.1.1): a phone behind a NAT, or one that sends
 * from another port than its SDP says, is reached where its packets come from. Only a source at
 * an address the signalling vouched for can latch, and once latched nobody else is heard, so a
 * stranger who sends first can neither inject audio nor have the call's audio sent to it. (A
 * phone's side moves to the port its SDP names, or to a vouched source heard several times in a
 * row: see relatch.)
 */
export type Side = 'a' | 'b';
/** `other-branch`: from a phone of a forked call whose branch is not the one heard now (media-anchor.ts). */
export type DropReason = 'stranger' | 'not-latched' | 'oversize' | 'no-target' | 'unsealed' | 'other-branch';

export interface StreamSide {
  /** Sends out of this side's anchor port. */
  send(bytes: Uint8Array, to: Endpoint): void;
  /** Where the party said it receives (its SDP); packets go there until it has been heard. */
  offered: Endpoint;
  /** Addresses whose packets may latch this side: the SDP address and the signalling source's. */
  vouched: readonly string[];
}

/**
 * The other way to a side's party when the media ports cannot reach it (both homes behind NATs
 * that will not let a direct path open): the overlay link between the two home peers, direct or
 * through a relay peer. Only for a sealed side: what travels there is already sealed end to end.
 */
export interface Backhaul {
  /** Sends a sealed datagram over the link; `directLost`: the first since a direct path that worked went quiet. */
  send(sealed: Uint8Array, to: Endpoint, directLost: boolean): void;
  /** The far home's host as the link reaches it now, when the link is direct (not through a relay). */
  directHost(): string | undefined;
}

/**
 * The sealed datagram's flags (under its AEAD tag, media-crypto.ts): the sender hears us straight
 * at our media port (so we may stop using the overlay); and it sent this one over the overlay link
 * (so nobody carrying that link can send it on to our media port as if it came straight, nor a
 * probe over the overlay).
 */
const HEARD_DIRECTLY = 0x01;
const OVER_OVERLAY = 0x02;
/** A sealed side's latch moves to another address once this many newest datagrams in a row came from there. */
const NEWEST_TO_MOVE = 3;

/** After this many packets without hearing the far side directly, a direct probe goes only now and then. */
const EAGER_PROBES = 50;
const PROBE_EVERY = 25;
/** The far side said this recently (over the overlay) that it has not heard us directly: we use the overlay too. */
const OVERLAY_FRESH_MS = 1000;
/**
 * The direct path is believed while something sealed came straight from the far side this
 * recently. A path that worked can stop: the far home's ISP renumbered it, or its router
 * rebooted and mapped our pinhole anew. Media then moves to the overlay (which the far side
 * hears as "not heard") until the direct path is heard again: at 50 packets a second, 1.5 s of
 * nothing is not jitter.
 */
const DIRECT_FRESH_MS = 1500;
/**
 * A side heard directly gets something straight from us at least this often (keepDirect, on the
 * anchor's timer): when we have nothing to send it (a call on hold, a phone that suppresses
 * silence, the RTCP stream between its reports), a sealed empty probe. So the far anchor keeps
 * believing the direct path while it works, and both homes' NAT pinholes stay open (RFC 7675's
 * consent checks play the same part for ICE).
 */
export const DIRECT_KEEPALIVE_MS = 500;

/** The internet leg's sealing (media-crypto.ts): what goes to that side is sealed, what comes from it opened. */
export interface SideSealing {
  seal(packet: Uint8Array, flags: number): Uint8Array;
  /**
   * The packet (empty: a probe) and the sender's flags, both authentic, and whether it is the
   * newest that opened; or undefined.
   */
  open(datagram: Uint8Array): { packet: Uint8Array; flags: number; newest: boolean } | undefined;
}

export interface StreamCounters {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Packets relayed from each side's party. */
  fromSide: Record<Side, number>;
  /** Sealed packets that came, and went, over the overlay link instead of the media ports. */
  overlayIn: number;
  overlayOut: number;
  /** Sealed, empty datagrams sent straight to the far side's port while media went over the overlay, and those received. */
  probesOut: number;
  probesIn: number;
  dropped: Record<DropReason, number>;
}

/** Counters at zero: a new stream's, and the start of a sum over streams. */
export function emptyStreamCounters(): StreamCounters {
  return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, fromSide: { a: 0, b: 0 }, overlayIn: 0, overlayOut: 0, probesOut: 0, probesIn: 0, dropped: { stranger: 0, 'not-latched': 0, oversize: 0, 'no-target': 0, unsealed: 0, 'other-branch': 0 } };
}

/** Per packet, so compared field by field (no key string built). */
function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.address === b.address && a.port === b.port;
}

/** RTP over UDP in practice stays well under a datagram; anything larger is not media. */
export const MAX_MEDIA_DATAGRAM = 1500;

export class RelayStream {
  readonly counters: StreamCounters = emptyStreamCounters();
  private readonly latched: Record<Side, Endpoint | undefined> = { a: undefined, b: undefined };
  private readonly sealing: Record<Side, SideSealing | undefined> = { a: undefined, b: undefined };
  private readonly backhaul: Record<Side, Backhaul | undefined> = { a: undefined, b: undefined };
  /** When a sealed packet last came straight to our port from each side; when the side last said it has not heard us. */
  private readonly heardDirectAt: Record<Side, number> = { a: -Infinity, b: -Infinity };
  private readonly unheardSaidAt: Record<Side, number> = { a: -Infinity, b: -Infinity };
  private readonly directSentAt: Record<Side, number> = { a: -Infinity, b: -Infinity };
  private readonly sentUnheard: Record<Side, number> = { a: 0, b: 0 };
  /** Another address the newest sealed datagrams came from, and how many in a row (see NEWEST_TO_MOVE). */
  private readonly moving: Record<Side, { at: Endpoint; count: number } | undefined> = { a: undefined, b: undefined };
  /** Whether the loss of a direct path that worked was said (once per loss: see sendTo). */
  private readonly directLossSaid: Record<Side, boolean> = { a: false, b: false };
  /** When media last came from each side's party, and the longest silence between two of its packets (a path that failed over shows here). */
  private readonly lastFromSideAt: Record<Side, number | undefined> = { a: undefined, b: undefined };
  private readonly longestGap: Record<Side, number> = { a: 0, b: 0 };
  /** Wall-clock ms of the last packet relayed (for --media-timeout). */
  lastPacketAt: number;

  constructor(
    private readonly sides: Record<Side, StreamSide>,
    private readonly now: () => number,
    /** Sees each relayed packet as its sender sent it (the reader of the phones' RTCP reports). */
    private readonly observe?: (side: Side, packet: Uint8Array) => void,
  ) {
    this.lastPacketAt = now();
  }

  /**
   * A side's party as the answer (or a re-offer) describes it. Another SDP address or port is
   * another party (the phone that answered a forked call after another's early media, two phones
   * on one host among them) or the same one moved: a phone's side is heard afresh.
   */
  setParty(side: Side, offered: Endpoint, vouched: readonly string[]): void {
    const latched = this.latched[side];
    const before = this.sides[side].offered;
    const moved = !sameEndpoint(before, offered);
    // A sealed side's latch rests on the call's key, not on addresses: what opened came from the
    // other home wherever it sent from, so only that home's datagrams move it (see moveLatch).
    if (latched && !this.sealing[side] && (moved || !vouched.includes(latched.address))) {
      this.latched[side] = undefined;
      this.moving[side] = undefined;
    }
    this.sides[side].offered = offered;
    this.sides[side].vouched = vouched;
  }

  /** The party on `side` now (a forked call keeps its first branch's, to come back to). */
  party(side: Side): StreamSide {
    return this.sides[side];
  }

  /**
   * Another branch of a forked call holds `side` now: its phone, behind an anchor port of its
   * own (`party.send`). That phone is heard afresh, latched from the addresses vouched for it.
   */
  switchParty(side: Side, party: StreamSide): void {
    if (this.sides[side] === party) return;
    this.sides[side] = party;
    this.latched[side] = undefined;
    this.moving[side] = undefined;
  }

  /** Counts a datagram the anchor dropped before it reached the stream. */
  countDropped(reason: DropReason): void {
    this.drop(reason);
  }

  /** From now on what goes to `side` is sealed and what comes from it must open (the internet leg). */
  seal(side: Side, sealing: SideSealing): void {
    this.sealing[side] = sealing;
  }

  /** A sealed side may also be reached over the overlay link (see Backhaul). */
  setBackhaul(side: Side, backhaul: Backhaul): void {
    this.backhaul[side] = backhaul;
  }

  /** Whether the side's party was heard straight at our media port lately (the direct path works inbound). */
  heardDirectly(side: Side): boolean {
    return this.now() - this.heardDirectAt[side] < DIRECT_FRESH_MS;
  }

  /**
   * The anchor's tick (every DIRECT_KEEPALIVE_MS): a sealed side to which nothing went straight
   * since about the last tick gets a sealed empty probe, where it is latched or, not heard yet,
   * where its SDP says. So a home whose phone is silent (an announcement, a muted start) still
   * opens its NAT to the far home's probes, and a live path gets something at least every
   * DIRECT_KEEPALIVE_MS or so: one lost still leaves the far side hearing us within DIRECT_FRESH_MS.
   */
  keepDirect(side: Side): void {
    const sealing = this.sealing[side];
    const target = this.latched[side] ?? (this.backhaul[side] ? this.sides[side].offered : undefined);
    if (!sealing || !target || target.port === 0 || isUnspecified(target.address)) return; // on hold, or refused
    if (this.now() - this.directSentAt[side] >= DIRECT_KEEPALIVE_MS / 2) this.probe(side, target, sealing, this.heardFlag(side));
  }

  /** Whether media to the side goes over the overlay now. */
  overOverlay(side: Side): boolean {
    return this.backhaul[side] !== undefined && (!this.heardDirectly(side) || this.now() - this.unheardSaidAt[side] < OVERLAY_FRESH_MS);
  }

  /** The longest time without a packet from the side's party since its first, the silence now included, ms. */
  longestGapMs(side: Side): number {
    const last = this.lastFromSideAt[side];
    return Math.round(Math.max(this.longestGap[side], last === undefined ? 0 : this.now() - last));
  }

  /** Where each side's party was heard from, if it was. */
  latchedTo(side: Side): Endpoint | undefined {
    return this.latched[side];
  }

  /** A datagram arrived at `side`'s anchor port from `from`. */
  receive(side: Side, datagram: Uint8Array, from: Endpoint): void {
    if (datagram.length > MAX_MEDIA_DATAGRAM) return this.drop('oversize');
    const sealing = this.sealing[side];
    if (sealing) {
      // The internet leg: only the other home can make a packet that opens, so where the newest
      // come from is where that home is now (a new NAT binding): latch there. One that opens late
      // from elsewhere, or a lone one, may be a probe someone caught on the way and sent on from an
      // address of their choosing: it moves nothing.
      const opened = sealing.open(datagram);
      if (!opened || opened.flags & OVER_OVERLAY) return this.drop('unsealed');
      const here = this.isLatched(side, from);
      if (here) this.moving[side] = undefined; // still where we thought: strays from elsewhere count afresh
      if (here || (opened.newest && this.moveLatch(side, from))) {
        // Heard again after a quiet spell: the next time the path goes quiet, probe it eagerly
        // again (not on every packet: while the far side does not hear us, that would be a probe
        // beside every frame on the overlay).
        if (!this.heardDirectly(side)) this.sentUnheard[side] = 0;
        this.heardDirectAt[side] = this.now();
        this.directLossSaid[side] = false;
      }
      return this.relaySealed(side, opened.packet, opened);
    }
    const latched = this.latched[side];
    if (!latched) {
      if (!this.sides[side].vouched.includes(from.address)) return this.drop('stranger');
      this.latched[side] = { address: from.address, port: from.port };
    } else if (sameEndpoint(latched, from)) this.moving[side] = undefined;
    else if (!this.relatch(side, from)) return this.drop('not-latched');
    this.relay(side, datagram);
  }

  /** A sealed datagram from `side` over the overlay link. */
  receiveOverOverlay(side: Side, datagram: Uint8Array): void {
    if (datagram.length > MAX_MEDIA_DATAGRAM) return this.drop('oversize');
    const opened = this.sealing[side]?.open(datagram); // only sealed media travels the overlay
    if (!opened || !(opened.flags & OVER_OVERLAY)) return this.drop('unsealed');
    this.counters.overlayIn++;
    this.relaySealed(side, opened.packet, opened);
  }

  /** Whether `side` is latched to `from`. */
  private isLatched(side: Side, from: Endpoint): boolean {
    const latched = this.latched[side];
    return latched !== undefined && sameEndpoint(latched, from);
  }

  /**
   * A phone's side latched to one source hears another vouched for it: one packet spoofed from the
   * phone's address before the phone spoke must not hold the call for good. The port its SDP
   * names takes the latch at once; another port of a vouched address after NEWEST_TO_MOVE packets
   * in a row (a phone behind a NAT that the first packet beat).
   */
  private relatch(side: Side, from: Endpoint): boolean {
    const party = this.sides[side];
    if (!party.vouched.includes(from.address)) return false;
    if (!sameEndpoint(from, party.offered)) return this.moveLatch(side, from);
    this.latched[side] = { address: from.address, port: from.port };
    this.moving[side] = undefined;
    return true;
  }

  /** A newest sealed datagram from `from`, not where `side` is latched: latches there when it is the first, or the NEWEST_TO_MOVE-th in a row. */
  private moveLatch(side: Side, from: Endpoint): boolean {
    const moving = this.moving[side];
    const count = moving && sameEndpoint(moving.at, from) ? moving.count + 1 : 1;
    if (this.latched[side] && count < NEWEST_TO_MOVE) {
      this.moving[side] = { at: { address: from.address, port: from.port }, count };
      return false;
    }
    this.latched[side] = { address: from.address, port: from.port };
    this.moving[side] = undefined;
    return true;
  }

  /**
   * An authentic packet from the far side, by either path. The newest says whether the far side
   * hears us directly; one held back on the way (by a relay peer that would keep the media going
   * through itself) and let go late says nothing.
   */
  private relaySealed(side: Side, packet: Uint8Array, opened: { flags: number; newest: boolean }): void {
    if (opened.newest && !(opened.flags & HEARD_DIRECTLY)) this.unheardSaidAt[side] = this.now();
    if (packet.length === 0) {
      this.counters.probesIn++; // a path probe (see sendTo): it has done its work by arriving
      return;
    }
    this.relay(side, packet);
  }

  /** A packet from `side`'s party, authentic, goes to the other side's. */
  private relay(side: Side, bytes: Uint8Array): void {
    const now = this.now();
    const last = this.lastFromSideAt[side];
    if (last !== undefined && now - last > this.longestGap[side]) this.longestGap[side] = now - last;
    this.lastFromSideAt[side] = now;
    this.counters.packetsIn++;
    this.counters.fromSide[side]++;
    this.counters.bytesIn += bytes.length;
    this.observe?.(side, bytes);
    const other: Side = side === 'a' ? 'b' : 'a';
    const target = this.latched[other] ?? this.sides[other].offered;
    if (target.port === 0 || isUnspecified(target.address)) return this.drop('no-target'); // on hold, or refused (a datagram to :: or 0.0.0.0 would reach this very host)
    this.counters.bytesOut += this.sendTo(other, bytes, target);
    this.counters.packetsOut++;
    this.lastPacketAt = this.now();
  }

  /** What a sealed datagram to `side` says of the path from it. */
  private heardFlag(side: Side): number {
    return this.heardDirectly(side) ? HEARD_DIRECTLY : 0;
  }

  /**
   * Straight to the party's port when it has been heard there; else over the overlay, with a
   * direct copy now and then so that a path through both NATs can still open (each side's
   * packets open its own NAT for the other's). While the far side still sends over the overlay
   * (it has not heard us directly), we answer that way too. Returns the bytes sent.
   */
  private sendTo(side: Side, packet: Uint8Array, target: Endpoint): number {
    const backhaul = this.backhaul[side];
    const sealing = this.sealing[side];
    if (!sealing) {
      this.sides[side].send(packet, target);
      return packet.length;
    }
    const flags = this.heardFlag(side);
    if (!backhaul || !this.overOverlay(side)) {
      const out = sealing.seal(packet, flags);
      this.directSentAt[side] = this.now();
      this.sides[side].send(out, target);
      return out.length;
    }
    // A direct path that worked and went quiet is said once, with the first packet that leaves it:
    // whoever wires the backhaul may read it as a sign that our own address changed.
    const lost = !flags && this.heardDirectAt[side] > -Infinity && !this.directLossSaid[side];
    if (lost) this.directLossSaid[side] = true;
    const out = sealing.seal(packet, flags | OVER_OVERLAY);
    backhaul.send(out, this.sides[side].offered, lost);
    this.counters.overlayOut++;
    // The direct path gets probes of its own (sealed, empty: a copy of the media would be a
    // replay to whichever path delivered second, and so never show that the path works).
    const sent = this.sentUnheard[side]++;
    if (sent < EAGER_PROBES || sent % PROBE_EVERY === 0) this.probe(side, target, sealing, flags);
    return out.length;
  }

  private probe(side: Side, target: Endpoint, sealing: SideSealing, flags: number): void {
    this.directSentAt[side] = this.now();
    this.sides[side].send(sealing.seal(new Uint8Array(0), flags), target);
    this.counters.probesOut++;
    // The overlay link reaches the far home elsewhere than its media did (it was renumbered, or
    // its router mapped it anew): probe its media port's number there too, where its NAT most
    // likely kept it (as the SDP's address already assumes). Behind a port-restricted NAT it
    // cannot reach us until we have sent to where it is now (an ICE peer-reflexive guess).
    if (this.heardDirectly(side)) return;
    const host = this.backhaul[side]?.directHost();
    if (host === undefined || host === target.address) return;
    this.sides[side].send(sealing.seal(new Uint8Array(0), flags), { address: host, port: target.port });
    this.counters.probesOut++;
  }

  private drop(reason: DropReason): void {
    this.counters.dropped[reason]++;
  }
}
