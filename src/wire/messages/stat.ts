import { readArray, readBool, readBytes, readList, readUint, readUint64 } from '../schema.js';
import { arrayBody } from './body-codec.js';
import { decodeFetchReqFields, encodeFetchReqFields, type FetchReq } from './fetch.js';
import { MAX_KINDS_PER_MESSAGE } from './store.js';
import { decodeEntryKey, type EntryKey } from './stored-data.js';

/*
 * RFC 6940 s7.4.3 Stat: metadata about stored values without the values themselves.
 *
 *   stat-req  = fetch-req
 *   stat-ans  = [* [kind: uint, generation: uint, values: [* stored-meta]]]
 *   stored-meta = [storage-time: uint, lifetime: uint, key, exists: bool, length: uint,
 *                  sha256: bstr .size 32]
 */
export type StatReq = FetchReq;

export interface StoredMeta {
  readonly storageTime: bigint;
  readonly lifetime: number;
  readonly key: EntryKey;
  readonly exists: boolean;
  readonly length: number;
  readonly sha256: Uint8Array;
}

export interface StatAns {
  readonly kinds: readonly { readonly kind: number; readonly generation: bigint; readonly values: readonly StoredMeta[] }[];
}

export const statReq = arrayBody<StatReq>('statReq', 2, 2, encodeFetchReqFields, decodeFetchReqFields);

export const statAns = arrayBody<StatAns>(
  'statAns',
  0,
  MAX_KINDS_PER_MESSAGE,
  (v) => v.kinds.map((k) => [k.kind, k.generation, k.values.map((m) => [m.storageTime, m.lifetime, m.key, m.exists, m.length, m.sha256])]),
  (f, p) => ({
    kinds: f.map((k, i) => {
      const q = `${p}[${i}]`;
      const [kind, generation, values] = readArray(k, q, 3, 3);
      return {
        kind: readUint(kind, `${q}.kind`),
        generation: readUint64(generation, `${q}.generation`),
        values: readList(values, `${q}.values`, 1024, (m, r) => {
          const g = readArray(m, r, 6, 6);
          return {
            storageTime: readUint64(g[0], `${r}.storageTime`),
            lifetime: readUint(g[1], `${r}.lifetime`),
            key: decodeEntryKey(g[2], `${r}.key`),
            exists: readBool(g[3], `${r}.exists`),
            length: readUint(g[4], `${r}.length`),
            sha256: readBytes(g[5], `${r}.sha256`, 32, 32),
          };
        }),
      };
    }),
  }),
);
