import { isIP } from 'node:net';
import type { Address } from '../wire/address.js';

/*
 * Which addresses a relay may send to on a node's behalf, and an Attach candidate may name: only
 * global unicast (RFC 6890's special-purpose registries). Never loopback, private, shared (CGN),
 * link-local, multicast, broadcast, unspecified or documentation space: a relay that forwarded
 * there would hand any enrolled node the relay owner's own services (its router's NAT-PMP port
 * opens forwards with no password). 198.18.0.0/15 (RFC 2544, benchmarking) is kept reachable:
 * it is never routed on the internet and no home uses it, and it is where the NAT lab's public
 * side lives.
 */
const IPV4_REFUSED: readonly [number, number][] = [
  [0x00000000, 8], // 0.0.0.0/8 "this network"
  [0x0a000000, 8], // 10/8 private
  [0x64400000, 10], // 100.64/10 shared address space (carrier-grade NAT inside)
  [0x7f000000, 8], // 127/8 loopback
  [0xa9fe0000, 16], // 169.254/16 link-local
  [0xac100000, 12], // 172.16/12 private
  [0xc0000000, 24], // 192.0.0/24 IETF protocol assignments
  [0xc0000200, 24], // 192.0.2/24 documentation
  [0xc0a80000, 16], // 192.168/16 private
  [0xc6336400, 24], // 198.51.100/24 documentation
  [0xcb007100, 24], // 203.0.113/24 documentation
  [0xe0000000, 4], // 224/4 multicast
  [0xf0000000, 4], // 240/4 reserved, and the broadcast address
];

function ipv4Number(host: string): number {
  return host.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function inPrefix(address: number, [network, bits]: [number, number]): boolean {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((address & mask) >>> 0) === network;
}

/** Whether `host` (an IP literal) is global unicast, and not one of `own` (the relay's own addresses). */
export function isGlobalUnicast(host: string, own: ReadonlySet<string> = new Set()): boolean {
  const family = isIP(host);
  if (family === 0 || own.has(host.toLowerCase())) return false;
  if (family === 4) {
    const n = ipv4Number(host);
    return !IPV4_REFUSED.some((prefix) => inPrefix(n, prefix));
  }
  const groups = ipv6Groups(host.toLowerCase());
  const embedded = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  // IPv4 inside IPv6, however it is written (::ffff:c612:32 is 198.18.0.50): judged as that IPv4.
  if (zeros(0, 5) && groups[5] === 0xffff) return isGlobalUnicast(embedded(groups[6], groups[7]), own);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) return isGlobalUnicast(embedded(groups[6], groups[7]), own); // NAT64
  if (groups[0] === 0x2002) return isGlobalUnicast(embedded(groups[1], groups[2]), own); // 6to4
  if (zeros(0, 6)) return false; // ::, ::1, and the deprecated IPv4-compatible ::a.b.c.d
  const first = groups[0];
  if ((first & 0xffc0) === 0xfe80) return false; // link-local
  if ((first & 0xfe00) === 0xfc00) return false; // unique local
  if ((first & 0xff00) === 0xff00) return false; // multicast
  if (first === 0x2001 && (groups[1] === 0x0db8 || groups[1] === 0)) return false; // documentation; Teredo tunnels
  if (first === 0x64 && groups[1] === 0xff9b) return false; // local-use NAT64 (RFC 8215)
  return true;
}

/** The eight 16-bit groups of an IPv6 literal (isIP said it is one), a trailing dotted quad included. */
function ipv6Groups(host: string): number[] {
  let text = host.split('%')[0];
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const front = parse(head);
  const back = parse(tail);
  return tail === undefined ? front : [...front, ...new Array(8 - front.length - back.length).fill(0), ...back];
}

/**
 * Where an Attach's candidates may make us send checks: a global unicast address; or, as our own
 * host is, loopback (a lab on one machine) or an address on our own /24 of private space (two
 * nodes on one LAN). Never a port 0, multicast or broadcast, nor anyone else's private network:
 * an Attach must not turn us into a scanner of our own LAN for whoever sent it.
 */
export function checkableFrom(own: Address, candidate: Address): boolean {
  if (candidate.port < 1 || candidate.port > 65535) return false;
  if (isGlobalUnicast(candidate.host)) return true;
  const sameNet24 = (a: string, b: string) => isIP(a) === 4 && isIP(b) === 4 && a.split('.').slice(0, 3).join('.') === b.split('.').slice(0, 3).join('.');
  const loopback = (h: string) => h === '::1' || h.startsWith('127.');
  if (loopback(candidate.host)) return loopback(own.host);
  const first = Number(candidate.host.split('.')[0]);
  if (first >= 224) return false; // multicast, reserved, broadcast
  return sameNet24(own.host, candidate.host) && !isGlobalUnicast(own.host);
}
