import { decodeCbor, encodeCbor } from './cbor.js';
import { DecodeError } from './decode-error.js';
import { FrameType, MAX_DATAGRAM_BYTES } from './frame.js';
import { readArray, readBytes, readUint } from './schema.js';

/*
 * The link-security frames (docs/security.md, docs/protocol.cddl). A handshake of two datagrams
 * authenticates both ends with their certificates and agrees X25519 keys; after it, every link
 * frame travels inside a sealed frame. They share the frame numbering with wire/frame.ts so one
 * first byte and one type field tell every datagram on the port apart.
 *
 *   link-hello  = [3, session: bstr .size 8, ephemeral: bstr .size 32, time: uint,
 *                  certificate: bstr, signature: bstr]
 *   link-reply  = [4, initiator-session: bstr .size 8, responder-session: bstr .size 8,
 *                  ephemeral: bstr .size 32, certificate: bstr, signature: bstr]
 *   sealed      = [5, receiver-session: bstr .size 8, counter: uint, ciphertext: bstr]
 */
export const SESSION_ID_BYTES = 8;
export const EPHEMERAL_KEY_BYTES = 32;
const MAX_CERTIFICATE = 2048;
const MAX_SIGNATURE = 64;

export interface LinkHello {
  readonly type: FrameType.LinkHello;
  readonly session: Uint8Array;
  readonly ephemeral: Uint8Array;
  /** The initiator's wall clock, seconds: stale hellos are refused. */
  readonly time: number;
  readonly certificate: Uint8Array;
  readonly signature: Uint8Array;
}

export interface LinkReply {
  readonly type: FrameType.LinkReply;
  readonly initiatorSession: Uint8Array;
  readonly responderSession: Uint8Array;
  readonly ephemeral: Uint8Array;
  readonly certificate: Uint8Array;
  readonly signature: Uint8Array;
}

export interface SealedFrame {
  readonly type: FrameType.Sealed;
  readonly session: Uint8Array;
  readonly counter: number;
  readonly ciphertext: Uint8Array;
}

export type SecurityFrame = LinkHello | LinkReply | SealedFrame;

/** True when a CBOR-array datagram's type field is one of ours: [3..5, ...] with a small array header. */
export function isSecurityFrame(datagram: Uint8Array): boolean {
  const type = datagram.length > 1 ? datagram[1] : -1;
  return type === FrameType.LinkHello || type === FrameType.LinkReply || type === FrameType.Sealed;
}

export function encodeSecurityFrame(frame: SecurityFrame): Uint8Array {
  switch (frame.type) {
    case FrameType.LinkHello:
      return encodeCbor([frame.type, frame.session, frame.ephemeral, frame.time, frame.certificate, frame.signature]);
    case FrameType.LinkReply:
      return encodeCbor([frame.type, frame.initiatorSession, frame.responderSession, frame.ephemeral, frame.certificate, frame.signature]);
    case FrameType.Sealed:
      return encodeCbor([frame.type, frame.session, frame.counter, frame.ciphertext]);
  }
}

export function decodeSecurityFrame(bytes: Uint8Array): SecurityFrame {
  const value = decodeCbor(bytes, MAX_DATAGRAM_BYTES, '$');
  const f = readArray(value, '$', 4, 6);
  const type = readUint(f[0], '$.type');
  const session = (v: unknown, path: string): Uint8Array => readBytes(v, path, SESSION_ID_BYTES, SESSION_ID_BYTES);
  const ephemeral = (v: unknown, path: string): Uint8Array => readBytes(v, path, EPHEMERAL_KEY_BYTES, EPHEMERAL_KEY_BYTES);
  switch (type) {
    case FrameType.LinkHello:
      readArray(value, '$', 6, 6);
      return {
        type,
        session: session(f[1], '$.session'),
        ephemeral: ephemeral(f[2], '$.ephemeral'),
        time: readUint(f[3], '$.time'),
        certificate: readBytes(f[4], '$.certificate', 1, MAX_CERTIFICATE),
        signature: readBytes(f[5], '$.signature', 1, MAX_SIGNATURE),
      };
    case FrameType.LinkReply:
      readArray(value, '$', 6, 6);
      return {
        type,
        initiatorSession: session(f[1], '$.initiatorSession'),
        responderSession: session(f[2], '$.responderSession'),
        ephemeral: ephemeral(f[3], '$.ephemeral'),
        certificate: readBytes(f[4], '$.certificate', 1, MAX_CERTIFICATE),
        signature: readBytes(f[5], '$.signature', 1, MAX_SIGNATURE),
      };
    case FrameType.Sealed:
      readArray(value, '$', 4, 4);
      return {
        type,
        session: session(f[1], '$.session'),
        counter: readUint(f[2], '$.counter', Number.MAX_SAFE_INTEGER),
        ciphertext: readBytes(f[3], '$.ciphertext', 16, MAX_DATAGRAM_BYTES),
      };
    default:
      throw new DecodeError('$.type', `not a link-security frame: ${type}`);
  }
}

/** What the initiator signs: its session, its ephemeral key and the time (RFC 6940 s13 spirit: bind keys to identities). */
export function helloSignatureInput(overlay: number, session: Uint8Array, ephemeral: Uint8Array, time: number): Uint8Array {
  return encodeCbor(['p2psip link hello', overlay, session, ephemeral, time]);
}

/** What the responder signs: both sessions, both ephemeral keys and the initiator's certificate. */
export function replySignatureInput(overlay: number, hello: LinkHello, responderSession: Uint8Array, ephemeral: Uint8Array): Uint8Array {
  return encodeCbor(['p2psip link reply', overlay, hello.session, responderSession, hello.ephemeral, ephemeral, hello.certificate]);
}

/** A sealed frame's associated data: the receiver's session and the counter (8 bytes, big-endian). */
export function sealedFrameAad(session: Uint8Array, counter: number): Uint8Array {
  const aad = new Uint8Array(SESSION_ID_BYTES + 8);
  aad.set(session, 0);
  new DataView(aad.buffer).setBigUint64(SESSION_ID_BYTES, BigInt(counter));
  return aad;
}
