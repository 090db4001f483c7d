import { P2psipError } from '../../runtime/errors.js';
import type { Address } from '../../wire/address.js';
import { ipFromBytes, ipToBytes } from '../../wire/address.js';

/*
 * STUN messages (RFC 8489 s5, s14): a 20-byte header (type, length, magic cookie, 96-bit
 * transaction ID) and attributes as type-length-value, each padded to 4 bytes. The type word
 * interleaves a 12-bit method with a 2-bit class. Attributes we do not know are kept raw.
 */
export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;
export const MAX_STUN_BYTES = 1500;

export const StunClass = { Request: 0, Indication: 1, Success: 2, Error: 3 } as const;
export type StunClass = (typeof StunClass)[keyof typeof StunClass];
export const StunMethod = { Binding: 0x001, Allocate: 0x003, Refresh: 0x004, Send: 0x006, Data: 0x007, CreatePermission: 0x008, ChannelBind: 0x009 } as const;

export const Attr = {
  MappedAddress: 0x0001,
  /** RFC 5780 s7.2: ask the server to answer from its other address (IP bit 0x4, port bit 0x2). */
  ChangeRequest: 0x0003,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  MessageIntegritySha256: 0x001c,
  XorMappedAddress: 0x0020,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  XorRelayedAddress: 0x0016,
  RequestedTransport: 0x0019,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  /** RFC 5780 s7.5: answer to this port of the mapped address instead of the request's source. */
  ResponsePort: 0x0027,
  /** RFC 5780 s7.6: makes a request as large as the answer it wants (no amplification). */
  Padding: 0x0026,
  Software: 0x8022,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
  /**
   * Ours (comprehension-optional range): an X25519 share in an Allocate and in its answer, from
   * which both ends derive the allocation's key (relay/allocation-key.ts). 0xc0f1 was the key
   * itself, sent in the answer by releases before.
   */
  KeyShare: 0xc0f2,
} as const;

export class StunError extends P2psipError {
  override readonly name = 'StunError';
}

export interface StunAttribute {
  readonly type: number;
  readonly value: Uint8Array;
  /** Where the attribute's header starts in the message it was read from. */
  readonly offset: number;
}

export interface StunMessage {
  readonly method: number;
  readonly klass: StunClass;
  readonly transactionId: Uint8Array;
  readonly attributes: readonly StunAttribute[];
}

export function messageType(method: number, klass: StunClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((klass & 1) << 4) | ((klass & 2) << 7);
}

export function decodeStun(bytes: Uint8Array): StunMessage {
  if (bytes.length < HEADER_BYTES) throw new StunError('shorter than a STUN header');
  if (bytes.length > MAX_STUN_BYTES) throw new StunError('larger than a datagram we accept');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(0);
  if (type & 0xc000) throw new StunError('the first two bits of a STUN message are zero');
  const length = view.getUint16(2);
  if (length % 4 !== 0 || HEADER_BYTES + length !== bytes.length) throw new StunError('message length does not match the datagram');
  if (view.getUint32(4) !== MAGIC_COOKIE) throw new StunError('no magic cookie (not RFC 5389/8489 STUN)');
  const klass = (((type >> 7) & 2) | ((type >> 4) & 1)) as StunClass;
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const attributes: StunAttribute[] = [];
  for (let at = HEADER_BYTES; at < bytes.length; ) {
    if (at + 4 > bytes.length) throw new StunError('truncated attribute header');
    const attrType = view.getUint16(at);
    const attrLength = view.getUint16(at + 2);
    if (at + 4 + attrLength > bytes.length) throw new StunError(`attribute 0x${attrType.toString(16)} runs past the message`);
    attributes.push({ type: attrType, value: bytes.subarray(at + 4, at + 4 + attrLength), offset: at });
    at += 4 + ((attrLength + 3) & ~3);
    if (attributes.length > 64) throw new StunError('too many attributes');
  }
  return { method, klass, transactionId: bytes.slice(8, 20), attributes };
}

/** Builds a message from attributes (integrity and fingerprint are added by integrity.ts). */
export function encodeStun(method: number, klass: StunClass, transactionId: Uint8Array, attributes: readonly { type: number; value: Uint8Array }[]): Uint8Array {
  const length = attributes.reduce((n, a) => n + 4 + ((a.value.length + 3) & ~3), 0);
  const out = new Uint8Array(HEADER_BYTES + length);
  const view = new DataView(out.buffer);
  view.setUint16(0, messageType(method, klass));
  view.setUint16(2, length);
  view.setUint32(4, MAGIC_COOKIE);
  out.set(transactionId, 8);
  let at = HEADER_BYTES;
  for (const a of attributes) {
    view.setUint16(at, a.type);
    view.setUint16(at + 2, a.value.length);
    out.set(a.value, at + 4);
    at += 4 + ((a.value.length + 3) & ~3);
  }
  return out;
}

export function attribute(message: StunMessage, type: number): StunAttribute | undefined {
  return message.attributes.find((a) => a.type === type);
}

export function textAttribute(message: StunMessage, type: number): string | undefined {
  const a = attribute(message, type);
  return a ? new TextDecoder().decode(a.value) : undefined;
}

/** XOR-MAPPED-ADDRESS (s14.2): the address XORed with the cookie (and, for IPv6, the transaction ID). */
export function encodeXorAddress(address: Address, transactionId: Uint8Array): Uint8Array {
  const ip = ipToBytes(address.host);
  const out = new Uint8Array(4 + ip.length);
  const view = new DataView(out.buffer);
  view.setUint8(1, ip.length === 4 ? 0x01 : 0x02);
  view.setUint16(2, address.port ^ (MAGIC_COOKIE >>> 16));
  const mask = xorMask(transactionId);
  for (let i = 0; i < ip.length; i++) out[4 + i] = ip[i] ^ mask[i];
  return out;
}

export function decodeXorAddress(value: Uint8Array, transactionId: Uint8Array): Address {
  if (value.length !== 8 && value.length !== 20) throw new StunError('XOR-MAPPED-ADDRESS has a bad length');
  const family = value[1];
  if ((family === 0x01 && value.length !== 8) || (family === 0x02 && value.length !== 20) || (family !== 0x01 && family !== 0x02)) throw new StunError('XOR-MAPPED-ADDRESS has a bad family');
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const mask = xorMask(transactionId);
  const ip = value.slice(4).map((b, i) => b ^ mask[i]);
  return { host: ipFromBytes(ip), port: view.getUint16(2) ^ (MAGIC_COOKIE >>> 16) };
}

function xorMask(transactionId: Uint8Array): Uint8Array {
  const mask = new Uint8Array(16);
  new DataView(mask.buffer).setUint32(0, MAGIC_COOKIE);
  mask.set(transactionId, 4);
  return mask;
}

/** MAPPED-ADDRESS format (s14.1), also used by OTHER-ADDRESS and RESPONSE-ORIGIN (RFC 5780 s7). */
export function encodePlainAddress(address: Address): Uint8Array {
  const ip = ipToBytes(address.host);
  const out = new Uint8Array(4 + ip.length);
  const view = new DataView(out.buffer);
  view.setUint8(1, ip.length === 4 ? 0x01 : 0x02);
  view.setUint16(2, address.port);
  out.set(ip, 4);
  return out;
}

export function decodePlainAddress(value: Uint8Array): Address {
  if ((value[1] === 0x01 && value.length !== 8) || (value[1] === 0x02 && value.length !== 20) || (value[1] !== 0x01 && value[1] !== 0x02)) throw new StunError('an address attribute has a bad family or length');
  return { host: ipFromBytes(value.slice(4)), port: new DataView(value.buffer, value.byteOffset, value.byteLength).getUint16(2) };
}

/** The mapped address of a Binding answer: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from old servers. */
export function mappedAddress(message: StunMessage): Address | undefined {
  const xor = attribute(message, Attr.XorMappedAddress);
  if (xor) return decodeXorAddress(xor.value, message.transactionId);
  const plain = attribute(message, Attr.MappedAddress);
  return plain ? decodePlainAddress(plain.value) : undefined;
}
