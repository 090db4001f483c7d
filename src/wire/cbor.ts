import { Decoder, Encoder, type Options } from 'cbor-x';
import { DecodeError } from './decode-error.js';

/*
 * Plain RFC 8949 CBOR: no record extensions, no typed-array tags, maps as maps.
 * Our schemas use only arrays, unsigned integers below 2^32 (or bigint), byte and text strings
 * and booleans, for which cbor-x writes the shortest form: that is RFC 8949 s4.2 deterministic
 * encoding, so a signature made here checks anywhere.
 */
const encoder = new Encoder({
  useRecords: false,
  tagUint8Array: false,
  useTag259ForMaps: false,
  variableMapSize: true,
  structuredClone: false,
} as Options & { useTag259ForMaps: boolean });

const decoder = new Decoder({
  useRecords: false,
  mapsAsObjects: false,
  structuredClone: false,
});

/**
 * cbor-x hands back a view into its large reusable output buffer; keeping such a view (a cached
 * response, a certificate) would pin the whole buffer. A copy of a few hundred bytes costs less.
 */
export function encodeCbor(value: unknown): Uint8Array {
  return new Uint8Array(encoder.encode(value));
}

/** Decodes exactly one CBOR item that fills `bytes`; anything else is a DecodeError. */
export function decodeCbor(bytes: Uint8Array, maxBytes: number, path = '$'): unknown {
  if (bytes.length === 0) throw new DecodeError(path, 'empty input');
  if (bytes.length > maxBytes) throw new DecodeError(path, `input of ${bytes.length} bytes exceeds ${maxBytes}`);
  try {
    return decoder.decode(bytes);
  } catch (error) {
    throw new DecodeError(path, `malformed CBOR: ${(error as Error).message}`);
  }
}
