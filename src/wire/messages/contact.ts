import { type Address, decodeAddress, encodeAddress } from '../address.js';
import { type Id, idToBytes, readId } from '../id.js';
import { readArray, readBool } from '../schema.js';

/*
 * A node and where to reach it:
 *
 *   contact = [node-id, address, ? attach-first: bool]
 *
 * `attach-first` says the node sits behind a NAT that drops what it did not ask for: the address
 * is where its neighbour sees it, and anyone else must Attach (RFC 6940 s6.5.1, with
 * connectivity checks) before sending to it. Absent means false: a public address, a mapped
 * port, or a NAT that lets anyone in once a mapping exists.
 */
export interface Contact {
  readonly id: Id;
  readonly address: Address;
  readonly attachFirst?: boolean;
}

export function encodeContact(c: Contact): unknown[] {
  return c.attachFirst ? [idToBytes(c.id), encodeAddress(c.address), true] : [idToBytes(c.id), encodeAddress(c.address)];
}

export function decodeContact(value: unknown, path: string): Contact {
  const [id, address, attachFirst] = readArray(value, path, 2, 3);
  const contact = { id: readId(id, `${path}[0]`), address: decodeAddress(address, `${path}[1]`) };
  return attachFirst !== undefined && readBool(attachFirst, `${path}[2]`) ? { ...contact, attachFirst: true } : contact;
}
