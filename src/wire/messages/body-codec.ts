import { decodeCbor, encodeCbor } from '../cbor.js';
import { MAX_MESSAGE_BYTES } from '../message.js';
import { readArray } from '../schema.js';

/** Encoder and decoder of one message body, declared once beside its CDDL rule. */
export interface BodyCodec<T> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/**
 * Declares a body that is a CBOR array of `min..max` fields. `read` receives the fields
 * (already checked to be an array of the right length) and the path prefix for errors.
 */
export function arrayBody<T>(
  name: string,
  min: number,
  max: number,
  write: (value: T) => unknown[],
  read: (fields: unknown[], path: string) => T,
): BodyCodec<T> {
  return {
    name,
    encode: (value) => encodeCbor(write(value)),
    decode: (bytes) => {
      const path = `$.${name}`;
      return read(readArray(decodeCbor(bytes, MAX_MESSAGE_BYTES, path), path, min, max), path);
    },
  };
}
