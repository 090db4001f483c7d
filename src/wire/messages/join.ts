import { type Id, idToBytes, readId } from '../id.js';
import { readBool } from '../schema.js';
import { arrayBody } from './body-codec.js';
import { type ChordView, viewBody } from './chord-view.js';

/*
 * RFC 6940 s6.4.2.5 Join. The joining peer asks its admitting peer (its future successor)
 * to take it in; the answer carries the admitting peer's neighbour table (CHORD-RELOAD's
 * overlay-specific data) so the joining peer can fill its own.
 *
 *   join-req = [joining-peer-id: node-id, ? attach-first: bool]   (contact.ts)
 *   join-ans = [view: chord-view]
 */
export interface JoinReq {
  readonly joiningPeerId: Id;
  readonly attachFirst?: boolean;
}
export interface JoinAns {
  readonly view: ChordView;
}

export const joinReq = arrayBody<JoinReq>(
  'joinReq',
  1,
  2,
  (v) => (v.attachFirst ? [idToBytes(v.joiningPeerId), true] : [idToBytes(v.joiningPeerId)]),
  (f, p) => ({
    joiningPeerId: readId(f[0], `${p}.joiningPeerId`),
    ...(f[1] !== undefined && readBool(f[1], `${p}.attachFirst`) ? { attachFirst: true } : {}),
  }),
);

export const joinAns = viewBody('joinAns');
