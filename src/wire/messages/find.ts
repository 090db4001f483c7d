import { type Id, idToBytes, readId } from '../id.js';
import { readArray, readList, readUint } from '../schema.js';
import { arrayBody } from './body-codec.js';
import { MAX_KINDS_PER_MESSAGE } from './store.js';

/*
 * RFC 6940 s7.4.4 Find: for each kind, the closest Resource-ID at or after the given one that
 * the answering peer holds values for (null: none).
 *
 *   find-req = [resource: resource-id, kinds: [* uint]]
 *   find-ans = [* [kind: uint, closest: resource-id / null]]
 */
export interface FindReq {
  readonly resource: Id;
  readonly kinds: readonly number[];
}

export interface FindAns {
  readonly results: readonly { readonly kind: number; readonly closest: Id | null }[];
}

export const findReq = arrayBody<FindReq>(
  'findReq',
  2,
  2,
  (v) => [idToBytes(v.resource), v.kinds],
  (f, p) => ({ resource: readId(f[0], `${p}.resource`), kinds: readList(f[1], `${p}.kinds`, MAX_KINDS_PER_MESSAGE, readUint) }),
);

export const findAns = arrayBody<FindAns>(
  'findAns',
  0,
  MAX_KINDS_PER_MESSAGE,
  (v) => v.results.map((r) => [r.kind, r.closest === null ? null : idToBytes(r.closest)]),
  (f, p) => ({
    results: f.map((r, i) => {
      const [kind, closest] = readArray(r, `${p}[${i}]`, 2, 2);
      return { kind: readUint(kind, `${p}[${i}].kind`), closest: closest === null ? null : readId(closest, `${p}[${i}].closest`) };
    }),
  }),
);
