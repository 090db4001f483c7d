import { type Id, idToBytes, readId } from '../id.js';
import { arrayBody } from './body-codec.js';
import { type ChordView, decodeChordView, encodeChordView } from './chord-view.js';

/*
 * RFC 6940 s6.4.2.6 Leave. A peer leaving gracefully tells its neighbours, handing them its
 * neighbour table so the ring closes over the gap at once rather than after failure detection.
 *
 *   leave-req = [leaving-peer-id: node-id, view: chord-view]
 *   leave-ans = []
 */
export interface LeaveReq {
  readonly leavingPeerId: Id;
  readonly view: ChordView;
}
export type LeaveAns = Record<string, never>;

export const leaveReq = arrayBody<LeaveReq>(
  'leaveReq',
  2,
  2,
  (v) => [idToBytes(v.leavingPeerId), encodeChordView(v.view)],
  (f, p) => ({ leavingPeerId: readId(f[0], `${p}.leavingPeerId`), view: decodeChordView(f[1], `${p}.view`) }),
);

export const leaveAns = arrayBody<LeaveAns>(
  'leaveAns',
  0,
  0,
  () => [],
  () => ({}),
);
