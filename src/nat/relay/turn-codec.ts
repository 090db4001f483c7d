import type { Address } from '../../wire/address.js';
import { seal } from '../stun/integrity.js';
import { attribute, decodeXorAddress, encodeStun, encodeXorAddress, StunClass, type StunMessage } from '../stun/message.js';
import { Attr, StunMethod } from '../stun/message.js';

/*
 * The few TURN (RFC 8656) messages a relay peer and its clients exchange: Allocate, Refresh and
 * CreatePermission requests, and Send/Data indications that carry one datagram to or from a
 * peer (s11). Authentication is not TURN's long-term credential: a relay serves only addresses
 * that hold a sealed overlay link with an enrolled node, and what follows the Allocate carries
 * MESSAGE-INTEGRITY under the key the Allocate answer gave (docs/security.md).
 */
export const UDP_TRANSPORT = 17;
export const DEFAULT_LIFETIME_SECONDS = 600;

export function lifetimeAttr(seconds: number): { type: number; value: Uint8Array } {
  const value = new Uint8Array(4);
  new DataView(value.buffer).setUint32(0, seconds);
  return { type: Attr.Lifetime, value };
}

export function readLifetime(message: StunMessage): number | undefined {
  const a = attribute(message, Attr.Lifetime);
  return a && a.value.length === 4 ? new DataView(a.value.buffer, a.value.byteOffset, 4).getUint32(0) : undefined;
}

export function peerAddresses(message: StunMessage): Address[] {
  return message.attributes.filter((a) => a.type === Attr.XorPeerAddress).map((a) => decodeXorAddress(a.value, message.transactionId));
}

/** An error answer; sealed under the allocation's `key` once there is one (its client drops any other). */
export function errorAnswer(method: number, transactionId: Uint8Array, code: number, reason: string, key?: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(reason);
  const value = new Uint8Array([0, 0, Math.floor(code / 100), code % 100, ...text]);
  return seal(encodeStun(method, StunClass.Error, transactionId, [{ type: Attr.ErrorCode, value }]), key);
}

export function errorCode(message: StunMessage): number | undefined {
  const a = attribute(message, Attr.ErrorCode);
  return a && a.value.length >= 4 ? a.value[2] * 100 + a.value[3] : undefined;
}

/** A Send (client to relay, with the allocation's `key`) or Data (relay to client) indication carrying one datagram. */
export function encodeIndication(method: typeof StunMethod.Send | typeof StunMethod.Data, transactionId: Uint8Array, peer: Address, data: Uint8Array, key?: Uint8Array): Uint8Array {
  const bytes = encodeStun(method, StunClass.Indication, transactionId, [
    { type: Attr.XorPeerAddress, value: encodeXorAddress(peer, transactionId) },
    { type: Attr.Data, value: data },
  ]);
  return key ? seal(bytes, key) : bytes;
}

export function decodeIndication(message: StunMessage): { peer: Address; data: Uint8Array } | undefined {
  let peer: Address | undefined;
  try {
    peer = peerAddresses(message)[0];
  } catch {
    return undefined; // an address that cannot be read: the indication is dropped, as one without any
  }
  const data = attribute(message, Attr.Data);
  return peer && data ? { peer, data: data.value } : undefined;
}
