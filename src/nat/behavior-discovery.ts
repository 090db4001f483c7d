import { type Address, addressKey } from '../wire/address.js';
import { Attr, attribute, decodePlainAddress, mappedAddress, type StunMessage } from './stun/message.js';

/*
 * NAT behaviour discovery (RFC 5780 s4), with two public peers standing in for one server with
 * two addresses: the primary answers CHANGE-REQUEST "change port" from a fresh port of its own
 * and "change IP" by asking another public peer to send the answer (OTHER-ADDRESS names it).
 *
 *   mapping    s4.3: our address as two different servers see it, the same or not
 *   filtering  s4.4: an answer from another IP reaches us (endpoint-independent); else one from
 *              the same IP and another port (address-dependent); else neither (address-and-port)
 *   hairpin    s4.5: a request to our own mapped address comes back to us
 *
 * Run before the node talks to anyone else, so no earlier packet has opened its NAT's filter.
 */
export type MappingBehavior = 'none' | 'endpoint-independent' | 'endpoint-dependent' | 'unknown';
export type FilteringBehavior = 'none' | 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown';

export interface NatBehavior {
  readonly mapping: MappingBehavior;
  readonly filtering: FilteringBehavior;
  readonly hairpinning: boolean | null;
  readonly mapped: Address | null;
  readonly servers: readonly string[];
}

export const CHANGE_IP = 0x04;
export const CHANGE_PORT = 0x02;

/** What discovery needs from the node's STUN machinery. */
export interface DiscoveryProbes {
  readonly host: Address;
  /** A Binding request, optionally with CHANGE-REQUEST flags; the answer (from anywhere), or nothing. */
  binding(server: Address, changeFlags: number, done: (answer: StunMessage | undefined) => void): void;
  /** Sends a Binding request to `to` and reports whether it came back to our own port. */
  hairpin(to: Address, done: (returned: boolean) => void): void;
}

export function discoverBehavior(probes: DiscoveryProbes, primary: Address, secondary: Address | undefined, done: (behavior: NatBehavior) => void): void {
  probes.binding(primary, 0, (first) => {
    const mapped = first ? mappedAddress(first) : undefined;
    if (!first || !mapped) return done({ mapping: 'unknown', filtering: 'unknown', hairpinning: null, mapped: null, servers: [addressKey(primary)] });
    if (addressKey(mapped) === addressKey(probes.host)) return done({ mapping: 'none', filtering: 'none', hairpinning: null, mapped, servers: [addressKey(primary)] });
    const otherAttr = attribute(first, Attr.OtherAddress);
    const other = otherAttr ? safePlain(otherAttr.value) : secondary;
    let filtering: FilteringBehavior | undefined;
    let mapping: MappingBehavior | undefined;
    let hairpinning: boolean | null | undefined;
    const finish = (): void => {
      if (filtering === undefined || mapping === undefined || hairpinning === undefined) return;
      done({ mapping, filtering, hairpinning, mapped, servers: [addressKey(primary), ...(other ? [addressKey(other)] : [])] });
    };
    // Filtering first: it must see our NAT before we send to the other server.
    probes.binding(primary, CHANGE_IP | CHANGE_PORT, (fromOtherIp) => {
      const afterFiltering = (result: FilteringBehavior): void => {
        filtering = result;
        if (!other) {
          mapping = 'unknown';
          return finish();
        }
        probes.binding(other, 0, (second) => {
          const seen = second ? mappedAddress(second) : undefined;
          mapping = !seen ? 'unknown' : addressKey(seen) === addressKey(mapped) ? 'endpoint-independent' : 'endpoint-dependent';
          finish();
        });
      };
      if (fromOtherIp) return afterFiltering('endpoint-independent');
      probes.binding(primary, CHANGE_PORT, (fromOtherPort) => afterFiltering(fromOtherPort ? 'address-dependent' : 'address-and-port-dependent'));
    });
    probes.hairpin(mapped, (returned) => {
      hairpinning = returned;
      finish();
    });
  });
}

function safePlain(value: Uint8Array): Address | undefined {
  try {
    return decodePlainAddress(value);
  } catch {
    return undefined;
  }
}
