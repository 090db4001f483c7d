import { createHmac } from 'node:crypto';
import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import { type Address, addressKey } from '../../wire/address.js';
import { type DigestAlgorithm, NonceIssuer } from './auth/digest.js';
import { type CheckedRequest, checkRequest } from './message/check.js';
import { serializeSipMessage } from './message/serializer.js';
import { SipHeaders, type SipMessage, type SipRequest, type SipResponse } from './message/sip-message.js';
import { LocationService } from './registrar/location.js';
import { type Credentials, DEFAULT_REGISTRAR_OPTIONS, Registrar } from './registrar/registrar.js';
import { DigestAuthenticator } from './auth/digest-authenticator.js';
import { FlowTokens } from './proxy/flow-tokens.js';
import { SipError } from './sip-error.js';
import { ServerTransactions } from './transactions/server-transactions.js';
import { ClientTransactions } from './transactions/client-transactions.js';
import { type RemoteHomes, SipProxy } from './proxy/proxy.js';
import { tryParseSipUri } from './proxy/route-uris.js';
import { readEssentials } from './message/check.js';
import type { SipUri } from './message/uri.js';
import { type SipFlow, SipTransport } from './transport/sip-transport.js';
import type { SipMedia } from './media/sip-media.js';

/*
 * The SIP side of a home peer: phones register to it as to a provider's registrar (RFC 3261
 * s10). This assembles the transport, the server transactions and the registrar, answers
 * OPTIONS, and refuses what it cannot read with 400 and a reason (or drops it when no response
 * can be formed, s18.1.2). Calls across the overlay build on it.
 */
export interface SipServiceDeps {
  readonly bind: Address;
  /** The host other homes and phones reach this peer at (Via, Record-Route). */
  readonly advertisedHost: string;
  /** This peer's Node-ID in hex (Record-Route names it, for the overlay path). */
  readonly nodeId?: string;
  readonly realm: string;
  readonly domains: readonly string[];
  readonly requireAuth: boolean;
  readonly algorithms?: readonly DigestAlgorithm[];
  readonly credentials: Credentials;
  /** Finds other homes through the overlay; without it only this home's users are reached. */
  readonly remote?: RemoteHomes;
  readonly clock: Clock;
  readonly log: Logger;
  /** Secret for stateless nonces (32 random bytes). */
  readonly nonceSecret: Uint8Array;
  /** Other addresses of this host that phones may use for us (LAN addresses, when bound to all). */
  readonly localHosts?: readonly string[];
  /** The proxy's Timer C (RFC 3261 s16.6 step 11), ms; three minutes unless set. */
  readonly timerCMs?: number;
  /** The media anchor for calls that cross homes (issue 16); without it SDP passes untouched. */
  readonly media?: SipMedia;
}

/** A user whose credentials keep failing is logged at most this often. */
const AUTH_FAILURE_LOG_MS = 60_000;
const AUTH_FAILURE_LOG_GAP_MS = 5_000;
const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, PRACK, REGISTER';

/** A new subscription to message-summary whose subscriber and target are the same user of this home. */
function isOwnMailboxSubscription(request: SipRequest, ownAccount: string | undefined): boolean {
  const event = (request.headers.get('Event') ?? '').split(';')[0].trim();
  return event === 'message-summary' && ownAccount !== undefined;
}
/** Option tags this peer implements as a proxy and registrar (none yet: no path, outbound or gruu). */
const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set();

/**
 * RFC 3261 s16.3 step 5: extensions a proxy is asked to understand (Proxy-Require), and, for a
 * REGISTER that this peer answers itself as registrar, those it must (Require, s8.2.2.3), that
 * it does not know. Never for ACK and CANCEL, which cannot be refused.
 */
function unsupportedExtensions(request: SipRequest): string[] {
  if (request.method === 'ACK' || request.method === 'CANCEL') return [];
  const required = [...request.headers.getAll('Proxy-Require'), ...(request.method === 'REGISTER' ? request.headers.getAll('Require') : [])];
  return required.map((tag) => tag.trim()).filter((tag) => tag && !SUPPORTED_EXTENSIONS.has(tag.toLowerCase()));
}
const SWEEP_MS = 10_000;
/** A nonce is fresh this long; a stale one is answered with stale=true (RFC 3261 s22.4). */
const NONCE_LIFETIME_MS = 5 * 60_000;

export class SipService {
  readonly location: LocationService;
  readonly registrar: Registrar;
  private readonly auth: DigestAuthenticator;
  private readonly transactions: ServerTransactions;
  private readonly clients: ClientTransactions;
  readonly proxy: SipProxy;
  private sweepTimer: TimerHandle | undefined;
  readonly counters = { requests: 0, responses: 0, badRequests: 0, dropped: 0, unsupported: 0 };

  private constructor(
    readonly transport: SipTransport,
    private readonly deps: SipServiceDeps,
  ) {
    this.location = new LocationService(() => deps.clock.wallTime());
    const algorithms = deps.algorithms ?? DEFAULT_REGISTRAR_OPTIONS.algorithms;
    this.auth = new DigestAuthenticator(deps.credentials, new NonceIssuer(deps.nonceSecret, NONCE_LIFETIME_MS), deps.clock, deps.realm, algorithms, NONCE_LIFETIME_MS);
    // A phone with a wrong password retries for ever: said in the log once a minute per user, and
    // one line in AUTH_FAILURE_LOG_GAP_MS at most whatever names a stranger rotates through.
    const said = new Map<string, number>();
    let lastSaidAt = -Infinity;
    this.auth.onFailure = (failure) => {
      if (failure.at - (said.get(failure.user) ?? -Infinity) < AUTH_FAILURE_LOG_MS || failure.at - lastSaidAt < AUTH_FAILURE_LOG_GAP_MS) return;
      if (said.size >= 256) said.clear();
      said.set(failure.user, failure.at);
      lastSaidAt = failure.at;
      deps.log.warn('sip-auth-failed', { user: failure.user, reason: failure.reason });
    };
    const selfHosts = [...(deps.localHosts ?? []), deps.bind.host, 'localhost'].map((h) => h.toLowerCase());
    this.registrar = new Registrar(this.location, this.auth, deps.clock, {
      ...DEFAULT_REGISTRAR_OPTIONS,
      realm: deps.realm,
      domains: deps.domains,
      // Our own addresses are aliases of the first domain (a phone set up with "server 192.168.1.2").
      aliases: { hosts: [deps.advertisedHost.toLowerCase(), ...selfHosts], port: transport.localAddress.port },
      requireAuth: deps.requireAuth,
      algorithms,
    });
    this.transactions = new ServerTransactions(transport, deps.clock);
    this.clients = new ClientTransactions(transport, deps.clock);
    this.proxy = new SipProxy({
      transport,
      servers: this.transactions,
      clients: this.clients,
      location: this.location,
      self: { host: deps.advertisedHost, port: transport.localAddress.port },
      auth: deps.requireAuth ? this.auth : undefined,
      flowTokens: new FlowTokens(new Uint8Array(createHmac('sha256', deps.nonceSecret).update('p2psip flow tokens').digest())),
      onFlowFailed: (flow) => flow.connectionId !== undefined && this.location.removeConnection(flow.connectionId),
      selfHosts,
      selfNodeId: deps.nodeId ?? '',
      servesDomain: (host, port) => this.registrar.servesDomain(host, port),
      canonicalAor: (uri) => this.registrar.canonicalAor(uri),
      isLocalUser: (user) => deps.credentials.lookup(user) !== undefined,
      remote: deps.remote,
      log: deps.log.child('proxy'),
      ...(deps.timerCMs ? { timerCMs: deps.timerCMs } : {}),
      ...(deps.media ? { media: deps.media } : {}),
    });
    transport.onMessage((message, flow) => this.receive(message, flow));
    transport.onMalformed((error, bytes, flow) => this.refuseUnparsed(error, bytes, flow));
    this.scheduleSweep();
  }

  static async start(deps: SipServiceDeps): Promise<SipService> {
    const transport = await SipTransport.open(deps.bind, deps.log.child('sip-transport'));
    return new SipService(transport, deps);
  }

  /** The calls whose media this peer anchors now (`p2psip calls`). */
  activeCalls(): Record<string, unknown>[] {
    return this.deps.media?.activeCalls() ?? [];
  }

  /** The last credentials refused, for status: whose, why, how long ago. */
  private lastAuthFailure(): { user: string; reason: string; secondsAgo: number } | null {
    const failure = this.auth.lastFailure;
    return failure ? { user: failure.user, reason: failure.reason, secondsAgo: Math.round((this.deps.clock.wallTime() - failure.at) / 1000) } : null;
  }

  get address(): Address {
    return this.transport.localAddress;
  }

  status(): Record<string, unknown> {
    return {
      address: addressKey(this.transport.localAddress),
      // What a phone is set to: its registrar and proxy (the advertised host, the bound port).
      server: `${this.deps.advertisedHost}:${this.transport.localAddress.port}`,
      realm: this.deps.realm,
      invites: this.deps.requireAuth ? "challenged unless from this home's phones or another home" : 'never challenged (--sip-auth off)',
      auth: this.deps.requireAuth ? `digest ${(this.deps.algorithms ?? DEFAULT_REGISTRAR_OPTIONS.algorithms).join(',')}` : 'off',
      bindings: this.location.size,
      users: this.location.aors().length,
      transactions: this.transactions.size,
      transactionBytes: this.transactions.heldBytes,
      clientTransactions: this.clients.size,
      counters: { ...this.counters, retransmissionsAbsorbed: this.transactions.retransmissionsAbsorbed, refusedFull: this.transactions.refusedFull },
      proxy: { ...this.proxy.counters },
      registrar: { ...this.registrar.counters, ...this.auth.counters, lastAuthFailure: this.lastAuthFailure() },
      transport: { ...this.transport.counters, unframedBytes: this.transport.unframedBytes },
      media: this.deps.media ? this.deps.media.status() : { mode: 'off' },
    };
  }

  async close(): Promise<void> {
    this.deps.clock.clearTimer(this.sweepTimer);
    this.proxy.close();
    this.clients.terminateAll();
    this.deps.media?.close();
    this.transactions.terminateAll();
    await this.transport.close();
  }

  private receive(message: SipMessage, flow: SipFlow): void {
    if (message.kind === 'response') {
      this.counters.responses++;
      let essentials;
      try {
        essentials = readEssentials(message);
      } catch {
        this.counters.dropped++; // s18.1.2: a malformed response is dropped
        return;
      }
      if (!this.clients.receive(message, essentials)) this.proxy.dropStrayResponse();
      return;
    }
    this.counters.requests++;
    const loose = this.proxy.unstrictRouted(message);
    this.receiveRequest(loose, flow, loose !== message);
  }

  /** `strictRouted`: its Request-URI came from its last Route (proxy.unstrictRouted). */
  private receiveRequest(message: SipRequest, flow: SipFlow, strictRouted: boolean): void {
    let checked;
    try {
      checked = checkRequest(message);
    } catch (error) {
      if (!(error instanceof SipError)) throw error;
      this.counters.badRequests++;
      this.refuseStatelessly(message, error, flow);
      return;
    }
    const tx = this.transactions.receive(message, checked, flow);
    if (tx === 'ack') return this.proxy.forwardAck(message, checked, flow); // the ACK of a 2xx, end to end
    if (!tx) return; // a retransmission, answered by its transaction, or the ACK of our non-2xx
    if (tx === 'full') return this.refuseStatelessly(message, new SipError(503, 'Service Unavailable'), flow);
    if (strictRouted) this.proxy.counters.strictRoutes++; // once per request, not per retransmission
    const unsupported = unsupportedExtensions(message);
    if (unsupported.length) return tx.respond(420, 'Bad Extension', (r) => r.headers.add('Unsupported', unsupported.join(', ')));
    switch (message.method) {
      case 'REGISTER':
        return this.registrar.handle(tx);
      case 'CANCEL':
        return this.proxy.handleCancel(tx, this.transactions.inviteFor(message, checked));
      case 'OPTIONS':
        // Forwarded, a phone's keepalive to its own account reached every phone of the user, itself included.
        if (this.isForThisPeer(checked.requestUri, message) || this.isOwnAccountKeepalive(checked)) return tx.respond(200, 'OK', (r) => r.headers.add('Allow', ALLOW));
        return this.proxy.handleRequest(tx);
      case 'PUBLISH':
        // RFC 3903 s6: no home keeps published event state (no event state compositor), so none
        // is forwarded to phones. One for another domain is that domain's to answer.
        if (this.registrar.servesDomain(checked.requestUri.host, checked.requestUri.port)) return tx.respond(489, 'Bad Event');
        return this.proxy.handleRequest(tx);
      case 'SUBSCRIBE':
        // RFC 3842: a phone asks its own account whether voicemail waits, and a home has no
        // voicemail. Forwarded, the question reached every phone of the user, itself included.
        if (isOwnMailboxSubscription(message, this.ownAccountOf(checked))) return tx.respond(489, 'Bad Event');
        return this.proxy.handleRequest(tx);
      default:
        // s8.2.1: addressed to the peer itself (no user, no Route on), a method it does not serve.
        if (checked.requestUri.user === undefined && this.isForThisPeer(checked.requestUri, message)) return tx.respond(405, 'Method Not Allowed', (r) => r.headers.add('Allow', 'OPTIONS, REGISTER'));
        return this.proxy.handleRequest(tx);
    }
  }

  /** A keepalive OPTIONS a phone sends its own account (baresip's kaoptions): for its server, not for the user's phones. */
  private isOwnAccountKeepalive(checked: CheckedRequest): boolean {
    const account = this.ownAccountOf(checked);
    return account !== undefined && this.registrar.canonicalAor(checked.requestUri) === account;
  }

  /**
   * The AOR, when a request out of any dialog is from a user of this home to that same user (a
   * phone asking its own account). john@A writing to john@B is two people, and B's to answer.
   */
  private ownAccountOf(checked: CheckedRequest): string | undefined {
    if (checked.to.params.has('tag')) return undefined;
    const from = tryParseSipUri(checked.from.uri);
    const to = tryParseSipUri(checked.to.uri);
    if (from === undefined || to?.user === undefined || !this.registrar.servesDomain(to.host, to.port)) return undefined;
    const account = this.registrar.canonicalAor(to);
    return this.registrar.canonicalAor(from) === account ? account : undefined;
  }

  /**
   * A request for the peer itself (a phone's keepalive or capability probe): no Route onward (a
   * phone's outbound-proxy Route to us is none: our own are taken off first, s16.4), and without
   * a user, or to a user at our own address. Routed through us, its URI must name us too: a
   * dialog's request to a phone's Contact carries only our Routes and is the phone's.
   */
  private isForThisPeer(uri: SipUri, request: SipRequest): boolean {
    const routes = request.headers.getAll('Route');
    if (this.proxy.ownRoutes(routes) < routes.length) return false;
    if (routes.length > 0 && !this.proxy.namesUs(uri)) return false;
    if (uri.user === undefined) return true;
    // At our address, not at the domain: a phone's keepalive to its server (a user at the domain is the user's).
    return !this.deps.domains.includes(uri.host) && this.registrar.isOwnAddress(uri.host, uri.port);
  }

  /**
   * s8.2: a request we cannot read fully still gets a 400 naming the problem when its Via can
   * be copied, so the phone learns what was wrong; without a Via there is nowhere to send it.
   */
  private refuseStatelessly(request: SipRequest, error: SipError, flow: SipFlow): void {
    const vias = request.headers.getAll('Via');
    const cseq = request.headers.get('CSeq') ?? '';
    // s17: an ACK is never answered, however it is written.
    if (vias.length === 0 || request.method === 'ACK' || /\sACK\s*$/i.test(cseq)) {
      this.counters.dropped++;
      return;
    }
    const headers = new SipHeaders();
    for (const via of vias) headers.add('Via', via);
    for (const name of ['From', 'To', 'Call-ID', 'CSeq']) {
      const value = request.headers.get(name);
      if (value === undefined) continue;
      // s8.2.6.2: a final response carries a To tag; one made from the request, so a resent request gets the same.
      const untagged = name === 'To' && !/;\s*tag=/i.test(value);
      headers.add(name, untagged ? `${value};tag=${createHmac('sha256', 'p2psip-stateless').update(`${vias[0]}\n${request.headers.get('Call-ID') ?? ''}`).digest('hex').slice(0, 10)}` : value);
    }
    const response: SipResponse = { kind: 'response', status: error.status, reason: error.reason.replace(/[\r\n]/g, ' '), headers, body: new Uint8Array(0) };
    this.transport.send(flow, serializeSipMessage(response));
  }

  /**
   * A request the parser refused (a header line without a colon, a bad Content-Length) may
   * still have readable Via, From, To, Call-ID and CSeq lines: then it gets its 400 too.
   */
  private refuseUnparsed(error: SipError, bytes: Uint8Array, flow: SipFlow): void {
    this.deps.log.debug('sip-malformed', { from: addressKey(flow.remote), reason: error.reason });
    this.counters.badRequests++;
    const salvaged = salvageHeaders(bytes);
    if (!salvaged) {
      this.counters.dropped++;
      return;
    }
    this.refuseStatelessly({ kind: 'request', method: 'UNKNOWN', uri: '', headers: salvaged, body: new Uint8Array(0) }, error, flow);
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.deps.clock.setTimer(SWEEP_MS, () => {
      this.location.sweep();
      // A registered phone's connection stays open as long as its binding, not 15 idle minutes.
      for (const flow of this.location.flows()) if (flow.transport === 'TCP' && flow.connectionId !== undefined) this.transport.keepOpen(flow.connectionId);
      this.scheduleSweep();
    });
  }
}

const SALVAGED = new Set(['Via', 'From', 'To', 'Call-ID', 'CSeq']);

/** The Via, From, To, Call-ID and CSeq lines of a request's head, read leniently; undefined if it is no request. */
function salvageHeaders(bytes: Uint8Array): SipHeaders | undefined {
  if (bytes.length === 0 || bytes.length > 65_535) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const head = text.split(/\r?\n\r?\n/, 1)[0].split(/\r?\n/);
  // Anything shaped like a request line, however malformed (spaces, versions: RFC 4475 s3.1.2.8-10,
  // s3.1.2.16); responses are never answered.
  if (!/^[A-Za-z0-9\-.!%*_+`'~]+ +\S.* +SIP\/\d+\.\d+ *$/.test(head[0] ?? '')) return undefined;
  const headers = new SipHeaders();
  for (const line of head.slice(1, 257)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    if (!/^[A-Za-z-]+$/.test(name)) continue;
    const value = line.slice(colon + 1).trim();
    try {
      headers.add(name, value);
    } catch {
      continue;
    }
  }
  const kept = new SipHeaders();
  for (const [name, value] of headers.lines()) if (SALVAGED.has(name)) kept.add(name, value);
  return kept.has('Via') ? kept : undefined;
}
