import { decodeCbor, encodeCbor } from '../../wire/cbor.js';
import { idToBytes, readId } from '../../wire/id.js';
import { decodeStoredData, encodeStoredData } from '../../wire/messages/stored-data.js';
import { readArray, readText, readUint, readUint64 } from '../../wire/schema.js';
import type { StorageChange } from './backend.js';

/*
 * A change as a CBOR record, for backends that write bytes:
 *   put    = [0, resource-id, kind, generation, stored-data]
 *   remove = [1, resource-id, kind, key: tstr, ? storage-time: uint]   (the value removed; older logs lack it)
 */
export function encodeChange(c: StorageChange): Uint8Array {
  return c.op === 'put'
    ? encodeCbor([0, idToBytes(c.resource), c.kind, c.generation, encodeStoredData(c.data)])
    : encodeCbor([1, idToBytes(c.resource), c.kind, c.key, ...(c.storageTime === undefined ? [] : [c.storageTime])]);
}

export function decodeChange(bytes: Uint8Array): StorageChange {
  const f = readArray(decodeCbor(bytes, 64 * 1024, '$.change'), '$.change', 4, 5);
  const op = readUint(f[0], '$.change.op', 1);
  const resource = readId(f[1], '$.change.resource');
  const kind = readUint(f[2], '$.change.kind');
  if (op === 0) return { op: 'put', resource, kind, generation: readUint64(f[3], '$.change.generation'), data: decodeStoredData(f[4], '$.change.data') };
  const key = readText(f[3], '$.change.key', 1024);
  return f.length === 5 ? { op: 'remove', resource, kind, key, storageTime: readUint64(f[4], '$.change.storageTime') } : { op: 'remove', resource, kind, key };
}
