import { type Address, decodeAddress, encodeAddress } from '../address.js';
import { type Id, idToBytes, readId } from '../id.js';
import { readArray } from '../schema.js';

/** A node and where to reach it: contact = [node-id, address] */
export interface Contact {
  readonly id: Id;
  readonly address: Address;
}

export function encodeContact(c: Contact): unknown[] {
  return [idToBytes(c.id), encodeAddress(c.address)];
}

export function decodeContact(value: unknown, path: string): Contact {
  const [id, address] = readArray(value, path, 2, 2);
  return { id: readId(id, `${path}[0]`), address: decodeAddress(address, `${path}[1]`) };
}
