import { encodeMessage, type OverlayMessage } from '../wire/message.js';
import { encodeCbor } from '../wire/cbor.js';

/*
 * RFC 6940 s6.7: a message too large for one datagram is split into fragments, each a full
 * forwarding header whose fragment field says which bytes of the payload it carries.
 */

/** Encoded size of the frame around a message, besides its payload bytes. */
const FRAME_OVERHEAD = 40;

/** Splits a message whose frame would not fit one datagram into pieces that each do. */
export function fragmentMessage(message: OverlayMessage, datagramBudget: number): OverlayMessage[] {
  const total = message.payload.length;
  const headerBytes = encodeCbor(encodeMessage({ header: message.header, payload: new Uint8Array(0) })).length;
  const room = datagramBudget - headerBytes - FRAME_OVERHEAD;
  if (total <= room) return [{ header: { ...message.header, fragment: { offset: 0, total } }, payload: message.payload }];
  if (room < 64) throw new RangeError('forwarding header leaves no room for a fragment');
  const pieces: OverlayMessage[] = [];
  for (let offset = 0; offset < total; offset += room) {
    pieces.push({
      header: { ...message.header, fragment: { offset, total } },
      payload: message.payload.subarray(offset, Math.min(total, offset + room)),
    });
  }
  return pieces;
}
