import { DecodeError } from '../decode-error.js';
import { type Id, idToBytes, readId } from '../id.js';
import { readArray, readBytes, readList, readUint, readUint64 } from '../schema.js';
import { arrayBody } from './body-codec.js';
import { MAX_KINDS_PER_MESSAGE } from './store.js';
import { decodeStoredData, encodeStoredData, MAX_DICTIONARY_KEY_BYTES, type StoredData } from './stored-data.js';

/*
 * RFC 6940 s7.4.2 Fetch and s7.4.3 Stat share one request shape: which kinds, and which part
 * of each (all of it, array index ranges, or dictionary keys).
 *
 *   fetch-req = [resource: resource-id, specifiers: [* specifier]]
 *   specifier = [kind: uint, generation: uint, selector]
 *   selector  = null / [* [first: uint, last: uint]] / [* bstr]   ; all / array ranges / keys
 *   fetch-ans = [* [kind: uint, generation: uint, values: [* stored-data]]]
 */
export type Selector = { readonly all: true } | { readonly ranges: readonly [number, number][] } | { readonly keys: readonly Uint8Array[] };

export interface Specifier {
  readonly kind: number;
  /** The generation the fetcher already has; 0 for none. */
  readonly generation: bigint;
  readonly selector: Selector;
}

export interface FetchReq {
  readonly resource: Id;
  readonly specifiers: readonly Specifier[];
}

export interface FetchKindResponse {
  readonly kind: number;
  readonly generation: bigint;
  readonly values: readonly StoredData[];
}

export interface FetchAns {
  readonly kinds: readonly FetchKindResponse[];
}

const MAX_SELECTOR_ITEMS = 64;

export function encodeSelector(s: Selector): unknown {
  if ('all' in s) return null;
  if ('ranges' in s) return s.ranges.map(([a, b]) => [a, b]);
  return s.keys;
}

export function decodeSelector(value: unknown, path: string): Selector {
  if (value === null) return { all: true };
  const items = readArray(value, path, 0, MAX_SELECTOR_ITEMS);
  if (items.length === 0 || items[0] instanceof Uint8Array) {
    return { keys: items.map((k, i) => readBytes(k, `${path}[${i}]`, 0, MAX_DICTIONARY_KEY_BYTES)) };
  }
  return {
    ranges: items.map((r, i) => {
      const [first, last] = readArray(r, `${path}[${i}]`, 2, 2);
      const a = readUint(first, `${path}[${i}][0]`);
      const b = readUint(last, `${path}[${i}][1]`);
      if (b < a) throw new DecodeError(`${path}[${i}]`, 'range ends before it starts');
      return [a, b] as [number, number];
    }),
  };
}

export function encodeFetchReqFields(v: FetchReq): unknown[] {
  return [idToBytes(v.resource), v.specifiers.map((s) => [s.kind, s.generation, encodeSelector(s.selector)])];
}

export function decodeFetchReqFields(f: unknown[], p: string): FetchReq {
  return {
    resource: readId(f[0], `${p}.resource`),
    specifiers: readList(f[1], `${p}.specifiers`, MAX_KINDS_PER_MESSAGE, (s, q) => {
      const [kind, generation, selector] = readArray(s, q, 3, 3);
      return { kind: readUint(kind, `${q}.kind`), generation: readUint64(generation, `${q}.generation`), selector: decodeSelector(selector, `${q}.selector`) };
    }),
  };
}

export const fetchReq = arrayBody<FetchReq>('fetchReq', 2, 2, encodeFetchReqFields, decodeFetchReqFields);

export const fetchAns = arrayBody<FetchAns>(
  'fetchAns',
  0,
  MAX_KINDS_PER_MESSAGE,
  (v) => v.kinds.map((k) => [k.kind, k.generation, k.values.map(encodeStoredData)]),
  (f, p) => ({
    kinds: f.map((k, i) => {
      const q = `${p}[${i}]`;
      const [kind, generation, values] = readArray(k, q, 3, 3);
      return { kind: readUint(kind, `${q}.kind`), generation: readUint64(generation, `${q}.generation`), values: readList(values, `${q}.values`, 1024, decodeStoredData) };
    }),
  }),
);
