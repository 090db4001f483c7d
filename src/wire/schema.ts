import { DecodeError } from './decode-error.js';

/*
 * Strict readers for decoded CBOR. Each checks one field's type and bounds and names the
 * field's path on failure; anything a peer could send that is not what the schema allows
 * (floats, tags, maps where arrays belong, oversize strings) stops here.
 */

export function readArray(value: unknown, path: string, min: number, max: number): unknown[] {
  if (!Array.isArray(value)) throw new DecodeError(path, 'expected an array');
  if (value.length < min || value.length > max) {
    throw new DecodeError(path, `expected ${min}..${max} elements, got ${value.length}`);
  }
  return value;
}

export function readUint(value: unknown, path: string, max = 0xffffffff): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new DecodeError(path, `expected an unsigned integer up to ${max}`);
  }
  return value;
}

export const MAX_UINT64 = (1n << 64n) - 1n;

/**
 * A 64-bit unsigned integer: cbor-x gives bigint for a 64-bit integer and number for a shorter
 * one. A float is a number too: one past 2^53 (1e300, say) is refused, or it would become a
 * bigint no 64-bit field can carry on.
 */
export function readUint64(value: unknown, path: string): bigint {
  if (typeof value === 'bigint' && value >= 0n && value <= MAX_UINT64) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  throw new DecodeError(path, 'expected an unsigned 64-bit integer');
}

export function readBytes(value: unknown, path: string, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new DecodeError(path, 'expected a byte string');
  if (value.length < min || value.length > max) {
    throw new DecodeError(path, `expected ${min}..${max} bytes, got ${value.length}`);
  }
  return value;
}

export function readText(value: unknown, path: string, max: number): string {
  if (typeof value !== 'string') throw new DecodeError(path, 'expected a text string');
  if (value.length > max) throw new DecodeError(path, `text longer than ${max}`);
  return value;
}

export function readBool(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new DecodeError(path, 'expected a boolean');
  return value;
}

export function readOneOf<T extends number>(value: unknown, path: string, allowed: readonly T[]): T {
  const n = readUint(value, path);
  if (!allowed.includes(n as T)) throw new DecodeError(path, `unknown value ${n}`);
  return n as T;
}

/** Reads every element of an array with `readItem`, naming each element's path. */
export function readList<T>(
  value: unknown,
  path: string,
  max: number,
  readItem: (item: unknown, itemPath: string) => T,
  min = 0,
): T[] {
  return readArray(value, path, min, max).map((item, i) => readItem(item, `${path}[${i}]`));
}
