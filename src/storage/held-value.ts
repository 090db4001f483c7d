import { bytesToLatin1, latin1ToBytes } from '../runtime/latin1.js';
import { entryKeyText, type StoredData } from '../wire/messages/stored-data.js';

/*
 * One stored value as this peer keeps it in memory, packed: the fields the storage rules read on
 * every Store (time, lifetime, size), the signer's certificate shared with every other value it
 * signed, and the rest (a dictionary key's bytes, the value, the signature) in one latin1 string.
 *
 * Why a string (runtime/latin1.ts): three decoded Uint8Arrays cost about 300 bytes each beyond
 * their contents, and on a 256 MB router that decides how many values a peer can hold
 * (bench/footprint.ts).
 */
export class HeldValue {
  private constructor(
    /** The entry key as text (stored-data.ts entryKeyText): what a slot looks entries up by. */
    readonly keyText: string,
    readonly storageTime: bigint,
    readonly lifetime: number,
    readonly exists: boolean,
    /** A single value's null or an array index; undefined for a dictionary key (kept in `packed`). */
    private readonly indexKey: null | number | undefined,
    private readonly dictionaryKeyLength: number,
    readonly valueLength: number,
    readonly certificate: Uint8Array,
    private readonly packed: string,
  ) {}

  /** `certificate`: the one copy this peer keeps of the signer's certificate. */
  static pack(data: StoredData, certificate: Uint8Array): HeldValue {
    const { key, value } = data.entry;
    const dictionaryKey = key instanceof Uint8Array ? key : EMPTY;
    // One flat string: `a + b + c` would make a rope of three strings.
    const bytes = new Uint8Array(dictionaryKey.length + value.length + data.signature.length);
    bytes.set(dictionaryKey);
    bytes.set(value, dictionaryKey.length);
    bytes.set(data.signature, dictionaryKey.length + value.length);
    const packed = bytesToLatin1(bytes);
    const indexKey = key instanceof Uint8Array ? undefined : key;
    return new HeldValue(entryKeyText(key), data.storageTime, data.lifetime, data.entry.exists, indexKey, dictionaryKey.length, value.length, certificate, packed);
  }

  /** The array index this value fills, if its kind is an array. */
  get index(): number | undefined {
    return typeof this.indexKey === 'number' ? this.indexKey : undefined;
  }

  /** The value as RELOAD carries it; its byte fields are views of one fresh copy. */
  unpack(): StoredData {
    const bytes = latin1ToBytes(this.packed);
    const valueStart = this.dictionaryKeyLength;
    const valueEnd = valueStart + this.valueLength;
    return {
      storageTime: this.storageTime,
      lifetime: this.lifetime,
      entry: { key: this.indexKey === undefined ? bytes.subarray(0, valueStart) : this.indexKey, exists: this.exists, value: bytes.subarray(valueStart, valueEnd) },
      certificate: this.certificate,
      signature: bytes.subarray(valueEnd),
    };
  }
}

/** RFC 6940 s7.4.1: a value is gone once its lifetime has passed since its storage time. */
export function isExpired(value: { readonly storageTime: bigint; readonly lifetime: number }, nowMs: number): boolean {
  return Number(value.storageTime) + value.lifetime * 1000 < nowMs;
}

const EMPTY = new Uint8Array(0);
