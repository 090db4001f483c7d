import { readArray, readList, readOneOf, readUint } from '../schema.js';
import { arrayBody, type BodyCodec } from './body-codec.js';
import { type Contact, decodeContact, encodeContact } from './contact.js';

/*
 * A peer's neighbour table as CHORD-RELOAD's Update carries it (RFC 6940 s10.4.2, ChordUpdate),
 * with contacts instead of bare Node-IDs so that a receiver can reach a new neighbour at once.
 *
 *   chord-view = [uptime: uint, type: uint, predecessors: [* contact], successors: [* contact]]
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
}

export function encodeChordView(v: ChordView): unknown[] {
  return [v.uptimeSeconds, v.type, v.predecessors.map(encodeContact), v.successors.map(encodeContact)];
}

export function decodeChordView(value: unknown, path: string): ChordView {
  const f = readArray(value, path, 4, 4);
  return {
    uptimeSeconds: readUint(f[0], `${path}.uptime`),
    type: readOneOf(f[1], `${path}.type`, [ChordUpdateType.PeerReady, ChordUpdateType.Neighbors, ChordUpdateType.Full]),
    predecessors: readList(f[2], `${path}.predecessors`, MAX_NEIGHBORS, decodeContact),
    successors: readList(f[3], `${path}.successors`, MAX_NEIGHBORS, decodeContact),
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
