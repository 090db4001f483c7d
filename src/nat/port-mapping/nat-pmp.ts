import type { Address } from '../../wire/address.js';

/*
 * NAT-PMP (RFC 6886): the gateway on UDP 5351. A UDP mapping request names our internal port,
 * the external port we would like and a lifetime; the answer says which external port we got.
 * The gateway's external address comes from a second, one-byte-opcode request.
 */
export const PMP_PORT = 5351;
const VERSION = 0;
const OP_ADDRESS = 0;
const OP_MAP_UDP = 1;

export function pmpAddressRequest(): Uint8Array {
  return new Uint8Array([VERSION, OP_ADDRESS]);
}

export function pmpMapRequest(internalPort: number, externalPort: number, lifetimeSeconds: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(1, OP_MAP_UDP);
  view.setUint16(4, internalPort);
  view.setUint16(6, externalPort);
  view.setUint32(8, lifetimeSeconds);
  return out;
}

/** `epochSeconds`: the gateway's seconds since its mapping table began (RFC 6886 s3.6); smaller than expected means it rebooted. */
export type PmpAnswer =
  | { readonly op: 'address'; readonly result: number; readonly epochSeconds: number; readonly host: string }
  | { readonly op: 'map'; readonly result: number; readonly epochSeconds: number; readonly internalPort: number; readonly externalPort: number; readonly lifetimeSeconds: number };

/** Undefined for anything that is no NAT-PMP answer. */
export function decodePmpAnswer(bytes: Uint8Array): PmpAnswer | undefined {
  if (bytes.length < 8 || bytes[0] !== VERSION) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result = view.getUint16(2);
  const epochSeconds = view.getUint32(4);
  if (bytes[1] === 128 + OP_ADDRESS && bytes.length >= 12) return { op: 'address', result, epochSeconds, host: `${bytes[8]}.${bytes[9]}.${bytes[10]}.${bytes[11]}` };
  if (bytes[1] === 128 + OP_MAP_UDP && bytes.length >= 16) return { op: 'map', result, epochSeconds, internalPort: view.getUint16(8), externalPort: view.getUint16(10), lifetimeSeconds: view.getUint32(12) };
  return undefined;
}

export function pmpExternal(address: PmpAnswer | undefined, map: PmpAnswer | undefined): Address | undefined {
  if (address?.op !== 'address' || map?.op !== 'map' || address.result !== 0 || map.result !== 0) return undefined;
  return { host: address.host, port: map.externalPort };
}
