import type { SipMessage } from '../message/sip-message.js';
import { SipError } from '../sip-error.js';
import type { CallMedia } from './call-media.js';
import { MediaPortsExhausted } from './port-pool.js';
import type { RelayStream } from './relay-stream.js';
import type { Id } from '../../../wire/id.js';

/*
 * Where the proxy meets the media anchor (issue 16): which messages of a call carry SDP that
 * must be rewritten, and which way. A call is anchored when it crosses this home: a request that
 * leaves for another home peer from anywhere but another home (our phone's side), or that comes
 * from another home to one of our phones. Another home is recognised by the overlay path or by
 * the signed media key its SDP always carries (checked by CallMedia against the trust policy).
 */
export type MediaAnchorMode = 'auto' | 'always' | 'off';
/**
 * Where a message comes from: our phone or another home, in a call that crosses homes; the
 * caller's or the callee's phone, in a call between two phones of this home (`always` only).
 */
export type MediaSide = 'phone' | 'home' | 'caller' | 'callee';

/** Where the answers to a message from `side` come from. */
export function otherSide(side: MediaSide): MediaSide {
  return ({ phone: 'home', home: 'phone', caller: 'callee', callee: 'caller' } as const)[side];
}

/** Calls whose caller (`always`) or answering dialog is remembered at once. */
const MAX_REMEMBERED = 4096;
/** Early dialogs noted per forked call: the anchor gives at most this many branches ports of their own. */
const MAX_BRANCHES_NOTED = 16;

/** A media key share of another home (call-media.ts), this version's or an older one's. */
const KEY_LINE = /^a=p2psip-key(?:-v[234])?:/m;

export interface MediaLimits {
  /** Anchored calls at once (`--max-calls`); a call beyond it is answered 503. */
  readonly maxCalls: number;
  /** Seconds a refused caller is told to wait (Retry-After). */
  readonly retryAfterSeconds: number;
}

/** A message whose SDP could not be anchored: the request is answered with this. */
export class MediaRefused extends SipError {
  constructor(
    status: number,
    reason: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(status, reason);
  }
}

export interface MediaCallCounters {
  anchored: number;
  /** Offers in calls already anchored (re-INVITE or UPDATE: hold, resume, a new codec or port). */
  reoffers: number;
  refused: number;
  /** Responses whose SDP could not be read: forwarded without a body, never half-rewritten. */
  unreadableAnswers: number;
  /** Calls whose media ended because the other home's certificate was revoked mid-call. */
  endedRevoked: number;
}

/** What the overlay link that carries media can say about itself (node/media-backhaul.ts). */
export interface BackhaulReport {
  /** Whether the link to that home goes through a relay peer, and which (its Node-ID) when known. */
  relayOf(home: Id): { relayed: boolean; relay?: string };
  counters(): Record<string, number>;
}

/** The user of this home each side's phone is registered as (no entry: a side that is another home, or a phone of no user of ours). */
export type SideAccounts = Partial<Record<MediaSide, string>>;

/** What `p2psip calls` shows of an anchored call besides its streams' counters. */
interface CallFacts {
  readonly caller: string;
  readonly callee: string;
  readonly startedAt: number;
  codecs: string[];
}

export class SipMedia {
  readonly counters: MediaCallCounters = { anchored: 0, reoffers: 0, refused: 0, unreadableAnswers: 0, endedRevoked: 0 };
  private readonly facts = new Map<string, CallFacts>();
  /** Calls between two phones of this home (`always`): the caller's From tag. */
  private readonly localCallers = new Map<string, string>();
  /** The To tag of the dialog that answered each call first. */
  private readonly winningTags = new Map<string, string>();
  /** The From tag of each call's INVITE: every dialog of the call, forked or not, carries it. */
  private readonly callerTags = new Map<string, string>();
  /** Per call, the user of this home whose phone is on each of its sides (review M12). */
  private readonly accounts = new Map<string, SideAccounts>();
  /** Per call forked to several of our phones, the branch of each early dialog (by its To tag) that carried SDP. */
  private readonly branchTags = new Map<string, Map<string, string>>();

  constructor(
    readonly calls: CallMedia,
    readonly mode: MediaAnchorMode,
    private readonly limits: MediaLimits,
    private readonly now: () => number,
    private readonly backhaul?: BackhaulReport,
  ) {
    const timedOut = calls.anchor.onTimeout;
    calls.anchor.onTimeout = (callId) => {
      timedOut(callId);
      this.facts.delete(callId);
      this.forget(callId);
    };
  }

  /**
   * The side a request comes from when its media must be anchored on the way to its target,
   * else undefined. `from.home`: the proxy saw it come from another home peer (through the
   * overlay, or forwarded by one; its signed media key says so too, and is what is believed);
   * `from.ownPhone`: it came over a flow one of this home's phones registered from. `dialog`:
   * the request's Call-ID and From tag, as the proxy parsed them.
   */
  sideOf(request: SipMessage, from: { home: boolean; ownPhone: boolean }, target: { home?: boolean; registered?: boolean }, dialog: { callId: string; fromTag: string }): MediaSide | undefined {
    if (this.mode === 'off') return undefined;
    const fromHome = from.home || carriesHomeKey(request);
    if (target.home && !fromHome) return 'phone';
    if (fromHome && target.registered) return 'home';
    // Unsealed on both sides, so only this home's own phones (their registered flows) may describe one.
    if (this.mode !== 'always' || !target.registered || !from.ownPhone) return undefined;
    // Two phones of this home: the caller is the one whose From tag began the call.
    const caller = this.localCallers.get(dialog.callId);
    if (caller === undefined) {
      // Full: the oldest goes (a live call's caller is forgotten only after 4095 newer calls).
      if (this.localCallers.size >= MAX_REMEMBERED) this.localCallers.delete(this.localCallers.keys().next().value as string);
      this.localCallers.set(dialog.callId, dialog.fromTag);
      return 'caller';
    }
    return caller === dialog.fromTag ? 'caller' : 'callee';
  }

  /**
   * A new call (with or without an offer yet) must fit under `--max-calls`: else 503 with
   * Retry-After. `accounts`: the users of this home whose phones are on its sides.
   */
  admit(callId: string, callerTag: string, accounts: SideAccounts = {}): void {
    if (!(this.calls.has(callId) || this.calls.active < this.limits.maxCalls)) {
      this.counters.refused++;
      throw new MediaRefused(503, `Service Unavailable (${this.limits.maxCalls} calls already anchored, --max-calls)`, this.limits.retryAfterSeconds);
    }
    if (this.callerTags.has(callId)) return; // a second INVITE before the first's media began is not the call
    if (this.callerTags.size >= MAX_REMEMBERED) this.callerTags.delete(this.callerTags.keys().next().value as string);
    this.callerTags.set(callId, callerTag);
    if (this.accounts.size >= MAX_REMEMBERED) this.accounts.delete(this.accounts.keys().next().value as string);
    this.accounts.set(callId, accounts);
  }

  /** The user of this home whose phone is on a side of the call, as admitted: only phones of that account may offer for it. */
  accountOf(callId: string, side: MediaSide): string | undefined {
    return this.accounts.get(callId)?.[side];
  }

  /**
   * Whether a request of the dialog with these tags (From and To, either way round) may act on the
   * call's media: one of the call's own dialogs, and once answered, the one that answered. A second
   * dialog under the same Call-ID (a stranger's INVITE that reused it) moves nothing.
   */
  ownsDialog(callId: string, tags: readonly string[]): boolean {
    const caller = this.callerTags.get(callId);
    if (caller !== undefined && !tags.includes(caller)) return false;
    const winner = this.winningTags.get(callId);
    return winner === undefined || tags.includes(winner);
  }

  /** Whether a new call's INVITE (From tag `fromTag`) reuses the Call-ID of a call anchored here, or of another caller's call not yet anchored. */
  callIdTaken(callId: string, fromTag: string): boolean {
    const caller = this.callerTags.get(callId);
    return this.calls.has(callId) || (caller !== undefined && caller !== fromTag);
  }

  /** Whether the dialog with these tags is one of a call whose media is anchored here now. */
  anchorsDialog(callId: string, tags: readonly string[]): boolean {
    return this.calls.has(callId) && this.ownsDialog(callId, tags);
  }

  /** Whether the message has an SDP body to rewrite. */
  hasSdp(message: SipMessage): boolean {
    if (message.body.length === 0) return false;
    const type = (message.headers.get('Content-Type') ?? '').split(';')[0].trim().toLowerCase();
    return type === 'application/sdp';
  }

  /**
   * The body `message` goes on with: its SDP rewritten for the next hop. An offer may open the
   * call's ports (so it is async). Throws MediaRefused (488 unreadable or untrusted SDP, 503
   * when ports or calls run out). `otherHome`: the other home's Node-ID (hex) as the route knows
   * it, where SDP from our phone goes or where SDP from a home came from.
   */
  async rewrite(callId: string, message: SipMessage, kind: 'offer' | 'answer', from: MediaSide, source: string, forkBranch?: string, otherHome?: string): Promise<Uint8Array> {
    // A branch's response names its early dialog; what comes later in that dialog (an UPDATE, a PRACK, their answers) is that branch's (review M6).
    if (forkBranch !== undefined && message.kind === 'response') this.noteBranch(callId, tagIn(message.headers.get('To')), forkBranch);
    const branch = forkBranch ?? this.branchOfDialog(callId, message);
    try {
      if (kind === 'offer') {
        const isNew = !this.calls.has(callId);
        if (isNew && this.calls.active >= this.limits.maxCalls) throw new MediaPortsExhausted(`${this.limits.maxCalls} calls already anchored (--max-calls)`);
        const text =
          from === 'phone'
            ? await this.calls.offerFromPhone(callId, message.body, source, otherHome, branch)
            : from === 'home'
              ? await this.calls.offerFromHome(callId, message.body, source, message.kind === 'request', otherHome, branch)
              : await this.calls.offerLocal(callId, message.body, from === 'caller' ? 'a' : 'b', source, branch);
        if (!isNew) this.counters.reoffers++;
        // A late offer in the call's 2xx; or an UPDATE that took up a call whose media went: an
        // UPDATE offers only once the first offer was answered (RFC 3311 s5.1), and no 2xx of an
        // INVITE will mark it now (review R4: its BYE then freed nothing for 5 minutes).
        if (answersCall(message) || (isNew && message.kind === 'request' && message.method === 'UPDATE')) this.calls.anchor.answered(callId);
        if (isNew) {
          this.counters.anchored++;
          this.facts.set(callId, { caller: aorIn(message.headers.get('From')), callee: aorIn(message.headers.get('To')), startedAt: this.now(), codecs: codecsIn(text) });
        }
        return Buffer.from(text, 'utf8');
      }
      const text =
        from === 'phone'
          ? this.calls.answerFromPhone(callId, message.body, source, branch)
          : from === 'home'
            ? this.calls.answerFromHome(callId, message.body, source, message.kind === 'request', otherHome)
            : this.calls.answerLocal(callId, message.body, from === 'caller' ? 'a' : 'b', source, branch);
      // An answer in a 183 (or its PRACK) leaves the call ringing: the media timeout waits for the call's answer.
      if (answersCall(message)) this.calls.anchor.answered(callId);
      const facts = this.facts.get(callId);
      if (facts) facts.codecs = codecsIn(text); // what both ends agreed on
      return Buffer.from(text, 'utf8');
    } catch (error) {
      this.counters.refused++;
      if (error instanceof MediaPortsExhausted) throw new MediaRefused(503, `Service Unavailable (${error.message})`, this.limits.retryAfterSeconds);
      // 488 unreadable or untrusted SDP, 491 offers crossed, 503 the peer is stopping.
      if (error instanceof SipError) throw new MediaRefused(error.status, error.reason);
      throw error;
    }
  }

  /**
   * The body for one more branch of an INVITE forked to several of this home's phones: the
   * offer with ports of that branch's own (issue 16: each branch that answers with SDP has its
   * own leg). Undefined (the branch shares the first one's) when that cannot be had.
   */
  async branchOffer(callId: string, branch: string): Promise<Uint8Array | undefined> {
    try {
      const text = await this.calls.branchOffer(callId, branch);
      return text === undefined ? undefined : Buffer.from(text, 'utf8');
    } catch {
      return undefined; // it shares the first branch's offer, which did work
    }
  }

  /** The first 2xx came from `branch` of a forked INVITE: the other branches' ports go back. */
  branchWon(callId: string, branch: string): void {
    this.calls.branchWon(callId, branch);
  }

  /** A branch of a forked INVITE failed (or was cancelled): its ports go back. */
  branchEnded(callId: string, branch: string): void {
    this.calls.branchEnded(callId, branch);
  }

  /**
   * The first 2xx to the call's INVITE came from the dialog with this To tag: its BYE ends the
   * media. A late-offer call has no media yet (its 2xx carries the offer), but was admitted.
   */
  answeredBy(callId: string, toTag: string): void {
    this.calls.anchor.answered(callId); // its answer may have come before, in a reliable 183
    if (!this.winningTags.has(callId) && (this.calls.has(callId) || this.callerTags.has(callId))) {
      if (this.winningTags.size >= MAX_REMEMBERED) this.winningTags.delete(this.winningTags.keys().next().value as string);
      this.winningTags.set(callId, toTag);
    }
  }

  /**
   * A BYE of the call was answered 2xx: the media ends if it was the BYE of the dialog that owns
   * it (not of a second dialog a forked INVITE made, which the caller hangs up at once).
   */
  byeAnswered(callId: string, tags: readonly string[]): void {
    const owner = this.winningTags.get(callId);
    // Before the answer, a BYE ends one early dialog (a forked phone's) only; the INVITE's own end ends the media (review M11).
    if (owner === undefined ? this.calls.anchor.isAnswered(callId) !== false : tags.includes(owner)) this.ended(callId);
  }

  /**
   * A new call's INVITE was refused before its media began (488, 503): what was noted of it goes.
   * Nothing of a call whose media runs, or of another caller's, is touched (a stranger's INVITE may reuse its Call-ID).
   */
  refused(callId: string, fromTag: string): void {
    const caller = this.callerTags.get(callId);
    if (!this.calls.has(callId) && (caller === undefined || caller === fromTag)) this.forget(callId);
  }

  /** A re-offer in the call (a re-INVITE or UPDATE) got no 2xx: its media goes on as the last answer left it. */
  offerFailed(callId: string): void {
    this.calls.offerFailed(callId);
  }

  /** The call is over (BYE, CANCEL, a failed INVITE): its ports go back. */
  ended(callId: string): void {
    this.calls.close(callId);
    this.forget(callId);
  }

  private noteBranch(callId: string, toTag: string, branch: string): void {
    let tags = this.branchTags.get(callId);
    if (!tags) {
      if (this.branchTags.size >= MAX_REMEMBERED) this.branchTags.delete(this.branchTags.keys().next().value as string);
      this.branchTags.set(callId, (tags = new Map()));
    }
    if (toTag !== '' && (tags.has(toTag) || tags.size < MAX_BRANCHES_NOTED)) tags.set(toTag, branch);
  }

  /** The forked branch whose early dialog `message` is in (its tag is the To tag or the From tag, as the request goes), if any. */
  private branchOfDialog(callId: string, message: SipMessage): string | undefined {
    const tags = this.branchTags.get(callId);
    if (!tags) return undefined;
    return tags.get(tagIn(message.headers.get('To'))) ?? tags.get(tagIn(message.headers.get('From')));
  }

  private forget(callId: string): void {
    this.branchTags.delete(callId);
    this.facts.delete(callId);
    this.localCallers.delete(callId);
    this.winningTags.delete(callId);
    this.callerTags.delete(callId);
    this.accounts.delete(callId);
  }

  /** The overlay's configuration changed: calls with a home no longer believed lose their media. */
  revalidate(): void {
    for (const callId of this.calls.revalidate()) {
      this.counters.endedRevoked++;
      this.ended(callId);
    }
  }

  /** The peer is stopping: every call ends. */
  close(): void {
    this.calls.closeAll();
    this.branchTags.clear();
    this.facts.clear();
    this.localCallers.clear();
    this.winningTags.clear();
    this.callerTags.clear();
    this.accounts.clear();
  }

  /** status --json `media`. */
  status(): Record<string, unknown> {
    const anchor = this.calls.anchor;
    const totals = anchor.totals();
    const active = this.calls.active;
    const sessions = anchor.sessionsNow();
    const relayed = sessions.filter((s) => s.streams.some((stream) => stream.rtp.overOverlay('b'))).length;
    return {
      mode: this.mode,
      sessions: anchor.counters.sessions,
      active,
      anchored: this.counters.anchored,
      reoffers: this.counters.reoffers,
      // The internet leg: straight between the two anchors' media ports, or over the overlay link.
      direct: sessions.length - relayed,
      relayed,
      overlayIn: totals.overlayIn,
      overlayOut: totals.overlayOut,
      ...(this.backhaul ? { overlayLink: this.backhaul.counters() } : {}),
      packetsIn: totals.packetsIn,
      packetsOut: totals.packetsOut,
      // Of packetsIn: from this home's phones, and from other homes.
      fromPhones: totals.fromSide.a,
      fromHomes: totals.fromSide.b,
      bytesIn: totals.bytesIn,
      bytesOut: totals.bytesOut,
      dropped: totals.dropped,
      latched: anchor.latchedSides(),
      timeouts: anchor.counters.timeouts,
      // Branches of forked calls offered ports of their own, and those that shared the first branch's.
      branchLegs: anchor.counters.branchLegs,
      branchesSharing: anchor.counters.branchesSharing,
      refused: this.counters.refused,
      refusedNoPorts: anchor.counters.refusedNoPorts,
      unreadableAnswers: this.counters.unreadableAnswers,
      endedRevoked: this.counters.endedRevoked,
      maxCalls: this.limits.maxCalls,
      portRange: anchor.portRange,
      portsInUse: anchor.portsInUse,
    };
  }

  /**
   * `path`: `direct`, or `relayed` through a relay peer (`relay`: its Node-ID when this side knows
   * it; the far home's own relay is known to it only). `via`: the media ports, or the overlay link.
   */
  private pathOf(callId: string, rtp: readonly RelayStream[]): { path: string; relay?: string | null; via: string } {
    if (!rtp.some((r) => r.overOverlay('b'))) return { path: 'direct', via: 'media-ports' };
    const home = this.calls.farHomeOf(callId);
    const link = home !== undefined ? this.backhaul?.relayOf(home) : undefined;
    return link?.relayed ? { path: 'relayed', relay: link.relay ?? null, via: 'overlay-link' } : { path: 'direct', via: 'overlay-link' };
  }

  /** `p2psip calls`: each active call, its streams summed per direction. */
  activeCalls(): Record<string, unknown>[] {
    return this.calls.anchor.sessionsNow().map((session) => {
      const facts = this.facts.get(session.id);
      const rtp = session.streams.map((s) => s.rtp);
      const sum = (pick: (r: (typeof rtp)[number]) => number) => rtp.reduce((n, r) => n + pick(r), 0);
      const quality = session.streams[0]?.quality.summary();
      return {
        callId: session.id,
        caller: facts?.caller ?? '',
        callee: facts?.callee ?? '',
        ...this.pathOf(session.id, rtp),
        codecs: facts?.codecs ?? [],
        // The phone's side is a, the other home's b: "sent" is what our phone sent towards them.
        packetsSent: sum((r) => r.counters.fromSide.a),
        packetsReceived: sum((r) => r.counters.fromSide.b),
        latched: { phone: rtp.some((r) => r.latchedTo('a') !== undefined), home: rtp.some((r) => r.latchedTo('b') !== undefined) },
        // The longest silence from each party: a hold shows here, and so does a path that failed over.
        longestGapMs: { phone: Math.max(0, ...rtp.map((r) => r.longestGapMs('a'))), home: Math.max(0, ...rtp.map((r) => r.longestGapMs('b'))) },
        lossPercent: quality?.lossPercent ?? null,
        jitterMs: quality?.jitterMs ?? null,
        seconds: facts ? Math.round((this.now() - facts.startedAt) / 1000) : 0,
      };
    });
  }
}

/** The address-of-record in a From or To value: sip:user@host without parameters. */
/** A From or To header's tag ('' when it has none). */
function tagIn(value: string | undefined): string {
  return /;\s*tag\s*=\s*([^;>\s]+)/i.exec(value?.replace(/<[^>]*>/, '') ?? '')?.[1] ?? '';
}

function aorIn(value: string | undefined): string {
  const match = /<?(sips?:[^>;\s]+)/i.exec(value ?? '');
  return match ? match[1] : '';
}

/** The codec names an SDP's rtpmap lines give (static payload types 0 and 8 named when no rtpmap says). */
function codecsIn(sdp: string): string[] {
  const names = [...sdp.matchAll(/^a=rtpmap:\d+ ([^/\s]+)/gm)].map((m) => m[1]);
  if (names.length === 0) {
    const formats = /^m=audio \d+ \S+ (.*)$/m.exec(sdp)?.[1].split(' ') ?? [];
    for (const f of formats) if (f === '0' || f === '8') names.push(f === '0' ? 'PCMU' : 'PCMA');
  }
  return [...new Set(names)];
}

/** Whether an SDP answer in `message` is the call's answer: in a 2xx to an INVITE, or in an ACK (a late offer's). */
function answersCall(message: SipMessage): boolean {
  if (message.kind === 'request') return message.method === 'ACK';
  return message.status >= 200 && message.status < 300 && / INVITE$/i.test((message.headers.get('CSeq') ?? '').trim());
}

/** Every SDP another home peer sends carries its signed media key (call-media.ts). */
function carriesHomeKey(message: SipMessage): boolean {
  return message.body.length > 0 && KEY_LINE.test(Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength).toString('latin1'));
}
