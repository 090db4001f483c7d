import { readBytes } from './schema.js';

/*
 * Node-IDs and Resource-IDs are 128-bit numbers on the Chord ring (RFC 6940 s10: CHORD-RELOAD
 * uses 128-bit identifiers). On the wire they are 16-byte big-endian byte strings; in memory,
 * bigints so ring arithmetic reads as arithmetic.
 */
export type Id = bigint;
export const ID_BYTES = 16;
export const RING_SIZE = 1n << 128n;

// Hex is the fastest bigint <-> bytes path in V8, several times quicker than byte-wise shifts.
export function idToBytes(id: Id): Uint8Array {
  return Buffer.from(id.toString(16).padStart(ID_BYTES * 2, '0'), 'hex');
}

export function idFromBytes(bytes: Uint8Array): Id {
  return BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, ID_BYTES).toString('hex')}`);
}

export function readId(value: unknown, path: string): Id {
  return idFromBytes(readBytes(value, path, ID_BYTES, ID_BYTES));
}

export function idToHex(id: Id): string {
  return id.toString(16).padStart(ID_BYTES * 2, '0');
}

export function idFromHex(hex: string): Id {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a 128-bit hex id: ${hex}`);
  return BigInt(`0x${hex}`);
}

/** A short form for logs and status tables. */
export function idShort(id: Id): string {
  return idToHex(id).slice(0, 8);
}
