import type { Clock, TimerHandle } from '../runtime/clock.js';
import { KeyCounts } from '../runtime/key-counts.js';
import type { Logger } from '../runtime/log.js';
import { type Address, addressKey } from '../wire/address.js';
import { DecodeError } from '../wire/decode-error.js';
import { DATAGRAM_BUDGET, decodeFrame, encodeFrame, FrameType } from '../wire/frame.js';
import type { Id } from '../wire/id.js';
import type { OverlayMessage } from '../wire/message.js';
import { classifyDatagram, DatagramKind } from './demux.js';
import { fragmentMessage } from './fragmenter.js';
import type { Link, LinkPeer } from './link.js';
import { Reassembler } from './reassembler.js';
import { ReceiveWindow } from './receive-window.js';

/*
 * Hop-by-hop reliability over a datagram Link, in the manner of RELOAD's simple reliability
 * (RFC 6940 s5.6.3.1): every data frame is acknowledged, retransmitted with exponential backoff
 * until acknowledged or given up on, and duplicates are recognised by sequence number. A frame
 * given up on is how the overlay learns that a neighbour has failed. Keepalives hold idle links
 * to watched neighbours (and their NAT bindings) open.
 */

export interface TransportOptions {
  readonly initialRtoMs: number;
  readonly minRtoMs: number;
  readonly maxRtoMs: number;
  /** First transmission plus retransmissions. */
  readonly maxTransmissions: number;
  readonly keepaliveIntervalMs: number;
  readonly idleLinkExpiryMs: number;
  readonly datagramBudget: number;
}

export const DEFAULT_TRANSPORT_OPTIONS: TransportOptions = {
  initialRtoMs: 500,
  minRtoMs: 200,
  maxRtoMs: 4000,
  maxTransmissions: 4,
  keepaliveIntervalMs: 25_000,
  idleLinkExpiryMs: 300_000,
  datagramBudget: DATAGRAM_BUDGET,
};

export interface TransportCounters {
  datagramsSent: number;
  datagramsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  retransmissions: number;
  duplicates: number;
  malformed: number;
  linkFailures: number;
  keepalivesSent: number;
  stunDatagrams: number;
  /** Frames whose claimed sender is not a Node-ID of the link's certificate. */
  senderMismatches: number;
  /** Upper-layer handlers that threw on a message: logged and counted, the transport goes on. */
  handlerFaults: number;
}

/** Whether every fragment was acknowledged; when not, whether that is because the link died (no answer to any retransmission). */
type Delivered = (ok: boolean, linkDied?: boolean) => void;

interface DeliveryGroup {
  remaining: number;
  finished: boolean;
  readonly done: Delivered | undefined;
}

interface Outstanding {
  readonly bytes: Uint8Array;
  readonly firstSentAt: number;
  transmissions: number;
  timer: TimerHandle | undefined;
  readonly group: DeliveryGroup;
}

interface PeerLink {
  readonly key: string;
  readonly address: Address;
  nextSeq: number;
  readonly unacked: Map<number, Outstanding>;
  readonly window: ReceiveWindow;
  srtt: number | undefined;
  rttvar: number;
  rto: number;
  lastHeardAt: number;
  lastSentAt: number;
}

export class HopTransport {
  readonly counters: TransportCounters = {
    datagramsSent: 0,
    datagramsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    retransmissions: 0,
    duplicates: 0,
    malformed: 0,
    linkFailures: 0,
    keepalivesSent: 0,
    stunDatagrams: 0,
    senderMismatches: 0,
    handlerFaults: 0,
  };
  private readonly peers = new Map<string, PeerLink>();
  /** Next sequence number of links forgotten lately (bounded, oldest dropped first). */
  private readonly lastSeq = new Map<string, number>();
  /** Keys of the links the topology watches (every neighbour and finger: a set, looked up per link each sweep). */
  private watched = new Set<string>();
  /** Links held watched for traffic that goes beside this transport (hold), by address: how many holds. */
  private readonly holds = new KeyCounts();
  private readonly reassembler: Reassembler;
  private messageHandler: (from: Address, sender: Id, message: OverlayMessage) => void = () => {};
  private stunHandler: (from: Address, datagram: Uint8Array) => void = () => {};
  private failureHandler: (address: Address) => void = () => {};
  private expiryHandler: (address: Address) => void = () => {};
  private sweepTimer: TimerHandle | undefined;
  private stopped = false;
  keepaliveIntervalMs: number;

  constructor(
    private readonly link: Link,
    private readonly clock: Clock,
    private readonly localId: Id,
    private readonly seqBase: () => number,
    private readonly log: Logger,
    private readonly options: TransportOptions = DEFAULT_TRANSPORT_OPTIONS,
  ) {
    this.reassembler = new Reassembler(clock);
    this.keepaliveIntervalMs = options.keepaliveIntervalMs;
    link.onDatagram((from, datagram, peer) => this.receive(from, datagram, peer));
    this.scheduleSweep();
  }

  onMessage(handler: (from: Address, sender: Id, message: OverlayMessage) => void): void {
    this.messageHandler = handler;
  }

  onStun(handler: (from: Address, datagram: Uint8Array) => void): void {
    this.stunHandler = handler;
  }

  onLinkFailure(handler: (address: Address) => void): void {
    this.failureHandler = handler;
  }

  /** A link idle so long that it was forgotten (no failure: nobody used it). */
  onLinkExpired(handler: (address: Address) => void): void {
    this.expiryHandler = handler;
  }

  get localAddress(): Address {
    return this.link.localAddress;
  }

  /** Sends a message reliably; `done` learns whether every fragment was acknowledged. */
  send(to: Address, message: OverlayMessage, done?: Delivered): void {
    if (this.stopped) {
      done?.(false);
      return;
    }
    const peer = this.peerFor(to);
    const whole = { header: { ...message.header, fragment: { offset: 0, total: message.payload.length } }, payload: message.payload };
    const seq = this.takeSeq(peer);
    const bytes = encodeFrame({ type: FrameType.Data, seq, sender: this.localId, message: whole });
    if (bytes.length <= this.options.datagramBudget) {
      this.transmitNew(peer, seq, bytes, { remaining: 1, finished: false, done });
      return;
    }
    // RFC 6940 s6.7: too large for one datagram, so fragments, each with its own sequence number.
    let pieces: OverlayMessage[];
    try {
      pieces = fragmentMessage(whole, this.options.datagramBudget);
    } catch (error) {
      this.log.warn('unsendable-message', { error });
      done?.(false);
      return;
    }
    const group: DeliveryGroup = { remaining: pieces.length, finished: false, done };
    pieces.forEach((piece, i) => {
      const pieceSeq = i === 0 ? seq : this.takeSeq(peer);
      this.transmitNew(peer, pieceSeq, encodeFrame({ type: FrameType.Data, seq: pieceSeq, sender: this.localId, message: piece }), group);
    });
  }

  /** Sends a datagram outside the reliability layer (STUN answers). */
  sendRaw(to: Address, datagram: Uint8Array): void {
    if (this.stopped) return;
    this.count(datagram);
    this.link.send(to, datagram);
  }

  /**
   * How often idle watched links get a keepalive: the default until the node has measured how
   * long its NAT keeps a binding, then a margin under that (nat/binding-lifetime.ts).
   */
  setKeepaliveInterval(ms: number): void {
    this.keepaliveIntervalMs = ms;
    this.clock.clearTimer(this.sweepTimer);
    if (!this.stopped) this.scheduleSweep();
  }

  /** Keepalives hold links to watched addresses open and detect their failure when idle. */
  setWatched(addresses: readonly Address[]): void {
    const keys = addresses.map(addressKey);
    if (keys.length === this.watched.size && keys.every((k) => this.watched.has(k))) return;
    this.watched = new Set(keys);
    for (const address of addresses) this.peerFor(address);
  }

  /**
   * Keeps the link to `address` watched (keepalives, failure detection) until the returned
   * release is called: for traffic that goes beside this transport (a call's media over the
   * link), which would otherwise leave the link looking idle until it expired.
   */
  hold(address: Address): () => void {
    const key = addressKey(address);
    this.holds.add(key);
    this.peerFor(address);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds.remove(key);
    };
  }

  /** Watched: the topology's neighbours (setWatched) and held links. */
  private isWatched(key: string): boolean {
    return this.holds.of(key) > 0 || this.watched.has(key);
  }

  /**
   * Whether a packet sent to `address` now should get through: the link is watched (keepalives
   * hold both ends' NAT bindings open and would have reported its death), or the far end was heard
   * within `withinMs`. A link idle for longer may still be known, but a NAT that filters in front
   * of the far end has likely closed its pinhole for us since.
   */
  isLive(address: Address, withinMs = this.keepaliveIntervalMs): boolean {
    const key = addressKey(address);
    const peer = this.peers.get(key);
    if (!peer) return false;
    return this.isWatched(key) || this.clock.now() - peer.lastHeardAt < withinMs;
  }

  stats(): { links: number; unacked: number; reassembling: number } {
    let unacked = 0;
    for (const peer of this.peers.values()) unacked += peer.unacked.size;
    return { links: this.peers.size, unacked, reassembling: this.reassembler.inProgress() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimer(this.sweepTimer);
    for (const peer of this.peers.values()) {
      for (const out of peer.unacked.values()) this.clock.clearTimer(out.timer);
      peer.unacked.clear();
    }
    await this.link.close();
  }

  private receive(from: Address, datagram: Uint8Array, linkPeer: LinkPeer | undefined): void {
    if (this.stopped) return;
    this.counters.datagramsReceived++;
    this.counters.bytesReceived += datagram.length;
    const kind = classifyDatagram(datagram);
    if (kind === DatagramKind.Stun) {
      this.counters.stunDatagrams++;
      this.guard('stun-handler', () => this.stunHandler(from, datagram));
      return;
    }
    if (kind !== DatagramKind.Overlay) {
      this.counters.malformed++;
      return;
    }
    let frame;
    try {
      frame = decodeFrame(datagram);
    } catch (error) {
      this.counters.malformed++;
      if (!(error instanceof DecodeError)) this.log.warn('decoder-fault', { error });
      else this.log.debug('malformed-frame', { from: addressKey(from), error });
      return;
    }
    // On a sealed link the far end proved its certificate: it may speak only for its own Node-IDs.
    if (linkPeer && frame.type !== FrameType.Ack && !linkPeer.nodeIds.includes(frame.sender)) {
      this.counters.senderMismatches++;
      this.log.debug('sender-mismatch', { from: addressKey(from), subject: linkPeer.subject });
      return;
    }
    const peer = this.peerFor(from);
    peer.lastHeardAt = this.clock.now();
    if (frame.type === FrameType.Ack) {
      this.acknowledge(peer, frame.seq, frame.received);
      return;
    }
    const fresh = peer.window.accept(frame.seq);
    this.sendAck(peer, frame.seq);
    if (!fresh) {
      this.counters.duplicates++;
      return;
    }
    if (frame.type === FrameType.Keepalive) return;
    const whole = this.reassembler.accept(peer.key, frame.message);
    if (whole) this.guard('message-handler', () => this.messageHandler(from, frame.sender, whole));
  }

  private sendAck(peer: PeerLink, seq: number): void {
    const received = seq === peer.window.highest ? peer.window.mask : 0;
    const bytes = encodeFrame({ type: FrameType.Ack, seq, received });
    this.count(bytes);
    this.link.send(peer.address, bytes);
  }

  private acknowledge(peer: PeerLink, seq: number, received: number): void {
    this.settle(peer, seq, true);
    for (let bit = 0; bit < 32 && received !== 0; bit++) {
      if (received & (1 << bit)) this.settle(peer, seq - 1 - bit, false);
    }
  }

  private settle(peer: PeerLink, seq: number, sampleRtt: boolean): void {
    const out = peer.unacked.get(seq);
    if (!out) return;
    peer.unacked.delete(seq);
    this.clock.clearTimer(out.timer);
    // Karn's rule: only frames sent once give an RTT sample.
    if (sampleRtt && out.transmissions === 1) this.updateRtt(peer, this.clock.now() - out.firstSentAt);
    const group = out.group;
    if (group.finished) return;
    if (--group.remaining === 0) {
      group.finished = true;
      group.done?.(true);
    }
  }

  /** RFC 6298 RTO estimation. */
  private updateRtt(peer: PeerLink, sample: number): void {
    if (peer.srtt === undefined) {
      peer.srtt = sample;
      peer.rttvar = sample / 2;
    } else {
      peer.rttvar = 0.75 * peer.rttvar + 0.25 * Math.abs(peer.srtt - sample);
      peer.srtt = 0.875 * peer.srtt + 0.125 * sample;
    }
    peer.rto = Math.min(this.options.maxRtoMs, Math.max(this.options.minRtoMs, peer.srtt + 4 * peer.rttvar));
  }

  private transmitNew(peer: PeerLink, seq: number, bytes: Uint8Array, group: DeliveryGroup): void {
    const out: Outstanding = { bytes, firstSentAt: this.clock.now(), transmissions: 0, timer: undefined, group };
    peer.unacked.set(seq, out);
    this.transmit(peer, seq, out);
  }

  private transmit(peer: PeerLink, seq: number, out: Outstanding): void {
    out.transmissions++;
    if (out.transmissions > 1) this.counters.retransmissions++;
    peer.lastSentAt = this.clock.now();
    this.count(out.bytes);
    this.link.send(peer.address, out.bytes);
    const wait = Math.min(this.options.maxRtoMs, peer.rto * 2 ** (out.transmissions - 1));
    out.timer = this.clock.setTimer(wait, () => {
      if (peer.unacked.get(seq) !== out) return;
      if (out.transmissions < this.options.maxTransmissions) {
        this.transmit(peer, seq, out);
        return;
      }
      this.giveUp(peer);
    });
  }

  /** A frame went unacknowledged through every retransmission: the link is dead. */
  private giveUp(peer: PeerLink): void {
    this.counters.linkFailures++;
    const groups = new Set<DeliveryGroup>();
    for (const out of peer.unacked.values()) {
      this.clock.clearTimer(out.timer);
      groups.add(out.group);
    }
    peer.unacked.clear();
    this.forgetPeer(peer);
    this.log.debug('link-failed', { to: peer.key });
    for (const group of groups) {
      if (group.finished) continue;
      group.finished = true;
      this.guard('delivery-callback', () => group.done?.(false, true));
    }
    this.guard('failure-handler', () => this.failureHandler(peer.address));
  }

  private peerFor(address: Address): PeerLink {
    const key = addressKey(address);
    let peer = this.peers.get(key);
    if (!peer) {
      const now = this.clock.now();
      peer = {
        key,
        address,
        // Continue the numbering if we talked to this address before, so a receiver never
        // mistakes new frames for duplicates of ones it saw before we gave up on the link.
        nextSeq: this.lastSeq.get(key) ?? this.seqBase(),
        unacked: new Map(),
        window: new ReceiveWindow(),
        srtt: undefined,
        rttvar: 0,
        rto: this.options.initialRtoMs,
        lastHeardAt: -Infinity, // a link we only sent on has not been heard (isLive)
        lastSentAt: now,
      };
      this.peers.set(key, peer);
    }
    return peer;
  }

  private forgetPeer(peer: PeerLink): void {
    this.peers.delete(peer.key);
    this.lastSeq.delete(peer.key);
    this.lastSeq.set(peer.key, peer.nextSeq);
    if (this.lastSeq.size > 4096) this.lastSeq.delete(this.lastSeq.keys().next().value as string);
  }

  private takeSeq(peer: PeerLink): number {
    const seq = peer.nextSeq;
    peer.nextSeq = (peer.nextSeq + 1) % 0x80000000;
    return seq;
  }

  private scheduleSweep(): void {
    // Every quarter interval, so that a keepalive follows the last datagram after 3/4 to 1
    // interval, never later (a pinhole timed for the interval stays open).
    this.sweepTimer = this.clock.setTimer(this.keepaliveIntervalMs / 4, () => {
      this.sweep();
      if (!this.stopped) this.scheduleSweep();
    });
  }

  /** Sends keepalives on idle watched links and forgets long-idle unwatched ones. */
  private sweep(): void {
    const now = this.clock.now();
    for (const peer of [...this.peers.values()]) {
      if (this.isWatched(peer.key)) {
        if (now - peer.lastSentAt >= (this.keepaliveIntervalMs * 3) / 4 && peer.unacked.size === 0) this.sendKeepalive(peer);
      } else if (peer.unacked.size === 0 && now - Math.max(peer.lastHeardAt, peer.lastSentAt) > this.options.idleLinkExpiryMs) {
        this.forgetPeer(peer);
        this.guard('expiry-handler', () => this.expiryHandler(peer.address));
      }
    }
  }

  /**
   * A keepalive on every watched link now, idle or not: when our public address may have changed,
   * each neighbour meets the new one (and its link session to us is set up again) at once, not
   * up to a keepalive interval later. (A link with frames in flight is being retried anyway.)
   */
  keepaliveNow(): void {
    if (this.stopped) return;
    for (const peer of this.peers.values()) if (this.isWatched(peer.key) && peer.unacked.size === 0) this.sendKeepalive(peer);
  }

  private sendKeepalive(peer: PeerLink): void {
    this.counters.keepalivesSent++;
    const seq = this.takeSeq(peer);
    const group: DeliveryGroup = { remaining: 1, finished: false, done: undefined };
    this.transmitNew(peer, seq, encodeFrame({ type: FrameType.Keepalive, seq, sender: this.localId }), group);
  }

  private count(bytes: Uint8Array): void {
    this.counters.datagramsSent++;
    this.counters.bytesSent += bytes.length;
  }

  /** Upper layers' faults are logged, never allowed to unwind into the socket's event loop. */
  private guard(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.counters.handlerFaults++;
      this.log.error('handler-fault', { what, error });
    }
  }
}
