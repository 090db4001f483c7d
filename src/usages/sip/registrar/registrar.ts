import type { Clock } from '../../../runtime/clock.js';
import type { DigestAlgorithm } from '../auth/digest.js';
import { type DigestAuthenticator, REGISTRAR_CHALLENGE } from '../auth/digest-authenticator.js';
import { type NameAddr, parseNameAddr } from '../message/name-addr.js';
import { formatParams } from '../message/params.js';
import type { SipResponse } from '../message/sip-message.js';
import { aorOf, parseSipUri, sameSipUri, type SipUri } from '../message/uri.js';
import { SipError } from '../sip-error.js';
import type { ServerTransaction } from '../transactions/server-transactions.js';
import { sameFlow } from '../transport/sip-transport.js';
import type { Binding, LocationService } from './location.js';

/*
 * The registrar (RFC 3261 s10.3): REGISTER is challenged with digest (s22; SHA-256 and MD5,
 * one challenge each in order of preference, RFC 8760 s2.4; phones that read only the first
 * challenge want MD5 first), checked against the family's users, and then the
 * AOR's bindings are added, refreshed or removed. A user may have several phones at once.
 */
export type { Credentials } from '../auth/digest-authenticator.js';

export interface RegistrarOptions {
  readonly realm: string;
  /** Domains we are the registrar for (s10.3 step 1); the first is the host part of every AOR kept. */
  readonly domains: readonly string[];
  /**
   * The peer's own addresses, with its SIP port: aliases of the first domain (s10.3 step 5), since
   * many phones set up with only "server 192.168.1.2" write that address as their domain.
   */
  readonly aliases?: { readonly hosts: readonly string[]; readonly port: number };
  readonly requireAuth: boolean;
  /** Challenges offered, most preferred first (RFC 8760 s2.4: SHA-256 before MD5). */
  readonly algorithms: readonly DigestAlgorithm[];
  readonly minExpires: number;
  readonly maxExpires: number;
  readonly defaultExpires: number;
}

/**
 * MD5 alone by default: measured, Debian's baresip 1.0 fails to register ("Function not
 * implemented") whenever any SHA-256 challenge is in the 401, in either order, and SIPp reads
 * only the first; MD5 is what every phone at hand answers. SHA-256 (RFC 8760) is one flag away
 * (`--sip-digest SHA-256,MD5`) for homes whose phones all take it.
 */
export const DEFAULT_REGISTRAR_OPTIONS = { requireAuth: true, algorithms: ['MD5'] as readonly DigestAlgorithm[], minExpires: 60, maxExpires: 86_400, defaultExpires: 3600 };

export interface RegistrarCounters {
  registers: number;
  challenged: number;
  bindingsAdded: number;
  bindingsRemoved: number;
  refused: number;
}

export class Registrar {
  readonly counters: RegistrarCounters = { registers: 0, challenged: 0, bindingsAdded: 0, bindingsRemoved: 0, refused: 0 };

  constructor(
    private readonly location: LocationService,
    private readonly auth: DigestAuthenticator,
    private readonly clock: Clock,
    private readonly options: RegistrarOptions,
  ) {}

  /** Is `host` (with `port`, when the URI names one) one of ours: an AOR we keep bindings for? */
  servesDomain(host: string, port?: number): boolean {
    return this.options.domains.includes(host.toLowerCase()) || this.isOwnAddress(host, port);
  }

  /** One of the peer's own addresses on its SIP port (a URI without a port means that port, s19.1.2). */
  isOwnAddress(host: string, port?: number): boolean {
    const aliases = this.options.aliases;
    return aliases !== undefined && aliases.hosts.includes(host.replace(/^\[|\]$/g, '').toLowerCase()) && (port === undefined || port === aliases.port);
  }

  /** The AOR kept for a URI: at the home's domain when the URI is one of ours. */
  canonicalAor(uri: SipUri): string {
    return this.servesDomain(uri.host, uri.port) ? `${uri.user ?? ''}@${this.options.domains[0]}` : aorOf(uri);
  }

  handle(tx: ServerTransaction): void {
    this.counters.registers++;
    try {
      this.register(tx);
    } catch (error) {
      if (!(error instanceof SipError)) throw error;
      this.counters.refused++;
      tx.respond(error.status, error.reason);
    }
  }

  private register(tx: ServerTransaction): void {
    const { request, checked } = tx;
    // What can be judged from the request alone is judged before the challenge, so a phone with
    // a malformed REGISTER hears why (400) instead of being asked for credentials it has.
    const to = addressOfRecord(checked.to.uri);
    // s10.3 step 1: only AORs of our domains.
    if (!this.servesDomain(to.host, to.port)) throw new SipError(404, 'Not Found (not a domain of this registrar)');
    const aor = this.canonicalAor(to);
    const headerExpires = request.headers.get('Expires');
    if (headerExpires !== undefined && !/^\d{1,10}$/.test(headerExpires)) throw new SipError(400, 'malformed Expires');
    const contactTexts = request.headers.getAll('Contact');
    const wildcard = contactTexts.length === 1 && contactTexts[0] === '*';
    const contacts = wildcard ? [] : contactTexts.map(readContact);
    // A Contact is where a phone is. One at this home's domain or at the peer's own SIP address
    // would loop the user's calls back here, or draw another user's calls to this phone.
    for (const contact of contacts) {
      const uri = parseSipUri(contact.uri);
      if (this.servesDomain(uri.host, uri.port ?? 5060)) throw new SipError(403, "Forbidden (a Contact must be the phone's own address, not this home's)");
    }
    if (this.options.requireAuth) {
      const user = this.authenticate(tx);
      if (user === undefined) return; // challenged
      // s10.3 step 6: the authenticated user may change this AOR's bindings only.
      if (user !== to.user) throw new SipError(403, 'Forbidden (credentials are for another user)');
    }
    const now = this.clock.wallTime();
    let bindings = this.location.bindings(aor);
    if (wildcard) {
      // s10.3 step 6: "*" removes every binding, and only with Expires: 0.
      if (headerExpires !== '0') throw new SipError(400, 'Contact * needs Expires: 0');
      bindings = this.removeMatching(bindings, () => true, checked.callId, checked.cseq.seq);
      this.location.set(aor, bindings);
    } else {
      // Values of this request already taken: a Contact repeated in it is one binding, not a stale update.
      const made = new Set<Binding>();
      for (const contact of contacts) {
        const qText = contact.params.get('q');
        const expiresParam = contact.params.get('expires');
        const requested = Number(expiresParam ?? headerExpires ?? this.options.defaultExpires);
        if (requested > 0 && requested < this.options.minExpires) {
          // s10.3 step 7: too brief; say what we accept.
          const min = String(this.options.minExpires);
          tx.respond(423, 'Interval Too Brief', (r) => r.headers.add('Min-Expires', min));
          return;
        }
        const existing = bindings.find((b) => sameContact(b.contact, contact.uri));
        if (existing && !made.has(existing) && existing.callId === checked.callId && checked.cseq.seq <= existing.cseq) {
          throw new SipError(500, 'Server Internal Error (CSeq out of order)');
        }
        if (requested === 0) {
          bindings = this.removeMatching(bindings, (b) => sameContact(b.contact, contact.uri), checked.callId, checked.cseq.seq);
          continue;
        }
        const q = qText ?? undefined;
        // RFC 5626 s4.2: a phone names itself with +sip.instance; a new contact from the same
        // instance (it rebooted, its port changed) replaces the old one instead of leaving a ghost.
        const instance = contact.params.get('+sip.instance') ?? undefined;
        if (instance) bindings = this.removeMatching(bindings, (b) => b.instance === instance && !sameContact(b.contact, contact.uri), '', 0);
        // One phone per flow and AOR: a phone without +sip.instance whose Contact changed while
        // its socket stayed (a new line port, `;ob` once it learned its address) registers
        // under a new Call-ID. Its old binding would be a ghost every call forks to, which
        // holds a declined call's 486 until Timer B. Only for a REGISTER straight from the
        // phone (one Via): phones behind an outbound proxy or SBC share its flow. Contacts sent
        // under one Call-ID (an ATA's lines) stay, and so do phones that name themselves.
        if (!instance && checked.vias.length === 1 && tx.flow.transport !== 'OVERLAY') {
          bindings = this.removeMatching(bindings, (b) => !b.instance && sameFlow(b.flow, tx.flow) && b.callId !== checked.callId && !sameContact(b.contact, contact.uri), '', 0);
        }
        const binding: Binding = {
          contact: contact.uri,
          expiresAt: now + Math.min(requested, this.options.maxExpires) * 1000,
          callId: checked.callId,
          cseq: checked.cseq.seq,
          flow: tx.flow,
          q: q ? Number(q) : undefined,
          ...(instance ? { instance } : {}),
          ...(contact.params.size ? { params: contact.params } : {}),
        };
        if (!existing) this.counters.bindingsAdded++;
        made.add(binding);
        bindings = [...bindings.filter((b) => b !== existing), binding];
      }
      if (contacts.length > 0) this.location.set(aor, bindings);
    }
    tx.respond(200, 'OK', (response) => this.listBindings(response, this.location.bindings(aor), now));
  }

  private removeMatching(bindings: Binding[], match: (b: Binding) => boolean, callId: string, cseq: number): Binding[] {
    const kept = bindings.filter((b) => !match(b) || (b.callId === callId && b.cseq >= cseq));
    this.counters.bindingsRemoved += bindings.length - kept.length;
    return kept;
  }

  private listBindings(response: SipResponse, bindings: readonly Binding[], now: number): void {
    for (const b of bindings) {
      // s10.3 step 8: each binding as registered, its parameters kept, with the time it has left.
      const params = new Map(b.params ?? []);
      params.set('expires', String(Math.max(0, Math.round((b.expiresAt - now) / 1000))));
      response.headers.add('Contact', `<${b.contact}>${formatParams(params)}`);
    }
    response.headers.add('Date', new Date(now).toUTCString());
  }

  /** The authenticated user name, or undefined after sending a challenge (s22.1). */
  private authenticate(tx: ServerTransaction): string | undefined {
    const verdict = this.auth.verify(tx.request, REGISTRAR_CHALLENGE);
    if (verdict.user !== undefined) return verdict.user;
    this.counters.challenged++;
    tx.respond(401, 'Unauthorized', (response) => this.auth.challengeHeaders(response, REGISTRAR_CHALLENGE, verdict.stale));
    return undefined;
  }
}

/** The To URI as an address-of-record: a SIP or SIPS URI with a user (s10.2, RFC 4475 s3.3.4). */
function addressOfRecord(text: string): SipUri {
  let to: SipUri;
  try {
    to = parseSipUri(text);
  } catch (error) {
    if (error instanceof SipError && error.status === 416) throw new SipError(400, 'To is not a sip: or sips: URI (an address-of-record)');
    throw error;
  }
  if (!to.user) throw new SipError(400, 'To has no user');
  return to;
}

/** One Contact value, checked in full: q (s20.10), expires, and a SIP URI to reach. */
function readContact(text: string): NameAddr {
  if (text === '*') throw new SipError(400, 'Contact * must stand alone');
  let contact: NameAddr;
  try {
    contact = parseNameAddr(text);
  } catch (error) {
    throw error instanceof SipError ? new SipError(error.status, `malformed Contact: ${error.reason}`) : error;
  }
  parseSipUri(contact.uri);
  const qText = contact.params.get('q');
  // s20.10: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
  if (qText !== undefined && (qText === null || !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(qText))) throw new SipError(400, 'malformed q parameter');
  const expires = contact.params.get('expires');
  if (expires !== undefined && (expires === null || !/^\d{1,10}$/.test(expires))) throw new SipError(400, 'malformed expires parameter');
  return contact;
}

/** s10.3 step 7 compares contact URIs by URI equality (s19.1.4): ;transport=tcp is another binding. */
function sameContact(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return sameSipUri(parseSipUri(a), parseSipUri(b));
  } catch {
    return false;
  }
}
