import type { NodeIdentity } from '../../../identity/identity.js';
import type { TrustPolicy } from '../../../identity/trust.js';
import type { EphemeralKey } from '../../../link/secure/link-crypto.js';
import type { Random } from '../../../runtime/random.js';
import type { Id } from '../../../wire/id.js';
import { decodeCbor, encodeCbor } from '../../../wire/cbor.js';
import type { MediaAnchor, MediaSession, StreamPlan } from './media-anchor.js';
import type { Side } from './relay-stream.js';
import { createKeyShare, type MediaKeyShare, type MediaRole, mediaSealers, shareIsFrom } from './media-crypto.js';
import { anchorSdp, type Endpoint, parseSdp, rtcpEndpoint, SdpError, type SessionDescription } from './sdp.js';
import { SipError } from '../sip-error.js';

/*
 * A call's media at one home peer (issue 16): the phone's side of each stream is side a, the
 * other home's side is side b. Offers and answers are rewritten where they cross the peer: what
 * goes to the phone names the anchor's LAN ports, what goes to the other home names its public
 * ports and carries this peer's key share (a=p2psip-key-v2: an X25519 key, signed by its enrolled
 * identity, with that identity's certificate), from which both homes derive the keys that seal
 * the internet leg. The other home's certificate must satisfy the overlay's trust policy, so a
 * revoked or unenrolled node gets no media. Re-offers in the same call keep the ports and the
 * keys and only update who is where.
 */
const KEY_ATTRIBUTE = 'p2psip-key-v2';
/**
 * The attribute of homes that seal under media keys v1 (no flags byte): their datagrams and ours
 * would not open at the other end, so such a call is refused (488) with the reason, not connected
 * silent.
 */
const V1_KEY_ATTRIBUTE = 'p2psip-key';
const NOWHERE: Endpoint = { address: '0.0.0.0', port: 0 };

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

interface CallState {
  readonly session: MediaSession;
  /** Which m= sections are anchored (port 0 ones are not), in order: index into session.streams. */
  readonly anchored: readonly (number | undefined)[];
  readonly role: MediaRole;
  readonly own: { share: MediaKeyShare; ephemeral: EphemeralKey };
  /** This peer's certificate, sent with its share. */
  readonly certificate: Uint8Array;
  sealed: boolean;
  /** The other home's Node-ID, once its certificate was believed. */
  farHome?: Id;
  /** The other home's X25519 share for this call: its later SDP must carry the same. */
  theirKey?: Uint8Array;
  /** The latest offer and whose party it described: its answer settles rtcp-mux for both sides. */
  offer?: { readonly sdp: SessionDescription; readonly side: Side; readonly source: string };
  /** Per m= section, whether rtcp-mux is in use as the last answer settled it (none yet: undefined). */
  muxed?: readonly boolean[];
  /** The latest offer that went to phones on `to` (a forked INVITE's branches each get a copy naming their own ports). */
  toPhones?: { readonly sdp: SessionDescription; readonly to: 'a' | 'b' };
}

export class CallMedia {
  private readonly calls = new Map<string, CallState>();
  private closed = false;
  private readonly pending = new Map<string, Promise<CallState>>();

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

  /** The other home of a call (its Node-ID), once the call's keys are agreed. */
  farHomeOf(callId: string): Id | undefined {
    return this.calls.get(callId)?.farHome;
  }

  /** This home's phone offers (INVITE, re-INVITE): the SDP to send on to the other home. */
  async offerFromPhone(callId: string, sdp: Uint8Array, phoneSource: string): Promise<string> {
    const offer = parseSdp(sdp);
    const call = this.calls.get(callId) ?? (await this.startOnce(callId, offer, 'offerer'));
    this.offered(call, offer, 'a', phoneSource);
    return this.towardsHome(call, offer);
  }

  /** The other home answers our phone's offer: the SDP for the phone. */
  answerFromHome(callId: string, sdp: Uint8Array, homeSource: string): string {
    const call = this.expect(callId);
    const answer = parseSdp(sdp);
    this.acceptShare(call, answer, callId);
    this.answered(call, answer, 'b', homeSource);
    this.deps.anchor.answered(callId);
    return this.towardsPhone(call, answer);
  }

  /** Another home offers to our phone: the SDP for the phone. */
  async offerFromHome(callId: string, sdp: Uint8Array, homeSource: string): Promise<string> {
    const offer = parseSdp(sdp);
    const known = this.calls.get(callId) ?? (await this.pending.get(callId));
    // A new call's key share is checked before any port opens: a stranger's offer costs no sockets.
    if (!known) this.believedShare(offer, callId, 'offerer');
    const call = known ?? (await this.startOnce(callId, offer, 'answerer'));
    try {
      this.acceptShare(call, offer, callId);
      this.offered(call, offer, 'b', homeSource);
      call.toPhones = { sdp: withoutShare(offer), to: 'a' };
      return this.towardsPhone(call, offer);
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
    this.deps.anchor.answered(callId);
    return this.towardsHome(call, answer);
  }

  /**
   * A call between two phones of this home (`--media-anchor always`): the caller is side a, the
   * callee side b; each is told the anchor's LAN ports of the other side. Nothing is sealed.
   */
  async offerLocal(callId: string, sdp: Uint8Array, side: 'a' | 'b', phoneSource: string): Promise<string> {
    const offer = parseSdp(sdp);
    const call = this.calls.get(callId) ?? (await this.startOnce(callId, offer, 'offerer'));
    this.offered(call, offer, side, phoneSource);
    call.toPhones = { sdp: offer, to: side === 'a' ? 'b' : 'a' };
    return anchorSdp(offer, { address: this.deps.lanHost, ports: this.portsHeard(call, side === 'a' ? 'b' : 'a') });
  }

  answerLocal(callId: string, sdp: Uint8Array, side: 'a' | 'b', phoneSource: string, branch?: string): string {
    const call = this.expect(callId);
    const answer = this.matching(call, parseSdp(sdp));
    if (branch !== undefined) this.deps.anchor.useBranch(callId, branch);
    this.answered(call, answer, side, phoneSource);
    this.deps.anchor.answered(callId);
    return anchorSdp(answer, { address: this.deps.lanHost, ports: this.portsHeard(call, side === 'a' ? 'b' : 'a') });
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

  /** The call ended (BYE, CANCEL, a failure): its ports go back. */
  close(callId: string): void {
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
      plans.push({ offered: { a: { rtp: NOWHERE, rtcp: NOWHERE }, b: { rtp: NOWHERE, rtcp: NOWHERE } }, vouched: { a: [], b: [] } });
    }
    const session = await this.deps.anchor.open(callId, plans);
    if (this.closed) {
      // The peer stopped while the ports were opening.
      this.deps.anchor.close(callId);
      throw new SipError(503, 'Service Unavailable (the peer is stopping)');
    }
    const call: CallState = { session, anchored, role, own: createKeyShare(this.deps.identity, callId, role, this.deps.random), certificate: this.deps.identity.certificate.bytes, sealed: false };
    this.calls.set(callId, call);
    return call;
  }

  private expect(callId: string): CallState {
    const call = this.calls.get(callId);
    if (!call) throw new SdpError('an answer for a call with no offer');
    return call;
  }

  /** The description, if it has as many media lines as the call's offer (else SdpError: 488, or the answer goes on without SDP). */
  private matching(call: CallState, sdp: SessionDescription): SessionDescription {
    if (sdp.streams.length !== call.anchored.length) throw new SdpError(`${sdp.streams.length} media lines where the offer had ${call.anchored.length}`);
    return sdp;
  }

  /**
   * An offer from `side`'s party: who is where on that side. Before any answer, RTCP goes to its
   * RTP port wherever it offered rtcp-mux (an offerer of mux takes RTCP there: RFC 5761 s5.1.1);
   * a re-offer changes nothing of what an answer settled until its own answer comes (it may fail).
   */
  private offered(call: CallState, offer: SessionDescription, side: Side, source: string): void {
    this.setParties(call, offer, side, source, call.muxed ?? offer.streams.map((s) => s.rtcpMux));
    call.offer = { sdp: offer, side, source };
  }

  /**
   * An answer from `side`'s party. It settles rtcp-mux, which is in use only where offer and
   * answer both say so (RFC 5761 s5.1.1): a phone that declines a mux offer has its RTCP, and the
   * offerer's, sent to the RTCP ports, on every leg of the call alike.
   */
  private answered(call: CallState, answer: SessionDescription, side: Side, source: string): void {
    this.matching(call, answer);
    const offer = call.offer;
    const muxed = answer.streams.map((s, i) => s.rtcpMux && offer?.sdp.streams[i]?.rtcpMux === true);
    call.muxed = muxed;
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
    const otherHome = side === 'b' && call.sealed;
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

  /** The other home's share, checked against its (trusted) certificate, and the internet leg sealed with it. */
  /**
   * The other home's key share in `sdp`, believed: its certificate passes the trust policy (an
   * enrolled, unrevoked home) and signed it for this call in `theirRole`. Throws SdpError (488).
   */
  private believedShare(sdp: SessionDescription, callId: string, theirRole: MediaRole): { share: MediaKeyShare; farHome: Id | undefined } {
    const theirs = readShare(sdp);
    if (!theirs && sdp.lines.some((l) => l.startsWith(`a=${V1_KEY_ATTRIBUTE}:`))) throw new SdpError('the other home seals media under an older version (p2psip-key v1): update its p2psip');
    if (!theirs) throw new SdpError('the other home sent no media key');
    let homeKey: Uint8Array;
    let farHome: Id | undefined;
    try {
      const certificate = this.deps.trust.accept(theirs.certificate, this.deps.nowSeconds());
      if (certificate.claims.role !== undefined) throw new Error(`a ${certificate.claims.role} certificate is no home`);
      homeKey = certificate.claims.publicKey;
      farHome = certificate.claims.nodeIds[0];
    } catch (error) {
      throw new SdpError(`the other home's certificate is not believed: ${(error as Error).message}`);
    }
    if (!shareIsFrom(theirs, homeKey, callId, theirRole)) throw new SdpError('the other home\'s media key is not signed by it');
    return { share: theirs, farHome };
  }

  private acceptShare(call: CallState, sdp: SessionDescription, callId: string): void {
    if (call.sealed) {
      // Later SDP of the call must come from the home its keys were agreed with: the same share.
      // Anyone else who learnt the Call-ID could otherwise point the call's media elsewhere.
      const again = readShare(sdp);
      if (!again || !call.theirKey || Buffer.compare(Buffer.from(again.publicKey), Buffer.from(call.theirKey)) !== 0) throw new SdpError('SDP for this call from another party than the home it was agreed with');
      return;
    }
    const theirRole: MediaRole = call.role === 'offerer' ? 'answerer' : 'offerer';
    const { share: theirs, farHome } = this.believedShare(sdp, callId, theirRole);
    call.theirKey = theirs.publicKey;
    const [offerer, answerer] = call.role === 'offerer' ? [call.own.share, theirs] : [theirs, call.own.share];
    call.session.streams.forEach((stream, i) => {
      for (const channel of ['rtp', 'rtcp'] as const) {
        const { send, receive } = mediaSealers(call.own.ephemeral, call.role, offerer, answerer, callId, `${i}/${channel}`);
        stream[channel].seal('b', { seal: (packet, flags) => send.seal(packet, flags), open: (datagram) => receive.open(datagram) });
        const backhaul = this.deps.backhaul;
        if (backhaul && farHome !== undefined) {
          stream[channel].setBackhaul('b', { send: (sealed, to, directLost) => backhaul.send(farHome, to.port, sealed, directLost), directHost: () => backhaul.directHost(farHome) });
        }
      }
    });
    call.sealed = true;
    call.farHome = farHome;
    if (farHome !== undefined) this.deps.backhaul?.prepare(farHome);
  }

  private towardsHome(call: CallState, sdp: SessionDescription): string {
    const text = anchorSdp(withoutShare(sdp), { address: this.deps.publicHost(), ports: portsOn(call, 'b') });
    return addShare(text, call.own.share, call.certificate);
  }

  private towardsPhone(call: CallState, sdp: SessionDescription): string {
    return anchorSdp(withoutShare(sdp), { address: this.deps.lanHost, ports: this.portsHeard(call, 'a') });
  }

  /**
   * The anchor's RTP port on a phones' side for each m= section: the ports of the phone heard
   * there now, which in a forked call still ringing may be a branch's own (an UPDATE in the
   * early dialog of the phone playing early media must name that phone's ports).
   */
  private portsHeard(call: CallState, side: 'a' | 'b'): (number | undefined)[] {
    const heard = this.deps.anchor.portsHeard(call.session.id, side);
    return call.anchored.map((index) => (index === undefined ? undefined : heard[index]));
  }
}

/** The anchor's RTP port on one side for each m= section (none for a section that is not anchored). */
function portsOn(call: CallState, side: 'a' | 'b'): (number | undefined)[] {
  return call.anchored.map((index) => (index === undefined ? undefined : call.session.streams[index].ports[side]));
}

/** a=p2psip-key-v2:base64url(CBOR [x25519-key, signature, certificate]) */
function readShare(sdp: SessionDescription): (MediaKeyShare & { certificate: Uint8Array }) | undefined {
  const line = sdp.lines.find((l) => l.startsWith(`a=${KEY_ATTRIBUTE}:`));
  if (!line) return undefined;
  try {
    const value = decodeCbor(Buffer.from(line.slice(KEY_ATTRIBUTE.length + 3), 'base64url'), 8192, '$.mediaKey');
    if (!Array.isArray(value) || !value.slice(0, 3).every((v) => v instanceof Uint8Array)) return undefined;
    return { publicKey: value[0], signature: value[1], certificate: value[2] };
  } catch {
    return undefined;
  }
}

/** The description without any key share (a phone never sees one; ours replaces the other home's). */
function withoutShare(sdp: SessionDescription): SessionDescription {
  return { ...sdp, lines: sdp.lines.filter((l) => !l.startsWith(`a=${KEY_ATTRIBUTE}:`) && !l.startsWith(`a=${V1_KEY_ATTRIBUTE}:`)) };
}

/** Our share as a session-level attribute, before the first m= line. */
function addShare(text: string, share: MediaKeyShare, certificate: Uint8Array): string {
  const lines = text.split('\r\n');
  const firstMedia = lines.findIndex((l) => l.startsWith('m='));
  const attribute = `a=${KEY_ATTRIBUTE}:${Buffer.from(encodeCbor([share.publicKey, share.signature, certificate])).toString('base64url')}`;
  lines.splice(firstMedia < 0 ? lines.length - 1 : firstMedia, 0, attribute);
  return lines.join('\r\n');
}
