import type { Certificate } from '../identity/certificate.js';
import type { NodeIdentity } from '../identity/identity.js';
import { openPayload, sealPayload } from '../identity/message-signing.js';
import type { TrustPolicy } from '../identity/trust.js';
import { ed25519Suite, type SignatureSuite } from '../identity/signature-suite.js';
import type { HopTransport } from '../link/hop-transport.js';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import { P2psipError } from '../runtime/errors.js';
import type { Logger } from '../runtime/log.js';
import { bytesToHex } from '../runtime/hex.js';
import type { Random } from '../runtime/random.js';
import { KeyedRateLimiter, type RateLimit } from '../runtime/token-bucket.js';
import { type Address, addressKey, sameAddress } from '../wire/address.js';
import { DecodeError } from '../wire/decode-error.js';
import { decodePayload } from '../wire/payload.js';
import type { Id } from '../wire/id.js';
import { type Destination, DestinationKind, DEFAULT_TTL, nodeDestination, type ForwardingHeader, type OverlayMessage } from '../wire/message.js';
import { answerCodeFor, ErrorCode, isRequestCode, MessageCode } from '../wire/message-codes.js';
import { errorAns } from '../wire/messages/error.js';
import { ConnectionTable } from './connection-table.js';
import { walkToResponsible } from './iterative-walk.js';
import { OverlayError } from './overlay-error.js';
import { RecentTransactions } from './recent-transactions.js';
import { ReturnPaths } from './return-paths.js';
import type { Topology } from './topology/topology.js';

/*
 * Message routing (RFC 6940 s6.2, s6.3): recursive forwarding by destination list with a via
 * list, TTL and loop protection, symmetric responses along the reversed via list, and the
 * end-to-end transactions of this node's own requests. Signatures are checked at the node a
 * message is for, before any handler runs; forwarders pass payloads on untouched.
 */

export interface RouterOptions {
  readonly overlayName: string;
  readonly overlayId: number;
  readonly requestTimeoutMs: number;
  readonly initialTtl: number;
  /** Next hops tried, one after another, when a hop does not acknowledge. */
  readonly maxForwardAttempts: number;
  readonly suite: SignatureSuite;
  /**
   * Fault injection for the simulator only: behave as the rogue peer of RFC 6940 s13.5 that
   * acknowledges what it receives but silently drops what it should forward.
   */
  readonly dropForwarded?: boolean;
  /**
   * Requests a neighbour originates itself (empty via list), per neighbour: what one flooder can
   * inject into the overlay through us. Generous enough for a storage hand-over burst.
   */
  readonly originLimit?: RateLimit;
}

/** Told when a verified message shows that its sender holds another configuration (RFC 6940 s6.3.2.1). */
export type ConfigSequenceListener = (theirSequence: number, sender: Id) => void;

export const DEFAULT_ORIGIN_LIMIT: RateLimit = { ratePerSecond: 200, burst: 2_000 };
export const DEFAULT_ROUTER_OPTIONS = { requestTimeoutMs: 15_000, initialTtl: DEFAULT_TTL, maxForwardAttempts: 3, suite: ed25519Suite };

export interface IncomingRequest {
  readonly code: number;
  readonly body: Uint8Array;
  /** The verified originator. */
  readonly origin: Id;
  readonly certificate: Certificate;
  /** Where the previous hop sent it from (the origin itself when via is empty). */
  readonly previousHop: { readonly id: Id; readonly address: Address } | undefined;
  readonly via: readonly Id[];
  respond(body: Uint8Array): void;
  fail(code: number, info: string): void;
}

export interface Response {
  readonly code: number;
  readonly body: Uint8Array;
  readonly responder: Id;
  readonly certificate: Certificate;
  /** Links the response crossed to get back here (equal to the request's, routes being symmetric). */
  readonly hops: number;
}

export type ResponseCallback = (error: P2psipError | undefined, response?: Response) => void;
export type RequestHandler = (request: IncomingRequest) => void;

export interface RequestOptions {
  /** Send the first hop here instead of asking the topology (bootstrap, direct neighbours). */
  readonly firstHop?: Address;
  readonly timeoutMs?: number;
  /** Tries in all, each with its own timeout (default 1). */
  readonly attempts?: number;
  /** Which try this is (0 first); later tries take other paths. Retries count on their own. */
  readonly attempt?: number;
  /** When every try has timed out, find the responsible peer hop by hop and ask it directly. */
  readonly iterativeFallback?: boolean;
}

export interface RouterCounters {
  requestsSent: number;
  retries: number;
  responsesReceived: number;
  requestsHandled: number;
  forwarded: number;
  forwardRetries: number;
  timeouts: number;
  rejectedSignatures: number;
  rejectedMalformed: number;
  replays: number;
  ttlExceeded: number;
  loops: number;
  wrongOverlay: number;
  undeliverable: number;
  droppedByRogue: number;
  iterativeFallbacks: number;
  rateLimited: number;
}

/**
 * How long after a node last proved itself (or was heard) a packet to it is trusted to get through
 * a NAT that filters in front of it: many home routers close a UDP pinhole after 30 s of silence
 * (RFC 4787 asks for two minutes; not all comply).
 */
const PINHOLE_TRUST_MS = 20_000;

/** A next hop: where to send, the node we expect there (none for a direct address), and whether only the topology said it is there. */
interface Hop {
  readonly id?: Id;
  readonly address: Address;
  readonly unproven?: boolean;
}

interface Pending {
  readonly code: number;
  readonly callback: ResponseCallback;
  readonly timer: TimerHandle;
}

export class OverlayRouter {
  readonly connections: ConnectionTable;
  readonly counters: RouterCounters = {
    requestsSent: 0,
    retries: 0,
    responsesReceived: 0,
    requestsHandled: 0,
    forwarded: 0,
    forwardRetries: 0,
    timeouts: 0,
    rejectedSignatures: 0,
    rejectedMalformed: 0,
    replays: 0,
    ttlExceeded: 0,
    loops: 0,
    wrongOverlay: 0,
    undeliverable: 0,
    droppedByRogue: 0,
    iterativeFallbacks: 0,
    rateLimited: 0,
  };
  private readonly handlers = new Map<number, RequestHandler>();
  private readonly pending = new Map<string, Pending>();
  private readonly recent: RecentTransactions;
  private readonly returnPaths: ReturnPaths;
  private readonly startedAt: number;
  private readonly originLimiter: KeyedRateLimiter<Id>;
  /** Our configuration's sequence, stamped on what we send; 0 in open mode. */
  private configSequence = 0;
  private configListener: ConfigSequenceListener = () => {};

  constructor(
    readonly identity: NodeIdentity,
    private readonly trust: TrustPolicy,
    readonly transport: HopTransport,
    readonly clock: Clock,
    readonly random: Random,
    readonly topology: Topology,
    readonly log: Logger,
    readonly options: RouterOptions,
  ) {
    this.connections = new ConnectionTable(() => this.clock.now());
    this.recent = new RecentTransactions(clock);
    this.returnPaths = new ReturnPaths(clock);
    this.startedAt = clock.now();
    this.originLimiter = new KeyedRateLimiter(options.originLimit ?? DEFAULT_ORIGIN_LIMIT, clock);
    transport.onMessage((from, sender, message) => this.receive(from, sender, message));
    transport.onLinkFailure((address) => this.linkFailed(address));
    // An address unused for that long is stale: the node may be gone or have moved (a NAT
    // binding expires sooner). Keeps the connection table from collecting departed peers.
    transport.onLinkExpired((address) => {
      for (const id of this.connections.idsAt(address)) this.connections.forget(id);
    });
    topology.attach(this);
  }

  get nodeId(): Id {
    return this.identity.nodeId;
  }

  uptimeSeconds(): number {
    return Math.floor((this.clock.now() - this.startedAt) / 1000);
  }

  handle(code: number, handler: RequestHandler): void {
    this.handlers.set(code, handler);
  }

  /**
   * Sends a request; the callback runs exactly once, with the answer or an error. With
   * `attempts` > 1, a request that timed out or found no next hop is sent again under a new
   * transaction ID: by then the dead hop is out of the tables and the retry takes another path.
   */
  request(destinations: readonly Destination[], code: number, body: Uint8Array, callback: ResponseCallback, options: RequestOptions = {}): void {
    const attempts = options.attempts ?? 1;
    this.requestOnce(destinations, code, body, options, (error, response) => {
      const retriable = error instanceof OverlayError && error.code === ErrorCode.RequestTimeout;
      if (retriable && attempts > 1) {
        this.counters.retries++;
        const attempt = (options.attempt ?? 0) + 1;
        this.request(destinations, code, body, callback, { ...options, attempts: attempts - 1, attempt });
        return;
      }
      const target = destinations[0];
      if (retriable && options.iterativeFallback && !options.firstHop && destinations.length === 1 && target.kind === DestinationKind.Resource) {
        this.counters.iterativeFallbacks++;
        walkToResponsible(this, target.id, (responsible) => {
          if (!responsible) return callback(error, response);
          this.requestOnce(destinations, code, body, { ...options, firstHop: responsible.address }, callback);
        });
        return;
      }
      callback(error, response);
    });
  }

  private requestOnce(destinations: readonly Destination[], code: number, body: Uint8Array, options: RequestOptions, callback: ResponseCallback): void {
    const transactionId = this.random.bytes(8);
    transactionId[0] = options.attempt ? transactionId[0] | DIVERSIFY_BIT : transactionId[0] & ~DIVERSIFY_BIT;
    const key = bytesToHex(transactionId);
    const timer = this.clock.setTimer(options.timeoutMs ?? this.options.requestTimeoutMs, () => {
      if (!this.pending.delete(key)) return;
      this.counters.timeouts++;
      callback(new OverlayError(ErrorCode.RequestTimeout, `no answer to ${code} within the transaction timeout`));
    });
    this.pending.set(key, { code, callback, timer });
    this.counters.requestsSent++;
    const header: ForwardingHeader = {
      overlay: this.options.overlayId,
      configSequence: this.configSequence,
      ttl: this.options.initialTtl,
      fragment: { offset: 0, total: 0 },
      via: [],
      destinations,
      transactionId,
      code,
    };
    const payload = sealPayload(this.options.suite, this.identity, header, body);
    const message = { header: { ...header, fragment: { offset: 0, total: payload.length } }, payload };
    const firstHop: Hop | undefined = options.firstHop ? { address: options.firstHop } : options.attempt ? this.alternativeHop(destinations[0].id, options.attempt) : undefined;
    if (firstHop) {
      this.sendTo(firstHop.address, message, (ok, linkDied) => {
        if (ok) return;
        if (linkDied && firstHop.unproven) this.hopDied(firstHop.id!, firstHop.address);
        this.finish(key, new OverlayError(ErrorCode.RequestTimeout, `first hop ${addressKey(firstHop.address)} did not answer`));
      });
      return;
    }
    this.route(message, undefined);
  }

  /**
   * A retry leaves through the next-best finger or successor, so that its path avoids the hop
   * that swallowed the first try (a failed or rogue peer, RFC 6940 s13.5).
   */
  private alternativeHop(target: Id, attempt: number): Hop | undefined {
    const hops = this.nextHops(target);
    return hops.length > 1 ? hops[attempt % hops.length] : undefined;
  }

  /**
   * Where to send toward `target`: the topology's next hops, each at the address the node itself
   * last proved over a link (the connection table), which a second-hand view in the topology lags
   * when the node moved (a new NAT binding, another relay); else at the topology's address.
   */
  private nextHops(target: Id, detour = 0): Hop[] {
    return this.topology.nextHops(target, detour).map((hop) => {
      const proven = this.connections.proven(hop.id);
      return proven ? { id: hop.id, address: proven } : { id: hop.id, address: hop.address, unproven: true };
    });
  }

  /**
   * The link to a hop that only the topology placed at `address` died. The transport's failure
   * report, which follows, evicts the nodes the connection table places there; this hop is
   * evicted here, or it would be tried again and again until the topology's upkeep replaced it.
   * Not when it has proved itself somewhere meanwhile (it moved, and Attached again).
   */
  private hopDied(id: Id, address: Address): void {
    if (this.connections.proven(id) || this.connections.idsAt(address).includes(id)) return;
    this.topology.neighborFailed(id);
  }

  /** The configuration this node now holds; `listener` hears of senders that hold another. */
  trackConfiguration(sequence: number, listener?: ConfigSequenceListener): void {
    this.configSequence = sequence;
    if (listener) this.configListener = listener;
  }

  private noteConfigSequence(header: ForwardingHeader, sender: Id): void {
    const theirs = header.configSequence;
    if (theirs === 0 || this.configSequence === 0 || theirs === this.configSequence || sender === this.nodeId) return;
    try {
      this.configListener(theirs, sender);
    } catch (error) {
      this.log.error('config-listener-fault', { error });
    }
  }

  /** Cancels every pending transaction (the node is stopping). */
  abortAll(reason: string): void {
    for (const [key] of [...this.pending]) this.finish(key, new OverlayError(ErrorCode.RequestTimeout, reason));
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private receive(from: Address, hopSender: Id, message: OverlayMessage): void {
    if (message.header.overlay !== this.options.overlayId) {
      this.counters.wrongOverlay++;
      return;
    }
    // Before any signature check: a flood costs us a map lookup per message, not a verification.
    if (message.header.via.length === 0 && isRequestCode(message.header.code) && !this.originLimiter.allow(hopSender)) {
      this.counters.rateLimited++;
      return;
    }
    this.route(message, { id: hopSender, address: from });
  }

  /**
   * Delivers a message here or passes it on. `from` is undefined for this node's own messages.
   * RFC 6940 s6.2.2: a Node-ID at the top of the list that is ours is removed and the next
   * one examined; otherwise the message goes toward the first destination.
   */
  private route(message: OverlayMessage, from: { id: Id; address: Address } | undefined): void {
    let header = message.header;
    while (header.destinations.length > 1 && isNode(header.destinations[0], this.nodeId)) {
      header = { ...header, destinations: header.destinations.slice(1) };
    }
    const target = header.destinations[0];
    if (isNode(target, this.nodeId)) {
      this.deliver({ header, payload: message.payload }, from);
      return;
    }
    // A request aimed at its own sender's Node-ID (a joining peer's Attach, RFC 6940 s10.6)
    // is for the peer responsible for that ID, not for the sender: never hand it straight back.
    const aimedAtSender = from !== undefined && (target.id === from.id || header.via.includes(target.id));
    const toNode = target.kind === DestinationKind.Node && !aimedAtSender;
    const direct = toNode ? this.directAddress(target.id, header.transactionId) : undefined;
    // A node we hold only a stale proof for is still tried there when the overlay offers no way
    // to it: in our own range (a client of ours; a ring of one), or while we have no next hop.
    if (!direct && this.topology.isResponsible(target.id)) {
      const last = toNode ? this.connections.lookup(target.id) : undefined;
      if (last) return this.forward({ header, payload: message.payload }, from, last);
      this.deliver({ header, payload: message.payload }, from);
      return;
    }
    this.forward({ header, payload: message.payload }, from, direct, toNode);
  }

  private forward(message: OverlayMessage, from: { id: Id; address: Address } | undefined, direct: Address | undefined, orLastKnown = false): void {
    let header = message.header;
    if (from) {
      if (this.options.dropForwarded) {
        this.counters.droppedByRogue++;
        return;
      }
      if (header.ttl <= 1) {
        this.counters.ttlExceeded++;
        this.answerError(message, from, ErrorCode.TtlExceeded, 'TTL exceeded');
        return;
      }
      if (header.via.includes(this.nodeId) || header.via.length >= 127) {
        this.counters.loops++;
        this.answerError(message, from, ErrorCode.TtlExceeded, 'routing loop');
        return;
      }
      header = { ...header, ttl: header.ttl - 1, via: [...header.via, from.id] };
      this.counters.forwarded++;
      if (isRequestCode(header.code)) this.returnPaths.remember(header.transactionId, from.id, from.address);
    }
    const next = { header, payload: message.payload };
    const target = header.destinations[0].id;
    const candidates: Hop[] = direct ? [{ address: direct }] : this.nextHops(target, isRequestCode(header.code) ? detourChoice(header.transactionId, this.nodeId) : 0);
    const last = candidates.length === 0 && orLastKnown ? this.connections.lookup(target) : undefined;
    if (last) candidates.push({ address: last });
    const tryHop = (i: number): void => {
      if (i >= candidates.length || i >= this.options.maxForwardAttempts) {
        this.counters.undeliverable++;
        if (from) this.answerError(message, from, ErrorCode.RequestTimeout, 'no next hop answered');
        else this.failLocal(message.header.transactionId, 'no next hop answered');
        return;
      }
      if (i > 0) this.counters.forwardRetries++;
      const hop = candidates[i];
      this.sendTo(hop.address, next, (ok, linkDied) => {
        if (ok) return;
        if (linkDied && hop.unproven) this.hopDied(hop.id!, hop.address);
        if (direct) {
          // Said at once, so the sender tries again rather than waiting out its timeout.
          this.counters.undeliverable++;
          if (from) this.answerError(message, from, ErrorCode.RequestTimeout, 'the node did not answer');
          else this.failLocal(message.header.transactionId, 'the node did not answer');
          return;
        }
        // Try the next best hop (skipping those already tried).
        const retry = this.nextHops(target);
        candidates.splice(i + 1, candidates.length, ...retry.filter((a) => !candidates.slice(0, i + 1).some((b) => sameAddress(a.address, b.address))));
        tryHop(i + 1);
      });
    };
    tryHop(0);
  }

  private deliver(message: OverlayMessage, from: { id: Id; address: Address } | undefined): void {
    const { header } = message;
    const path = from ? [...header.via, from.id] : [...header.via];
    if (isRequestCode(header.code)) this.deliverRequest(message, path, from);
    else this.deliverResponse(message, path, from);
  }

  private deliverRequest(message: OverlayMessage, path: Id[], from: { id: Id; address: Address } | undefined): void {
    const { header } = message;
    const origin = path[0] ?? this.nodeId;
    const replayKey = `${origin}/${bytesToHex(header.transactionId)}`;
    const cached = this.recent.lookup(replayKey);
    if (cached !== undefined) {
      this.counters.replays++;
      if (cached && from) this.sendTo(from.address, cached, () => {});
      return;
    }
    let opened;
    try {
      opened = this.open(header, message.payload, origin, from);
    } catch (error) {
      this.rejected(error, header);
      return;
    }
    this.recent.remember(replayKey, null);
    this.noteConfigSequence(header, origin);
    // Verified and sent to us directly: now we know where its signer lives.
    if (from && path.length === 1) this.connections.learn(origin, from.address);
    const handler = this.handlers.get(header.code);
    let answered = false;
    const reply = (code: number, body: Uint8Array): void => {
      if (answered) return;
      answered = true;
      const response = this.buildResponse(header, path, code, body);
      this.recent.remember(replayKey, response);
      if (path.length === 0) this.route(response, undefined);
      else this.sendTo(from!.address, response, () => {});
    };
    const request: IncomingRequest = {
      code: header.code,
      body: opened.body,
      origin,
      certificate: opened.certificate,
      previousHop: from,
      via: header.via,
      respond: (body) => reply(answerCodeFor(header.code), body),
      fail: (code, info) => reply(MessageCode.Error, errorAns.encode({ code, info })),
    };
    this.counters.requestsHandled++;
    if (!handler) {
      request.fail(ErrorCode.InvalidMessage, `no handler for message code ${header.code}`);
      return;
    }
    try {
      handler(request);
    } catch (error) {
      if (error instanceof OverlayError) request.fail(error.code, error.info);
      else if (error instanceof DecodeError) request.fail(ErrorCode.InvalidMessage, error.message);
      else {
        this.log.error('handler-fault', { code: header.code, error });
        request.fail(ErrorCode.InvalidMessage, 'internal error');
      }
    }
  }

  private deliverResponse(message: OverlayMessage, path: Id[], from: { id: Id; address: Address } | undefined): void {
    const { header } = message;
    const key = bytesToHex(header.transactionId);
    const pending = this.pending.get(key);
    if (!pending) return; // late, duplicate, or not ours: nothing to do
    let opened;
    try {
      opened = this.open(header, message.payload, path[0], from);
    } catch (error) {
      this.rejected(error, header);
      return;
    }
    this.counters.responsesReceived++;
    if (path[0] !== undefined) this.noteConfigSequence(header, path[0]);
    if (from && path.length === 1) this.connections.learn(path[0], from.address);
    if (header.code === MessageCode.Error) {
      let error: OverlayError;
      try {
        const ans = errorAns.decode(opened.body);
        error = new OverlayError(ans.code, ans.info);
      } catch {
        error = new OverlayError(ErrorCode.InvalidMessage, 'unreadable error response');
      }
      this.finish(key, error);
      return;
    }
    if (header.code !== answerCodeFor(pending.code)) {
      this.finish(key, new OverlayError(ErrorCode.InvalidMessage, `answer code ${header.code} does not match request ${pending.code}`));
      return;
    }
    this.finish(key, undefined, {
      code: header.code,
      body: opened.body,
      responder: path[0] ?? this.nodeId,
      certificate: opened.certificate,
      hops: path.length,
    });
  }

  /**
   * Verifies a payload, except our own that never left this node (sealed here a moment ago:
   * checking our own signature would cost a verification per local request and prove nothing).
   */
  private open(header: ForwardingHeader, payload: Uint8Array, claimedSender: Id | undefined, from: { id: Id; address: Address } | undefined) {
    if (!from && (claimedSender === undefined || claimedSender === this.nodeId)) {
      return { body: decodePayload(payload).body, certificate: this.identity.certificate };
    }
    return openPayload(this.options.suite, this.trust, header, payload, claimedSender, this.nowSeconds());
  }

  private finish(key: string, error: P2psipError | undefined, response?: Response): void {
    const pending = this.pending.get(key);
    if (!pending) return;
    this.pending.delete(key);
    this.clock.clearTimer(pending.timer);
    try {
      pending.callback(error, response);
    } catch (fault) {
      this.log.error('callback-fault', { error: fault });
    }
  }

  private failLocal(transactionId: Uint8Array, info: string): void {
    this.finish(bytesToHex(transactionId), new OverlayError(ErrorCode.RequestTimeout, info));
  }

  /** RFC 6940 s6.3.2.2: a response's destination list is the request's via list reversed. */
  private buildResponse(request: ForwardingHeader, path: Id[], code: number, body: Uint8Array): OverlayMessage {
    const header: ForwardingHeader = {
      overlay: this.options.overlayId,
      configSequence: this.configSequence,
      ttl: this.options.initialTtl,
      fragment: { offset: 0, total: 0 },
      via: [],
      destinations: path.length ? [...path].reverse().map(nodeDestination) : [nodeDestination(this.nodeId)],
      // A copy: the request's ID is a view into its datagram, which a cached answer would pin.
      transactionId: new Uint8Array(request.transactionId),
      code,
    };
    const payload = sealPayload(this.options.suite, this.identity, header, body);
    return { header: { ...header, fragment: { offset: 0, total: payload.length } }, payload };
  }

  private answerError(message: OverlayMessage, from: { id: Id; address: Address }, code: number, info: string): void {
    if (!isRequestCode(message.header.code)) return;
    const path = [...message.header.via, from.id];
    const response = this.buildResponse(message.header, path, MessageCode.Error, errorAns.encode({ code, info }));
    this.sendTo(from.address, response, () => {});
  }

  private rejected(error: unknown, header: ForwardingHeader): void {
    if (error instanceof DecodeError) this.counters.rejectedMalformed++;
    else this.counters.rejectedSignatures++;
    this.log.debug('message-rejected', { code: header.code, error });
  }

  private sendTo(address: Address, message: OverlayMessage, done: (ok: boolean, linkDied?: boolean) => void): void {
    this.transport.send(address, message, done);
  }

  /**
   * Where a message for a Node-ID goes straight: where the node proved it is; else back the way
   * its request came (a response); else where someone said it is.
   */
  private directAddress(id: Id, transactionId: Uint8Array): Address | undefined {
    // A proof gone stale (see liveAddress) sends the message through the overlay instead, whose
    // links are kept open, rather than into a pinhole that has likely closed.
    return this.liveAddress(id) ?? this.returnPaths.lookup(transactionId, id) ?? (this.connections.proof(id) ? undefined : this.connections.lookup(id));
  }

  /**
   * Where `id` proved it is, while a packet sent there should still get through its NAT: it
   * proved itself (or the link was heard) within PINHOLE_TRUST_MS, or the link is watched. Between
   * that and the link's expiry the address is known but a filtering NAT in front of the node has
   * likely closed its pinhole: a message sent there is lost, and waits out the hop's timeouts.
   */
  liveAddress(id: Id): Address | undefined {
    const proof = this.connections.proof(id);
    if (!proof) return undefined;
    // The far end's NAT is not ours to measure: trust a pinhole no longer than most routers keep
    // one, nor longer than our own NAT keeps the binding it goes out of.
    const windowMs = Math.min(PINHOLE_TRUST_MS, this.transport.keepaliveIntervalMs);
    if (this.clock.now() - proof.provedAt >= windowMs && !this.transport.isLive(proof.address, windowMs)) return undefined;
    return this.connections.proven(id); // a use
  }

  /** The transport gave up on a link: whoever was there has failed. */
  private linkFailed(address: Address): void {
    for (const id of this.connections.idsAt(address)) {
      this.connections.forget(id);
      this.topology.neighborFailed(id);
    }
  }

  nowSeconds(): number {
    return Math.floor(this.clock.wallTime() / 1000);
  }
}

function isNode(d: Destination, id: Id): boolean {
  return d.kind === DestinationKind.Node && d.id === id;
}

/**
 * Randomised routing against droppers (RFC 6940 s13.5). A first try takes the best path. A
 * retry sets the high bit of its (otherwise random) transaction ID; then every hop picks among
 * its good next hops by a hash of the ID and its own Node-ID (the topology decides which are
 * good), so the retry takes another path past a peer that swallowed the first try.
 */
const DIVERSIFY_BIT = 0x80;
function detourChoice(transactionId: Uint8Array, self: Id): number {
  if ((transactionId[0] & DIVERSIFY_BIT) === 0) return 0;
  const mixed = (transactionId[1] * 31 + transactionId[2]) ^ Number(self & 0xffffn);
  return (Math.imul(mixed, 0x9e3779b1) >>> 16) & 0xff;
}

