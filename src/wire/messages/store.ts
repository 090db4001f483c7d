import { type Id, idToBytes, readId } from '../id.js';
import { readArray, readList, readUint, readUint64 } from '../schema.js';
import { arrayBody } from './body-codec.js';
import { decodeStoredData, encodeStoredData, type StoredData } from './stored-data.js';

/*
 * RFC 6940 s7.4.1 Store. The storer sends values of one or more kinds for one Resource-ID; the
 * responsible peer keeps them and copies them to its successors (replica-number > 0 marks
 * a copy made by the responsible peer).
 *
 *   store-req = [resource: resource-id, replica-number: uint, kinds: [* store-kind]]
 *   store-kind = [kind: uint, generation: uint, values: [* stored-data]]
 *   store-ans = [* [kind: uint, generation: uint, replicas: [* node-id]]]
 */
export const MAX_VALUES_PER_STORE = 64;
export const MAX_KINDS_PER_MESSAGE = 16;

export interface StoreKindData {
  readonly kind: number;
  readonly generation: bigint;
  readonly values: readonly StoredData[];
}

export interface StoreReq {
  readonly resource: Id;
  readonly replicaNumber: number;
  readonly kinds: readonly StoreKindData[];
}

export interface StoreKindResponse {
  readonly kind: number;
  readonly generation: bigint;
  readonly replicas: readonly Id[];
}

export interface StoreAns {
  readonly kinds: readonly StoreKindResponse[];
}

export const storeReq = arrayBody<StoreReq>(
  'storeReq',
  3,
  3,
  (v) => [idToBytes(v.resource), v.replicaNumber, v.kinds.map((k) => [k.kind, k.generation, k.values.map(encodeStoredData)])],
  (f, p) => ({
    resource: readId(f[0], `${p}.resource`),
    replicaNumber: readUint(f[1], `${p}.replicaNumber`, 255),
    kinds: readList(f[2], `${p}.kinds`, MAX_KINDS_PER_MESSAGE, (k, q) => {
      const [kind, generation, values] = readArray(k, q, 3, 3);
      return {
        kind: readUint(kind, `${q}.kind`),
        generation: readUint64(generation, `${q}.generation`),
        values: readList(values, `${q}.values`, MAX_VALUES_PER_STORE, decodeStoredData),
      };
    }),
  }),
);

export const storeAns = arrayBody<StoreAns>(
  'storeAns',
  0,
  MAX_KINDS_PER_MESSAGE,
  (v) => v.kinds.map((k) => [k.kind, k.generation, k.replicas.map(idToBytes)]),
  (f, p) => ({
    kinds: f.map((k, i) => {
      const q = `${p}[${i}]`;
      const [kind, generation, replicas] = readArray(k, q, 3, 3);
      return { kind: readUint(kind, `${q}.kind`), generation: readUint64(generation, `${q}.generation`), replicas: readList(replicas, `${q}.replicas`, 16, readId) };
    }),
  }),
);
