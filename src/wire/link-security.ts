import { decodeCbor, encodeCbor } from './cbor.js';
import { DecodeError } from './decode-error.js';
import { FrameType, MAX_DATAGRAM_BYTES } from './frame.js';
import { readArray, readBytes, readUint } from './schema.js';

/*
 * The link-security frames (docs/security.md, docs/protocol.cddl). A handshake authenticates
 * both ends with their certificates and agrees X25519 keys; after it, every link frame travels
 * inside a sealed frame. They share the frame numbering with wire/frame.ts so one first byte and
 * one type field tell every datagram on the port apart.
 *
 *   link-hello   = [3, session: bstr .size 8, ephemeral: bstr .size 32, time: uint,
 *                   certificate: bstr, signature: bstr, ? cookie: bstr .size 16]
 *   link-reply   = [4, initiator-session: bstr .size 8, responder-session: bstr .size 8,
 *                   ephemeral: bstr .size 32, certificate: bstr, signature: bstr]
 *   sealed       = [5, receiver-session: bstr .size 8, counter: uint .lt 2^48, ciphertext: bstr]
 *   link-cookie  = [6, initiator-session: bstr .size 8, cookie: bstr .size 16]
 *   link-unknown = [7, session: bstr .size 8]
 */
export const SESSION_ID_BYTES = 8;
export const EPHEMERAL_KEY_BYTES = 32;
export const COOKIE_BYTES = 16;
/** Counters are nonces of 48 bits (link-crypto.ts); a frame claiming more is malformed. */
export const MAX_SEALED_COUNTER = 2 ** 48 - 1;
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
  /** The responder's return-routability cookie, echoed (absent in a first hello). */
  readonly cookie?: Uint8Array;
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

/** A stateless answer to a hello without (or with a stale) cookie: send the hello again with this. */
export interface LinkCookie {
  readonly type: FrameType.LinkCookie;
  readonly initiatorSession: Uint8Array;
  readonly cookie: Uint8Array;
}

/** "I hold no session with this id": lets the session's owner start a fresh handshake. */
export interface LinkUnknown {
  readonly type: FrameType.LinkUnknown;
  readonly session: Uint8Array;
}

export type SecurityFrame = LinkHello | LinkReply | SealedFrame | LinkCookie | LinkUnknown;

/** True when a CBOR-array datagram's type field is one of ours: [3..7, ...] with a small array header. */
export function isSecurityFrame(datagram: Uint8Array): boolean {
  const type = datagram.length > 1 ? datagram[1] : -1;
  return type >= FrameType.LinkHello && type <= FrameType.LinkUnknown;
}

export function encodeSecurityFrame(frame: SecurityFrame): Uint8Array {
  switch (frame.type) {
    case FrameType.LinkHello: {
      const fields = [frame.type, frame.session, frame.ephemeral, frame.time, frame.certificate, frame.signature];
      return encodeCbor(frame.cookie ? [...fields, frame.cookie] : fields);
    }
    case FrameType.LinkReply:
      return encodeCbor([frame.type, frame.initiatorSession, frame.responderSession, frame.ephemeral, frame.certificate, frame.signature]);
    case FrameType.Sealed:
      return encodeCbor([frame.type, frame.session, frame.counter, frame.ciphertext]);
    case FrameType.LinkCookie:
      return encodeCbor([frame.type, frame.initiatorSession, frame.cookie]);
    case FrameType.LinkUnknown:
      return encodeCbor([frame.type, frame.session]);
  }
}

export function decodeSecurityFrame(bytes: Uint8Array): SecurityFrame {
  const value = decodeCbor(bytes, MAX_DATAGRAM_BYTES, '$');
  const f = readArray(value, '$', 2, 7);
  const type = readUint(f[0], '$.type');
  const session = (v: unknown, path: string): Uint8Array => readBytes(v, path, SESSION_ID_BYTES, SESSION_ID_BYTES);
  const ephemeral = (v: unknown, path: string): Uint8Array => readBytes(v, path, EPHEMERAL_KEY_BYTES, EPHEMERAL_KEY_BYTES);
  switch (type) {
    case FrameType.LinkHello:
      readArray(value, '$', 6, 7);
      return {
        type,
        session: session(f[1], '$.session'),
        ephemeral: ephemeral(f[2], '$.ephemeral'),
        time: readUint(f[3], '$.time'),
        certificate: readBytes(f[4], '$.certificate', 1, MAX_CERTIFICATE),
        signature: readBytes(f[5], '$.signature', 1, MAX_SIGNATURE),
        ...(f.length === 7 ? { cookie: readBytes(f[6], '$.cookie', COOKIE_BYTES, COOKIE_BYTES) } : {}),
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
        counter: readUint(f[2], '$.counter', MAX_SEALED_COUNTER),
        ciphertext: readBytes(f[3], '$.ciphertext', 16, MAX_DATAGRAM_BYTES),
      };
    case FrameType.LinkCookie:
      readArray(value, '$', 3, 3);
      return { type, initiatorSession: session(f[1], '$.initiatorSession'), cookie: readBytes(f[2], '$.cookie', COOKIE_BYTES, COOKIE_BYTES) };
    case FrameType.LinkUnknown:
      readArray(value, '$', 2, 2);
      return { type, session: session(f[1], '$.session') };
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

/**
 * What the initiator's keys are bound to besides the key agreement: both certificates. The
 * initiator's first sealed frame (its key confirmation) can only be made by a node that holds the
 * hello's ephemeral key and saw this responder's certificate in the reply.
 */
export function handshakeTranscript(hello: LinkHello, responderCertificate: Uint8Array): Uint8Array {
  return encodeCbor(['p2psip link transcript', hello.certificate, responderCertificate]);
}

/** What a cookie is a MAC over: the hello's source address and its signed fields. */
export function cookieInput(address: string, hello: LinkHello): Uint8Array {
  return encodeCbor(['p2psip link cookie', address, hello.session, hello.ephemeral, hello.time]);
}

/** A sealed frame's associated data: the receiver's session and the counter (8 bytes, big-endian). */
export function sealedFrameAad(session: Uint8Array, counter: number): Uint8Array {
  const aad = new Uint8Array(SESSION_ID_BYTES + 8);
  aad.set(session, 0);
  new DataView(aad.buffer).setBigUint64(SESSION_ID_BYTES, BigInt(counter));
  return aad;
}
