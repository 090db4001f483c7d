import { createHash } from 'node:crypto';
import type { NodeIdentity } from '../../../identity/identity.js';
import { believes, type TrustPolicy } from '../../../identity/trust.js';
import type { EphemeralKey } from '../../../link/secure/link-crypto.js';
import { bytesToHex } from '../../../runtime/hex.js';
import { OnceSet } from '../../../runtime/once-set.js';
import type { Random } from '../../../runtime/random.js';
import { type Id, idToHex } from '../../../wire/id.js';
import { decodeCbor, encodeCbor } from '../../../wire/cbor.js';
import { type MediaAnchor, type MediaSession, type StreamPlan, UNKNOWN_PARTIES } from './media-anchor.js';
import type { Side, StreamSide } from './relay-stream.js';
import { createCallKey, type MediaRole, mediaSealers, type SdpStatement, signStatement, statementSignedBy } from './media-crypto.js';
import { anchorSdp, nextSdpVersion, parseSdp, rtcpEndpoint, SdpError, type SessionDescription } from './sdp.js';
import { SipError } from '../sip-error.js';

/*
 * A call's media at one home peer (issue 16): the phone's side of each stream is side a, the
 * other home's side is side b. Offers and answers are rewritten where they cross the peer: what
 * goes to the phone names the anchor's LAN ports, what goes to the other home names its public
 * ports and carries this peer's key share (a=p2psip-key-v4: an X25519 key and a statement about
 * the SDP, signed by its enrolled identity, with that identity's certificate: media-crypto.ts),
 * from which both homes derive the keys that seal the internet leg. The other home's certificate
 * must satisfy the overlay's trust policy, so a revoked or unenrolled node gets no media. Re-offers
 * in the same call keep the ports and the keys and only update who is where; each must be signed
 * afresh by the same home, later than the last.
 */
const KEY_ATTRIBUTE = 'p2psip-key-v4';
/**
 * The attributes of homes of older versions: v1 sealed without the flags byte, v2 signed the key
 * alone (not the SDP, its destination or its time), v3 derived each stream's keys for its place
 * among the anchored streams (which a stream added mid-call, or a call taken up again, changes)
 * where v4 derives them for its m= line. Such a call is refused (488) with the reason, not
 * connected silent or unchecked.
 */
const OLDER_KEY_ATTRIBUTES = [
  ['p2psip-key-v3', 'v3'],
  ['p2psip-key-v2', 'v2'],
  ['p2psip-key', 'v1'],
] as const;
/**
 * How far another home's SDP may be signed from our clock: what changes a call (a new call, a new
 * key), and what a call's later SDP says too (a re-offer held back on the way is stale by then).
 */
const FRESH_SECONDS = 600;
/**
 * Statements remembered (for twice FRESH_SECONDS), so that none is believed twice: per signing
 * home, so a home that signs a great many fills only its own memory (and is then refused), never
 * another's.
 */
const MAX_SEEN_PER_HOME = 256;
const MAX_HOMES_SEEN = 1024;
/** Calls whose last SDP each way is remembered past their media, so a call taken up again goes on with the next o= version. */
const MAX_VERSIONED_CALLS = 1024;
/** How long a response's SDP may come again byte for byte (its 2xx resent): 64*T1. */
const RESENT_FOR_SECONDS = 32;

export interface CallMediaDeps {
  readonly anchor: MediaAnchor;
  readonly identity: NodeIdentity;
  readonly random: Random;
  /** Where this home's phones reach the anchor. */
  readonly lanHost: string;
  /** Where other homes reach it now (the server-reflexive address once STUN has told us). */
  readonly publicHost: () => string;
  /** Whose media keys are believed: the overlay's enrolled, unrevoked nodes. */
  readonly trust: TrustPolicy;
  /** Wall-clock seconds: statements carry their time, and certificates are checked at it. */
  readonly nowSeconds: () => number;
  /** The overlay link to the other home, for media its ports cannot exchange directly. */
  readonly backhaul?: MediaBackhaul;
}

/**
 * Media over the overlay link between two home peers (node/media-backhaul.ts): the way round NATs
 * that keep the media ports from reaching each other (symmetric ones, say), direct or through a
 * relay peer as the link itself goes.
 */
export interface MediaBackhaul {
  /** Makes sure there is a link to the home `nodeId` (an Attach through the overlay if there is none). */
  prepare(nodeId: Id): void;
  /**
   * Sends a sealed media datagram for the other home's port `port` over the link to it;
   * `directLost`: this is the first since a direct path to it went quiet.
   */
  send(nodeId: Id, port: number, sealed: Uint8Array, directLost: boolean): void;
  /** The host of the proven link to `nodeId`, when it goes there directly (not through a relay). */
  directHost(nodeId: Id): string | undefined;
  /** The peer is stopping: lets go of every link it holds for media, and arms no timer again. */
  stop(): void;
}

/** The other home of a call, as its believed SDP showed it. */
interface FarHome {
  readonly nodeId: Id | undefined;
  /** Its role in the call, as it signs it. */
  readonly role: MediaRole;
  /** Its identity key: every later SDP must be signed by it. */
  readonly identityKey: Uint8Array;
  /** Its X25519 key for the call: every later SDP must carry the same. */
  readonly callKey: Uint8Array;
  /** Its certificate as last sent, and when that expires (checked again when the overlay's configuration changes). */
  certificate: Uint8Array;
  expires: number;
  /** The sequence number of its latest SDP: an older one is refused. */
  sequence: number;
  /** When it signed its latest SDP that changed the call (wall seconds): a new key must not be older. */
  time: number;
}

/**
 * Another home's SDP whose statement was believed, and what it means for the call:
 * - `new`: a call we do not know (an offer, or a home that kept a call we forgot: either role);
 * - `first`: the first SDP of the other home in a call our phone began;
 * - `same`: later SDP under the call key agreed;
 * - `rekey`: the other home forgot the call and took it up again in its old role, under a new key;
 * - `restart`: it forgot the call and offers it as a new one, in a request or in the 200 to our
 *   SDP-less re-INVITE (it was the answerer): we start anew too.
 */
interface Believed {
  readonly kind: 'new' | 'first' | 'same' | 'rekey' | 'restart';
  readonly statement: SdpStatement;
  readonly certificate: Uint8Array;
  readonly expires: number;
  readonly identityKey: Uint8Array;
  readonly nodeId: Id | undefined;
}

/** A session as its last answer settled it: the offer answered, and where the offering side's party was on each anchored stream. */
interface SettledSession {
  readonly offer: NonNullable<CallState['offer']>;
  readonly side: Side;
  readonly parties: readonly { readonly rtp: Party; readonly rtcp: Party }[];
}

type Party = Pick<StreamSide, 'offered' | 'vouched'>;

interface CallState {
  readonly session: MediaSession;
  /** Which m= sections are anchored (port 0 ones are not), in order: index into session.streams. A re-offer may add some (grow). */
  readonly anchored: (number | undefined)[];
  /**
   * What each stream's keys on the internet leg are derived for, by its index in session.streams:
   * its m= line, which both homes agree on whatever streams each anchored, added or took up again.
   */
  readonly sealLabels: string[];
  /** m= lines of the session as the last answer settled it: no offer may have fewer (RFC 3264 s8). */
  agreedLines: number;
  /** A re-offer's new streams being anchored: the next waits for it (grow). */
  growing?: Promise<void>;
  readonly role: MediaRole;
  readonly ephemeral: EphemeralKey;
  /** SDPs this peer has signed in the call. */
  signed: number;
  /** The other home our phone's first offer went to (hex Node-ID), when the route knew it: only it may answer. */
  offeredTo?: string;
  /**
   * Every call key of the other home this call has sealed under (hex). Ours is kept when it
   * takes the call up again under a new key; one of its old keys again would give the old keys,
   * their nonces from 0 and an empty replay window.
   */
  readonly farKeys: Set<string>;
  /** The other home, once its keys are agreed (the internet leg is sealed from then on). */
  far?: FarHome;
  /**
   * The latest offer and whose party it described: its answer settles rtcp-mux for both sides.
   * `before`: a re-offer keeps what the session was until it is answered, to go back to if it fails.
   */
  offer?: { readonly sdp: SessionDescription; readonly side: Side; readonly source: string; answered?: boolean; readonly before?: SettledSession };
  /** Per m= section, whether rtcp-mux is in use as the last answer settled it (none yet: undefined). */
  muxed?: readonly boolean[];
  /** The latest offer that went to phones on `to` (a forked INVITE's branches each get a copy naming their own ports). */
  toPhones?: { readonly sdp: SessionDescription; readonly to: 'a' | 'b' };
  /**
   * The other home's latest SDP in a response, and what our phone was given for it: a 2xx sent
   * again (its first lost on the way to our phone) carries the very same bytes, and must reach the
   * phone with its SDP, though a statement is believed only once.
   */
  lastResponse?: { readonly bytes: Uint8Array; readonly forPhone: string; readonly kind: 'offer' | 'answer'; readonly until: number };
}

export class CallMedia {
  private readonly calls = new Map<string, CallState>();
  private closed = false;
  private readonly pending = new Map<string, Promise<CallState>>();
  /** Signatures of statements believed lately, per signing home (most recently heard last). */
  private readonly statementsSeen = new Map<string, OnceSet>();
  /** Per call, the o= version and a digest of the rest of the last SDP sent to each side (see versioned). */
  private readonly sentVersions = new Map<string, Partial<Record<Side, { version: bigint; digest: string }>>>();

  constructor(private readonly deps: CallMediaDeps) {
    deps.anchor.onTimeout = (callId) => this.calls.delete(callId); // silent for --media-timeout: its ports are gone
  }

  get anchor(): MediaAnchor {
    return this.deps.anchor;
  }

  /** Calls anchored, counting those whose ports are still opening (for --max-calls). */
  get active(): number {
    return this.calls.size + this.pending.size;
  }

  has(callId: string): boolean {
    return this.calls.has(callId);
  }

  /** Whether the call's latest offer still waits for its answer: SDP in a PRACK is that answer, else a new offer (RFC 3262 s5). */
  awaitsAnswer(callId: string): boolean {
    const offer = this.calls.get(callId)?.offer;
    return offer !== undefined && offer.answered !== true;
  }

  /** The other home of a call (its Node-ID), once the call's keys are agreed. */
  farHomeOf(callId: string): Id | undefined {
    return this.calls.get(callId)?.far?.nodeId;
  }

  /**
   * This home's phone offers (INVITE, re-INVITE, or a 200 answering an INVITE without SDP): the
   * SDP to send on to the other home, `toHome` (hex Node-ID) when it is known here. `branch`: the
   * phone is one of several the call forked to, offering in its early dialog: it is heard now.
   */
  async offerFromPhone(callId: string, sdp: Uint8Array, phoneSource: string, toHome?: string, branch?: string): Promise<string> {
    const offer = parseSdp(sdp);
    const call = this.calls.get(callId) ?? (await this.startOnce(callId, offer, 'offerer'));
    if (!call.far && toHome !== undefined) call.offeredTo = toHome;
    if (branch !== undefined) this.deps.anchor.useBranch(callId, branch);
    await this.grow(call, offer);
    this.offered(call, offer, 'a', phoneSource);
    return this.towardsHome(call, offer, toHome);
  }

  /**
   * The other home (`fromHome`, hex Node-ID, when the route knows it) answers our phone's offer:
   * the SDP for the phone. `inRequest`: in an ACK or PRACK (a late offer's answer), not a response.
   */
  answerFromHome(callId: string, sdp: Uint8Array, homeSource: string, inRequest = false, fromHome?: string): string {
    const call = this.expect(callId);
    const again = inRequest ? undefined : this.sentAgain(call, sdp, 'answer');
    if (again !== undefined) return again;
    const answer = parseSdp(sdp);
    const believed = this.believe(answer, callId, call, { inRequest, fromHome });
    if (believed.kind === 'new' || believed.kind === 'restart') throw new SdpError('an answer that is not from the home this call was offered to');
    this.acceptShare(call, believed);
    this.answered(call, answer, 'b', homeSource);
    const text = this.towardsPhone(call, answer);
    return inRequest ? text : this.forPhone(call, sdp, text, 'answer');
  }

  /**
   * Another home (`fromHome`, hex Node-ID, when the route knows it) offers to our phone: the SDP
   * for the phone. `inRequest`: it came in a request (an INVITE that may begin a call), not in a
   * response to ours; such an offer must name this home. `branch`: it goes to one of several
   * phones the call forked to, in that phone's early dialog (an UPDATE): it names that phone's ports.
   */
  async offerFromHome(callId: string, sdp: Uint8Array, homeSource: string, inRequest = true, fromHome?: string, branch?: string): Promise<string> {
    const offer = parseSdp(sdp);
    let known = this.calls.get(callId) ?? (await this.pending.get(callId));
    const again = !inRequest && known ? this.sentAgain(known, sdp, 'offer') : undefined;
    if (again !== undefined) return again;
    // Checked before any port opens: a stranger's offer costs no sockets.
    const believed = this.believe(offer, callId, known, { inRequest, fromHome });
    if (believed.kind === 'restart') {
      this.close(callId); // checked as a new call already: only now does the old media go
      known = undefined;
    }
    const call = known ?? (await this.startOnce(callId, offer, theirRole(believed.statement.role)));
    try {
      this.acceptShare(call, believed);
      if (known) await this.grow(call, offer);
      this.offered(call, offer, 'b', homeSource);
      call.toPhones = { sdp: withoutShare(offer), to: 'a' };
      const text = this.towardsPhone(call, offer, branch);
      return inRequest ? text : this.forPhone(call, sdp, text, 'offer');
    } catch (error) {
      if (!known) this.close(callId); // a refused offer holds no ports
      throw error;
    }
  }

  /** Our phone answers the other home's offer (from `branch`, when the INVITE forked): the SDP to send back to it. */
  answerFromPhone(callId: string, sdp: Uint8Array, phoneSource: string, branch?: string): string {
    const call = this.expect(callId);
    const answer = this.matching(call, parseSdp(sdp));
    if (branch !== undefined) this.deps.anchor.useBranch(callId, branch);
    this.answered(call, answer, 'a', phoneSource);
    return this.towardsHome(call, answer);
  }

  /**
   * The overlay's configuration changed (a revocation): calls with a home whose certificate is no
   * longer believed lose their media at once. Returns those calls' IDs.
   */
  revalidate(): string[] {
    const ended: string[] = [];
    for (const [callId, call] of [...this.calls]) {
      // Revoked, not merely expired meanwhile (a renewed one comes with the home's next SDP).
      if (!call.far || believes(this.deps.trust, call.far.certificate, Math.min(this.deps.nowSeconds(), call.far.expires))) continue;
      this.close(callId);
      ended.push(callId);
    }
    return ended;
  }

  /**
   * A call between two phones of this home (`--media-anchor always`): the caller is side a, the
   * callee side b; each is told the anchor's LAN ports of the other side. Nothing is sealed.
   * `branch`: the early dialog of one of the callee's phones the call forked to (an UPDATE from
   * it, which makes it the one heard, or to it, which names its ports).
   */
  async offerLocal(callId: string, sdp: Uint8Array, side: 'a' | 'b', phoneSource: string, branch?: string): Promise<string> {
    const offer = parseSdp(sdp);
    const call = this.calls.get(callId) ?? (await this.startOnce(callId, offer, 'offerer'));
    if (branch !== undefined && side === 'b') this.deps.anchor.useBranch(callId, branch);
    await this.grow(call, offer);
    this.offered(call, offer, side, phoneSource);
    const to = side === 'a' ? 'b' : 'a';
    call.toPhones = { sdp: offer, to };
    return this.versioned(callId, to, anchorSdp(offer, { address: this.deps.lanHost, ports: this.portsHeard(call, to, branch), keepHold: answeredOnce(call) }));
  }

  answerLocal(callId: string, sdp: Uint8Array, side: 'a' | 'b', phoneSource: string, branch?: string): string {
    const call = this.expect(callId);
    const answer = this.matching(call, parseSdp(sdp));
    if (branch !== undefined) this.deps.anchor.useBranch(callId, branch);
    this.answered(call, answer, side, phoneSource);
    const to = side === 'a' ? 'b' : 'a';
    return this.versioned(callId, to, anchorSdp(answer, { address: this.deps.lanHost, ports: this.portsHeard(call, to), keepHold: answeredOnce(call) }));
  }

  /**
   * The offer for one more branch of an INVITE forked to several phones: the one the phones were
   * to get, naming ports of this branch's own. Undefined when the call's offer did not go to
   * phones, or no ports are left: the branch then gets the first branch's offer and ports.
   */
  async branchOffer(callId: string, branch: string): Promise<string | undefined> {
    const call = this.calls.get(callId);
    const offer = call?.toPhones;
    if (!call || !offer) return undefined;
    const ports = await this.deps.anchor.openBranch(callId, branch, offer.to);
    if (!ports || this.calls.get(callId) !== call) return undefined;
    return anchorSdp(offer.sdp, { address: this.deps.lanHost, ports: call.anchored.map((index) => (index === undefined ? undefined : ports[index])) });
  }

  /** The call was answered from `branch`: it keeps its ports, and the other branches' go back. */
  branchWon(callId: string, branch: string): void {
    this.deps.anchor.keepBranch(callId, branch);
  }

  /** `branch` ended without answering: its ports go back. */
  branchEnded(callId: string, branch: string): void {
    this.deps.anchor.closeBranch(callId, branch);
  }

  /** The call ended (BYE, CANCEL, a failure): its ports go back, those still opening once they are open (review M7). */
  close(callId: string): void {
    this.pending.get(callId)?.then(
      () => this.close(callId),
      () => {},
    );
    if (!this.calls.delete(callId)) return;
    this.deps.anchor.close(callId);
  }

  /** The peer is stopping: every call's ports go back, and the links between homes are let go. */
  closeAll(): void {
    this.closed = true;
    for (const callId of [...this.calls.keys()]) this.close(callId);
    for (const session of this.deps.anchor.sessionsNow()) this.deps.anchor.close(session.id);
    this.deps.backhaul?.stop();
  }

  /** One start per call: two offers for a new call at once (a forked late offer) share its ports. */
  private startOnce(callId: string, offer: SessionDescription, role: MediaRole): Promise<CallState> {
    const running = this.pending.get(callId);
    if (running) return running;
    const started = this.start(callId, offer, role).finally(() => this.pending.delete(callId));
    this.pending.set(callId, started);
    return started;
  }

  private async start(callId: string, offer: SessionDescription, role: MediaRole): Promise<CallState> {
    const anchored: (number | undefined)[] = [];
    const plans: StreamPlan[] = [];
    for (const stream of offer.streams) {
      if (stream.port === 0) {
        anchored.push(undefined);
        continue;
      }
      anchored.push(plans.length);
      plans.push(UNKNOWN_PARTIES);
    }
    const session = await this.deps.anchor.open(callId, plans);
    if (this.closed) {
      // The peer stopped while the ports were opening.
      this.deps.anchor.close(callId);
      throw new SipError(503, 'Service Unavailable (the peer is stopping)');
    }
    const sealLabels: string[] = [];
    anchored.forEach((index, line) => index !== undefined && (sealLabels[index] = `m${line}`));
    const call: CallState = { session, anchored, sealLabels, agreedLines: offer.streams.length, role, ephemeral: createCallKey(this.deps.random), signed: 0, farKeys: new Set() };
    this.calls.set(callId, call);
    return call;
  }

  /**
   * A re-offer's sections the call has no ports for (m= lines added at the end, RFC 3264 s8.1,
   * or one disabled until now) are anchored now, and sealed like the rest once keys are agreed.
   * When they cannot be (no ports left, or the call still rings on several phones) they go on
   * disabled (port 0), and the call goes on with the streams it had. One re-offer's ports open at
   * a time per call: two at once would each open the same lines. Throws 491 when the call's media
   * ended meanwhile (a BYE, its timeout): the phone offers again, and that offer takes it up afresh.
   */
  private async grow(call: CallState, offer: SessionDescription): Promise<void> {
    while (call.growing) await call.growing;
    // Fewer lines than the call knows: matching() decides whether the session ever had so few.
    while (call.anchored.length < offer.streams.length) call.anchored.push(undefined);
    const lines = offer.streams.flatMap((stream, line) => (stream.port !== 0 && call.anchored[line] === undefined ? [line] : []));
    if (lines.length > 0) {
      const adding = this.addLines(call, lines);
      call.growing = adding;
      try {
        await adding;
      } finally {
        if (call.growing === adding) call.growing = undefined;
      }
    }
    if (this.calls.get(call.session.id) !== call) throw new SipError(491, "Request Pending (the call's media ended meanwhile: offer again)");
  }

  /** Opens ports for the m= lines `lines` of a live call, and seals them once keys are agreed. */
  private async addLines(call: CallState, lines: readonly number[]): Promise<void> {
    const added = await this.deps.anchor.addStreams(call.session.id, lines.length);
    if (!added || this.calls.get(call.session.id) !== call) return;
    lines.forEach((line, k) => {
      const index = call.session.streams.indexOf(added[k]);
      call.anchored[line] = index;
      call.sealLabels[index] = `m${line}`;
      if (call.far) this.sealStream(call, index, call.far.callKey, call.far.nodeId);
    });
  }

  private expect(callId: string): CallState {
    const call = this.calls.get(callId);
    if (!call) throw new SdpError('an answer for a call with no offer');
    return call;
  }

  /**
   * The description, if it has no fewer media lines than the session as last agreed and no more
   * than the call knows (an offer's new ones were added by grow); an answer, as many as the offer
   * it answers. Else SdpError: 488, or the answer goes on without SDP.
   */
  private matching(call: CallState, sdp: SessionDescription, answering?: SessionDescription): SessionDescription {
    const lines = sdp.streams.length;
    if (answering && lines !== answering.streams.length) throw new SdpError(`${lines} media lines where the offer had ${answering.streams.length}`);
    if (lines < call.agreedLines || lines > call.anchored.length) throw new SdpError(`${lines} media lines where the session has ${call.agreedLines}`);
    return sdp;
  }

  /**
   * An offer from `side`'s party: who is where on that side. Before any answer, RTCP goes to its
   * RTP port wherever it offered rtcp-mux (an offerer of mux takes RTCP there: RFC 5761 s5.1.1);
   * a re-offer changes nothing of what an answer settled until its own answer comes (it may fail).
   */
  private offered(call: CallState, offer: SessionDescription, side: Side, source: string): void {
    // An offer after one still unanswered (its failure not seen here) goes back to the same settled session.
    const partyOf = (party: StreamSide): Party => ({ offered: party.offered, vouched: party.vouched });
    const settled = call.offer?.answered ? call.offer : undefined;
    const pending = call.offer?.before?.side === side ? call.offer.before : undefined;
    const before = settled ? { offer: settled, side, parties: call.session.streams.map((s) => ({ rtp: partyOf(s.rtp.party(side)), rtcp: partyOf(s.rtcp.party(side)) })) } : pending;
    this.setParties(call, offer, side, source, offer.streams.map((s, i) => call.muxed?.[i] ?? s.rtcpMux));
    call.offer = { sdp: offer, side, source, ...(before ? { before } : {}) };
  }

  /**
   * The call's latest offer failed (its re-INVITE or UPDATE got no 2xx): the session goes on as
   * the last answer left it (RFC 3264 s8), so the offering party is again where that answer's
   * session had it, not where the failed offer said (review M5: a phone on hold that had moved
   * its port would hear nothing until it sent again). Streams the offer added keep their ports.
   */
  offerFailed(callId: string): void {
    const call = this.calls.get(callId);
    const before = call?.offer?.answered ? undefined : call?.offer?.before;
    if (!call || !before) return;
    before.parties.forEach((party, i) => {
      const stream = call.session.streams[i];
      stream.rtp.setParty(before.side, party.rtp.offered, party.rtp.vouched);
      stream.rtcp.setParty(before.side, party.rtcp.offered, party.rtcp.vouched);
    });
    call.offer = before.offer;
  }

  /**
   * An answer from `side`'s party. It settles rtcp-mux, which is in use only where offer and
   * answer both say so (RFC 5761 s5.1.1): a phone that declines a mux offer has its RTCP, and the
   * offerer's, sent to the RTCP ports, on every leg of the call alike.
   */
  private answered(call: CallState, answer: SessionDescription, side: Side, source: string): void {
    const offer = call.offer;
    this.matching(call, answer, offer?.sdp);
    call.agreedLines = answer.streams.length;
    const muxed = answer.streams.map((s, i) => s.rtcpMux && offer?.sdp.streams[i]?.rtcpMux === true);
    call.muxed = muxed;
    if (offer) offer.answered = true;
    if (offer && offer.side !== side) this.setParties(call, offer.sdp, offer.side, offer.source, muxed);
    this.setParties(call, answer, side, source, muxed);
  }

  /**
   * Who is where on one side, from a description of that side's party (`muxed`: per m= section,
   * RTCP on the RTP port). Between the homes RTCP keeps a port of its own whatever the phones
   * agreed: both anchors always have one, and each port opens only its own channel's datagrams.
   */
  private setParties(call: CallState, sdp: SessionDescription, side: Side, source: string, muxed: readonly boolean[]): void {
    this.matching(call, sdp);
    const otherHome = side === 'b' && call.far !== undefined;
    sdp.streams.forEach((stream, i) => {
      const index = call.anchored[i];
      if (index === undefined) return;
      const anchored = call.session.streams[index];
      const vouched = [...new Set([stream.rtp.address, source])];
      anchored.rtp.setParty(side, stream.rtp, vouched);
      anchored.rtcp.setParty(side, rtcpEndpoint(stream, muxed[i] === true && !otherHome), vouched);
      // SRTCP's report blocks are ciphertext: nothing to read in them.
      anchored.quality.readable = !stream.secure;
    });
  }

  /**
   * Another home's SDP, believed (or SdpError, 488): its certificate passes the trust policy (an
   * enrolled, unrevoked home); it signed this very SDP for this call, for this home (or, in a
   * response, for none it could name), and is the home the route says it came from. Every
   * statement must be fresh and never seen before; later SDP under the agreed key must also come
   * later than the last.
   */
  private believe(sdp: SessionDescription, callId: string, call: CallState | undefined, context: { inRequest: boolean; fromHome?: string | undefined }): Believed {
    const share = readShare(sdp, callId);
    if (!share) {
      const older = OLDER_KEY_ATTRIBUTES.find(([name]) => sdp.lines.some((l) => l.startsWith(`a=${name}:`)));
      if (older) throw new SdpError(`the other home seals media under an older version (p2psip-key ${older[1]}): update its p2psip`);
      throw new SdpError('the other home sent no media key, or more than one');
    }
    const now = this.deps.nowSeconds();
    let certificate;
    try {
      certificate = this.deps.trust.accept(share.certificate, now);
      if (certificate.claims.role !== undefined) throw new Error(`a ${certificate.claims.role} certificate is no home`);
    } catch (error) {
      throw new SdpError(`the other home's certificate is not believed: ${(error as Error).message}`);
    }
    const identityKey = certificate.claims.publicKey;
    const nodeId = certificate.claims.nodeIds[0];
    const { statement } = share;
    if (!statementSignedBy(statement, share.signature, identityKey)) throw new SdpError("the other home's SDP is not signed by it");
    if (statement.toHome === '' ? context.inRequest : statement.toHome !== idToHex(this.deps.identity.nodeId)) throw new SdpError('SDP signed for another home, or for none');
    if (context.fromHome !== undefined && (nodeId === undefined || idToHex(nodeId) !== context.fromHome)) throw new SdpError('SDP signed by another home than the one it came from');
    const kind = this.meaning(statement, identityKey, nodeId, call);
    if (Math.abs(statement.time - now) > FRESH_SECONDS) throw new SdpError("SDP signed too long ago or in the future: check both homes' clocks");
    this.firstSight(identityKey, share.signature, now);
    return { kind, statement, certificate: share.certificate, expires: certificate.claims.expires, identityKey, nodeId };
  }

  /** What a believed statement means for the call (see Believed); SdpError when it fits none. */
  private meaning(statement: SdpStatement, identityKey: Uint8Array, nodeId: Id | undefined, call: CallState | undefined): Believed['kind'] {
    if (!call) return 'new';
    const far = call.far;
    if (!far) {
      // Both homes forgot the call and both phones offered it afresh at once (RFC 3261 s14.1 glare):
      // each offer is answered 491, its request's failure lets its state go, and the phones retry.
      if (statement.role === call.role) throw new SipError(491, 'Request Pending (both homes offered this call at once)');
      // In a request too (the ACK of a late offer, an UPDATE while ringing): the home we offered to, no other.
      if (call.offeredTo !== undefined && (nodeId === undefined || idToHex(nodeId) !== call.offeredTo)) throw new SdpError('SDP from another home than the one this call was offered to');
      return 'first';
    }
    // Anyone who saw the call's SDP could otherwise send it again, or another.
    if (!sameBytes(identityKey, far.identityKey)) throw new SdpError('SDP for this call from another party than the home it was agreed with');
    if (sameBytes(statement.publicKey, far.callKey)) {
      if (statement.role !== far.role) throw new SdpError('SDP for this call in another role than its home plays');
      if (statement.sequence <= far.sequence) throw new SdpError('an earlier SDP of this call, sent again');
      return 'same';
    }
    if (statement.time < far.time) throw new SdpError('SDP of this call under a key older than the one agreed');
    if (call.farKeys.has(bytesToHex(statement.publicKey))) throw new SdpError('SDP of this call under a key it had before');
    if (statement.role === far.role) return 'rekey';
    // In a request (its re-INVITE) or in the 200 to an SDP-less re-INVITE of ours (its phone's offer).
    if (statement.role === 'offerer') return 'restart';
    throw new SdpError('SDP for this call under another key, in another role');
  }

  /** Each statement believed once: its signature is remembered, under its signer's, while it would still be fresh. */
  private firstSight(identityKey: Uint8Array, signature: Uint8Array, now: number): void {
    const home = bytesToHex(identityKey);
    let seen = this.statementsSeen.get(home);
    if (seen) this.statementsSeen.delete(home); // set again below: the homes heard from last stay longest
    else {
      if (this.statementsSeen.size >= MAX_HOMES_SEEN) this.statementsSeen.delete(this.statementsSeen.keys().next().value as string);
      seen = new OnceSet(MAX_SEEN_PER_HOME);
    }
    this.statementsSeen.set(home, seen);
    if (!seen.firstUse(bytesToHex(signature), now + 2 * FRESH_SECONDS, now)) throw new SdpError('SDP already received, sent again, or too many from that home');
  }

  /**
   * The other home's believed SDP: under a key not yet agreed (its first, or after it took the
   * call up again) the internet leg is sealed afresh; later ones move its sequence on.
   */
  private acceptShare(call: CallState, theirs: Believed): void {
    call.lastResponse = undefined; // newer SDP is believed: none older is taken again
    const far = call.far;
    if (theirs.kind === 'same' && far) {
      far.sequence = theirs.statement.sequence;
      far.certificate = theirs.certificate;
      far.expires = theirs.expires;
      return;
    }
    const theirKey = theirs.statement.publicKey;
    const farHome = theirs.nodeId;
    for (let i = 0; i < call.session.streams.length; i++) this.sealStream(call, i, theirKey, farHome);
    call.far = { nodeId: farHome, role: theirs.statement.role, identityKey: theirs.identityKey, callKey: theirKey, certificate: theirs.certificate, expires: theirs.expires, sequence: theirs.statement.sequence, time: theirs.statement.time };
    call.farKeys.add(bytesToHex(theirKey));
    if (farHome !== undefined) this.deps.backhaul?.prepare(farHome);
  }

  /**
   * RFC 3264 s8: what goes to `to` keeps its o= version while it is the same SDP, and the version
   * goes up by one when anything else changed, the anchor's ports too (a call taken up again
   * after its media timed out), though the phone's SDP and version did not (review M9).
   */
  private versioned(callId: string, to: Side, text: string): string {
    const origin = /^o=(\S+ \S+ )(\d+)( .*)$/m.exec(text);
    if (!origin) return text;
    const digest = createHash('sha256').update(text.replace(origin[0], `o=${origin[1]}${origin[3]}`)).digest('base64');
    let sent = this.sentVersions.get(callId);
    if (sent) this.sentVersions.delete(callId); // set again below: the calls heard from last stay longest
    else if (this.sentVersions.size >= MAX_VERSIONED_CALLS) this.sentVersions.delete(this.sentVersions.keys().next().value as string);
    sent ??= {};
    this.sentVersions.set(callId, sent);
    const last = sent[to];
    const version = last === undefined ? BigInt(origin[2]) : last.digest === digest ? last.version : nextSdpVersion(last.version);
    sent[to] = { version, digest };
    return version === BigInt(origin[2]) ? text : text.replace(origin[0], `o=${origin[1]}${version}${origin[3]}`);
  }

  /** Stream `index`'s internet leg: sealed under keys of our call key and the far home's (`theirKey`), and carried over the overlay link to it when its ports cannot meet. */
  private sealStream(call: CallState, index: number, theirKey: Uint8Array, farHome: Id | undefined): void {
    const [offererKey, answererKey] = call.role === 'offerer' ? [call.ephemeral.publicKey, theirKey] : [theirKey, call.ephemeral.publicKey];
    const stream = call.session.streams[index];
    for (const channel of ['rtp', 'rtcp'] as const) {
      const { send, receive } = mediaSealers(call.ephemeral, call.role, offererKey, answererKey, call.session.id, `${call.sealLabels[index]}/${channel}`);
      stream[channel].seal('b', { seal: (packet, flags) => send.seal(packet, flags), open: (datagram) => receive.open(datagram) });
      const backhaul = this.deps.backhaul;
      if (backhaul && farHome !== undefined) {
        stream[channel].setBackhaul('b', { send: (sealed, to, directLost) => backhaul.send(farHome, to.port, sealed, directLost), directHost: () => backhaul.directHost(farHome) });
      }
    }
  }

  /** The SDP for the other home (`toHome`, hex, when known; the call's far home once agreed), signed. */
  private towardsHome(call: CallState, sdp: SessionDescription, toHome?: string): string {
    const text = this.versioned(call.session.id, 'b', anchorSdp(withoutShare(sdp), { address: this.deps.publicHost(), ports: portsOn(call, 'b'), keepHold: answeredOnce(call) }));
    const lines = text.split('\r\n');
    if (lines.at(-1) === '') lines.pop();
    const farHome = call.far?.nodeId;
    const statement: SdpStatement = {
      callId: call.session.id,
      role: call.role,
      publicKey: call.ephemeral.publicKey,
      toHome: farHome !== undefined ? idToHex(farHome) : (toHome ?? ''),
      sequence: ++call.signed,
      time: this.deps.nowSeconds(),
      body: lines.join('\r\n'),
    };
    const value = [statement.publicKey, this.deps.identity.certificate.bytes, statement.toHome, statement.sequence, statement.time, statement.role, signStatement(this.deps.identity, statement)];
    const firstMedia = lines.findIndex((l) => l.startsWith('m='));
    lines.splice(firstMedia < 0 ? lines.length : firstMedia, 0, `a=${KEY_ATTRIBUTE}:${Buffer.from(encodeCbor(value)).toString('base64url')}`);
    return `${lines.join('\r\n')}\r\n`;
  }

  /**
   * What our phone is given for the other home's SDP in a response, kept for that response sent
   * again: a 2xx is resent for 64*T1 (RFC 3261 s13.3.1.4), and only until newer SDP is believed.
   */
  private forPhone(call: CallState, bytes: Uint8Array, text: string, kind: 'offer' | 'answer'): string {
    call.lastResponse = { bytes: Uint8Array.from(bytes), forPhone: text, kind, until: this.deps.nowSeconds() + RESENT_FOR_SECONDS };
    return text;
  }

  /** What our phone was given for this very SDP of the other home, when a response carries it again in time. */
  private sentAgain(call: CallState, bytes: Uint8Array, kind: 'offer' | 'answer'): string | undefined {
    const last = call.lastResponse;
    return last && last.kind === kind && this.deps.nowSeconds() <= last.until && sameBytes(last.bytes, bytes) ? last.forPhone : undefined;
  }

  private towardsPhone(call: CallState, sdp: SessionDescription, branch?: string): string {
    return this.versioned(call.session.id, 'a', anchorSdp(withoutShare(sdp), { address: this.deps.lanHost, ports: this.portsHeard(call, 'a', branch), keepHold: answeredOnce(call) }));
  }

  /**
   * The anchor's RTP port on a phones' side for each m= section: the ports of the phone heard
   * there now, or of `branch`'s phone, which in a forked call still ringing may be a branch's own
   * (an UPDATE in a phone's early dialog must name that phone's ports: review M6).
   */
  private portsHeard(call: CallState, side: 'a' | 'b', branch?: string): (number | undefined)[] {
    const heard = this.deps.anchor.portsHeard(call.session.id, side, branch);
    return call.anchored.map((index) => (index === undefined ? undefined : heard[index]));
  }
}

/** The anchor's RTP port on one side for each m= section (none for a section that is not anchored). */
function portsOn(call: CallState, side: 'a' | 'b'): (number | undefined)[] {
  return call.anchored.map((index) => (index === undefined ? undefined : call.session.streams[index].ports[side]));
}

/** Whether an answer has settled the call once (a c=0.0.0.0 after that is a hold: AnchorPlan.keepHold). */
function answeredOnce(call: CallState): boolean {
  return call.muxed !== undefined;
}

/** The other role in a call. */
function theirRole(role: MediaRole): MediaRole {
  return role === 'offerer' ? 'answerer' : 'offerer';
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/**
 * a=p2psip-key-v4:base64url(CBOR [x25519-key, certificate, to-home, sequence, time, role, signature]),
 * exactly one, read as the statement its sender made about the rest of the SDP.
 */
function readShare(sdp: SessionDescription, callId: string): { statement: SdpStatement; certificate: Uint8Array; signature: Uint8Array } | undefined {
  const prefix = `a=${KEY_ATTRIBUTE}:`;
  const keyLines = sdp.lines.filter((l) => l.startsWith(prefix));
  if (keyLines.length !== 1) return undefined;
  try {
    const value = decodeCbor(Buffer.from(keyLines[0].slice(prefix.length), 'base64url'), 8192, '$.mediaKey');
    if (!Array.isArray(value) || value.length !== 7) return undefined;
    const [publicKey, certificate, toHome, sequence, time, role, signature] = value as unknown[];
    if (!(publicKey instanceof Uint8Array) || !(certificate instanceof Uint8Array) || !(signature instanceof Uint8Array)) return undefined;
    if (typeof toHome !== 'string' || !Number.isSafeInteger(sequence) || !Number.isSafeInteger(time) || (role !== 'offerer' && role !== 'answerer')) return undefined;
    const body = sdp.lines.filter((l) => !l.startsWith(prefix)).join('\r\n');
    return { statement: { callId, role, publicKey, toHome, sequence: sequence as number, time: time as number, body }, certificate, signature };
  } catch {
    return undefined;
  }
}

/** The description without any key share, of any version (a phone never sees one; ours replaces the other home's). */
function withoutShare(sdp: SessionDescription): SessionDescription {
  return { ...sdp, lines: sdp.lines.filter((l) => !l.startsWith('a=p2psip-key')) };
}
