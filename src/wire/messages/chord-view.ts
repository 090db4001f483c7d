import { readArray, readBool, readList, readOneOf, readUint } from '../schema.js';
import { arrayBody, type BodyCodec } from './body-codec.js';
import { type Contact, decodeContact, encodeContact } from './contact.js';

/*
 * A peer's neighbour table as CHORD-RELOAD's Update carries it (RFC 6940 s10.4.2, ChordUpdate),
 * with contacts instead of bare Node-IDs so that a receiver can reach a new neighbour at once.
 *
 *   chord-view = [uptime: uint, type: uint, predecessors: [* contact], successors: [* contact],
 *                 ? sender-attach-first: bool]
 *
 * The last field is the sender's own `attach-first` (contact.ts): only the sender knows its NAT.
 */
export const enum ChordUpdateType {
  PeerReady = 1,
  Neighbors = 2,
  Full = 3,
}

export const MAX_NEIGHBORS = 32;

export interface ChordView {
  readonly uptimeSeconds: number;
  readonly type: ChordUpdateType;
  readonly predecessors: readonly Contact[];
  readonly successors: readonly Contact[];
  readonly senderAttachFirst?: boolean;
}

export function encodeChordView(v: ChordView): unknown[] {
  const fields: unknown[] = [v.uptimeSeconds, v.type, v.predecessors.map(encodeContact), v.successors.map(encodeContact)];
  if (v.senderAttachFirst) fields.push(true);
  return fields;
}

export function decodeChordView(value: unknown, path: string): ChordView {
  const f = readArray(value, path, 4, 5);
  return {
    uptimeSeconds: readUint(f[0], `${path}.uptime`),
    type: readOneOf(f[1], `${path}.type`, [ChordUpdateType.PeerReady, ChordUpdateType.Neighbors, ChordUpdateType.Full]),
    predecessors: readList(f[2], `${path}.predecessors`, MAX_NEIGHBORS, decodeContact),
    successors: readList(f[3], `${path}.successors`, MAX_NEIGHBORS, decodeContact),
    ...(f[4] !== undefined && readBool(f[4], `${path}.senderAttachFirst`) ? { senderAttachFirst: true } : {}),
  };
}

/** A body that is just a view: [view: chord-view] (join-ans, update-req, update-ans). */
export function viewBody(name: string): BodyCodec<{ readonly view: ChordView }> {
  return arrayBody(
    name,
    1,
    1,
    (v) => [encodeChordView(v.view)],
    (f, p) => ({ view: decodeChordView(f[0], `${p}.view`) }),
  );
}
