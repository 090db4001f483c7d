import type { Endpoint } from './sdp.js';

/*
 * One anchored media stream (issue 16): packets that reach the anchor's port on one side go out
 * of the other side's port to that side's party, and back. Each side learns its party's real
 * source by symmetric RTP latching (RFC 7362 s4.1.1): a phone behind a NAT, or one that sends
 * from another port than its SDP says, is reached where its packets come from. Only a source at
 * an address the signalling vouched for can latch, and once latched nobody else is heard, so a
 * stranger who sends first can neither inject audio nor have the call's audio sent to it.
 */
export type Side = 'a' | 'b';
export type DropReason = 'stranger' | 'not-latched' | 'oversize' | 'no-target';

export interface StreamSide {
  /** Sends out of this side's anchor port. */
  send(bytes: Uint8Array, to: Endpoint): void;
  /** Where the party said it receives (its SDP); packets go there until it has been heard. */
  readonly offered: Endpoint;
  /** Addresses whose packets may latch this side: the SDP address and the signalling source's. */
  readonly vouched: readonly string[];
}

export interface StreamCounters {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: Record<DropReason, number>;
}

/** RTP over UDP in practice stays well under a datagram; anything larger is not media. */
export const MAX_MEDIA_DATAGRAM = 1500;

export class RelayStream {
  readonly counters: StreamCounters = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: { stranger: 0, 'not-latched': 0, oversize: 0, 'no-target': 0 } };
  private readonly latched: Record<Side, Endpoint | undefined> = { a: undefined, b: undefined };
  /** Wall-clock ms of the last packet relayed (for --media-timeout). */
  lastPacketAt: number;

  constructor(
    private readonly sides: Record<Side, StreamSide>,
    private readonly now: () => number,
  ) {
    this.lastPacketAt = now();
  }

  /** Where each side's party was heard from, if it was. */
  latchedTo(side: Side): Endpoint | undefined {
    return this.latched[side];
  }

  /** A datagram arrived at `side`'s anchor port from `from`. */
  receive(side: Side, bytes: Uint8Array, from: Endpoint): void {
    if (bytes.length > MAX_MEDIA_DATAGRAM) return this.drop('oversize');
    const latched = this.latched[side];
    if (latched) {
      if (latched.address !== from.address || latched.port !== from.port) return this.drop('not-latched');
    } else {
      if (!this.sides[side].vouched.includes(from.address)) return this.drop('stranger');
      this.latched[side] = { address: from.address, port: from.port };
    }
    this.counters.packetsIn++;
    this.counters.bytesIn += bytes.length;
    const other: Side = side === 'a' ? 'b' : 'a';
    const target = this.latched[other] ?? this.sides[other].offered;
    if (target.port === 0 || target.address === '0.0.0.0') return this.drop('no-target'); // on hold, or refused
    this.sides[other].send(bytes, target);
    this.counters.packetsOut++;
    this.counters.bytesOut += bytes.length;
    this.lastPacketAt = this.now();
  }

  private drop(reason: DropReason): void {
    this.counters.dropped[reason]++;
  }
}
