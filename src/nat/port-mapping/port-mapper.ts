import type { Link } from '../../link/link.js';
import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { Random } from '../../runtime/random.js';
import { type Address, addressKey } from '../../wire/address.js';
import { decodePmpAnswer, PMP_PORT, pmpAddressRequest, pmpExternal, pmpMapRequest, type PmpAnswer } from './nat-pmp.js';
import { decodePcpAnswer, type PcpAnswer, pcpMapRequest, PcpResult } from './pcp.js';
import { addPortMappingArgs, findWanService, type IgdService, isUrlOn, soapEnvelope, soapValue, SSDP_ADDRESS, ssdpLocation, ssdpSearch } from './upnp-igd.js';
import { isGlobalUnicast } from '../address-scope.js';

/*
 * Asks the home router to forward our overlay port: PCP (RFC 6887), then NAT-PMP (RFC 6886),
 * then UPnP IGD, the first that grants it wins. The mapping is renewed at half its lifetime and
 * removed when the node stops. A forwarded port makes the node reachable by anyone, as if it
 * had a public address. `--port-mapping off` keeps the node from asking at all.
 * Routers are what they are: answers are matched to our requests (PCP nonce, opcode, protocol and
 * internal port; NAT-PMP internal port); a mapping that cannot be renewed nor made again is
 * withdrawn at once (onChange) and asked for again later, backing off; epochs that go backwards
 * (a rebooted router, which forgot us) are noticed; a success with a lifetime too short to keep is
 * no success; UPnP routers that grant only permanent leases (725) or hold the port for someone
 * else (718) are asked again the way they accept.
 */
export interface PortMappingIo {
  /** The default gateway's address (where PCP, NAT-PMP and SSDP go), if there is one. */
  gateway(): string | undefined;
  openSocket(bind: Address): Promise<Link>;
  http(url: string, method: 'GET' | 'POST', headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }>;
}

export type MappingProtocol = 'pcp' | 'nat-pmp' | 'upnp-igd';
export const MAPPING_PROTOCOLS: readonly MappingProtocol[] = ['pcp', 'nat-pmp', 'upnp-igd'];

export interface PortMapping {
  readonly protocol: MappingProtocol;
  readonly external: Address;
  readonly lifetimeSeconds: number;
}

const LIFETIME_SECONDS = 3600;
/**
 * Renewed at half the lifetime, and at least this often: a router that rebooted has forgotten
 * the mapping (and its forward), and the renewal is what asks for it again (its epoch says it
 * rebooted). One small request a minute on the LAN keeps a reboot's outage under a minute, not
 * half an hour.
 */
const RENEW_AT_MOST_MS = 60_000;
/** A granted lifetime shorter than this is refused: renewing at half of it would be a loop. */
const MIN_LIFETIME_SECONDS = 60;
const WAIT_MS = 600;
/** A lost mapping is asked for again after this long, doubling up to the ceiling. */
const RETRY_MS = 30_000;
const MAX_RETRY_MS = 30 * 60_000;
/** UPnP errors (UPnP IGD WANIPConnection:2 s2.4.16): the port is taken; only permanent leases. */
const UPNP_CONFLICT = '718';
const UPNP_ONLY_PERMANENT = '725';
/** Other external ports tried when the router says ours is someone else's. */
const UPNP_PORT_TRIES = 3;

export class PortMapper {
  mapping: PortMapping | undefined;
  readonly tried: { protocol: MappingProtocol; outcome: string }[] = [];
  readonly counters = { renewals: 0, lost: 0, retries: 0, routerReboots: 0, strayAnswers: 0 };
  /** Hears of the mapping gained, changed or lost (the node's advertised candidates follow it). */
  onChange: (mapping: PortMapping | undefined) => void = () => {};
  private renewTimer: TimerHandle | undefined;
  private readonly nonce: Uint8Array;
  private igd: IgdService | undefined;
  /** This IGD said it keeps only permanent leases (725): later asks go straight to lease 0. */
  private permanentOnly = false;
  /** The router's last epoch and when we heard it (seconds, ms). */
  private epoch: { seconds: number; at: number } | undefined;
  private stopped = false;
  /** Requests to the router under way: remove() waits for them, so none makes a forward after it. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly io: PortMappingIo,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly log: Logger,
    /** Our host address and overlay port (the internal side of the mapping). */
    private readonly internal: Address,
    /** Which protocols to try, in this order. */
    private readonly protocols: readonly MappingProtocol[] = MAPPING_PROTOCOLS,
  ) {
    this.nonce = random.bytes(12);
  }

  /** What was tried lately, the last 32: a router that never grants one is asked every 30 minutes for ever (leak review F3). */
  private note(attempt: (typeof this.tried)[number]): void {
    this.tried.push(attempt);
    if (this.tried.length > 32) this.tried.splice(0, this.tried.length - 32);
  }

  /** Tries each protocol in turn; resolves to the mapping, or to nothing when no router granted one. */
  async map(): Promise<PortMapping | undefined> {
    const gateway = this.io.gateway();
    if (!gateway) return undefined;
    const attempts = { pcp: () => this.pcp(gateway, LIFETIME_SECONDS), 'nat-pmp': () => this.pmp(gateway, LIFETIME_SECONDS), 'upnp-igd': () => this.upnp(gateway, LIFETIME_SECONDS) };
    for (const protocol of this.protocols) {
      if (this.stopped) return undefined;
      const attempt = attempts[protocol];
      let mapping: PortMapping | undefined;
      try {
        mapping = await this.tracked(attempt());
      } catch (error) {
        this.note({ protocol, outcome: (error as Error).message });
        continue;
      }
      if (!mapping) continue;
      if (this.stopped) {
        await this.deleteOnRouter(mapping); // granted after we were told to stop: give it back
        return undefined;
      }
      this.note({ protocol, outcome: `mapped ${addressKey(mapping.external)}` });
      this.setMapping(mapping);
      this.log.info('port-mapped', { protocol, internalPort: this.internal.port, external: addressKey(mapping.external), lifetime: mapping.lifetimeSeconds });
      this.scheduleRenewal(mapping);
      return mapping;
    }
    return undefined;
  }

  /**
   * A mapper for another of our ports (a relay allocation's) on the router that granted ours:
   * the protocol that worked, the IGD already found. Its mapping lives and is renewed on its own.
   */
  forPort(port: number): PortMapper | undefined {
    // Not on a router that keeps only permanent leases: a relay that stopped uncleanly would leave
    // its forwards open for good.
    if (!this.mapping || this.permanentOnly || this.mapping.lifetimeSeconds === 0) return undefined;
    const other = new PortMapper(this.io, this.clock, this.random, this.log, { host: this.internal.host, port }, [this.mapping.protocol]);
    other.igd = this.igd;
    return other;
  }

  private setMapping(mapping: PortMapping | undefined): void {
    const changed = mapping?.protocol !== this.mapping?.protocol || (mapping && this.mapping ? addressKey(mapping.external) !== addressKey(this.mapping.external) : mapping !== this.mapping);
    this.mapping = mapping;
    if (changed) this.onChange(mapping);
  }

  /** The mapping is gone and could not be made again: withdraw it now, ask again later (backing off). */
  private lost(delayMs: number): void {
    if (this.mapping) {
      this.counters.lost++;
      this.log.warn('port-mapping-lost', { protocol: this.mapping.protocol, retryInSeconds: delayMs / 1000 });
    }
    this.setMapping(undefined);
    this.clock.clearTimer(this.renewTimer);
    this.renewTimer = this.clock.setTimer(delayMs, () => {
      if (this.stopped) return;
      this.counters.retries++;
      void this.map().then((mapping) => mapping ?? this.lost(Math.min(delayMs * 2, MAX_RETRY_MS)));
    });
  }

  /** RFC 6887 s8.5 / RFC 6886 s3.6: an epoch well behind what time since the last one predicts means the router restarted. */
  private noteEpoch(seconds: number | undefined): void {
    if (seconds === undefined) return;
    const now = this.clock.now();
    const last = this.epoch;
    this.epoch = { seconds, at: now };
    if (!last) return;
    const expected = last.seconds + (now - last.at) / 1000;
    if (seconds + 2 < expected * 0.875) {
      this.counters.routerReboots++;
      this.log.warn('router-rebooted', { epochSeconds: seconds, expectedSeconds: Math.round(expected) });
    }
  }

  /** Removes the mapping from the router (on shutdown), once any request under way has been answered. */
  async remove(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimer(this.renewTimer);
    await Promise.all(this.inFlight);
    const mapping = this.mapping;
    this.setMapping(undefined);
    if (mapping) await this.deleteOnRouter(mapping);
  }

  private async deleteOnRouter(mapping: PortMapping): Promise<void> {
    const gateway = this.io.gateway();
    if (!gateway) return;
    try {
      if (mapping.protocol === 'pcp') await this.pcp(gateway, 0);
      else if (mapping.protocol === 'nat-pmp') await this.pmp(gateway, 0);
      else if (this.igd) await this.soap(this.igd, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: mapping.external.port, NewProtocol: 'UDP' });
      this.log.info('port-mapping-removed', { protocol: mapping.protocol, internalPort: this.internal.port });
    } catch (error) {
      this.log.info('port-mapping-remove-failed', { error: (error as Error).message });
    }
  }

  private tracked<T>(request: Promise<T>): Promise<T> {
    const settled = request.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return request;
  }

  status(): Record<string, unknown> {
    return { mapping: this.mapping ? { ...this.mapping, external: addressKey(this.mapping.external) } : null, tried: this.tried, ...this.counters };
  }

  private scheduleRenewal(mapping: PortMapping): void {
    this.clock.clearTimer(this.renewTimer);
    // A permanent UPnP lease (0) is re-added hourly all the same: that is how we notice it went.
    const lifetime = mapping.lifetimeSeconds === 0 ? LIFETIME_SECONDS : Math.max(MIN_LIFETIME_SECONDS, mapping.lifetimeSeconds);
    this.renewTimer = this.clock.setTimer(Math.min((lifetime * 1000) / 2, RENEW_AT_MOST_MS), () => {
      if (this.stopped) return;
      const gateway = this.io.gateway();
      if (!gateway) return this.lost(RETRY_MS);
      this.counters.renewals++;
      const again = this.tracked(mapping.protocol === 'pcp' ? this.pcp(gateway, LIFETIME_SECONDS) : mapping.protocol === 'nat-pmp' ? this.pmp(gateway, LIFETIME_SECONDS) : this.upnp(gateway, LIFETIME_SECONDS));
      const remap = (): void => void this.map().then((remapped) => remapped ?? (this.stopped ? undefined : this.lost(RETRY_MS)));
      again.then((renewed) => {
        if (this.stopped) return; // remove() deletes what we hold, having waited for this answer
        if (!renewed) return remap();
        this.setMapping(renewed);
        this.scheduleRenewal(renewed);
      }, remap);
    });
  }

  // --- PCP and NAT-PMP: one request, one answer, on a socket of their own ---

  private async pcp(gateway: string, lifetime: number): Promise<PortMapping | undefined> {
    const request = pcpMapRequest(this.internal.host, this.nonce, this.internal.port, this.internal.port, lifetime);
    const [answer] = await this.exchange(gateway, [request], (bytes) => this.ourPcpAnswer(bytes), 1);
    if (!answer) throw new Error('no answer');
    if (answer.version !== 2) throw new Error('the gateway speaks NAT-PMP only');
    this.noteEpoch(answer.epochSeconds);
    if (answer.result !== PcpResult.Success || !answer.external) throw new Error(`result ${answer.result}`);
    if (lifetime === 0) return undefined;
    if (answer.lifetimeSeconds < MIN_LIFETIME_SECONDS) throw new Error(`granted only ${answer.lifetimeSeconds} s`);
    return { protocol: 'pcp', external: answer.external, lifetimeSeconds: answer.lifetimeSeconds };
  }

  /** A PCP answer to our own MAP request: our nonce, UDP, our internal port (else someone else's, or a forgery). */
  private ourPcpAnswer(bytes: Uint8Array): PcpAnswer | undefined {
    const answer = decodePcpAnswer(bytes);
    if (!answer || answer.version !== 2) return answer; // NAT-PMP's "unsupported version" carries no nonce
    const ours = answer.nonce !== undefined && Buffer.compare(Buffer.from(answer.nonce), Buffer.from(this.nonce.subarray(0, 12))) === 0 && answer.protocol === 17 && answer.internalPort === this.internal.port;
    if (ours) return answer;
    this.counters.strayAnswers++;
    return undefined;
  }

  private async pmp(gateway: string, lifetime: number): Promise<PortMapping | undefined> {
    // RFC 6886 s3.4: a deletion names external port 0 and lifetime 0.
    const request = pmpMapRequest(this.internal.port, lifetime === 0 ? 0 : this.internal.port, lifetime);
    const ours = (bytes: Uint8Array): PmpAnswer | undefined => {
      const answer = decodePmpAnswer(bytes);
      if (answer?.op === 'map' && answer.internalPort !== this.internal.port) {
        this.counters.strayAnswers++;
        return undefined;
      }
      return answer;
    };
    const answers = await this.exchange<PmpAnswer>(gateway, [pmpAddressRequest(), request], ours, 2);
    const address = answers.find((a) => a.op === 'address');
    const map = answers.find((a) => a.op === 'map');
    if (!map) throw new Error('no answer');
    this.noteEpoch(map.epochSeconds);
    if (lifetime === 0) return undefined;
    const external = pmpExternal(address, map);
    if (!external || map.op !== 'map') throw new Error(`result ${map.result}`);
    if (map.lifetimeSeconds < MIN_LIFETIME_SECONDS) throw new Error(`granted only ${map.lifetimeSeconds} s`);
    return { protocol: 'nat-pmp', external, lifetimeSeconds: map.lifetimeSeconds };
  }

  /** Sends each request (twice, for loss) and collects up to `want` decoded answers. */
  private async exchange<T>(gateway: string, requests: Uint8Array[], decode: (bytes: Uint8Array) => T | undefined, want: number): Promise<T[]> {
    const socket = await this.io.openSocket({ host: this.internal.host, port: 0 });
    const answers: T[] = [];
    try {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(WAIT_MS, resolve);
        socket.onDatagram((from, datagram) => {
          if (from.host !== gateway || from.port !== PMP_PORT) return;
          const answer = decode(datagram);
          if (answer === undefined) return;
          answers.push(answer);
          if (answers.length >= want) {
            this.clock.clearTimer(timer);
            resolve();
          }
        });
        for (const request of requests) socket.send({ host: gateway, port: PMP_PORT }, request);
        this.clock.setTimer(WAIT_MS / 3, () => answers.length < want && requests.forEach((r) => socket.send({ host: gateway, port: PMP_PORT }, r)));
      });
    } finally {
      await socket.close();
    }
    return answers;
  }

  // --- UPnP IGD ---

  private async upnp(gateway: string, lifetime: number): Promise<PortMapping | undefined> {
    this.igd ??= await this.discoverIgd(gateway);
    if (!this.igd) throw new Error('no IGD answered SSDP');
    const igd = this.igd;
    let lease = this.permanentOnly ? 0 : lifetime;
    let external = this.mapping?.protocol === 'upnp-igd' ? this.mapping.external.port : this.internal.port;
    let added = await this.soap(igd, 'AddPortMapping', addPortMappingArgs(external, this.internal.port, this.internal.host, lease));
    for (let tries = 0; added.status !== 200 && tries < UPNP_PORT_TRIES + 1; tries++) {
      const code = soapValue(added.body, 'errorCode');
      if (code === UPNP_ONLY_PERMANENT && lease !== 0) {
        lease = 0; // this router keeps only permanent leases
        this.permanentOnly = true;
      }
      else if (code === UPNP_CONFLICT) external = external >= 65535 ? 1024 : external + 1; // someone holds that port
      else break;
      added = await this.soap(igd, 'AddPortMapping', addPortMappingArgs(external, this.internal.port, this.internal.host, lease));
    }
    if (added.status !== 200) throw new Error(`AddPortMapping: HTTP ${added.status} ${soapValue(added.body, 'errorCode') ?? ''} ${soapValue(added.body, 'errorDescription') ?? ''}`.trim());
    const ip = await this.soap(igd, 'GetExternalIPAddress', {}).then((answer) => soapValue(answer.body, 'NewExternalIPAddress'), () => undefined);
    // What we would advertise to everyone: an IP literal, and one the internet can reach (a
    // router behind another NAT reports a private address; a liar on the LAN, anything). A
    // forward we will not use is given back, not left open.
    if (!ip || !isGlobalUnicast(ip)) {
      await this.soap(igd, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: external, NewProtocol: 'UDP' }).catch(() => undefined);
      throw new Error(ip ? `GetExternalIPAddress gave ${ip.slice(0, 40)}, not a public address` : 'GetExternalIPAddress gave no address');
    }
    return { protocol: 'upnp-igd', external: { host: ip, port: external }, lifetimeSeconds: lease };
  }

  private async discoverIgd(gateway: string): Promise<IgdService | undefined> {
    const socket = await this.io.openSocket({ host: this.internal.host, port: 0 });
    let location: string | undefined;
    try {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(WAIT_MS * 2, resolve);
        socket.onDatagram((from, datagram) => {
          const found = from.host === gateway ? ssdpLocation(datagram) : undefined;
          if (!found) return;
          location = found;
          this.clock.clearTimer(timer);
          resolve();
        });
        socket.send(SSDP_ADDRESS, ssdpSearch());
        this.clock.setTimer(WAIT_MS / 2, () => location === undefined && socket.send(SSDP_ADDRESS, ssdpSearch()));
      });
    } finally {
      await socket.close();
    }
    // Only the gateway's own description, and only a control URL on the gateway: an answer that
    // points elsewhere would make us send HTTP wherever a LAN device likes.
    if (!location || !isUrlOn(location, gateway)) return undefined;
    const description = await this.io.http(location, 'GET', {});
    const service = description.status === 200 ? findWanService(description.body, location) : undefined;
    return service && isUrlOn(service.controlUrl, gateway) ? service : undefined;
  }

  private soap(service: IgdService, action: string, args: Record<string, string | number>) {
    return this.io.http(service.controlUrl, 'POST', { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${service.serviceType}#${action}"` }, soapEnvelope(service, action, args));
  }
}
