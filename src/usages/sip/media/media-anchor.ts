import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import { type MediaPortPool, MediaPortsExhausted } from './port-pool.js';
import { DIRECT_KEEPALIVE_MS, type DropReason, emptyStreamCounters, RelayStream, type Side, type StreamCounters, type StreamSide } from './relay-stream.js';
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
  /** The anchor's RTP port on each side (RTCP is the port above); a forked call's winning branch may bring its own. */
  readonly ports: Readonly<Record<Side, number>>;
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
  /** Branches of forked calls given ports of their own, and those that had to share the first branch's. */
  branchLegs: number;
  branchesSharing: number;
  /** Media frames over the overlay for no live stream (late ones of an ended call, or junk). */
  strayOverlayFrames: number;
  timeouts: number;
  refusedNoPorts: number;
}

/** A session nobody answered is given up after this long without a packet (Timer C ends a real call's ringing at 3 minutes by default). */
export const UNANSWERED_MS = 300_000;
/**
 * Branches of one forked call with ports of their own besides the first; more share the first
 * one's. Nor does a branch get its own while fewer than a quarter of the pairs are free: ports
 * for ringing phones must not crowd out the next calls (--max-calls bounds calls, not branches).
 */
const MAX_BRANCH_LEGS = 4;
const BRANCH_RESERVE = 0.25;
const NOWHERE: Endpoint = { address: '0.0.0.0', port: 0 };
/** A stream whose parties are not known yet: the SDP that brings it says where they are (CallMedia sets them). */
export const UNKNOWN_PARTIES: StreamPlan = { offered: { a: { rtp: NOWHERE, rtcp: NOWHERE }, b: { rtp: NOWHERE, rtcp: NOWHERE } }, vouched: { a: [], b: [] } };

/** One stream's end on one side: its RTP port, the parties its RTP and RTCP sockets stand for, the sockets. */
interface StreamEnd {
  readonly port: number;
  readonly rtp: StreamSide;
  readonly rtcp: StreamSide;
  readonly sockets: readonly MediaSocket[];
}

/**
 * A call forked to several phones (issue 16): each branch gets its own ports on their side, so
 * whichever phone answers with SDP is told ports that are its alone. The branch that answered
 * last is heard (its party swapped into each stream); the others' packets are dropped and counted.
 * The first 2xx's branch keeps its ports, and every other branch's go back.
 */
interface Forking {
  readonly side: Side;
  readonly legs: Map<string, { ends: StreamEnd[]; ports: number[] }>;
  /** Branches in the order their phones last sent SDP (null: one sharing the first's ports): who is heard when the latest gives up. */
  heard: (string | null)[];
}

interface SessionEntry {
  /** Its streams grow when a re-offer adds one (addStreams). */
  readonly session: { readonly id: string; readonly streams: AnchoredStream[] };
  sockets: MediaSocket[];
  ports: number[];
  /** Each stream's ends, per side: on a forked call's phones' side, the first branch's until another wins and brings its own. */
  readonly ends: Record<Side, StreamEnd[]>;
  forking?: Forking;
  readonly openedAt: number;
  answeredAt: number | undefined;
  timer: TimerHandle;
}

export class MediaAnchor {
  readonly counters: MediaCounters = { sessions: 0, branchLegs: 0, branchesSharing: 0, strayOverlayFrames: 0, timeouts: 0, refusedNoPorts: 0 };
  /** Hears of a session the anchor ended by itself (--media-timeout). */
  onTimeout: (id: string) => void = () => {};
  /** What ended calls' streams counted, so that status counters only ever grow. */
  private readonly ended: StreamCounters = emptyStreamCounters();
  private readonly sessions = new Map<string, SessionEntry>();
  /** Far-side ports of live streams: media that came over the overlay names the port it is for. */
  private readonly farSidePorts = new Map<number, RelayStream>();
  private keepaliveTimer: TimerHandle | undefined;

  constructor(
    private readonly pool: MediaPortPool,
    private readonly openSocket: MediaSocketFactory,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    /** How long a call may ring without a packet: longer than the proxy's Timer C (--sip-timer-c). */
    private readonly unansweredMs = UNANSWERED_MS,
  ) {}

  /** Anchors a call's streams; throws MediaPortsExhausted (answer 503) when the ports run out, holding none. */
  async open(id: string, plans: readonly StreamPlan[]): Promise<MediaSession> {
    this.close(id);
    const sockets: MediaSocket[] = [];
    const ports: number[] = [];
    const ends: Record<Side, StreamEnd[]> = { a: [], b: [] };
    try {
      const streams: AnchoredStream[] = [];
      for (const plan of plans) streams.push(await this.anchorStream(plan, sockets, ports, ends));
      const session = { id, streams };
      for (const stream of streams) {
        this.farSidePorts.set(stream.ports.b, stream.rtp);
        this.farSidePorts.set(stream.ports.b + 1, stream.rtcp);
      }
      this.counters.sessions++;
      if (this.sessions.has(id)) throw new MediaPortsExhausted(`media for call ${id} opened twice at once`); // CallMedia opens once per call
      this.sessions.set(id, { session, sockets, ports, ends, openedAt: this.clock.now(), answeredAt: undefined, timer: this.watch(id, this.timeoutMs) });
      this.keepDirectPaths();
      return session;
    } catch (error) {
      this.giveBack(sockets, ports);
      this.counters.refusedNoPorts++;
      throw error;
    }
  }

  /**
   * Streams a re-offer brings into a live call (RFC 3264 s8.1: an m= line added, or one taken up
   * that was disabled), anchored like the first ones and appended to its session's streams.
   * Undefined, holding nothing, when the ports run out or the call still rings on several phones
   * (their own ports are for the first streams only): the new sections then stay disabled.
   */
  async addStreams(id: string, count: number): Promise<readonly AnchoredStream[] | undefined> {
    const entry = this.sessions.get(id);
    const forked = () => (entry?.forking?.legs.size ?? 0) > 0;
    if (!entry || forked()) return undefined;
    const sockets: MediaSocket[] = [];
    const ports: number[] = [];
    const ends: Record<Side, StreamEnd[]> = { a: [], b: [] };
    const streams: AnchoredStream[] = [];
    try {
      for (let i = 0; i < count; i++) streams.push(await this.anchorStream(UNKNOWN_PARTIES, sockets, ports, ends));
    } catch {
      streams.length = 0;
    }
    // Meanwhile the call may have ended, or forked.
    if (streams.length === 0 || this.sessions.get(id) !== entry || forked()) {
      this.giveBack(sockets, ports);
      return undefined;
    }
    entry.sockets.push(...sockets);
    entry.ports.push(...ports);
    for (const side of ['a', 'b'] as const) entry.ends[side].push(...ends[side]);
    for (const stream of streams) {
      this.farSidePorts.set(stream.ports.b, stream.rtp);
      this.farSidePorts.set(stream.ports.b + 1, stream.rtcp);
    }
    entry.session.streams.push(...streams);
    return streams;
  }

  /** While sessions live, each stream's direct path to the other home gets its keepalive (RelayStream.keepDirect). */
  private keepDirectPaths(): void {
    if (this.keepaliveTimer || this.sessions.size === 0) return;
    this.keepaliveTimer = this.clock.setTimer(DIRECT_KEEPALIVE_MS, () => {
      this.keepaliveTimer = undefined;
      for (const { session } of this.sessions.values()) {
        for (const stream of session.streams) {
          stream.rtp.keepDirect('b');
          stream.rtcp.keepDirect('b');
        }
      }
      this.keepDirectPaths();
    });
  }

  /** Ends a session (BYE, CANCEL, a failed call) and gives its ports back. */
  close(id: string): void {
    const entry = this.sessions.get(id);
    if (!entry) return;
    this.sessions.delete(id);
    addCounters(this.ended, [entry.session]);
    for (const stream of entry.session.streams) for (const port of [stream.ports.b, stream.ports.b + 1]) this.farSidePorts.delete(port);
    this.clock.clearTimer(entry.timer);
    if (this.sessions.size === 0) {
      this.clock.clearTimer(this.keepaliveTimer);
      this.keepaliveTimer = undefined;
    }
    for (const leg of entry.forking?.legs.values() ?? []) this.releaseLeg(leg);
    this.giveBack(entry.sockets, entry.ports);
  }

  private releaseLeg(leg: { ends: StreamEnd[]; ports: number[] }): void {
    this.giveBack(leg.ends.flatMap((end) => end.sockets), leg.ports);
  }

  /** Closes sockets and returns their pairs to the pool: every way ports are let go goes through here. */
  private giveBack(sockets: Iterable<MediaSocket>, ports: Iterable<number>): void {
    for (const socket of sockets) socket.close();
    for (const port of ports) this.pool.release(port);
  }

  /**
   * Ports of its own, on `side`, for one branch of a forked call: each stream's RTP port there
   * (undefined when the ports or the branches run out, or the call is gone: the branch then
   * shares the first branch's ports, as every branch did before this).
   */
  async openBranch(id: string, branch: string, side: Side): Promise<(number | undefined)[] | undefined> {
    const entry = this.sessions.get(id);
    if (!entry || (entry.forking && entry.forking.side !== side)) return undefined;
    const legsFull = () => (entry.forking?.legs.size ?? 0) >= MAX_BRANCH_LEGS;
    const reserveKept = this.pool.capacity - this.pool.pairsInUse - entry.session.streams.length >= this.pool.capacity * BRANCH_RESERVE;
    if (entry.forking?.legs.has(branch) || legsFull() || !reserveKept) {
      this.counters.branchesSharing++;
      return undefined;
    }
    const sockets: MediaSocket[] = [];
    const ports: number[] = [];
    const ends: StreamEnd[] = [];
    try {
      for (const stream of entry.session.streams) ends.push(await this.openEnd(stream, side, sockets, ports));
    } catch {
      ends.length = 0;
    }
    // Meanwhile the call may have ended, forked to the other side or gained a stream (addStreams),
    // or another offer for this branch (or the last room) may have taken its turn: then these
    // ports go straight back.
    if (ends.length !== entry.session.streams.length || this.sessions.get(id) !== entry || (entry.forking && entry.forking.side !== side) || entry.forking?.legs.has(branch) || legsFull()) {
      this.giveBack(sockets, ports);
      this.counters.branchesSharing++;
      return undefined;
    }
    entry.forking ??= { side, legs: new Map(), heard: [] };
    entry.forking.legs.set(branch, { ends, ports });
    this.counters.branchLegs++;
    return ends.map((end) => end.port);
  }

  /**
   * Each stream's RTP port on `side` for the party heard there now, or for `branch`'s phone when
   * given (a forked call's ringing branch may have its own; one with none shares the first's).
   */
  portsHeard(id: string, side: Side, branch?: string): number[] {
    const entry = this.sessions.get(id);
    if (!entry) return [];
    const forking = entry.forking;
    const ofBranch = forking && branch !== undefined ? (forking.legs.get(branch)?.ends ?? entry.ends[forking.side]) : undefined;
    return entry.session.streams.map((stream, i) => {
      if (forking?.side !== side) return stream.ports[side];
      const heard = ofBranch ?? [entry.ends[side], ...[...forking.legs.values()].map((leg) => leg.ends)].find((ends) => ends[i].rtp === stream.rtp.party(side));
      return heard?.[i].port ?? stream.ports[side];
    });
  }

  /** The phone of `branch` answered with SDP: it is the one heard now (the first branch's when it has no ports of its own). */
  useBranch(id: string, branch: string): void {
    const entry = this.sessions.get(id);
    const forking = entry?.forking;
    if (!entry || !forking) return;
    const key = forking.legs.has(branch) ? branch : null;
    forking.heard = [...forking.heard.filter((k) => k !== key).slice(-MAX_BRANCH_LEGS), key];
    this.hear(entry, key === null ? entry.ends[forking.side] : forking.legs.get(key)!.ends);
  }

  private hear(entry: SessionEntry, ends: readonly StreamEnd[]): void {
    const side = entry.forking!.side;
    entry.session.streams.forEach((stream, i) => {
      stream.rtp.switchParty(side, ends[i].rtp);
      stream.rtcp.switchParty(side, ends[i].rtcp);
    });
  }

  /**
   * A branch ended without answering (or lost to another): its ports go back. If its phone was the
   * one heard, the branch that sent SDP before it is heard again (the first, when none did).
   */
  closeBranch(id: string, branch: string): void {
    const entry = this.sessions.get(id);
    const forking = entry?.forking;
    const leg = forking?.legs.get(branch);
    if (!entry || !forking || !leg) return;
    const wasHeard = entry.session.streams[0]?.rtp.party(forking.side) === leg.ends[0]?.rtp;
    forking.legs.delete(branch);
    forking.heard = forking.heard.filter((k) => k !== branch);
    if (wasHeard) {
      const previous = forking.heard.at(-1);
      this.hear(entry, previous ? forking.legs.get(previous)!.ends : entry.ends[forking.side]);
    }
    this.releaseLeg(leg);
  }

  /**
   * The first 2xx came from `branch`: it keeps its ports, which become the call's on that side
   * (a re-offer names them), and every other branch's ports go back, the first branch's too
   * when the winner had its own.
   */
  keepBranch(id: string, branch: string): void {
    const entry = this.sessions.get(id);
    const forking = entry?.forking;
    if (!entry || !forking) return;
    const leg = forking.legs.get(branch);
    for (const key of [...forking.legs.keys()]) if (key !== branch) this.closeBranch(id, key);
    this.useBranch(id, branch);
    if (!leg) return;
    forking.legs.delete(branch);
    const retired = entry.ends[forking.side];
    const closing = new Set(retired.flatMap((end) => end.sockets));
    const freed = new Set(retired.map((end) => end.port));
    this.giveBack(closing, freed);
    entry.sockets = [...entry.sockets.filter((socket) => !closing.has(socket)), ...leg.ends.flatMap((end) => end.sockets)];
    entry.ports = [...entry.ports.filter((port) => !freed.has(port)), ...leg.ports];
    entry.session.streams.forEach((stream, i) => {
      const ports = stream.ports as Record<Side, number>;
      if (forking.side === 'b') {
        this.farSidePorts.delete(ports.b);
        this.farSidePorts.delete(ports.b + 1);
        this.farSidePorts.set(leg.ends[i].port, stream.rtp);
        this.farSidePorts.set(leg.ends[i].port + 1, stream.rtcp);
      }
      ports[forking.side] = leg.ends[i].port;
    });
    entry.ends[forking.side] = leg.ends;
  }

  get active(): number {
    return this.sessions.size;
  }

  get portsInUse(): number {
    return this.pool.pairsInUse * 2;
  }

  /** Sealed media from the other home over the overlay link, for our far-side port `port`. */
  receiveOverOverlay(port: number, datagram: Uint8Array): void {
    const relay = this.farSidePorts.get(port);
    if (relay) relay.receiveOverOverlay('b', datagram);
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

  private async anchorStream(plan: StreamPlan, sockets: MediaSocket[], ports: number[], ends: Record<Side, StreamEnd[]>): Promise<AnchoredStream> {
    const relays: { rtp?: RelayStream; rtcp?: RelayStream } = {};
    // Each side gets an RTP/RTCP pair: the phone talks to one, the far side to the other.
    const a = await this.openEnd(relays, 'a', sockets, ports, plan);
    const b = await this.openEnd(relays, 'b', sockets, ports, plan);
    const now = () => this.clock.now();
    const quality = new RtcpQuality();
    // Both streams are read for RTCP reports: with rtcp-mux they come on the RTP port (RFC 5761).
    const observe = (side: Side, packet: Uint8Array) => quality.observe(side, packet);
    for (const which of ['rtp', 'rtcp'] as const) relays[which] = new RelayStream({ a: a[which], b: b[which] }, now, observe);
    ends.a.push(a);
    ends.b.push(b);
    return { ports: { a: a.port, b: b.port }, rtp: relays.rtp!, rtcp: relays.rtcp!, quality };
  }

  /**
   * An RTP/RTCP port pair on one side of a stream, and the parties its sockets stand for: what
   * comes in reaches the stream only while that party holds the side (a forked call's other
   * branches are dropped and counted).
   */
  private async openEnd(relays: { rtp?: RelayStream; rtcp?: RelayStream }, side: Side, sockets: MediaSocket[], ports: number[], plan?: StreamPlan): Promise<StreamEnd> {
    const parties = {} as Record<'rtp' | 'rtcp', StreamSide>;
    const deliver = (which: 'rtp' | 'rtcp') => (bytes: Uint8Array, from: Endpoint) => {
      const relay = relays[which]!;
      if (relay.party(side) === parties[which]) relay.receive(side, bytes, from);
      else relay.countDropped('other-branch');
    };
    const pair = await this.openPair(deliver('rtp'), deliver('rtcp'), sockets, ports);
    for (const which of ['rtp', 'rtcp'] as const) {
      parties[which] = { send: (bytes, to) => pair.sockets[which].send(bytes, to), offered: plan?.offered[side][which] ?? NOWHERE, vouched: plan?.vouched[side] ?? [] };
    }
    return { port: pair.port, rtp: parties.rtp, rtcp: parties.rtcp, sockets: [pair.sockets.rtp, pair.sockets.rtcp] };
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
      // Bound by someone else: not ours, so not in use by us (the pool comes back to it last).
      ports.pop();
      this.pool.release(port);
    }
    throw new MediaPortsExhausted(`no free media port pair in ${this.pool.capacity}`);
  }

  /**
   * Ends the session when no stream has carried a packet for timeoutMs since the call was
   * answered. Before the answer a call may ring without media (an SDP answer in a 183 included)
   * as long as the proxy's Timer C lets it; only one quiet for unansweredMs (its INVITE lost
   * track of) is ended.
   */
  private watch(id: string, after: number): TimerHandle {
    return this.clock.setTimer(after, () => {
      const entry = this.sessions.get(id);
      if (!entry) return;
      const now = this.clock.now();
      const quietSince = Math.max(entry.answeredAt ?? entry.openedAt, ...entry.session.streams.flatMap((s) => [s.rtp.lastPacketAt, s.rtcp.lastPacketAt]));
      const limit = entry.answeredAt === undefined ? this.unansweredMs : this.timeoutMs;
      if (now - quietSince >= limit) {
        this.counters.timeouts++;
        this.close(id);
        this.onTimeout(id);
        return;
      }
      entry.timer = this.watch(id, Math.min(this.timeoutMs, limit - (now - quietSince))); // re-armed for the time left
    });
  }

  /** Whether the session's call was answered; undefined when there is no such session. */
  isAnswered(id: string): boolean | undefined {
    const entry = this.sessions.get(id);
    return entry && entry.answeredAt !== undefined;
  }

  /** The call was answered (its INVITE's 2xx, or the ACK that carries a late offer's answer): from now on the media timeout applies. */
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
