import { decodeCbor, encodeCbor } from './cbor.js';
import { DecodeError } from './decode-error.js';
import { type Id, idToBytes, readId } from './id.js';
import { decodeMessage, encodeMessage, type OverlayMessage } from './message.js';
import { readArray, readUint } from './schema.js';

/*
 * Link frames: what one UDP datagram between neighbours carries (docs/protocol.cddl).
 * Data frames are acknowledged hop by hop, in the manner of RELOAD's simple reliability
 * (RFC 6940 s5.6.3.1): `seq` counts frames per link, and an ack carries a bitmask of the
 * 32 sequence numbers before it so one ack repairs several losses.
 *
 *   data-frame      = [0, seq: uint, sender: node-id, message]
 *   ack-frame       = [1, seq: uint, received: uint]
 *   keepalive-frame = [2, seq: uint, sender: node-id]
 */
export const MAX_DATAGRAM_BYTES = 1500;
/** Datagrams we build stay under this so they cross any path without IP fragmentation. */
export const DATAGRAM_BUDGET = 1200;

export const enum FrameType {
  Data = 0,
  Ack = 1,
  Keepalive = 2,
  /** Link security (wire/link-security.ts): handled below the transport, never by decodeFrame. */
  LinkHello = 3,
  LinkReply = 4,
  Sealed = 5,
  LinkCookie = 6,
  LinkUnknown = 7,
}

export type Frame =
  | { readonly type: FrameType.Data; readonly seq: number; readonly sender: Id; readonly message: OverlayMessage }
  | { readonly type: FrameType.Ack; readonly seq: number; readonly received: number }
  | { readonly type: FrameType.Keepalive; readonly seq: number; readonly sender: Id };

export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.Data:
      return encodeCbor([FrameType.Data, frame.seq, idToBytes(frame.sender), encodeMessage(frame.message)]);
    case FrameType.Ack:
      return encodeCbor([FrameType.Ack, frame.seq, frame.received >>> 0]);
    case FrameType.Keepalive:
      return encodeCbor([FrameType.Keepalive, frame.seq, idToBytes(frame.sender)]);
  }
}

export function decodeFrame(bytes: Uint8Array): Frame {
  const path = '$';
  const value = decodeCbor(bytes, MAX_DATAGRAM_BYTES, path);
  const f = readArray(value, path, 3, 4);
  const type = readUint(f[0], '$.type');
  const seq = readUint(f[1], '$.seq');
  switch (type) {
    case FrameType.Data:
      readArray(value, path, 4, 4);
      return { type, seq, sender: readId(f[2], '$.sender'), message: decodeMessage(f[3]) };
    case FrameType.Ack:
      readArray(value, path, 3, 3);
      return { type, seq, received: readUint(f[2], '$.received') };
    case FrameType.Keepalive:
      readArray(value, path, 3, 3);
      return { type, seq, sender: readId(f[2], '$.sender') };
    default:
      throw new DecodeError('$.type', `unknown frame type ${type}`);
  }
}
