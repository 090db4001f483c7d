import { ipFromBytes, ipToBytes } from '../../wire/address.js';
import type { Address } from '../../wire/address.js';

/*
 * PCP (RFC 6887) MAP for UDP: a 24-byte common header (version 2, opcode, requested lifetime,
 * our address as IPv4-mapped IPv6) and the MAP opcode's 36 bytes (nonce, protocol, internal
 * port, suggested external port and address). The answer carries the result code, the lifetime
 * granted and the external address and port assigned. Lifetime 0 with the same nonce deletes.
 */
export const PCP_VERSION = 2;
const OPCODE_MAP = 1;
const UDP = 17;
export const PcpResult = { Success: 0, UnsuppVersion: 1 } as const;

function mappedV6(ipv4: string): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(ipToBytes(ipv4), 12);
  return out;
}

export function pcpMapRequest(client: string, nonce: Uint8Array, internalPort: number, externalPort: number, lifetimeSeconds: number): Uint8Array {
  const out = new Uint8Array(60);
  const view = new DataView(out.buffer);
  view.setUint8(0, PCP_VERSION);
  view.setUint8(1, OPCODE_MAP);
  view.setUint32(4, lifetimeSeconds);
  out.set(mappedV6(client), 8);
  out.set(nonce.subarray(0, 12), 24);
  view.setUint8(36, UDP);
  view.setUint16(40, internalPort);
  view.setUint16(42, externalPort);
  out.set(mappedV6('0.0.0.0'), 44);
  return out;
}

export interface PcpAnswer {
  readonly version: number;
  readonly result: number;
  readonly lifetimeSeconds: number;
  /** The server's epoch (seconds since its state began, RFC 6887 s8.5): smaller than expected means it lost our mapping. */
  readonly epochSeconds?: number;
  readonly nonce?: Uint8Array;
  readonly protocol?: number;
  readonly internalPort?: number;
  readonly external?: Address;
}

/** Undefined for anything that is no PCP (or NAT-PMP "unsupported version") answer. */
export function decodePcpAnswer(bytes: Uint8Array): PcpAnswer | undefined {
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A NAT-PMP-only gateway answers a PCP request with its own version and "unsupported version".
  if (bytes[0] === 0) return { version: 0, result: view.getUint16(2), lifetimeSeconds: 0 };
  if (bytes[0] !== PCP_VERSION || bytes.length < 24 || (bytes[1] & 0x80) === 0) return undefined;
  if ((bytes[1] & 0x7f) !== OPCODE_MAP) return undefined; // we only ever ask MAP: anything else answers no request of ours
  const answer = { version: PCP_VERSION, result: bytes[3], lifetimeSeconds: view.getUint32(4), epochSeconds: view.getUint32(8) };
  if (bytes.length < 60) return answer;
  const ip = bytes.slice(44, 60);
  const host = ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff ? ipFromBytes(ip.slice(12)) : ipFromBytes(ip);
  return { ...answer, nonce: bytes.slice(24, 36), protocol: bytes[36], internalPort: view.getUint16(40), external: { host, port: view.getUint16(42) } };
}
