import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import { type MediaPortPool, MediaPortsExhausted } from './port-pool.js';
import { type DropReason, emptyStreamCounters, RelayStream, type Side, type StreamCounters } from './relay-stream.js';
import type { Endpoint } from './sdp.js';
import { RtcpQuality } from './rtcp-quality.js';

/*
 * The home peer's media anchor (issue 16): for each anchored call, one RelayStream per m= line,
 * each with an RTP/RTCP port pair on each side (the phone's side and the far side). Sessions end
 * on BYE, CANCEL or failure (close), or after `timeoutMs` without a packet (--media-timeout);
 * their ports go back to the pool either way. Sockets come from an injected factory, so the
 * simulator and unit tests run the same code as the peer.
 */
export interface MediaSocket {
  send(bytes: Uint8Array, to: Endpoint): void;
  close(): void;
}

/** Opens a UDP socket on `port` that hands every datagram to `receive`; undefined if the port is taken. */
export type MediaSocketFactory = (port: number, receive: (bytes: Uint8Array, from: Endpoint) => void) => Promise<MediaSocket | undefined>;

export interface StreamPlan {
  /** Where each side's party said it receives RTP, and RTCP. */
  readonly offered: Record<Side, { rtp: Endpoint; rtcp: Endpoint }>;
  /** Addresses that may latch each side (its SDP address and the signalling source's). */
  readonly vouched: Record<Side, readonly string[]>;
}

export interface AnchoredStream {
  /** The anchor's RTP port on each side (RTCP is the port above). */
  readonly ports: Record<Side, number>;
  readonly rtp: RelayStream;
  readonly rtcp: RelayStream;
  /** Loss and jitter from the phones' own RTCP reports. */
  readonly quality: RtcpQuality;
}

export interface MediaSession {
  readonly id: string;
  readonly streams: readonly AnchoredStream[];
}

export interface MediaCounters {
  sessions: number;
  /** Media frames over the overlay for no live stream (late ones of an ended call, or junk). */
  strayOverlayFrames: number;
  timeouts: number;
  refusedNoPorts: number;
}

/** A session nobody answered is given up after this long (Timer C ends a real call's ringing at 3 minutes). */
const UNANSWERED_MS = 300_000;

interface SessionEntry {
  readonly session: MediaSession;
  readonly sockets: MediaSocket[];
  readonly ports: number[];
  readonly openedAt: number;
  answeredAt: number | undefined;
  timer: TimerHandle;
}

export class MediaAnchor {
  readonly counters: MediaCounters = { sessions: 0, strayOverlayFrames: 0, timeouts: 0, refusedNoPorts: 0 };
  /** Hears of a session the anchor ended by itself (--media-timeout). */
  onTimeout: (id: string) => void = () => {};
  /** What ended calls' streams counted, so that status counters only ever grow. */
  private readonly ended: StreamCounters = emptyStreamCounters();
  private readonly sessions = new Map<string, SessionEntry>();
  /** Far-side ports of live streams: media that came over the overlay names the port it is for. */
  private readonly farSidePorts = new Map<number, RelayStream>();

  constructor(
    private readonly pool: MediaPortPool,
    private readonly openSocket: MediaSocketFactory,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {}

  /** Anchors a call's streams; throws MediaPortsExhausted (answer 503) when the ports run out, holding none. */
  async open(id: string, plans: readonly StreamPlan[]): Promise<MediaSession> {
    this.close(id);
    const sockets: MediaSocket[] = [];
    const ports: number[] = [];
    try {
      const streams: AnchoredStream[] = [];
      for (const plan of plans) streams.push(await this.anchorStream(plan, sockets, ports));
      const session = { id, streams };
      for (const stream of streams) {
        this.farSidePorts.set(stream.ports.b, stream.rtp);
        this.farSidePorts.set(stream.ports.b + 1, stream.rtcp);
      }
      this.counters.sessions++;
      if (this.sessions.has(id)) throw new MediaPortsExhausted(`media for call ${id} opened twice at once`); // CallMedia opens once per call
      this.sessions.set(id, { session, sockets, ports, openedAt: this.clock.now(), answeredAt: undefined, timer: this.watch(id, this.timeoutMs) });
      return session;
    } catch (error) {
      for (const socket of sockets) socket.close();
      for (const port of ports) this.pool.release(port);
      this.counters.refusedNoPorts++;
      throw error;
    }
  }

  /** Ends a session (BYE, CANCEL, a failed call) and gives its ports back. */
  close(id: string): void {
    const entry = this.sessions.get(id);
    if (!entry) return;
    this.sessions.delete(id);
    addCounters(this.ended, [entry.session]);
    for (const stream of entry.session.streams) for (const port of [stream.ports.b, stream.ports.b + 1]) this.farSidePorts.delete(port);
    this.clock.clearTimer(entry.timer);
    for (const socket of entry.sockets) socket.close();
    for (const port of entry.ports) this.pool.release(port);
  }

  get active(): number {
    return this.sessions.size;
  }

  get portsInUse(): number {
    return this.pool.pairsInUse * 2;
  }

  /** Sealed media from the other home over the overlay link, for our far-side port `port`; `heardYou`: it hears us directly. */
  receiveOverOverlay(port: number, datagram: Uint8Array, from: Endpoint, heardYou: boolean): void {
    const relay = this.farSidePorts.get(port);
    if (relay) relay.receive('b', datagram, from, { heardYou });
    else this.counters.strayOverlayFrames++;
  }

  /** The range ports are taken from (status `portRange`). */
  get portRange(): string {
    return this.pool.range;
  }

  /** Sides of live streams whose party has been heard, so media reaches it where it really is. */
  latchedSides(): number {
    let latched = 0;
    for (const { session } of this.sessions.values()) {
      for (const stream of session.streams) for (const side of ['a', 'b'] as const) if (stream.rtp.latchedTo(side)) latched++;
    }
    return latched;
  }

  /** Each live session's streams (`p2psip calls`). */
  sessionsNow(): readonly MediaSession[] {
    return [...this.sessions.values()].map((entry) => entry.session);
  }

  /** Every stream's counters since start, the ended calls' and the live ones', summed (status --json `media`). */
  totals(): StreamCounters {
    const sum = addCounters(emptyStreamCounters(), [], this.ended);
    return addCounters(sum, [...this.sessions.values()].map((entry) => entry.session));
  }

  private async anchorStream(plan: StreamPlan, sockets: MediaSocket[], ports: number[]): Promise<AnchoredStream> {
    const relays: { rtp?: RelayStream; rtcp?: RelayStream } = {};
    const deliver = (side: Side, which: 'rtp' | 'rtcp') => (bytes: Uint8Array, from: Endpoint) => relays[which]!.receive(side, bytes, from);
    // Each side gets an RTP/RTCP pair: the phone talks to one, the far side to the other.
    const a = await this.openPair(deliver('a', 'rtp'), deliver('a', 'rtcp'), sockets, ports);
    const b = await this.openPair(deliver('b', 'rtp'), deliver('b', 'rtcp'), sockets, ports);
    const now = () => this.clock.now();
    const quality = new RtcpQuality();
    for (const which of ['rtp', 'rtcp'] as const) {
      relays[which] = new RelayStream(
        {
          a: { send: (bytes, to) => a.sockets[which].send(bytes, to), offered: plan.offered.a[which], vouched: plan.vouched.a },
          b: { send: (bytes, to) => b.sockets[which].send(bytes, to), offered: plan.offered.b[which], vouched: plan.vouched.b },
        },
        now,
        which === 'rtcp' ? (side, packet) => quality.observe(side, packet) : undefined,
      );
    }
    return { ports: { a: a.port, b: b.port }, rtp: relays.rtp!, rtcp: relays.rtcp!, quality };
  }

  /** The next pair whose both ports the system lets us bind (a port bound by someone else is passed over). */
  private async openPair(rtp: (bytes: Uint8Array, from: Endpoint) => void, rtcp: (bytes: Uint8Array, from: Endpoint) => void, sockets: MediaSocket[], ports: number[]): Promise<{ port: number; sockets: { rtp: MediaSocket; rtcp: MediaSocket } }> {
    for (let tried = 0; tried < this.pool.capacity; tried++) {
      const port = this.pool.allocate();
      ports.push(port);
      const rtpSocket = await this.openSocket(port, rtp);
      const rtcpSocket = rtpSocket && (await this.openSocket(port + 1, rtcp));
      if (rtpSocket && rtcpSocket) {
        sockets.push(rtpSocket, rtcpSocket);
        return { port, sockets: { rtp: rtpSocket, rtcp: rtcpSocket } };
      }
      rtpSocket?.close();
    }
    throw new MediaPortsExhausted(`no free media port pair in ${this.pool.capacity}`);
  }

  /**
   * Ends the session when no stream has carried a packet for timeoutMs since the call was
   * answered. Before the answer a call may ring without media as long as the proxy's Timer C
   * lets it; only one left unanswered for UNANSWERED_MS (its INVITE lost track of) is ended.
   */
  private watch(id: string, after: number): TimerHandle {
    return this.clock.setTimer(after, () => {
      const entry = this.sessions.get(id);
      if (!entry) return;
      const now = this.clock.now();
      const quietSince = entry.answeredAt === undefined ? entry.openedAt : Math.max(entry.answeredAt, ...entry.session.streams.flatMap((s) => [s.rtp.lastPacketAt, s.rtcp.lastPacketAt]));
      const limit = entry.answeredAt === undefined ? UNANSWERED_MS : this.timeoutMs;
      if (now - quietSince >= limit) {
        this.counters.timeouts++;
        this.close(id);
        this.onTimeout(id);
        return;
      }
      entry.timer = this.watch(id, Math.min(this.timeoutMs, limit - (now - quietSince))); // re-armed for the time left
    });
  }

  /** The call was answered (an SDP answer passed): from now on the media timeout applies. */
  answered(id: string): void {
    const entry = this.sessions.get(id);
    if (entry && entry.answeredAt === undefined) entry.answeredAt = this.clock.now();
  }
}

/** Adds the streams of `sessions` (and a prior sum, `more`) into `sum`, and returns it. */
function addCounters(sum: StreamCounters, sessions: readonly MediaSession[], more?: StreamCounters): StreamCounters {
  const parts: StreamCounters[] = more ? [more] : [];
  for (const session of sessions) for (const stream of session.streams) parts.push(stream.rtp.counters, stream.rtcp.counters);
  for (const part of parts) {
    sum.packetsIn += part.packetsIn;
    sum.packetsOut += part.packetsOut;
    sum.bytesIn += part.bytesIn;
    sum.bytesOut += part.bytesOut;
    sum.fromSide.a += part.fromSide.a;
    sum.fromSide.b += part.fromSide.b;
    sum.overlayIn += part.overlayIn;
    sum.overlayOut += part.overlayOut;
    sum.probesIn += part.probesIn;
    sum.probesOut += part.probesOut;
    for (const reason of Object.keys(sum.dropped) as DropReason[]) sum.dropped[reason] += part.dropped[reason];
  }
  return sum;
}
