import { createHash, randomBytes } from 'node:crypto';
import type { TimerHandle } from '../../../runtime/clock.js';
import type { Logger } from '../../../runtime/log.js';
import { type Address, addressKey, sameHost } from '../../../wire/address.js';
import type { CheckedRequest, Essentials } from '../message/check.js';
import { inDialogRequest, inviteCompanion } from '../message/invite-companions.js';
import { responseFlow, stampVia } from '../message/response.js';
import { parseNameAddr } from '../message/name-addr.js';
import { formatVia } from '../message/via.js';
import { serializeSipMessage } from '../message/serializer.js';
import type { SipMessage, SipRequest, SipResponse } from '../message/sip-message.js';
import { aorOf, parseSipUri, sameSipUri, type SipUri } from '../message/uri.js';
import { type DigestAuthenticator, PROXY_CHALLENGE } from '../auth/digest-authenticator.js';
import type { Binding, LocationService } from '../registrar/location.js';
import { SipError } from '../sip-error.js';
import { FLOW_PARAM, type FlowTokens, type MarkedFlow } from './flow-tokens.js';
import { chosenFinal, response408Headers, synthetic, upstream } from './final-responses.js';
import { reconnectAddress } from './phone-reconnect.js';
import { isIpLiteral, routeUri, tryParseSipUri, udpTo, withHost, withoutParam } from './route-uris.js';
import type { ClientTransaction, ClientTransactions } from '../transactions/client-transactions.js';
import type { InviteServerTransaction, ServerTransaction, ServerTransactions } from '../transactions/server-transactions.js';
import { TIMEOUT_MS, TIMER_C_MS } from '../transactions/timers.js';
import { type SipFlow, type SipTransport, sameFlow } from '../transport/sip-transport.js';
import { MediaRefused, type MediaSide, otherSide, type SideAccounts, type SipMedia } from '../media/sip-media.js';

/*
 * The home peer as a transaction-stateful proxy (RFC 3261 s16). A request for user@domain goes
 * to every phone the user registered here, in parallel (forking, s16.6); for a user registered
 * at another home, to that home peer's SIP address, found through the overlay (RFC 7904 s4).
 * The proxy record-routes dialog-creating requests, so in-dialog requests (ACK, BYE, re-INVITE)
 * come back through it and reach phones behind NATs over the flows they registered from.
 * Responses: provisional and 2xx forwarded at once (a 2xx cancels the other branches), other
 * finals collected and the best one forwarded when every branch has answered (s16.7).
 */
export interface RemoteHomes {
  /** How to reach another home peer where `aor` is registered (its SIP address, or the overlay), or undefined. */
  resolve(aor: string, done: (flow: SipFlow | undefined) => void): void;
  /** How to reach the peer `nodeId` (hex) whose SIP address is `address` (a Route it recorded). */
  peer(nodeId: string, address: Address): SipFlow;
}

export interface ProxyDeps {
  readonly transport: SipTransport;
  readonly servers: ServerTransactions;
  readonly clients: ClientTransactions;
  readonly location: LocationService;
  /** Our address as others reach it: Via and Record-Route carry it. */
  readonly self: Address;
  /** Every other host a phone may know us by on our SIP port: the LAN addresses, "localhost" (s16.4). */
  readonly selfHosts?: readonly string[];
  /** Our Node-ID (hex): Record-Route carries it too, so in-dialog requests can come through the overlay. */
  readonly selfNodeId: string;
  readonly servesDomain: (host: string, port?: number) => boolean;
  /** The AOR the registrar keeps for a URI of ours: a user at our address is the user at our domain. */
  readonly canonicalAor: (uri: SipUri) => string;
  readonly isLocalUser: (user: string) => boolean;
  readonly remote: RemoteHomes | undefined;
  readonly log: Logger;
  /**
   * Digest for requests this home would relay onward for someone who is neither one of its
   * phones nor another home (407, s22.3); absent when `--sip-auth off`.
   */
  readonly auth?: DigestAuthenticator;
  /** Marks phones' Contacts with their flows, and reads the marks back (flow-tokens.ts). */
  readonly flowTokens?: FlowTokens;
  /** A registered phone's flow could not be used: its bindings go (RFC 5626 s5.3). */
  readonly onFlowFailed?: (flow: SipFlow) => void;
  /** Timer C; three minutes unless the operator says otherwise (`--sip-timer-c`). */
  readonly timerCMs?: number;
  /** The media anchor's SDP rewriting, for calls that cross this home (issue 16); absent: SDP passes untouched. */
  readonly media?: SipMedia;
}

/** How a request's media is anchored on its way through (sip-media.ts). */
interface MediaPlan {
  /** Which side of this home the request came from. */
  readonly side: MediaSide;
  /** The request carried an offer, so SDP in its responses is the answer (else their offer). */
  readonly offered: boolean;
  /** The rewritten body the request goes on with. */
  readonly body?: Uint8Array;
  /**
   * An initial INVITE forked to several phones at once: each branch's own key and body (the offer
   * with ports of that branch's own; the first branch's is `body`), in the first group's order.
   */
  readonly legs?: readonly { readonly key: string; readonly body?: Uint8Array }[];
  /**
   * The call's media was there before this request: an INVITE that reuses a live call's Call-ID
   * (a stranger's, with no To tag) did not begin it, and its failure ends nothing.
   */
  readonly existed: boolean;
}

interface Target {
  readonly uri: string;
  readonly flow: SipFlow;
  /** A phone's registered flow: if it is gone, the answer is 430 Flow Failed (RFC 5626 s5.3). */
  readonly registered?: boolean;
  /** Another home peer, which listens on TCP too: large requests go to it over TCP (s18.1.1). */
  readonly home?: boolean;
  /** The contact's preference (s20.10); none counts as 1. */
  readonly q?: number;
}

/** Targets grouped by q, highest first, each group in the order given. */
function byQ(targets: readonly Target[]): Target[][] {
  const groups = new Map<number, Target[]>();
  for (const target of targets) {
    const q = target.q ?? 1;
    groups.set(q, [...(groups.get(q) ?? []), target]);
  }
  return [...groups.entries()].sort((a, b) => b[0] - a[0]).map(([, group]) => group);
}

/** RFC 3261 s18.1.1: a request within 200 bytes of a 1500-byte path MTU goes over TCP, not UDP. */
const UDP_SIZE_LIMIT = 1300;

interface Branch {
  tx: ClientTransaction;
  /** Where this branch went: its responses' Contacts are marked with it when it is a phone of this home. */
  readonly flow: SipFlow;
  readonly toPhone: boolean;
  readonly branch: string;
  readonly request: SipRequest;
  provisional: boolean;
  final: SipResponse | undefined;
  cancelWhenProvisional: boolean;
  /** A CANCEL went on this branch already. */
  cancelSent?: boolean;
  /**
   * A phone of this home that had said nothing when the caller cancelled: its branch counted as
   * 487 for the caller at once. What it says later is settled here (orphanResponse), never passed up.
   */
  endedForCaller?: boolean;
  /** The BYE that ends a dialog such a phone opened by answering late. */
  hungUp?: boolean;
  /** Cancelled by us because Timer C ran out, not by the caller: its 487 goes up as a 408. */
  timedOut: boolean;
  /** Responses wait here for their SDP to be rewritten, so they go up in the order they came. */
  responses?: Promise<void>;
  /** A branch of an INVITE forked to several phones: its leg at the media anchor (MediaPlan.legs). */
  readonly leg?: string;
}

interface ProxyCall {
  readonly server: ServerTransaction;
  readonly branches: Branch[];
  /** Targets of lower q, tried in turn when every branch so far failed (s16.6, serial forking). */
  readonly later: Target[][];
  /** Branches are being started: a branch that fails at once must not end the call early. */
  starting: boolean;
  answered: boolean;
  cancelled: boolean;
  timerC: TimerHandle | undefined;
  readonly media: MediaPlan | undefined;
  /** The branch whose 2xx answered the call first. */
  winner?: Branch;
}

export interface ProxyCounters {
  forwarded: number;
  forked: number;
  notFound: number;
  unavailable: number;
  remoteLookups: number;
  cancels: number;
  statelessForwards: number;
  /** Requests from strangers challenged before being relayed (407). */
  challenged: number;
  strayResponses: number;
  /** New connections opened to phones on TCP whose registered connection had closed. */
  reconnects: number;
  /** Requests too large for UDP that another home's SIP port took no TCP for, sent through the overlay instead. */
  overlayFallbacks: number;
  /** Requests strict-routed to us (an old phone's outbound proxy without ;lr), taken in loose-routed form. */
  strictRoutes: number;
}

const BRANCH_PREFIX = 'z9hG4bKp2p';
/** Requests that create a dialog or an (implicit) subscription: later requests must come back through us (RFC 3261 s16.6 step 4, RFC 6665, RFC 3515). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);
/** Requests whose Contact sets a dialog's remote target (RFC 3261 s12, RFC 3311): these Contacts get flow marks. */
const TARGET_REFRESHING = new Set(['INVITE', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'UPDATE']);
function dialogKey(checked: CheckedRequest, toTag: string): string {
  return `${checked.callId}\n${checked.from.params.get('tag') ?? ''}\n${toTag}`;
}

/** How long after a 2xx its ACK may come (64*T1, RFC 3261 s13.3.1.4). */
const ACK_WINDOW_MS = 32_000;
const MAX_ANSWERED_PROVEN = 4096;
/** How long a home whose SIP port took no TCP is reached through the overlay at once, and how many such homes are remembered. */
const NO_TCP_MEMORY_MS = 10 * 60_000;
const MAX_HOMES_WITHOUT_TCP = 256;
/** The Record-Route URI parameter naming the recording peer's Node-ID. */
const PEER_PARAM = 'p2p-node';

export class SipProxy {
  readonly counters: ProxyCounters = { forwarded: 0, forked: 0, notFound: 0, unavailable: 0, remoteLookups: 0, cancels: 0, statelessForwards: 0, challenged: 0, strayResponses: 0, reconnects: 0, overlayFallbacks: 0, strictRoutes: 0 };
  private readonly calls = new Map<ServerTransaction, ProxyCall>();
  /**
   * Requests whose targets are still being found (an overlay lookup may take seconds), each with
   * the timer that answers 504 if the lookup or the media's ports never come back: the router's
   * own timeouts should see to that, but a request left here would hold its caller for good.
   */
  private readonly deciding = new Map<ServerTransaction, TimerHandle>();
  /** Requests whose sender proved a user of this home with digest (not by the flow it registered): that user. */
  private readonly provenByDigest = new WeakMap<ServerTransaction, string>();
  /**
   * Dialogs (Call-ID, From tag, To tag) whose INVITE was proven by digest and answered 2xx: their
   * ACK, which cannot be challenged (s22.1), is relayed for 64*T1 after the answer, from the host
   * the INVITE came from and to where it went. Oldest go first past the bound.
   */
  private readonly answeredProvenDialogs = new Map<string, { readonly until: number; readonly callerHost: string; readonly callee: SipFlow }>();
  /**
   * Homes (SIP address) whose port lately took no TCP, and until when: large requests go to them
   * through the overlay at once. Tried each time, a firewall that drops SYNs cost every call the
   * connect timeout (regression review F2). Oldest go first past the bound.
   */
  private readonly homesWithoutTcp = new Map<string, number>();

  constructor(private readonly deps: ProxyDeps) {}

  /** Shutting down: no call's Timer C outlives the service. */
  close(): void {
    for (const call of this.calls.values()) this.deps.servers.clock.clearTimer(call.timerC);
    for (const timer of this.deciding.values()) this.deps.servers.clock.clearTimer(timer);
    this.calls.clear();
    this.deciding.clear();
  }

  /** A new request that is not for this peer itself (REGISTER and OPTIONS to us are not). */
  handleRequest(server: ServerTransaction): void {
    const { request, checked } = server;
    if (checked.maxForwards === 0) return server.respond(483, 'Too Many Hops'); // s16.3 step 3
    if (this.looped(request, checked)) return server.respond(482, 'Loop Detected'); // s16.3 step 4
    let trusted: boolean | 'challenged';
    try {
      trusted = this.trusted(server);
    } catch (error) {
      if (!(error instanceof SipError)) throw error;
      return server.respond(error.status, error.reason); // credentials we cannot read
    }
    if (trusted === 'challenged') return;
    if (server.invite) server.respond(100, 'Trying'); // s16.2: a stateful proxy answers INVITE at once
    this.deciding.set(server, this.deps.servers.clock.setTimer(TIMEOUT_MS, () => {
      if (this.decided(server)) server.respond(504, 'Server Time-out (the callee could not be looked up in time)');
    }));
    this.targets(request, checked, (targets, refusal) => {
      // s16.10: a CANCEL that came while we looked the callee up has answered this INVITE already.
      if (!this.deciding.has(server)) return;
      if (!targets) {
        this.decided(server);
        return server.respond(refusal![0], refusal![1]);
      }
      // A stranger may reach this home's phones, and nothing else (s22.3, s26.4: no open relay).
      if (!trusted && !targets.every((t) => t.registered)) {
        this.decided(server);
        return this.challenge(server, false);
      }
      this.anchorRequest(server, byQ(targets)[0]).then(
        (media) => {
          if (!this.decided(server)) {
            if (beganMedia(server, media)) this.deps.media!.ended(checked.callId); // cancelled while its ports opened
            return;
          }
          this.fork(server, targets, media);
        },
        (error) => {
          if (!this.decided(server)) return;
          if (isInitialInvite(server)) this.deps.media?.refused(checked.callId, checked.from.params.get('tag') ?? '');
          if (!(error instanceof MediaRefused)) {
            this.deps.log.warn('media-fault', { callId: checked.callId, error });
            return server.respond(500, 'Server Internal Error');
          }
          const retryAfter = error.retryAfterSeconds;
          server.respond(error.status, error.reason, retryAfter ? (r) => r.headers.add('Retry-After', String(retryAfter)) : undefined);
        },
      ).catch((error) => this.handlerFault(checked.callId, error));
    });
  }

  /**
   * Issue 16: a request whose media crosses this home has its SDP rewritten to the anchor's ports
   * before it goes on (an offer may open them); a new call must fit under --max-calls. Rejects
   * with MediaRefused (488, 503) when the SDP cannot be anchored: nothing goes on half-rewritten.
   * (A call's ports go back when its answering dialog's BYE is answered: onBranchResponse.)
   */
  private async anchorRequest(server: ServerTransaction, group: readonly Target[]): Promise<MediaPlan | undefined> {
    const media = this.deps.media;
    const { request, checked, flow } = server;
    if (!media) return undefined;
    if (request.method !== 'INVITE' && request.method !== 'UPDATE' && request.method !== 'PRACK') return undefined;
    const side = this.mediaSide(media, request, checked, flow, group[0]);
    const initial = isInitialInvite(server);
    const fromTag = checked.from.params.get('tag') ?? '';
    const tags = [fromTag, checked.to.params.get('tag') ?? ''];
    if (!side) {
      // Neither the other home nor our phone, in an anchored call's dialog: an offer (or the one its
      // answer would carry) would go round the anchor and tell our phone's address (review M1).
      if (!initial && media.anchorsDialog(checked.callId, tags)) throw new MediaRefused(403, "Forbidden (not a party to this call's media)");
      return undefined;
    }
    const existed = media.calls.has(checked.callId);
    // A new call under a live call's Call-ID (a stranger's, most likely) is not that call: what its
    // phone answers must not move the live call's media, nor get our home's signature, nor go
    // round the anchor with the phone's address (review M10, M15). Refused, as a merged request is.
    if (initial && media.callIdTaken(checked.callId, fromTag)) throw new MediaRefused(482, 'Loop Detected (a call in progress has this Call-ID)');
    // Nor does a request of that other call's dialogs (its PRACK or UPDATE with SDP, say): review F5.
    if (!initial && !media.ownsDialog(checked.callId, tags)) return undefined;
    // Our side of the call is one account's (review M12): another phone of this home that learned
    // the dialog may not move its media.
    if (!initial && !this.speaksFor(flow, this.provenByDigest.get(server), media.accountOf(checked.callId, side))) {
      throw new MediaRefused(403, "Forbidden (another account's call)");
    }
    if (initial) media.admit(checked.callId, fromTag, this.sideAccounts(side, server));
    if (!media.hasSdp(request)) return { side, offered: false, existed }; // a late offer: the phones' offers share one session
    // A PRACK answers the offer of a reliable 18x; after an answer there, it may offer anew (review M8).
    const kind = request.method === 'PRACK' && media.calls.awaitsAnswer(checked.callId) ? 'answer' : 'offer';
    // The other home as the route knows it: where our phone's SDP goes, or where a home's came from.
    const otherHome = side === 'home' ? flow.nodeId : group[0].flow.nodeId;
    const body = await media.rewrite(checked.callId, request, kind, side, flow.remote.host, undefined, otherHome);
    if (!initial || group.length === 1 || kind !== 'offer') return { side, offered: kind === 'offer', body, existed };
    // Forked: every phone but the first is offered ports of its own (or, when none are left, the first's).
    const legs = [{ key: '0', body }];
    for (let i = 1; i < group.length; i++) legs.push({ key: String(i), body: (await media.branchOffer(checked.callId, String(i))) ?? body });
    return { side, offered: true, body, legs, existed };
  }

  /**
   * The users of this home whose phones a new call is between, by side (`side`: its INVITE's): our
   * callee's (the Request-URI) when it goes to a phone of ours; our caller's (From) when it comes
   * from one that speaks for that user (a phone whose From names some other user binds nothing).
   */
  private sideAccounts(side: MediaSide, server: ServerTransaction): SideAccounts {
    const { request, checked, flow } = server;
    const ours = (text: string): string | undefined => {
      const uri = tryParseSipUri(text);
      return uri?.user !== undefined && this.deps.servesDomain(uri.host, uri.port) ? this.deps.canonicalAor(uri) : undefined;
    };
    const caller = ours(checked.from.uri);
    const callerAccount = caller !== undefined && this.speaksFor(flow, this.provenByDigest.get(server), caller) ? caller : undefined;
    if (side === 'phone') return { phone: callerAccount };
    if (side === 'home') return { phone: ours(request.uri) };
    return { caller: callerAccount, callee: ours(request.uri) };
  }

  /** Whether a request speaks for `account` (when there is one): over a flow its phones registered, or proven by its digest. */
  private speaksFor(flow: SipFlow, provenUser: string | undefined, account: string | undefined): boolean {
    if (account === undefined || this.deps.location.bindings(account).some((b) => sameFlow(b.flow, flow))) return true;
    return provenUser !== undefined && provenUser === account.slice(0, account.lastIndexOf('@'));
  }

  /**
   * Who may have a request relayed anywhere: another home (through the overlay), this home's phones
   * (from the flow they registered over) and whoever proves a user of this home with digest. Anyone
   * else may only reach this home's phones: a stranger's request that names anything else, or
   * whose targets turn out to be anything else, is challenged (407). Without this the peer would be
   * an open relay. 'challenged' when the 407 has gone already.
   */
  private trusted(server: ServerTransaction): boolean | 'challenged' {
    const { request, checked, flow } = server;
    const auth = this.deps.auth;
    if (!auth || flow.transport === 'OVERLAY' || this.deps.location.hasFlow(flow)) return true;
    const verdict = request.headers.has('Proxy-Authorization') ? auth.verify(request, PROXY_CHALLENGE) : { stale: false };
    if (verdict.user !== undefined) {
      this.provenByDigest.set(server, verdict.user);
      return true;
    }
    // Worth a look (it may reach a phone here): a dialog's request, a marked Contact, a user of this home.
    const uri = tryParseSipUri(request.uri);
    const maybeInward = checked.to.params.has('tag') || uri?.params.has(FLOW_PARAM) || (uri?.user && this.deps.servesDomain(uri.host, uri.port) && this.deps.isLocalUser(uri.user));
    if (maybeInward) return false;
    this.challenge(server, verdict.stale ?? false);
    return 'challenged';
  }

  private challenge(server: ServerTransaction, stale: boolean): void {
    const auth = this.deps.auth!;
    this.counters.challenged++;
    server.respond(407, 'Proxy Authentication Required', (response) => auth.challengeHeaders(response, PROXY_CHALLENGE, stale));
  }

  /** s16.10: CANCEL ends the matching INVITE's pending branches; it is answered on its own. */
  handleCancel(cancel: ServerTransaction, invite: InviteServerTransaction | undefined): void {
    const call = invite ? this.calls.get(invite) : undefined;
    if (invite && this.decided(invite)) {
      // Still looking for the callee (an overlay lookup): nothing was forwarded, nothing will be.
      cancel.respond(200, 'OK');
      this.counters.cancels++;
      return invite.respond(487, 'Request Terminated');
    }
    if (!invite) return cancel.respond(481, 'Call/Transaction Does Not Exist');
    cancel.respond(200, 'OK'); // s9.2: the INVITE's transaction is there; if it was answered already, the CANCEL changes nothing
    if (!call) return;
    this.counters.cancels++;
    call.cancelled = true;
    if (call.branches.length === 0) return invite.respond(487, 'Request Terminated');
    for (const branch of call.branches) {
      this.cancelBranch(branch);
      // A branch that has said nothing, a phone of ours asleep or switched off, or another home that
      // never got the INVITE, may never answer: for the caller it ends now (487 at once, not 408
      // after Timer B). The INVITE goes on until Timer B, so a phone that wakes rings, and that
      // ring (or the other home's 100) lets the CANCEL go (s9.1).
      if (!branch.final && !branch.provisional && branch.tx.isInvite) {
        branch.endedForCaller = true;
        this.onBranchFinal(call, branch, synthetic(487, 'Request Terminated', response408Headers(branch.request)));
      }
    }
  }

  private rememberAnswered(server: ServerTransaction, toTag: string, callee: SipFlow): void {
    const dialogs = this.answeredProvenDialogs;
    const key = dialogKey(server.checked, toTag);
    dialogs.delete(key);
    dialogs.set(key, { until: this.deps.servers.clock.now() + ACK_WINDOW_MS, callerHost: server.flow.remote.host, callee });
    if (dialogs.size > MAX_ANSWERED_PROVEN) dialogs.delete(dialogs.keys().next().value!);
  }

  /** Where the ACK of a proven caller's answered INVITE may go, when `flow` is where that caller is. */
  private answeredProven(checked: CheckedRequest, flow: SipFlow): SipFlow | undefined {
    const answered = this.answeredProvenDialogs.get(dialogKey(checked, checked.to.params.get('tag') ?? ''));
    return answered && answered.until >= this.deps.servers.clock.now() && answered.callerHost === flow.remote.host ? answered.callee : undefined;
  }

  /** An ACK for a 2xx, or any request that matched no transaction and needs none: forwarded statelessly (s16.11). */
  forwardAck(request: SipRequest, checked: CheckedRequest, flow: SipFlow): void {
    if (checked.maxForwards === 0) return; // s16.3 step 3: no response to an ACK; it just goes no further
    const trusted = !this.deps.auth || flow.transport === 'OVERLAY' || this.deps.location.hasFlow(flow);
    const answered = trusted ? undefined : this.answeredProven(checked, flow);
    this.targets(request, checked, (targets) => {
      const target = targets?.[0];
      // A stranger's ACK reaches this home's phones only; a proven caller's, where its INVITE went.
      if (!target || (!trusted && !target.registered && !(answered && sameFlow(answered, target.flow)))) return;
      const branch = statelessBranch(request, checked, target.flow);
      const send = (body?: Uint8Array) => {
        this.counters.statelessForwards++;
        // An answer that could not be anchored goes as none: no body, and no Content-Type claiming one (review M14).
        const original = body?.length === 0 ? withoutBody(request) : request;
        this.deps.transport.send(target.flow, serializeSipMessage(this.forwardCopy(original, checked, target, branch, undefined, body)));
      };
      // The answer to a late offer (the offer was in the 2xx) rides on the ACK.
      const media = this.deps.media;
      const sdp = media?.hasSdp(request) === true;
      const side = media && sdp ? this.mediaSide(media, request, checked, flow, target) : undefined;
      const tags = [checked.from.params.get('tag') ?? '', checked.to.params.get('tag') ?? ''];
      if (media && sdp && !side && media.anchorsDialog(checked.callId, tags)) {
        media.counters.refused++; // a stranger's answer in an anchored call's ACK (review M1): it goes nowhere
        return;
      }
      if (!media || !side || !media.ownsDialog(checked.callId, tags)) return send();
      if (this.deps.location.hasFlow(flow) && !this.speaksFor(flow, undefined, media.accountOf(checked.callId, side))) {
        media.counters.refused++; // another account's phone answering in this call's ACK (review M12): it goes nowhere
        return;
      }
      media
        .rewrite(checked.callId, request, 'answer', side, flow.remote.host, undefined, side === 'home' ? flow.nodeId : target.flow.nodeId)
        .then(send, () => {
          media.counters.unreadableAnswers++;
          send(new Uint8Array(0));
        })
        .catch((error) => this.handlerFault(checked.callId, error));
    });
  }

  /**
   * A response no client transaction claims is dropped (RFC 6026 s7.3 changes s16.7 step 1): a
   * retransmitted 2xx is still in Timer M's hands, and forwarding strays would let anyone bounce
   * responses off us to a third address.
   */
  dropStrayResponse(): void {
    this.counters.strayResponses++;
  }

  // --- targets (s16.4, s16.5) ---

  private targets(request: SipRequest, checked: CheckedRequest, done: (targets: Target[] | undefined, refusal?: [number, string]) => void): void {
    const routes = request.headers.getAll('Route');
    const next = routeUri(routes[this.ownRoutes(routes)]);
    if (next) return done([{ uri: request.uri, flow: this.flowTo(next), home: next.params.has(PEER_PARAM) }]);
    let uri: SipUri;
    try {
      uri = parseSipUri(request.uri);
    } catch {
      return done(undefined, [416, 'Unsupported URI Scheme']);
    }
    // A contact registered here: in-dialog requests reach the phone over its registered flow (the
    // newest we know); failing that, over the flow its marked Contact names (flow-tokens.ts),
    // with the mark taken off again (the phone never sees it).
    const token = uri.params.get(FLOW_PARAM);
    const unmarked = token ? withoutParam(request.uri, FLOW_PARAM) : request.uri;
    const marked = token ? this.deps.flowTokens?.decode(token) : undefined;
    // A user of ours is found by the AOR's own bindings, never through someone's Contact.
    const aorOfOurs = uri.user !== undefined && this.deps.servesDomain(uri.host, uri.port);
    const registered = aorOfOurs && !marked ? undefined : this.bindingFor(unmarked, marked);
    if (registered) return done([registered]);
    if (uri.user && aorOfOurs) {
      const aor = this.deps.canonicalAor(uri);
      const bindings = this.deps.location.bindings(aor);
      if (bindings.length) return done(bindings.map((b) => this.phoneTarget(b)));
      if (this.deps.isLocalUser(uri.user)) {
        this.counters.unavailable++;
        return done(undefined, [480, 'Temporarily Unavailable']); // a user of this home with no phone on
      }
      if (!this.deps.remote) {
        this.counters.notFound++;
        return done(undefined, [404, 'Not Found']);
      }
      // Dialed at our address (a phone whose domain is our IP): the other home knows the user by our domain.
      const domain = aor.slice(aor.lastIndexOf('@') + 1);
      return this.viaOverlay(uri.host === domain ? request.uri : withHost(request.uri, domain), aor, done);
    }
    if (this.isSelf(uri.host, uri.port)) return done(undefined, [404, 'Not Found']);
    // An AOR of another family in the overlay: its home is found the same way, never by DNS.
    if (uri.user && !isIpLiteral(uri.host) && this.deps.remote) return this.viaOverlay(request.uri, aorOf(uri), done);
    done([{ uri: request.uri, flow: udpTo(uri) }]);
  }

  /** RFC 7904 s4: the callee's home peer, from its SIP-REGISTRATION record, or 404. */
  private viaOverlay(requestUri: string, aor: string, done: (targets: Target[] | undefined, refusal?: [number, string]) => void): void {
    this.counters.remoteLookups++;
    this.deps.remote!.resolve(aor, (flow) => {
      const self = !flow || (flow.transport === 'OVERLAY' ? flow.nodeId === this.deps.selfNodeId : this.isSelf(flow.remote.host, flow.remote.port));
      if (self) {
        this.counters.notFound++;
        return done(undefined, [404, 'Not Found']);
      }
      done([{ uri: requestUri, flow: flow!, home: true }]);
    });
  }

  /**
   * An in-dialog request to a phone registered here: its Request-URI equals a registered Contact
   * (s19.1.4), which anyone may register. With our mark on it (`marked`, the flow the dialog was
   * made over): the binding on that flow, else one from the same host (the phone registered again
   * from a new port), else the marked flow itself. Without: the binding registered from the
   * Contact's own address, else the first.
   */
  private bindingFor(contact: string, marked: MarkedFlow | undefined): Target | undefined {
    const wanted = tryParseSipUri(contact);
    const matching = wanted
      ? this.deps.location.aors().flatMap((aor) => this.deps.location.bindings(aor)).filter((b) => {
          const registered = b.contact === contact ? wanted : tryParseSipUri(b.contact);
          return registered !== undefined && sameSipUri(registered, wanted);
        })
      : [];
    const fromHost = (b: Binding, host: string) => b.flow.transport !== 'OVERLAY' && sameHost(b.flow.remote.host, host);
    const chosen = marked
      ? (matching.find((b) => sameFlow(b.flow, marked.flow)) ?? matching.find((b) => b.flow.transport === marked.flow.transport && fromHost(b, marked.flow.remote.host)))
      : (matching.find((b) => fromHost(b, wanted!.host) && b.flow.remote.port === (wanted!.port ?? 5060)) ?? matching[0]);
    if (chosen) return this.phoneTarget(chosen, contact);
    // A mark made on a phone's flow is a phone of ours; one on a stranger's TCP connection only says how to reach it.
    return marked ? { uri: contact, flow: marked.flow, registered: marked.ours } : undefined;
  }

  /** A registered phone: over its flow, or over a new connection where that closed and the phone listens (phone-reconnect.ts). */
  private phoneTarget(binding: Binding, uri = binding.contact): Target {
    const target: Target = { uri, flow: binding.flow, registered: true, q: binding.q };
    const { flow } = binding;
    if (flow.transport !== 'TCP' || (flow.connectionId !== undefined && this.deps.transport.hasConnection(flow.connectionId))) return target;
    const to = reconnectAddress(binding);
    const fresh = to && this.deps.transport.connect(to);
    if (!fresh) return target;
    this.counters.reconnects++;
    this.deps.location.moveFlow(flow, fresh, (b) => {
      const listening = reconnectAddress(b);
      return listening !== undefined && listening.port === to.port && sameHost(listening.host, to.host);
    });
    return { ...target, flow: fresh };
  }

  /**
   * How many of the Routes at the top name this peer (s16.4: each is taken off before the
   * request is looked at): two where we record-routed twice (RFC 5658), more with a phone's
   * outbound Route.
   */
  ownRoutes(routes: readonly string[]): number {
    let n = 0;
    while (n < routes.length) {
      const uri = routeUri(routes[n]);
      if (!uri || !this.isSelfRoute(uri)) break;
      n++;
    }
    return n;
  }

  /**
   * s16.4: a request strict-routed to us, as an old phone with its outbound proxy set without
   * ;lr sends it (s12.2.1.1: this peer in the Request-URI, the destination as the last Route),
   * in the loose-routed form: the last Route becomes the Request-URI. Anything else as it came.
   */
  unstrictRouted(request: SipRequest): SipRequest {
    const routes = request.headers.getAll('Route');
    const uri = tryParseSipUri(request.uri);
    if (routes.length === 0 || !uri || uri.user !== undefined || !this.isSelf(uri.host, uri.port)) return request;
    const last = routes[routes.length - 1];
    const target = routeUri(last);
    // A strict router's last Route is the remote target: no ;lr (a loose router has it), and a
    // user's URI (sip:bob@our-domain) or someone else's, not a Route of ours.
    if (!target || target.params.has('lr') || (target.user === undefined && this.isSelfRoute(target))) return request;
    const headers = request.headers.clone().remove('Route');
    for (const route of routes.slice(0, -1)) headers.add('Route', route);
    return { ...request, uri: parseNameAddr(last).uri, headers };
  }

  // --- forwarding (s16.6) and responses (s16.7) ---

  /** s16.6: targets of the highest q ring together; lower ones only if all of those fail. */
  private fork(server: ServerTransaction, targets: readonly Target[], media?: MediaPlan): void {
    const groups = byQ(targets);
    const call: ProxyCall = { server, branches: [], later: groups.slice(1), starting: false, answered: false, cancelled: false, timerC: undefined, media };
    this.calls.set(server, call);
    if (targets.length > 1) this.counters.forked++;
    // Armed first: branches that all fail at once end the call, and with it the timer (it was left
    // running for 3 minutes on a call already over, a phone's closed outbound flow, say).
    if (server.invite) this.armTimerC(call);
    this.startBranches(call, groups[0], media?.legs);
  }

  private startBranches(call: ProxyCall, targets: readonly Target[], legs?: MediaPlan['legs']): void {
    const loopHash = loopHashOf(call.server.request, call.server.checked);
    call.starting = true;
    this.counters.forwarded += targets.length; // once each, whichever way a branch goes in the end
    for (const [i, planned] of targets.entries()) this.startBranch(call, planned, loopHash, legs?.[i]);
    call.starting = false;
    if (call.server.invite && call.branches.length > targets.length) this.armTimerC(call); // a later q group gets its own Timer C
    this.finishIfDone(call);
  }

  /**
   * One branch, to `planned`. s18.1.1: a request for another home over UDP that is larger than
   * 1300 bytes as it goes (the anchor's SDP with its key share, our Via and Record-Routes) goes
   * over TCP instead; when that home takes no TCP, through the overlay, which has no such limit
   * (s18.1.1 would try UDP again, where such a datagram is cut in IP fragments that NATs drop).
   */
  private startBranch(call: ProxyCall, planned: Target, loopHash: string, leg?: NonNullable<MediaPlan['legs']>[number]): void {
    const { server } = call;
    const branchId = `${BRANCH_PREFIX}${loopHash}.${randomBytes(6).toString('hex')}`;
    const copyFor = (target: Target) => this.forwardCopy(server.request, server.checked, target, branchId, server.flow, leg?.body ?? call.media?.body, this.provenByDigest.has(server));
    let target = planned;
    let request = copyFor(target);
    const nodeId = planned.flow.nodeId;
    const overlay = (): Target => ({ ...planned, flow: { transport: 'OVERLAY', remote: planned.flow.remote, nodeId } });
    const tooLarge = planned.home && planned.flow.transport === 'UDP' && serializeSipMessage(request).length > UDP_SIZE_LIMIT;
    const noTcp = tooLarge && nodeId !== undefined && this.tookNoTcpLately(planned.flow.remote);
    const tcp = tooLarge && !noTcp ? this.deps.transport.connect(planned.flow.remote) : undefined;
    if (noTcp || tcp) {
      target = noTcp ? overlay() : { ...planned, flow: tcp! };
      request = copyFor(target);
    }
    const branch: Branch = { tx: undefined as unknown as ClientTransaction, flow: target.flow, toPhone: target.registered === true, branch: branchId, request, provisional: false, final: undefined, cancelWhenProvisional: false, timedOut: false, ...(leg ? { leg: leg.key } : {}) };
    call.branches.push(branch);
    branch.tx = this.deps.clients.send(request, branchId, target.flow, {
      response: (response, essentials) => this.onBranchResponse(call, branch, response, essentials),
      timeout: () => this.onBranchFinal(call, branch, synthetic(408, 'Request Timeout', response408Headers(request))),
      transportError: () => {
        if (tcp && nodeId !== undefined) this.rememberNoTcp(planned.flow.remote);
        if (tcp && nodeId !== undefined && !branch.final && !branch.endedForCaller && !call.cancelled && !call.answered) {
          this.counters.overlayFallbacks++;
          call.branches.splice(call.branches.indexOf(branch), 1);
          return this.startBranch(call, overlay(), loopHash, leg);
        }
        if (target.registered) this.deps.onFlowFailed?.(target.flow);
        const [status, reason] = target.registered ? [430, 'Flow Failed'] : [503, 'Service Unavailable'];
        this.onBranchFinal(call, branch, synthetic(status, reason, response408Headers(request)));
      },
    });
  }

  /** Takes `server` out of the requests being decided; false if it was not there (a CANCEL or the deadline came first). */
  private decided(server: ServerTransaction): boolean {
    const timer = this.deciding.get(server);
    if (timer === undefined) return false;
    this.deps.servers.clock.clearTimer(timer);
    return this.deciding.delete(server);
  }

  private tookNoTcpLately(home: Address): boolean {
    const key = addressKey(home);
    const until = this.homesWithoutTcp.get(key);
    if (until === undefined) return false;
    if (until > this.deps.servers.clock.now()) return true;
    this.homesWithoutTcp.delete(key);
    return false;
  }

  private rememberNoTcp(home: Address): void {
    const key = addressKey(home);
    this.homesWithoutTcp.delete(key); // re-inserted as the newest
    this.homesWithoutTcp.set(key, this.deps.servers.clock.now() + NO_TCP_MEMORY_MS);
    if (this.homesWithoutTcp.size > MAX_HOMES_WITHOUT_TCP) this.homesWithoutTcp.delete(this.homesWithoutTcp.keys().next().value!);
  }

  /**
   * Timer C (s16.6 step 11), set at forking and again on every provisional response (s16.7
   * step 2): only a call that nobody has answered, nor said anything about, for that long ends.
   * s16.8: a branch that rang is cancelled; one that never answered at all counts as a 408.
   */
  private armTimerC(call: ProxyCall): void {
    const clock = this.deps.servers.clock;
    clock.clearTimer(call.timerC);
    call.timerC = clock.setTimer(this.deps.timerCMs ?? TIMER_C_MS, () => {
      for (const branch of [...call.branches]) {
        if (branch.final) continue;
        branch.timedOut = true;
        if (branch.provisional) this.cancelBranch(branch);
        else {
          branch.tx.terminate();
          this.onBranchFinal(call, branch, synthetic(408, 'Request Timeout', response408Headers(branch.request)));
        }
      }
    });
  }

  /** A copy whose Contacts carry the token of the flow the message came over (flow-tokens.ts). */
  private markContacts<M extends SipRequest | SipResponse>(message: M, flow: SipFlow, ours = true): M {
    const contacts = message.headers.getAll('Contact');
    const marked = contacts.length ? this.deps.flowTokens?.markContacts(contacts, flow, ours) : undefined;
    if (!marked) return message;
    const headers = message.headers.clone();
    headers.remove('Contact');
    for (const value of marked) headers.add('Contact', value);
    return { ...message, headers };
  }

  /** `proven`: its sender proved a user of this home with digest (a phone of ours on a flow it did not register). */
  private forwardCopy(original: SipRequest, checked: CheckedRequest, target: Target, branch: string, from?: SipFlow, body = original.body, proven = false): SipRequest {
    // What phones send is marked, so requests in the dialog come back over the flow it came on:
    // a registered one, or one whose sender proved a user here, or a TCP connection (the only way
    // back to a phone that sent a large INVITE over one). Other homes mark their own phones' Contacts.
    const ours = from !== undefined && (proven || this.deps.location.hasFlow(from));
    const marks = from && TARGET_REFRESHING.has(original.method) && (ours || (from.transport === 'TCP' && !this.fromOtherHome(checked, from)));
    const request = marks ? this.markContacts(original, from, ours) : original;
    const headers = request.headers.clone();
    // RFC 3581 s4, s18.2.1: the Via we pass on says where the request really came from, so every
    // response (a retransmitted 2xx sent without state too) finds a caller behind a NAT.
    if (from && from.transport !== 'OVERLAY') headers.replaceFirstValue('Via', formatVia(stampVia(checked.vias[0], from)));
    for (let n = this.ownRoutes(request.headers.getAll('Route')); n > 0; n--) headers.removeFirstValue('Route'); // s16.4
    headers.set('Max-Forwards', String((checked.maxForwards ?? 70) - 1));
    // s22.3: credentials for our realm were for us, and go no further.
    const others = headers.getAll('Proxy-Authorization').filter((value) => !this.deps.auth?.isOurRealm(value));
    if (others.length !== headers.getAll('Proxy-Authorization').length) {
      headers.remove('Proxy-Authorization');
      for (const value of others) headers.add('Proxy-Authorization', value);
    }
    if (DIALOG_CREATING.has(request.method)) {
      // RFC 5658: each side reaches us again as it reached us. A phone on TCP is told
      // ;transport=tcp (a bare numeric host means UDP, RFC 3263 s4.1); where the two sides differ,
      // we record-route twice, the side nearest each end on its own end (s16.6 step 4).
      const inbound = this.recordRoute(from);
      const outbound = this.recordRoute(target.flow);
      if (inbound !== outbound) headers.prepend('Record-Route', inbound);
      headers.prepend('Record-Route', outbound);
    }
    headers.prepend('Via', `SIP/2.0/${target.flow.transport} ${this.hostPort()};branch=${branch};rport`);
    return { kind: 'request', method: request.method, uri: target.uri, headers, body };
  }

  private onBranchResponse(call: ProxyCall, branch: Branch, received: SipResponse, essentials: Essentials): void {
    if (branch.endedForCaller) return this.orphanResponse(branch, received);
    const media = this.deps.media;
    const plan = call.media;
    const callId = call.server.checked.callId;
    if (media && received.status >= 200 && received.status < 300) {
      // The dialog the first 2xx creates owns the call's media; a BYE for it (answered) ends it.
      if (!call.winner && isInitialInvite(call.server)) {
        call.winner = branch;
        media.answeredBy(callId, essentials.to.params.get('tag') ?? '');
        if (branch.leg !== undefined) media.branchWon(callId, branch.leg);
      }
      if (call.server.request.method === 'BYE') media.byeAnswered(callId, [essentials.from.params.get('tag') ?? '', essentials.to.params.get('tag') ?? '']);
    }
    if (!media || !plan || received.status === 100) return this.relayResponse(call, branch, received, essentials);
    // The other side's SDP: the answer to the request's offer, or (a late offer) the offer itself.
    const rewrite = async (): Promise<SipResponse> => {
      if (received.status >= 300 || !media.hasSdp(received)) return received;
      // Another branch once one has answered (a cancelled phone's late 183, a second 2xx): its SDP
      // must not move the answered call's media, nor reach the caller unanchored.
      if (call.winner && call.winner !== branch) return withoutBody(received);
      const from: MediaSide = otherSide(plan.side);
      try {
        const otherHome = from === 'home' ? branch.flow.nodeId : call.server.flow.nodeId;
        return { ...received, body: await media.rewrite(call.server.checked.callId, received, plan.offered ? 'answer' : 'offer', from, branch.flow.remote.host, branch.leg, otherHome) };
      } catch (error) {
        // A response cannot be refused: it goes on without SDP rather than with half-rewritten SDP.
        media.counters.unreadableAnswers++;
        this.deps.log.info('media-unreadable-answer', { callId, status: received.status, reason: (error as Error).message });
        return withoutBody(received);
      }
    };
    branch.responses = (branch.responses ?? Promise.resolve())
      .then(rewrite)
      .then((response) => this.relayResponse(call, branch, response, essentials))
      .catch((error) => this.handlerFault(callId, error));
  }

  /** A fault in work that runs after an await: logged, never an unhandled rejection (which would end the process). */
  private handlerFault(callId: string, error: unknown): void {
    this.deps.log.warn('sip-handler-fault', { callId, error });
  }

  private relayResponse(call: ProxyCall, branch: Branch, received: SipResponse, essentials: Essentials): void {
    if (received.status === 100) {
      // s9.1: any provisional response, a 100 too, lets a CANCEL go (it is not forwarded, nor does it reset Timer C).
      branch.provisional = true;
      if (branch.cancelWhenProvisional) this.sendCancel(branch);
      return;
    }
    const marks = branch.toPhone && received.status < 300 && TARGET_REFRESHING.has(branch.request.method);
    const response = marks ? this.markContacts(received, branch.flow) : received;
    if (response.status < 200) {
      branch.provisional = true;
      if (branch.cancelWhenProvisional) this.sendCancel(branch);
      if (call.server.invite && !call.answered && !branch.timedOut) this.armTimerC(call);
      if (!call.answered) call.server.send(upstream(response));
      return;
    }
    if (response.status < 300) {
      // s16.7 step 10: every 2xx of an INVITE goes up, and the first ends the other branches; of a
      // non-INVITE (a MESSAGE forked to two phones), only the first final response does.
      const first = !call.answered;
      if (!first && !call.server.invite) {
        branch.final = response;
        return this.finishIfDone(call);
      }
      call.answered = true;
      branch.final = response;
      const up = upstream(response);
      if (call.server.state === 'proceeding' || call.server.state === 'trying' || call.server.state === 'accepted') call.server.send(up);
      else this.deps.transport.send(responseFlow(call.server.checked, call.server.flow), serializeSipMessage(up));
      if (first && call.server.invite) for (const other of call.branches) if (other !== branch && !other.final) this.cancelBranch(other);
      if (call.server.invite && this.provenByDigest.has(call.server)) this.rememberAnswered(call.server, essentials.to.params.get('tag') ?? '', branch.flow);
      this.finishIfDone(call);
      return;
    }
    this.onBranchFinal(call, branch, response);
  }

  private onBranchFinal(call: ProxyCall, branch: Branch, response: SipResponse): void {
    if (branch.final) return;
    if (branch.leg !== undefined && !call.answered) this.deps.media?.branchEnded(call.server.checked.callId, branch.leg); // a ringing phone that gave up: its ports go back
    // The caller did not cancel: a branch we gave up on (Timer C) timed out, whatever it answered.
    branch.final = branch.timedOut && response.status === 487 ? { ...response, status: 408, reason: 'Request Timeout' } : response;
    // s16.7 step 5: a 6xx ("decline everywhere") ends the other branches of an INVITE.
    if (response.status >= 600 && call.server.invite) for (const other of call.branches) if (other !== branch && !other.final) this.cancelBranch(other);
    this.finishIfDone(call);
  }

  private finishIfDone(call: ProxyCall): void {
    if (call.starting || call.branches.some((b) => !b.final)) return;
    const declined = call.branches.some((b) => b.final!.status >= 600);
    if (!call.answered && !call.cancelled && !declined && call.later.length > 0) return this.startBranches(call, call.later.shift()!);
    this.deps.servers.clock.clearTimer(call.timerC);
    this.calls.delete(call.server);
    if (call.answered) return;
    if (beganMedia(call.server, call.media)) this.deps.media!.ended(call.server.checked.callId); // the call, or its media taken up again, never began
    else if (call.media?.offered) this.deps.media!.offerFailed(call.server.checked.callId); // a re-offer refused: the session goes on as it was
    const final = chosenFinal(call.branches.map((b) => b.final!));
    if (final.status === 408 && !call.server.invite) return call.server.endUnanswered(); // RFC 4320 s4.1
    call.server.send(upstream(final));
  }

  /**
   * What a phone says after its branch ended for the caller: a ring is cancelled; an answer is
   * ACKed (each time it comes) and the dialog it opened is hung up, as a caller does whose CANCEL
   * came too late (s15); the media anchor is not asked (the call ended).
   */
  private orphanResponse(branch: Branch, response: SipResponse): void {
    if (response.status < 200) {
      branch.provisional = true;
      return this.sendCancel(branch);
    }
    if (response.status >= 300) return; // its transaction ACKs it
    this.deps.transport.send(branch.flow, serializeSipMessage(inDialogRequest(branch.request, response, 'ACK', this.ourVia(branch.flow, newBranchId()))));
    if (branch.hungUp) return;
    branch.hungUp = true;
    const id = newBranchId();
    this.deps.clients.send(inDialogRequest(branch.request, response, 'BYE', this.ourVia(branch.flow, id)), id, branch.flow, { response: () => {}, timeout: () => {} });
  }

  private ourVia(flow: SipFlow, branchId: string): string {
    return `SIP/2.0/${flow.transport} ${this.hostPort()};branch=${branchId};rport`;
  }

  private cancelBranch(branch: Branch): void {
    if (branch.final || !branch.tx.isInvite) return;
    if (branch.provisional) this.sendCancel(branch);
    else branch.cancelWhenProvisional = true; // s9.1: not before the branch has answered at all
  }

  /**
   * s9.1: the CANCEL goes on the branch's own flow, under the branch INVITE's branch. If the
   * branch has still not given a final response 64*T1 later, it is taken as cancelled (a 487).
   */
  private sendCancel(branch: Branch, call?: ProxyCall): void {
    branch.cancelWhenProvisional = false;
    if (branch.cancelSent) return; // the caller's CANCEL, a 6xx elsewhere and Timer C may all ask
    branch.cancelSent = true;
    this.deps.clients.send(inviteCompanion(branch.request, 'CANCEL'), branch.branch, branch.tx.flow, { response: () => {}, timeout: () => {} });
    const owner = call ?? [...this.calls.values()].find((c) => c.branches.includes(branch));
    // Armed even when the call has ended for the caller: a phone that rings, is cancelled and never
    // answers must not keep its transaction for ever (a 1xx stopped Timer B).
    this.deps.servers.clock.setTimer(TIMEOUT_MS, () => {
      if (!branch.tx.waiting) return;
      branch.tx.terminate();
      if (owner) this.onBranchFinal(owner, branch, synthetic(487, 'Request Terminated', response408Headers(branch.request)));
    });
  }

  /** Which side of this home a request's media comes from (sip-media.ts), from what the proxy knows of it. */
  private mediaSide(media: SipMedia, request: SipRequest, checked: CheckedRequest, flow: SipFlow, target: Target): MediaSide | undefined {
    const from = { home: this.fromOtherHome(checked, flow), ownPhone: this.deps.location.hasFlow(flow) };
    return media.sideOf(request, from, target, { callId: checked.callId, fromTag: checked.from.params.get('tag') ?? '' });
  }

  /**
   * Sent on by another home peer: through the overlay, or with its Via on top (our branch prefix,
   * not our address). Only a hint for where media goes: the media keys are what is believed.
   */
  private fromOtherHome(checked: CheckedRequest, flow: SipFlow): boolean {
    if (flow.transport === 'OVERLAY') return true;
    const top = checked.vias[0];
    return top.params.get('branch')?.startsWith(BRANCH_PREFIX) === true && !this.isSelf(top.host, top.port);
  }

  /** A Route that names us: by our Node-ID, by an address of ours, or by a domain we serve (a phone's outbound proxy set to it). */
  private isSelfRoute(uri: SipUri): boolean {
    const peer = uri.params.get(PEER_PARAM);
    if (peer) return peer === this.deps.selfNodeId;
    return this.isSelf(uri.host, uri.port);
  }

  /** A URI at this peer: an address of ours, or a domain we serve. */
  namesUs(uri: SipUri): boolean {
    return this.isSelf(uri.host, uri.port);
  }

  /**
   * s16.3 step 4: a Via of ours whose branch carries the loop hash this request has now came
   * back unchanged: a loop (482). A different hash is a spiral (retargeted on the way), and fine.
   */
  private looped(request: SipRequest, checked: CheckedRequest): boolean {
    const ours = checked.vias.filter((via) => this.isSelf(via.host, via.port) && via.params.get('branch')?.startsWith(BRANCH_PREFIX));
    if (ours.length === 0) return false;
    const hash = loopHashOf(request, checked);
    return ours.some((via) => via.params.get('branch')!.slice(BRANCH_PREFIX.length).split('.')[0] === hash);
  }

  /** A Route recorded by another peer is reached as that peer is reached (perhaps through the overlay). */
  private flowTo(uri: SipUri): SipFlow {
    const peer = uri.params.get(PEER_PARAM);
    const direct = udpTo(uri);
    return peer && this.deps.remote ? this.deps.remote.peer(peer, direct.remote) : direct;
  }

  private isSelf(host: string, port: number | undefined): boolean {
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    // A domain we serve, with no port: ours whatever our port (it is never looked up in DNS).
    if (port === undefined && this.deps.servesDomain(h) && !isIpLiteral(h)) return true;
    if ((port ?? 5060) !== this.deps.self.port) return false;
    return sameHost(this.deps.self.host, h) || (this.deps.selfHosts ?? []).some((own) => sameHost(own, h)) || (this.deps.servesDomain(h) && !isIpLiteral(h));
  }

  private recordRoute(flow: SipFlow | undefined): string {
    const transport = flow?.transport === 'TCP' ? ';transport=tcp' : '';
    return `<sip:${this.hostPort()}${transport};lr;${PEER_PARAM}=${this.deps.selfNodeId}>`;
  }

  private hostPort(): string {
    const { host, port } = this.deps.self;
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
}

/**
 * s16.6 step 8: what a branch id hashes so that a request coming back unchanged can be told from
 * one that spirals: Request-URI, the dialog and transaction identifiers, Route and Proxy-Require.
 */
function loopHashOf(request: SipRequest, checked: CheckedRequest): string {
  const hash = createHash('sha256');
  for (const part of [request.uri, checked.from.params.get('tag') ?? '', checked.to.params.get('tag') ?? '', checked.callId, String(checked.cseq.seq), ...request.headers.getAll('Route'), ...request.headers.getAll('Proxy-Require')]) {
    hash.update(part).update('\n');
  }
  return hash.digest('hex').slice(0, 12);
}

/**
 * The branch of a request forwarded statelessly (s16.11): the same for every retransmission of
 * it, so the next hop sees a retransmission, not a new request. A phone retransmits its ACK for
 * each 2xx it gets again; given a fresh branch at each proxy, a strict UA (SIPp) takes the second
 * ACK for an unexpected request and drops the call.
 */
/** A branch of our own for a request that starts a transaction of its own (no loop hash: nothing is forwarded). */
function newBranchId(): string {
  return `${BRANCH_PREFIX}${randomBytes(8).toString('hex')}`;
}

function statelessBranch(request: SipRequest, checked: CheckedRequest, flow: SipFlow): string {
  const top = checked.vias[0];
  const hash = createHash('sha256');
  for (const part of [top ? `${top.host}:${top.port ?? ''};${top.params.get('branch') ?? ''}` : '', request.uri, checked.from.params.get('tag') ?? '', checked.to.params.get('tag') ?? '', checked.callId, `${checked.cseq.seq} ${checked.cseq.method}`, `${flow.transport} ${flow.nodeId ?? `${flow.remote.host}:${flow.remote.port}`}`]) hash.update(part).update('\n');
  return `${BRANCH_PREFIX}${hash.digest('hex').slice(0, 16)}`;
}

/** A message as it goes on without its body (SDP that must not travel as it is), and so without a Content-Type. */
function withoutBody<M extends SipMessage>(message: M): M {
  const headers = message.headers.clone();
  headers.remove('Content-Type');
  return { ...message, headers, body: new Uint8Array(0) };
}

/**
 * An INVITE whose media was not there before it: a new call, or a re-INVITE that took up a call
 * this home had forgotten (its --media-timeout). When it fails, the media it began goes.
 */
function beganMedia(server: ServerTransaction, media: MediaPlan | undefined): boolean {
  return server.invite && media !== undefined && !media.existed;
}

function isInitialInvite(server: ServerTransaction): boolean {
  return server.invite && !server.checked.to.params.has('tag');
}
