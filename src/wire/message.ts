import { DecodeError } from './decode-error.js';
import { type Id, idToBytes, readId } from './id.js';
import { readArray, readBytes, readList, readUint } from './schema.js';

/*
 * The forwarding header and the whole overlay message (RFC 6940 s6.3.2, in CBOR; see
 * docs/protocol.cddl). The header is what forwarding peers read and rewrite (TTL, via list,
 * destination list, fragment); `payload` is the end-to-end part, signed by the sender, which
 * forwarders pass on untouched.
 */

export const PROTOCOL_VERSION = 1;
export const DEFAULT_TTL = 100; // RFC 6940 s6.3.2.1 initial-ttl default
export const MAX_VIA = 128;
/** As long as the via list: a response's destination list is its request's via list reversed (s6.3.2.2). */
export const MAX_DESTINATIONS = MAX_VIA;
export const MAX_MESSAGE_BYTES = 64 * 1024; // reassembled payload limit (RFC 6940 max-message-size)
export const TRANSACTION_ID_BYTES = 8;

export const enum DestinationKind {
  Node = 0,
  Resource = 1,
}

export interface Destination {
  readonly kind: DestinationKind;
  readonly id: Id;
}

export interface Fragment {
  /** Byte offset of this piece within the whole payload. */
  readonly offset: number;
  /** Length of the whole payload. */
  readonly total: number;
}

export interface ForwardingHeader {
  readonly overlay: number;
  /**
   * RFC 6940 s6.3.2.1 configuration_sequence: the sequence of the configuration document the
   * sender holds, 0 when it does not check (open mode). A mismatch starts a ConfigUpdate.
   */
  readonly configSequence: number;
  readonly ttl: number;
  readonly fragment: Fragment;
  readonly via: readonly Id[];
  readonly destinations: readonly Destination[];
  readonly transactionId: Uint8Array;
  readonly code: number;
}

export interface OverlayMessage {
  readonly header: ForwardingHeader;
  /** The signed payload (or, on the link, one fragment of it). */
  readonly payload: Uint8Array;
}

export function nodeDestination(id: Id): Destination {
  return { kind: DestinationKind.Node, id };
}

export function resourceDestination(id: Id): Destination {
  return { kind: DestinationKind.Resource, id };
}

export function encodeDestination(d: Destination): unknown[] {
  return [d.kind, idToBytes(d.id)];
}

export function decodeDestination(value: unknown, path: string): Destination {
  const [kind, id] = readArray(value, path, 2, 2);
  const k = readUint(kind, `${path}[0]`);
  if (k !== DestinationKind.Node && k !== DestinationKind.Resource) {
    throw new DecodeError(`${path}[0]`, `unknown destination type ${k}`);
  }
  return { kind: k, id: readId(id, `${path}[1]`) };
}

export function encodeMessage(message: OverlayMessage): unknown[] {
  const h = message.header;
  return [
    PROTOCOL_VERSION,
    h.overlay,
    h.configSequence,
    h.ttl,
    [h.fragment.offset, h.fragment.total],
    h.via.map(idToBytes),
    h.destinations.map(encodeDestination),
    h.transactionId,
    h.code,
    message.payload,
  ];
}

export function decodeMessage(value: unknown, path = '$.message'): OverlayMessage {
  const f = readArray(value, path, 10, 10);
  const version = readUint(f[0], `${path}.version`);
  if (version !== PROTOCOL_VERSION) throw new DecodeError(`${path}.version`, `unsupported version ${version}`);
  const [offsetValue, totalValue] = readArray(f[4], `${path}.fragment`, 2, 2);
  const fragment = {
    offset: readUint(offsetValue, `${path}.fragment.offset`, MAX_MESSAGE_BYTES),
    total: readUint(totalValue, `${path}.fragment.total`, MAX_MESSAGE_BYTES),
  };
  const payload = readBytes(f[9], `${path}.payload`, 0, MAX_MESSAGE_BYTES);
  if (fragment.offset + payload.length > fragment.total) {
    throw new DecodeError(`${path}.fragment`, 'fragment extends past the message length');
  }
  return {
    header: {
      overlay: readUint(f[1], `${path}.overlay`),
      configSequence: readUint(f[2], `${path}.configSequence`),
      ttl: readUint(f[3], `${path}.ttl`, 255),
      fragment,
      via: readList(f[5], `${path}.via`, MAX_VIA, readId),
      destinations: readList(f[6], `${path}.destinations`, MAX_DESTINATIONS, decodeDestination, 1),
      transactionId: readBytes(f[7], `${path}.transactionId`, TRANSACTION_ID_BYTES, TRANSACTION_ID_BYTES),
      code: readUint(f[8], `${path}.code`, 0xffff),
    },
    payload,
  };
}
