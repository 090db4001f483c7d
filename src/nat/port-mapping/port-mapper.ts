import type { Link } from '../../link/link.js';
import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { Random } from '../../runtime/random.js';
import { type Address, addressKey } from '../../wire/address.js';
import { decodePmpAnswer, PMP_PORT, pmpAddressRequest, pmpExternal, pmpMapRequest, type PmpAnswer } from './nat-pmp.js';
import { decodePcpAnswer, pcpMapRequest, PcpResult } from './pcp.js';
import { addPortMappingArgs, findWanService, type IgdService, isUrlOn, soapEnvelope, soapValue, SSDP_ADDRESS, ssdpLocation, ssdpSearch } from './upnp-igd.js';
import { isGlobalUnicast } from '../address-scope.js';

/*
 * Asks the home router to forward our overlay port: PCP (RFC 6887), then NAT-PMP (RFC 6886),
 * then UPnP IGD, the first that grants it wins. The mapping is renewed at half its lifetime and
 * removed when the node stops. A forwarded port makes the node reachable by anyone, as if it
 * had a public address. `--port-mapping off` keeps the node from asking at all.
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
const WAIT_MS = 600;

export class PortMapper {
  mapping: PortMapping | undefined;
  readonly tried: { protocol: MappingProtocol; outcome: string }[] = [];
  private renewTimer: TimerHandle | undefined;
  private readonly nonce: Uint8Array;
  private igd: IgdService | undefined;

  constructor(
    private readonly io: PortMappingIo,
    private readonly clock: Clock,
    random: Random,
    private readonly log: Logger,
    /** Our host address and overlay port (the internal side of the mapping). */
    private readonly internal: Address,
    /** Which protocols to try, in this order. */
    private readonly protocols: readonly MappingProtocol[] = MAPPING_PROTOCOLS,
  ) {
    this.nonce = random.bytes(12);
  }

  /** Tries each protocol in turn; `done` gets the mapping, or nothing when no router granted one. */
  async map(): Promise<PortMapping | undefined> {
    const gateway = this.io.gateway();
    if (!gateway) return undefined;
    const attempts = { pcp: () => this.pcp(gateway, LIFETIME_SECONDS), 'nat-pmp': () => this.pmp(gateway, LIFETIME_SECONDS), 'upnp-igd': () => this.upnp(gateway, LIFETIME_SECONDS) };
    for (const protocol of this.protocols) {
      const attempt = attempts[protocol];
      let mapping: PortMapping | undefined;
      try {
        mapping = await attempt();
      } catch (error) {
        this.tried.push({ protocol, outcome: (error as Error).message });
        continue;
      }
      if (!mapping) continue;
      this.tried.push({ protocol, outcome: `mapped ${addressKey(mapping.external)}` });
      this.mapping = mapping;
      this.log.info('port-mapped', { protocol, external: addressKey(mapping.external), lifetime: mapping.lifetimeSeconds });
      this.scheduleRenewal(mapping);
      return mapping;
    }
    return undefined;
  }

  /** Removes the mapping from the router (on shutdown). */
  async remove(): Promise<void> {
    this.clock.clearTimer(this.renewTimer);
    const mapping = this.mapping;
    this.mapping = undefined;
    const gateway = this.io.gateway();
    if (!mapping || !gateway) return;
    try {
      if (mapping.protocol === 'pcp') await this.pcp(gateway, 0);
      else if (mapping.protocol === 'nat-pmp') await this.pmp(gateway, 0);
      else if (this.igd) await this.soap(this.igd, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: mapping.external.port, NewProtocol: 'UDP' });
      this.log.info('port-mapping-removed', { protocol: mapping.protocol });
    } catch (error) {
      this.log.info('port-mapping-remove-failed', { error: (error as Error).message });
    }
  }

  status(): Record<string, unknown> {
    return { mapping: this.mapping ? { ...this.mapping, external: addressKey(this.mapping.external) } : null, tried: this.tried };
  }

  private scheduleRenewal(mapping: PortMapping): void {
    this.clock.clearTimer(this.renewTimer);
    this.renewTimer = this.clock.setTimer((mapping.lifetimeSeconds * 1000) / 2, () => {
      const gateway = this.io.gateway();
      const again = mapping.protocol === 'pcp' ? this.pcp(gateway!, LIFETIME_SECONDS) : mapping.protocol === 'nat-pmp' ? this.pmp(gateway!, LIFETIME_SECONDS) : this.upnp(gateway!, LIFETIME_SECONDS);
      again.then(
        (renewed) => {
          if (!renewed) return void this.map();
          this.mapping = renewed;
          this.scheduleRenewal(renewed);
        },
        () => void this.map(),
      );
    });
  }

  // --- PCP and NAT-PMP: one request, one answer, on a socket of their own ---

  private async pcp(gateway: string, lifetime: number): Promise<PortMapping | undefined> {
    const request = pcpMapRequest(this.internal.host, this.nonce, this.internal.port, this.internal.port, lifetime);
    const [answer] = await this.exchange(gateway, [request], (bytes) => decodePcpAnswer(bytes), 1);
    if (!answer) throw new Error('no answer');
    if (answer.version !== 2) throw new Error('the gateway speaks NAT-PMP only');
    if (answer.result !== PcpResult.Success || !answer.external) throw new Error(`result ${answer.result}`);
    return { protocol: 'pcp', external: answer.external, lifetimeSeconds: answer.lifetimeSeconds };
  }

  private async pmp(gateway: string, lifetime: number): Promise<PortMapping | undefined> {
    const answers = await this.exchange<PmpAnswer>(gateway, [pmpAddressRequest(), pmpMapRequest(this.internal.port, this.internal.port, lifetime)], decodePmpAnswer, 2);
    const address = answers.find((a) => a.op === 'address');
    const map = answers.find((a) => a.op === 'map');
    if (!map) throw new Error('no answer');
    if (lifetime === 0) return undefined;
    const external = pmpExternal(address, map);
    if (!external || map.op !== 'map') throw new Error(`result ${map.result}`);
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
    const added = await this.soap(this.igd, 'AddPortMapping', addPortMappingArgs(this.internal.port, this.internal.port, this.internal.host, lifetime));
    if (added.status !== 200) throw new Error(`AddPortMapping: HTTP ${added.status} ${soapValue(added.body, 'errorDescription') ?? ''}`.trim());
    const ip = soapValue((await this.soap(this.igd, 'GetExternalIPAddress', {})).body, 'NewExternalIPAddress');
    if (!ip) throw new Error('GetExternalIPAddress gave no address');
    // What we would advertise to everyone: an IP literal, and one the internet can reach (a
    // router behind another NAT reports a private address; a liar on the LAN, anything).
    if (!isGlobalUnicast(ip)) throw new Error(`GetExternalIPAddress gave ${ip.slice(0, 40)}, not a public address`);
    return { protocol: 'upnp-igd', external: { host: ip, port: this.internal.port }, lifetimeSeconds: lifetime };
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
