import { encodeCbor } from '../cbor.js';
import { DecodeError } from '../decode-error.js';
import { type Id, idToBytes } from '../id.js';
import { readArray, readBool, readBytes, readUint, readUint64 } from '../schema.js';
import { MAX_CERTIFICATE_BYTES, MAX_SIGNATURE_BYTES } from '../payload.js';

/*
 * One stored value as RELOAD's StoredData (RFC 6940 s7.2) carries it, in CBOR. The entry says
 * which slot of the kind's data model it fills, self-describingly:
 *
 *   stored-data = [storage-time: uint, lifetime: uint, entry, signature: [certificate, sig]]
 *   entry       = [key: null / uint / bstr, exists: bool, value: bstr]
 *                  ; null: single value; uint: array index; bstr: dictionary key
 */
export const MAX_VALUE_BYTES = 16 * 1024;
export const MAX_DICTIONARY_KEY_BYTES = 256;

export type EntryKey = null | number | Uint8Array;

export interface StoredEntry {
  readonly key: EntryKey;
  /** false: a tombstone, the value was deleted (RFC 6940 s7.2: exists = false). */
  readonly exists: boolean;
  readonly value: Uint8Array;
}

export interface StoredData {
  /** Milliseconds since the Unix epoch, set by the storer: newer replaces older. */
  readonly storageTime: bigint;
  /** Seconds the value lives after storageTime. */
  readonly lifetime: number;
  readonly entry: StoredEntry;
  readonly certificate: Uint8Array;
  readonly signature: Uint8Array;
}

export function encodeStoredData(d: StoredData): unknown[] {
  return [d.storageTime, d.lifetime, [d.entry.key, d.entry.exists, d.entry.value], [d.certificate, d.signature]];
}

export function decodeEntryKey(value: unknown, path: string): EntryKey {
  if (value === null) return null;
  if (typeof value === 'number') return readUint(value, path);
  if (value instanceof Uint8Array) return readBytes(value, path, 0, MAX_DICTIONARY_KEY_BYTES);
  throw new DecodeError(path, 'expected null, an array index or a dictionary key');
}

export function decodeStoredData(value: unknown, path: string): StoredData {
  const [time, lifetime, entry, signature] = readArray(value, path, 4, 4);
  const [key, exists, data] = readArray(entry, `${path}.entry`, 3, 3);
  const [certificate, sig] = readArray(signature, `${path}.signature`, 2, 2);
  return {
    storageTime: readUint64(time, `${path}.storageTime`),
    lifetime: readUint(lifetime, `${path}.lifetime`),
    entry: {
      key: decodeEntryKey(key, `${path}.entry.key`),
      exists: readBool(exists, `${path}.entry.exists`),
      value: readBytes(data, `${path}.entry.value`, 0, MAX_VALUE_BYTES),
    },
    certificate: readBytes(certificate, `${path}.signature.certificate`, 1, MAX_CERTIFICATE_BYTES),
    signature: readBytes(sig, `${path}.signature.sig`, 1, MAX_SIGNATURE_BYTES),
  };
}

/**
 * What a storer signs (RFC 6940 s7.1 signs resource, kind, storage time and value):
 *   ["p2psip-stored", resource-id, kind, storage-time, lifetime, key, exists, value]
 */
export function storedSignatureInput(resource: Id, kind: number, d: Omit<StoredData, 'certificate' | 'signature'>): Uint8Array {
  return encodeCbor(['p2psip-stored', idToBytes(resource), kind, d.storageTime, d.lifetime, d.entry.key, d.entry.exists, d.entry.value]);
}

export function entryKeyText(key: EntryKey): string {
  if (key === null) return '';
  if (typeof key === 'number') return `#${key}`;
  return Buffer.from(key).toString('hex');
}
