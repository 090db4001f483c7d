import type { Certificate } from '../../identity/certificate.js';
import type { NodeIdentity } from '../../identity/identity.js';
import type { SignatureSuite } from '../../identity/signature-suite.js';
import type { TrustPolicy } from '../../identity/trust.js';
import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { Random } from '../../runtime/random.js';
import { KeyedRateLimiter, type RateLimit, TokenBucket } from '../../runtime/token-bucket.js';
import { type Address, addressKey } from '../../wire/address.js';
import { DecodeError } from '../../wire/decode-error.js';
import { FrameType } from '../../wire/frame.js';
import {
  decodeSecurityFrame,
  encodeSecurityFrame,
  handshakeTranscript,
  helloSignatureInput,
  isSecurityFrame,
  type LinkCookie,
  type LinkHello,
  type LinkReply,
  type LinkUnknown,
  MAX_SEALED_COUNTER,
  replySignatureInput,
  sealedFrameAad,
  SESSION_ID_BYTES,
  type SealedFrame,
} from '../../wire/link-security.js';
import { bytesToHex } from '../../runtime/hex.js';
import type { Link, LinkPeer } from '../link.js';
import { ReceiveWindow } from '../receive-window.js';
import { AnsweredHellos } from './answered-hellos.js';
import { CookieJar } from './cookie-jar.js';
import { deriveLinkKeys, type EphemeralKey, ephemeralFromBytes, exportedSecret, openBytes, sealBytes } from './link-crypto.js';

/*
 * Encrypted, authenticated links (docs/security.md). Wraps a datagram Link: the first datagram
 * to an address starts a handshake in which both ends show their certificates and sign fresh
 * X25519 keys; every overlay frame then travels sealed with ChaCha20-Poly1305 under a
 * per-direction key, with a strict replay window. Plaintext overlay frames are refused; STUN
 * passes through untouched (it shares the port and carries its own integrity, RFC 8489).
 *
 * Nothing costly happens for a sender that has not shown it can receive at its address: a first
 * hello gets a stateless cookie (cookie-jar.ts), a frame for an unknown session a small hint.
 * The responder's session is half-open until the initiator's first sealed frame opens under it
 * (key confirmation): until then it is never sent on and its address is believed to be nobody.
 * Each source address has budgets of datagrams and of handshakes, and every datagram is handled
 * inside a guard, so no sender can stop the node or take more than a bounded share of its work.
 */

export interface SealedLinkOptions {
  /** Start a fresh handshake when the newest session is older than this. */
  readonly rekeyAfterMs: number;
  /** Forget sessions that have received nothing for this long. */
  readonly sessionIdleMs: number;
  /** Resend an unanswered hello when the layer above sends again after this long. */
  readonly helloRetryMs: number;
  /** Give up on an unanswered handshake (and its queued datagrams) after this long. */
  readonly handshakeTimeoutMs: number;
  /** Datagrams held per address while its handshake runs. */
  readonly maxQueued: number;
  /** Hellos whose clock differs from ours by more are refused (replays of old hellos). */
  readonly helloMaxSkewSeconds: number;
  /** Every datagram from one address. */
  readonly datagramLimit: RateLimit;
  /** Hellos from one address (each costs a signature check and a key agreement). */
  readonly handshakeLimit: RateLimit;
  /** Hellos from everyone together. */
  readonly handshakeLimitTotal: RateLimit;
  /** Cookie secrets rotate this often; a cookie is good for one to two periods. */
  readonly cookieRotateMs: number;
  /** Cookies sent to one address, and to everyone (a first hello is at least twice a cookie's size). */
  readonly cookieLimit: RateLimit;
  readonly cookieLimitTotal: RateLimit;
  /** "Unknown session" hints sent to one address, and to everyone. */
  readonly unknownHintLimit: RateLimit;
  readonly unknownHintLimitTotal: RateLimit;
  /** Responder sessions waiting for the initiator's key confirmation, in all (the oldest make room). */
  readonly maxHalfOpen: number;
  /** Answered hellos remembered (each until its hello is too old to believe). */
  readonly maxAnsweredHellos: number;
  /** Rekey after this many frames sent on one session, long before the 48-bit counter could wrap. */
  readonly rekeyAfterFrames: number;
  readonly sweepIntervalMs: number;
}

export const DEFAULT_SEALED_LINK_OPTIONS: SealedLinkOptions = {
  rekeyAfterMs: 3_600_000,
  sessionIdleMs: 900_000,
  helloRetryMs: 1_000,
  handshakeTimeoutMs: 20_000,
  maxQueued: 64,
  helloMaxSkewSeconds: 600,
  datagramLimit: { ratePerSecond: 2_000, burst: 4_000 },
  handshakeLimit: { ratePerSecond: 2, burst: 8 },
  handshakeLimitTotal: { ratePerSecond: 200, burst: 400 },
  cookieRotateMs: 60_000,
  cookieLimit: { ratePerSecond: 4, burst: 8 },
  cookieLimitTotal: { ratePerSecond: 1_000, burst: 2_000 },
  unknownHintLimit: { ratePerSecond: 1, burst: 2 },
  unknownHintLimitTotal: { ratePerSecond: 100, burst: 200 },
  maxHalfOpen: 256,
  maxAnsweredHellos: 16_384,
  rekeyAfterFrames: 2 ** 32,
  sweepIntervalMs: 30_000,
};

/** Bytes a sealed frame adds to the frame inside it: array, type, session, counter, length, tag. */
export const SEALED_FRAME_OVERHEAD = 40;

export interface LinkSecurityCounters {
  handshakesStarted: number;
  handshakesAnswered: number;
  handshakesCompleted: number;
  handshakesRefused: number;
  handshakesTimedOut: number;
  handshakesConfirmed: number;
  halfOpenExpired: number;
  cookiesSent: number;
  cookiesRefused: number;
  unknownHintsSent: number;
  recoveries: number;
  sealed: number;
  opened: number;
  badTags: number;
  replays: number;
  unknownSessions: number;
  plaintextRefused: number;
  rateLimited: number;
  malformed: number;
  sessionsRevoked: number;
  /** Datagrams whose handling threw: dropped, counted, and the node keeps running. */
  faults: number;
}

export interface SealedLinkDeps {
  readonly identity: NodeIdentity;
  readonly trust: TrustPolicy;
  readonly suite: SignatureSuite;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** The overlay's 32-bit identifier, signed into both handshake messages. */
  readonly overlayId: number;
  readonly options?: Partial<SealedLinkOptions>;
}

interface Session {
  readonly address: Address;
  readonly localId: string;
  readonly remoteId: Uint8Array;
  readonly sendKey: Uint8Array;
  readonly receiveKey: Uint8Array;
  readonly exporter: Uint8Array;
  readonly window: ReceiveWindow;
  readonly peer: LinkPeer;
  readonly establishedAt: number;
  /** The initiator's side is confirmed by the reply; the responder's by the first frame that opens. */
  confirmed: boolean;
  sendCounter: number;
  lastReceivedAt: number;
}

interface PendingHandshake {
  readonly address: Address;
  hello: LinkHello;
  helloBytes: Uint8Array;
  readonly ephemeral: EphemeralKey;
  readonly startedAt: number;
  sentAt: number;
  cookiesTaken: number;
  readonly queue: Uint8Array[];
}

interface AddressState {
  /** Confirmed sessions, newest first; two at most, so crossing handshakes and rekeys never drop traffic in flight. */
  sessions: Session[];
  pending: PendingHandshake | undefined;
  lastRecoveryAt: number;
}

/** A lost reply is sent again this many times at most, for retransmitted hellos. */
const MAX_REPLY_RESENDS = 4;
/** Half-open sessions one source address may hold at once (a crossing retransmission, a rekey). */
const MAX_HALF_OPEN_PER_ADDRESS = 2;
/** Half-open sessions one IP address may hold at once (its ports together). */
const MAX_HALF_OPEN_PER_HOST = 8;
/** A key confirmation carries nothing: a sealed frame whose plaintext is empty. */
const EMPTY = new Uint8Array(0);
/** A pending handshake follows at most this many cookies (a responder rotating its secret sends a second). */
const MAX_COOKIES_PER_HANDSHAKE = 3;

export class SealedLink implements Link {
  readonly counters: LinkSecurityCounters = {
    handshakesStarted: 0,
    handshakesAnswered: 0,
    handshakesCompleted: 0,
    handshakesRefused: 0,
    handshakesTimedOut: 0,
    handshakesConfirmed: 0,
    halfOpenExpired: 0,
    cookiesSent: 0,
    cookiesRefused: 0,
    unknownHintsSent: 0,
    recoveries: 0,
    sealed: 0,
    opened: 0,
    badTags: 0,
    replays: 0,
    unknownSessions: 0,
    plaintextRefused: 0,
    rateLimited: 0,
    malformed: 0,
    sessionsRevoked: 0,
    faults: 0,
  };
  private readonly options: SealedLinkOptions;
  private readonly addresses = new Map<string, AddressState>();
  private readonly sessionsById = new Map<string, Session>();
  private readonly pendingById = new Map<string, PendingHandshake>();
  private readonly answered: AnsweredHellos;
  private readonly cookies: CookieJar;
  private readonly datagramLimiter: KeyedRateLimiter<string>;
  private readonly handshakeLimiter: KeyedRateLimiter<string>;
  private readonly handshakeTotal: TokenBucket;
  private readonly cookieLimiter: KeyedRateLimiter<string>;
  private readonly cookieTotal: TokenBucket;
  private readonly hintLimiter: KeyedRateLimiter<string>;
  private readonly hintTotal: TokenBucket;
  /** Every half-open responder session, oldest first (a SYN cache: the oldest go when it is full). */
  private readonly halfOpen = new Map<string, Session>();
  private faultLogged = false;
  private handler: (from: Address, datagram: Uint8Array, peer?: LinkPeer) => void = () => {};
  private sessionResetHandler: (address: Address) => void = () => {};
  private sweepTimer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly inner: Link,
    private readonly deps: SealedLinkDeps,
  ) {
    this.options = { ...DEFAULT_SEALED_LINK_OPTIONS, ...deps.options };
    const { clock } = deps;
    this.answered = new AnsweredHellos(this.options.maxAnsweredHellos);
    this.cookies = new CookieJar(clock, deps.random, this.options.cookieRotateMs);
    this.datagramLimiter = new KeyedRateLimiter(this.options.datagramLimit, clock);
    this.handshakeLimiter = new KeyedRateLimiter(this.options.handshakeLimit, clock);
    this.handshakeTotal = new TokenBucket(this.options.handshakeLimitTotal, clock);
    this.cookieLimiter = new KeyedRateLimiter(this.options.cookieLimit, clock);
    this.cookieTotal = new TokenBucket(this.options.cookieLimitTotal, clock);
    this.hintLimiter = new KeyedRateLimiter(this.options.unknownHintLimit, clock);
    this.hintTotal = new TokenBucket(this.options.unknownHintLimitTotal, clock);
    inner.onDatagram((from, datagram) => this.receiveGuarded(from, datagram));
    this.scheduleSweep();
  }

  get localAddress(): Address {
    return this.inner.localAddress;
  }

  onDatagram(handler: (from: Address, datagram: Uint8Array, peer?: LinkPeer) => void): void {
    this.handler = handler;
  }

  send(to: Address, datagram: Uint8Array): void {
    if (this.closed) return;
    if (datagram.length > 0 && datagram[0] <= 0x03) {
      this.inner.send(to, datagram); // STUN: integrity of its own, and must be readable by any STUN client
      return;
    }
    const key = addressKey(to);
    let state = this.stateFor(key);
    let session = state.sessions[0];
    // A session whose counter has run out is never sent on again (a nonce is never reused).
    if (session && session.sendCounter > MAX_SEALED_COUNTER) {
      this.dropSession(session);
      state = this.stateFor(key);
      session = state.sessions[0];
    }
    if (session) {
      this.sendSealed(session, datagram);
      const old = this.deps.clock.now() - session.establishedAt > this.options.rekeyAfterMs || session.sendCounter >= this.options.rekeyAfterFrames;
      if (old && !state.pending) this.initiate(to, state);
      return;
    }
    if (!state.pending) this.initiate(to, state);
    else if (this.deps.clock.now() - state.pending.sentAt >= this.options.helloRetryMs) this.resendHello(state.pending);
    const queue = state.pending!.queue;
    if (queue.length < this.options.maxQueued) queue.push(datagram);
  }

  /**
   * Told when the far end says it holds no session we send on: it restarted, or our datagrams
   * now reach it from another address (our NAT mapped us anew, our ISP renumbered us).
   */
  onSessionReset(handler: (address: Address) => void): void {
    this.sessionResetHandler = handler;
  }

  /** Who holds a confirmed session from this address (a relay serves only enrolled nodes). */
  peerAt(address: Address): LinkPeer | undefined {
    return this.addresses.get(addressKey(address))?.sessions[0]?.peer;
  }

  /**
   * A secret for `label` from each confirmed session with this address, the one we send on first
   * (crossing handshakes may leave the far end sending on the other). The far end derives the
   * same from its side; a host that only passes the datagrams along cannot, so a message keyed
   * with it comes from the node the session was made with, not from whoever holds its address.
   */
  exportedSecrets(address: Address, label: string): Uint8Array[] {
    return (this.addresses.get(addressKey(address))?.sessions ?? []).map((s) => exportedSecret(s.exporter, label));
  }

  /** Drops sessions whose certificate is no longer believed (revoked, expired, new configuration). */
  revalidate(): void {
    const nowSeconds = this.nowSeconds();
    for (const session of [...this.sessionsById.values()]) {
      try {
        this.deps.trust.accept(session.peer.certificate.bytes, nowSeconds);
      } catch (error) {
        this.counters.sessionsRevoked++;
        this.deps.log.info('link-session-dropped', { to: addressKey(session.address), subject: session.peer.subject, reason: (error as Error).message });
        this.dropSession(session);
      }
    }
  }

  status(): Record<string, number> {
    return { ...this.counters, sessions: this.sessionsById.size - this.halfOpen.size, halfOpen: this.halfOpen.size, handshaking: this.pendingById.size, answeredHellos: this.answered.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.clock.clearTimer(this.sweepTimer);
    await this.inner.close();
  }

  // --- receiving ---

  /** No datagram, however it is made, may throw out of a socket's receive callback. */
  private receiveGuarded(from: Address, datagram: Uint8Array): void {
    try {
      this.receive(from, datagram);
    } catch (error) {
      this.counters.faults++;
      if (!this.faultLogged) this.deps.log.warn('datagram-fault', { from: addressKey(from), bytes: datagram.length, error });
      this.faultLogged = true; // once per sweep: a sender that finds a fault must not also flood the log
    }
  }

  private receive(from: Address, datagram: Uint8Array): void {
    if (this.closed) return;
    const first = datagram.length > 0 ? datagram[0] : 0xff;
    if (first <= 0x03) {
      this.handler(from, datagram); // STUN (RFC 7983 ranges): the transport above hands it on
      return;
    }
    if (first < 0x80 || first > 0x9f) {
      this.counters.malformed++;
      return;
    }
    if (!isSecurityFrame(datagram)) {
      this.counters.plaintextRefused++;
      return;
    }
    const key = addressKey(from);
    if (!this.datagramLimiter.allow(key)) {
      this.counters.rateLimited++;
      return;
    }
    let frame;
    try {
      frame = decodeSecurityFrame(datagram);
    } catch (error) {
      this.counters.malformed++;
      if (!(error instanceof DecodeError)) this.deps.log.warn('decoder-fault', { error });
      return;
    }
    switch (frame.type) {
      case FrameType.Sealed:
        return this.onSealed(from, key, frame);
      case FrameType.LinkHello:
        return this.onHello(from, key, frame);
      case FrameType.LinkReply:
        return this.onReply(from, key, frame);
      case FrameType.LinkCookie:
        return this.onCookie(key, frame);
      case FrameType.LinkUnknown:
        return this.onUnknown(from, key, frame);
    }
  }

  private onSealed(from: Address, key: string, frame: SealedFrame): void {
    const session = this.sessionsById.get(bytesToHex(frame.session));
    if (!session || addressKey(session.address) !== key) {
      this.counters.unknownSessions++;
      this.hintUnknown(from, key, frame.session);
      return;
    }
    if (!session.window.isFresh(frame.counter)) {
      this.counters.replays++;
      return;
    }
    const plain = openBytes(session.receiveKey, frame.counter, sealedFrameAad(frame.session, frame.counter), frame.ciphertext);
    if (!plain) {
      this.counters.badTags++;
      return;
    }
    session.window.accept(frame.counter);
    session.lastReceivedAt = this.deps.clock.now();
    this.counters.opened++;
    if (!session.confirmed) this.confirm(key, session);
    if (plain.length === 0) return; // a key confirmation and nothing more
    this.handler(from, plain, session.peer);
  }

  /**
   * A sealed frame for a session we do not hold: we restarted, or dropped it. Tell the sender,
   * in fewer bytes than it sent, so the session's owner can start a fresh handshake; a spoofed
   * source learns nothing and costs us no signature.
   */
  private hintUnknown(from: Address, key: string, session: Uint8Array): void {
    if (!this.hintLimiter.allow(key) || !this.hintTotal.take()) return;
    this.counters.unknownHintsSent++;
    this.inner.send(from, encodeSecurityFrame({ type: FrameType.LinkUnknown, session }));
  }

  /** The other end holds no session by this id: if it is ours toward that address, handshake again. */
  private onUnknown(from: Address, key: string, frame: LinkUnknown): void {
    const state = this.addresses.get(key);
    const remoteId = bytesToHex(frame.session);
    const session = state?.sessions.find((s) => bytesToHex(s.remoteId) === remoteId);
    if (!state || !session) {
      this.counters.unknownSessions++;
      return;
    }
    const now = this.deps.clock.now();
    if (now - state.lastRecoveryAt < this.options.helloRetryMs) return;
    state.lastRecoveryAt = now;
    this.counters.recoveries++;
    this.deps.log.debug('link-session-reset', { by: key });
    this.dropSession(session);
    if (!state.pending) this.initiate(from, this.stateFor(key));
    this.sessionResetHandler(from);
  }

  /** Responder side: cheap checks, the cookie, budgets; then check the initiator, agree keys, answer. */
  private onHello(from: Address, key: string, hello: LinkHello): void {
    const nowSeconds = this.nowSeconds();
    if (Math.abs(nowSeconds - hello.time) > this.options.helloMaxSkewSeconds) {
      this.refused(from, new Error('hello is stale or from the future'));
      return;
    }
    if (!this.cookies.valid(key, hello)) {
      if (hello.cookie) this.counters.cookiesRefused++;
      this.sendCookie(from, key, hello);
      return;
    }
    const id = bytesToHex(hello.session);
    const earlier = this.answered.get(id, key);
    if (earlier) {
      // Our reply was lost: send it again, a few times at most (an on-path host could replay the hello).
      if (earlier.replyBytes && earlier.resent++ < MAX_REPLY_RESENDS) this.inner.send(from, earlier.replyBytes);
      return;
    }
    if (!this.handshakeLimiter.allow(key) || !this.handshakeTotal.take()) {
      this.counters.rateLimited++;
      return;
    }
    let certificate: Certificate;
    try {
      certificate = acceptNodeCertificate(this.deps.trust, hello.certificate, nowSeconds);
      if (!this.deps.suite.verify(certificate, helloSignatureInput(this.deps.overlayId, hello.session, hello.ephemeral, hello.time), hello.signature)) {
        throw new Error('hello signature does not verify');
      }
    } catch (error) {
      this.refused(from, error);
      return;
    }
    const responderSession = this.newSessionId();
    const ephemeral = ephemeralFromBytes(this.deps.random.bytes(32));
    const ownCertificate = this.deps.identity.certificate.bytes;
    let keys;
    try {
      keys = deriveLinkKeys(ephemeral, hello.ephemeral, hello.session, responderSession, hello.ephemeral, ephemeral.publicKey, handshakeTranscript(hello, ownCertificate));
    } catch (error) {
      this.refused(from, error);
      return;
    }
    const reply: LinkReply = {
      type: FrameType.LinkReply,
      initiatorSession: hello.session,
      responderSession,
      ephemeral: ephemeral.publicKey,
      certificate: ownCertificate,
      signature: this.deps.suite.sign(this.deps.identity.keys, replySignatureInput(this.deps.overlayId, hello, responderSession, ephemeral.publicKey)),
    };
    const replyBytes = encodeSecurityFrame(reply);
    const now = this.deps.clock.now();
    this.answered.remember(id, key, replyBytes, now, (hello.time + this.options.helloMaxSkewSeconds + 1) * 1000);
    this.counters.handshakesAnswered++;
    this.holdHalfOpen(key, {
      address: from,
      localId: bytesToHex(responderSession),
      remoteId: hello.session,
      sendKey: keys.responderToInitiator,
      receiveKey: keys.initiatorToResponder,
      exporter: keys.exporter,
      window: new ReceiveWindow(true),
      peer: peerOf(certificate),
      establishedAt: now,
      confirmed: false,
      sendCounter: 0,
      lastReceivedAt: now,
    });
    this.inner.send(from, replyBytes);
  }

  private sendCookie(from: Address, key: string, hello: LinkHello): void {
    if (!this.cookieLimiter.allow(key) || !this.cookieTotal.take()) {
      this.counters.rateLimited++;
      return;
    }
    this.counters.cookiesSent++;
    const cookie: LinkCookie = { type: FrameType.LinkCookie, initiatorSession: hello.session, cookie: this.cookies.make(key, hello) };
    this.inner.send(from, encodeSecurityFrame(cookie));
  }

  /** Initiator side: the responder wants its cookie echoed. The signature does not cover it, so no new one. */
  private onCookie(key: string, frame: LinkCookie): void {
    const pending = this.pendingById.get(bytesToHex(frame.initiatorSession));
    if (!pending || addressKey(pending.address) !== key || pending.cookiesTaken >= MAX_COOKIES_PER_HANDSHAKE) {
      this.counters.unknownSessions++;
      return;
    }
    pending.cookiesTaken++;
    pending.hello = { ...pending.hello, cookie: frame.cookie };
    pending.helloBytes = encodeSecurityFrame(pending.hello);
    this.resendHello(pending);
  }

  /** Initiator side: the responder's answer to our hello. */
  private onReply(from: Address, key: string, reply: LinkReply): void {
    const pending = this.pendingById.get(bytesToHex(reply.initiatorSession));
    if (!pending || addressKey(pending.address) !== key) {
      this.counters.unknownSessions++;
      return;
    }
    let certificate: Certificate;
    let keys;
    try {
      certificate = acceptNodeCertificate(this.deps.trust, reply.certificate, this.nowSeconds());
      const signed = replySignatureInput(this.deps.overlayId, pending.hello, reply.responderSession, reply.ephemeral);
      if (!this.deps.suite.verify(certificate, signed, reply.signature)) throw new Error('reply signature does not verify');
      const transcript = handshakeTranscript(pending.hello, reply.certificate);
      keys = deriveLinkKeys(pending.ephemeral, reply.ephemeral, pending.hello.session, reply.responderSession, pending.hello.ephemeral, reply.ephemeral, transcript);
    } catch (error) {
      this.refused(from, error);
      return;
    }
    this.pendingById.delete(bytesToHex(pending.hello.session));
    const state = this.stateFor(key);
    if (state.pending === pending) state.pending = undefined;
    this.counters.handshakesCompleted++;
    const now = this.deps.clock.now();
    const session: Session = {
      address: from,
      localId: bytesToHex(pending.hello.session),
      remoteId: reply.responderSession,
      sendKey: keys.initiatorToResponder,
      receiveKey: keys.responderToInitiator,
      exporter: keys.exporter,
      window: new ReceiveWindow(true),
      peer: peerOf(certificate),
      establishedAt: now,
      confirmed: true,
      sendCounter: 0,
      lastReceivedAt: now,
    };
    // Key confirmation first: it is what lets the responder believe this session (and us) at all.
    this.install(key, session, [EMPTY, ...pending.queue]);
  }

  // --- sessions ---

  private initiate(to: Address, state: AddressState): void {
    const session = this.newSessionId();
    const ephemeral = ephemeralFromBytes(this.deps.random.bytes(32));
    const time = this.nowSeconds();
    const hello: LinkHello = {
      type: FrameType.LinkHello,
      session,
      ephemeral: ephemeral.publicKey,
      time,
      certificate: this.deps.identity.certificate.bytes,
      signature: this.deps.suite.sign(this.deps.identity.keys, helloSignatureInput(this.deps.overlayId, session, ephemeral.publicKey, time)),
    };
    if (state.pending) this.pendingById.delete(bytesToHex(state.pending.hello.session));
    const now = this.deps.clock.now();
    const pending: PendingHandshake = {
      address: to,
      hello,
      helloBytes: encodeSecurityFrame(hello),
      ephemeral,
      startedAt: now,
      sentAt: now,
      cookiesTaken: 0,
      queue: state.pending?.queue ?? [],
    };
    state.pending = pending;
    this.pendingById.set(bytesToHex(session), pending);
    this.counters.handshakesStarted++;
    this.inner.send(to, pending.helloBytes);
  }

  private resendHello(pending: PendingHandshake): void {
    pending.sentAt = this.deps.clock.now();
    this.inner.send(pending.address, pending.helloBytes);
  }

  /**
   * A responder session waits here, unused, until the initiator proves it holds the keys. Room is
   * made by pushing out the oldest: first its own address's (two per address), else its host's (a
   * few per IP address, whatever its ports), then anyone's. A newcomer is never refused, so nobody
   * can fill the table for good. Half-open sessions live only in this table, not in the per-address
   * state, which holds what this node itself believes and sends on.
   */
  private holdHalfOpen(key: string, session: Session): void {
    const fromHost = [...this.halfOpen.values()].filter((s) => s.address.host === session.address.host);
    const fromAddress = fromHost.filter((s) => addressKey(s.address) === key);
    if (fromAddress.length >= MAX_HALF_OPEN_PER_ADDRESS) this.dropSession(fromAddress[0]);
    else if (fromHost.length >= MAX_HALF_OPEN_PER_HOST) this.dropSession(fromHost[0]);
    if (this.halfOpen.size >= this.options.maxHalfOpen) this.dropSession(this.halfOpen.values().next().value as Session);
    this.sessionsById.set(session.localId, session);
    this.halfOpen.set(session.localId, session);
  }

  private confirm(key: string, session: Session): void {
    this.halfOpen.delete(session.localId);
    session.confirmed = true;
    this.counters.handshakesConfirmed++;
    this.install(key, session);
  }

  /** A confirmed session becomes the one to send on; what waited for a handshake goes out now. */
  private install(key: string, session: Session, queued: readonly Uint8Array[] = []): void {
    const state = this.stateFor(key);
    state.sessions.unshift(session);
    this.sessionsById.set(session.localId, session);
    for (const old of state.sessions.splice(2)) this.forget(old);
    const waiting = state.pending && state.pending.queue !== queued ? state.pending.queue.splice(0) : [];
    for (const datagram of [...queued, ...waiting]) this.sendSealed(session, datagram);
  }

  private forget(session: Session): void {
    this.sessionsById.delete(session.localId);
    if (!session.confirmed) this.halfOpen.delete(session.localId);
  }

  private dropSession(session: Session): void {
    if (!this.sessionsById.has(session.localId)) return;
    this.forget(session);
    const key = addressKey(session.address);
    const state = this.addresses.get(key);
    if (!state) return;
    state.sessions = state.sessions.filter((s) => s !== session);
    this.forgetIdleAddress(key, state);
  }

  private forgetIdleAddress(key: string, state: AddressState): void {
    if (state.sessions.length === 0 && !state.pending) this.addresses.delete(key);
  }

  private sendSealed(session: Session, datagram: Uint8Array): void {
    const counter = session.sendCounter++;
    const frame: SealedFrame = {
      type: FrameType.Sealed,
      session: session.remoteId,
      counter,
      ciphertext: sealBytes(session.sendKey, counter, sealedFrameAad(session.remoteId, counter), datagram),
    };
    this.counters.sealed++;
    this.inner.send(session.address, encodeSecurityFrame(frame));
  }

  private stateFor(key: string): AddressState {
    let state = this.addresses.get(key);
    if (!state) {
      state = { sessions: [], pending: undefined, lastRecoveryAt: -Infinity };
      this.addresses.set(key, state);
    }
    return state;
  }

  private newSessionId(): Uint8Array {
    return this.deps.random.bytes(SESSION_ID_BYTES);
  }

  private refused(from: Address, error: unknown): void {
    this.counters.handshakesRefused++;
    this.deps.log.info('link-handshake-refused', { from: addressKey(from), reason: (error as Error).message });
  }

  private nowSeconds(): number {
    return Math.floor(this.deps.clock.wallTime() / 1000);
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.deps.clock.setTimer(this.options.sweepIntervalMs, () => {
      this.sweep();
      if (!this.closed) this.scheduleSweep();
    });
  }

  /** Forgets idle sessions, unconfirmed ones, abandoned handshakes and old answers; rechecks certificates. */
  private sweep(): void {
    const now = this.deps.clock.now();
    this.faultLogged = false;
    for (const session of [...this.sessionsById.values()]) {
      if (!session.confirmed && now - session.establishedAt > this.options.handshakeTimeoutMs) {
        this.counters.halfOpenExpired++;
        this.dropSession(session);
      } else if (now - session.lastReceivedAt > this.options.sessionIdleMs) this.dropSession(session);
    }
    for (const [id, pending] of [...this.pendingById]) {
      if (now - pending.startedAt < this.options.handshakeTimeoutMs) continue;
      this.pendingById.delete(id);
      this.counters.handshakesTimedOut++;
      const key = addressKey(pending.address);
      const state = this.addresses.get(key);
      if (state?.pending === pending) state.pending = undefined;
      if (state) this.forgetIdleAddress(key, state);
    }
    this.answered.sweep(now, this.deps.clock.wallTime(), this.options.handshakeTimeoutMs);
    for (const limiter of [this.datagramLimiter, this.handshakeLimiter, this.cookieLimiter, this.hintLimiter]) limiter.sweep();
    this.revalidate();
  }
}

/** A link is between nodes: a user's credential (it signs values only) never opens one. */
function acceptNodeCertificate(trust: TrustPolicy, bytes: Uint8Array, nowSeconds: number): Certificate {
  const certificate = trust.accept(bytes, nowSeconds);
  if (certificate.claims.role === 'user') throw new Error(`${certificate.claims.subject} holds a user certificate, not a node's`);
  return certificate;
}

function peerOf(certificate: Certificate): LinkPeer {
  return { nodeIds: certificate.claims.nodeIds, subject: certificate.claims.subject, certificate };
}
