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
  helloSignatureInput,
  isSecurityFrame,
  type LinkHello,
  type LinkReply,
  replySignatureInput,
  sealedFrameAad,
  SESSION_ID_BYTES,
  type SealedFrame,
} from '../../wire/link-security.js';
import type { Link, LinkPeer } from '../link.js';
import { ReceiveWindow } from '../receive-window.js';
import { deriveLinkKeys, type EphemeralKey, ephemeralFromBytes, openBytes, sealBytes } from './link-crypto.js';
import { bytesToHex } from '../../runtime/hex.js';

/*
 * Encrypted, authenticated links (docs/security.md). Wraps a datagram Link: the first datagram
 * to an address starts a two-message handshake in which both ends show their certificates and
 * sign fresh X25519 keys; every overlay frame then travels sealed with ChaCha20-Poly1305 under a
 * per-direction key, with a strict replay window. Plaintext overlay frames are refused; STUN
 * passes through untouched (it shares the port and carries its own integrity, RFC 8489).
 * Each source address has a budget of datagrams and of handshakes, so one flooder costs the
 * node a bounded share of its work and no one else's.
 */

export interface SealedLinkOptions {
  /** Start a fresh handshake when the newest session is older than this. */
  readonly rekeyAfterMs: number;
  /** Forget sessions that have carried nothing for this long. */
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
  sealed: number;
  opened: number;
  badTags: number;
  replays: number;
  unknownSessions: number;
  plaintextRefused: number;
  rateLimited: number;
  malformed: number;
  sessionsRevoked: number;
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
  readonly window: ReceiveWindow;
  readonly peer: LinkPeer;
  readonly establishedAt: number;
  sendCounter: number;
  lastUsedAt: number;
}

interface PendingHandshake {
  readonly address: Address;
  readonly hello: LinkHello;
  readonly helloBytes: Uint8Array;
  readonly ephemeral: EphemeralKey;
  readonly startedAt: number;
  sentAt: number;
  readonly queue: Uint8Array[];
}

interface Answered {
  readonly address: string;
  readonly replyBytes: Uint8Array;
  readonly at: number;
}

interface AddressState {
  /** Newest first; two at most, so crossing handshakes and rekeys never drop traffic in flight. */
  sessions: Session[];
  pending: PendingHandshake | undefined;
  lastUnknownAt: number;
}

export class SealedLink implements Link {
  readonly counters: LinkSecurityCounters = {
    handshakesStarted: 0,
    handshakesAnswered: 0,
    handshakesCompleted: 0,
    handshakesRefused: 0,
    handshakesTimedOut: 0,
    sealed: 0,
    opened: 0,
    badTags: 0,
    replays: 0,
    unknownSessions: 0,
    plaintextRefused: 0,
    rateLimited: 0,
    malformed: 0,
    sessionsRevoked: 0,
  };
  private readonly options: SealedLinkOptions;
  private readonly addresses = new Map<string, AddressState>();
  private readonly sessionsById = new Map<string, Session>();
  private readonly pendingById = new Map<string, PendingHandshake>();
  /** Hellos answered lately, by initiator session: a retransmitted hello gets the same reply. */
  private readonly answered = new Map<string, Answered>();
  private readonly datagramLimiter: KeyedRateLimiter<string>;
  private readonly handshakeLimiter: KeyedRateLimiter<string>;
  private readonly handshakeTotal: TokenBucket;
  private handler: (from: Address, datagram: Uint8Array, peer?: LinkPeer) => void = () => {};
  private sweepTimer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly inner: Link,
    private readonly deps: SealedLinkDeps,
  ) {
    this.options = { ...DEFAULT_SEALED_LINK_OPTIONS, ...deps.options };
    this.datagramLimiter = new KeyedRateLimiter(this.options.datagramLimit, deps.clock);
    this.handshakeLimiter = new KeyedRateLimiter(this.options.handshakeLimit, deps.clock);
    this.handshakeTotal = new TokenBucket(this.options.handshakeLimitTotal, deps.clock);
    inner.onDatagram((from, datagram) => this.receive(from, datagram));
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
    const state = this.stateFor(key);
    const session = state.sessions[0];
    if (session) {
      this.sendSealed(session, datagram);
      if (this.deps.clock.now() - session.establishedAt > this.options.rekeyAfterMs && !state.pending) this.initiate(to, state);
      return;
    }
    if (!state.pending) this.initiate(to, state);
    else if (this.deps.clock.now() - state.pending.sentAt >= this.options.helloRetryMs) this.resendHello(state.pending);
    const queue = state.pending!.queue;
    if (queue.length < this.options.maxQueued) queue.push(datagram);
  }

  /** Who holds a live session from this address (a relay serves only enrolled nodes). */
  peerAt(address: Address): LinkPeer | undefined {
    return this.addresses.get(addressKey(address))?.sessions[0]?.peer;
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
    return { ...this.counters, sessions: this.sessionsById.size, handshaking: this.pendingById.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.clock.clearTimer(this.sweepTimer);
    await this.inner.close();
  }

  // --- receiving ---

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
    }
  }

  private onSealed(from: Address, key: string, frame: SealedFrame): void {
    const session = this.sessionsById.get(bytesToHex(frame.session));
    if (!session || addressKey(session.address) !== key) {
      this.counters.unknownSessions++;
      this.recoverUnknownSession(from, key);
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
    session.lastUsedAt = this.deps.clock.now();
    this.counters.opened++;
    this.handler(from, plain, session.peer);
  }

  /**
   * Sealed frames for a session we do not hold: we restarted, or dropped it. Start a handshake
   * so the sender gets a fresh session (at most once a second per address).
   */
  private recoverUnknownSession(from: Address, key: string): void {
    const state = this.stateFor(key);
    const now = this.deps.clock.now();
    if (state.pending || now - state.lastUnknownAt < this.options.helloRetryMs) return;
    state.lastUnknownAt = now;
    this.initiate(from, state);
  }

  /** Responder side: check the initiator, agree keys, answer, and hold the session. */
  private onHello(from: Address, key: string, hello: LinkHello): void {
    const id = bytesToHex(hello.session);
    const earlier = this.answered.get(id);
    if (earlier) {
      if (earlier.address === key) this.inner.send(from, earlier.replyBytes); // our reply was lost
      return;
    }
    if (!this.handshakeLimiter.allow(key) || !this.handshakeTotal.take()) {
      this.counters.rateLimited++;
      return;
    }
    const nowSeconds = this.nowSeconds();
    let certificate: Certificate;
    try {
      if (Math.abs(nowSeconds - hello.time) > this.options.helloMaxSkewSeconds) throw new Error('hello is stale or from the future');
      certificate = this.deps.trust.accept(hello.certificate, nowSeconds);
      if (!this.deps.suite.verify(certificate, helloSignatureInput(this.deps.overlayId, hello.session, hello.ephemeral, hello.time), hello.signature)) {
        throw new Error('hello signature does not verify');
      }
    } catch (error) {
      this.refused(from, error);
      return;
    }
    const responderSession = this.newSessionId();
    const ephemeral = ephemeralFromBytes(this.deps.random.bytes(32));
    let keys;
    try {
      keys = deriveLinkKeys(ephemeral, hello.ephemeral, hello.session, responderSession, hello.ephemeral, ephemeral.publicKey);
    } catch (error) {
      this.refused(from, error);
      return;
    }
    const reply: LinkReply = {
      type: FrameType.LinkReply,
      initiatorSession: hello.session,
      responderSession,
      ephemeral: ephemeral.publicKey,
      certificate: this.deps.identity.certificate.bytes,
      signature: this.deps.suite.sign(this.deps.identity.keys, replySignatureInput(this.deps.overlayId, hello, responderSession, ephemeral.publicKey)),
    };
    const replyBytes = encodeSecurityFrame(reply);
    this.answered.set(id, { address: key, replyBytes, at: this.deps.clock.now() });
    this.counters.handshakesAnswered++;
    this.install(key, {
      address: from,
      localId: bytesToHex(responderSession),
      remoteId: hello.session,
      sendKey: keys.responderToInitiator,
      receiveKey: keys.initiatorToResponder,
      window: new ReceiveWindow(true),
      peer: peerOf(certificate),
      establishedAt: this.deps.clock.now(),
      sendCounter: 0,
      lastUsedAt: this.deps.clock.now(),
    });
    this.inner.send(from, replyBytes);
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
      certificate = this.deps.trust.accept(reply.certificate, this.nowSeconds());
      const signed = replySignatureInput(this.deps.overlayId, pending.hello, reply.responderSession, reply.ephemeral);
      if (!this.deps.suite.verify(certificate, signed, reply.signature)) throw new Error('reply signature does not verify');
      keys = deriveLinkKeys(pending.ephemeral, reply.ephemeral, pending.hello.session, reply.responderSession, pending.hello.ephemeral, reply.ephemeral);
    } catch (error) {
      this.refused(from, error);
      return;
    }
    this.pendingById.delete(bytesToHex(pending.hello.session));
    const state = this.stateFor(key);
    if (state.pending === pending) state.pending = undefined;
    this.counters.handshakesCompleted++;
    this.install(
      key,
      {
        address: from,
        localId: bytesToHex(pending.hello.session),
        remoteId: reply.responderSession,
        sendKey: keys.initiatorToResponder,
        receiveKey: keys.responderToInitiator,
        window: new ReceiveWindow(true),
        peer: peerOf(certificate),
        establishedAt: this.deps.clock.now(),
        sendCounter: 0,
        lastUsedAt: this.deps.clock.now(),
      },
      pending.queue,
    );
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
    const pending: PendingHandshake = { address: to, hello, helloBytes: encodeSecurityFrame(hello), ephemeral, startedAt: now, sentAt: now, queue: state.pending?.queue ?? [] };
    state.pending = pending;
    this.pendingById.set(bytesToHex(session), pending);
    this.counters.handshakesStarted++;
    this.inner.send(to, pending.helloBytes);
  }

  private resendHello(pending: PendingHandshake): void {
    pending.sentAt = this.deps.clock.now();
    this.inner.send(pending.address, pending.helloBytes);
  }

  /** A new session becomes the one to send on; what waited for a handshake goes out now. */
  private install(key: string, session: Session, queued: readonly Uint8Array[] = []): void {
    const state = this.stateFor(key);
    state.sessions.unshift(session);
    this.sessionsById.set(session.localId, session);
    for (const old of state.sessions.splice(2)) this.sessionsById.delete(old.localId);
    const waiting = state.pending && state.pending.queue !== queued ? state.pending.queue.splice(0) : [];
    for (const datagram of [...queued, ...waiting]) this.sendSealed(session, datagram);
  }

  private dropSession(session: Session): void {
    this.sessionsById.delete(session.localId);
    const key = addressKey(session.address);
    const state = this.addresses.get(key);
    if (!state) return;
    state.sessions = state.sessions.filter((s) => s !== session);
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
    session.lastUsedAt = this.deps.clock.now();
    this.counters.sealed++;
    this.inner.send(session.address, encodeSecurityFrame(frame));
  }

  private stateFor(key: string): AddressState {
    let state = this.addresses.get(key);
    if (!state) {
      state = { sessions: [], pending: undefined, lastUnknownAt: -Infinity };
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

  /** Forgets idle sessions, abandoned handshakes and old answers; rechecks certificates. */
  private sweep(): void {
    const now = this.deps.clock.now();
    for (const session of [...this.sessionsById.values()]) {
      if (now - session.lastUsedAt > this.options.sessionIdleMs) this.dropSession(session);
    }
    for (const [id, pending] of [...this.pendingById]) {
      if (now - pending.startedAt < this.options.handshakeTimeoutMs) continue;
      this.pendingById.delete(id);
      this.counters.handshakesTimedOut++;
      const key = addressKey(pending.address);
      const state = this.addresses.get(key);
      if (state?.pending === pending) state.pending = undefined;
      if (state && state.sessions.length === 0 && !state.pending) this.addresses.delete(key);
    }
    for (const [id, answered] of [...this.answered]) if (now - answered.at > this.options.handshakeTimeoutMs) this.answered.delete(id);
    this.datagramLimiter.sweep();
    this.handshakeLimiter.sweep();
    this.revalidate();
  }
}

function peerOf(certificate: Certificate): LinkPeer {
  return { nodeIds: certificate.claims.nodeIds, subject: certificate.claims.subject, certificate };
}
