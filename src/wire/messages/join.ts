import { type Id, idToBytes, readId } from '../id.js';
import { arrayBody } from './body-codec.js';
import { type ChordView, viewBody } from './chord-view.js';

/*
 * RFC 6940 s6.4.2.5 Join. The joining peer asks its admitting peer (its future successor)
 * to take it in; the answer carries the admitting peer's neighbour table (CHORD-RELOAD's
 * overlay-specific data) so the joining peer can fill its own.
 *
 *   join-req = [joining-peer-id: node-id]
 *   join-ans = [view: chord-view]
 */
export interface JoinReq {
  readonly joiningPeerId: Id;
}
export interface JoinAns {
  readonly view: ChordView;
}

export const joinReq = arrayBody<JoinReq>(
  'joinReq',
  1,
  1,
  (v) => [idToBytes(v.joiningPeerId)],
  (f, p) => ({ joiningPeerId: readId(f[0], `${p}.joiningPeerId`) }),
);

export const joinAns = viewBody('joinAns');
