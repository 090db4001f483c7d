import { type Address, decodeAddress, encodeAddress } from '../address.js';
import { readBytes } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 5780's "change IP" with two peers instead of one server with two addresses: a public
 * peer that receives a Binding request with CHANGE-REQUEST asks another public peer, with this
 * request (codes 37/38), to send the STUN answer from its own address. Only a STUN success
 * answer of at most 256 bytes is carried, one for one, so it amplifies nothing.
 *
 *   nat-probe-req = [target: address, stun: bstr .size (20..256)]
 *   nat-probe-ans = []
 */
export interface NatProbeReq {
  readonly target: Address;
  readonly stun: Uint8Array;
}

export const natProbeReq = arrayBody<NatProbeReq>(
  'natProbeReq',
  2,
  2,
  (v) => [encodeAddress(v.target), v.stun],
  (f, p) => ({ target: decodeAddress(f[0], `${p}.target`), stun: readBytes(f[1], `${p}.stun`, 20, 256) }),
);

export const natProbeAns = arrayBody<Record<string, never>>(
  'natProbeAns',
  0,
  0,
  () => [],
  () => ({}),
);
